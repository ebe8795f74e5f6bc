#pragma once
// Argument checks of the diagonal LSTM scan ops, shared by the CPU and CUDA kernels.
// gen_ext/ops/diagonal_lstm.py checks the same things with the same messages for the fake
// kernels.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <optional>

namespace gen_ext {

// i2s [B, 4h, H, Ws] with Ws >= H - 1 (a skewed image of width Ws - H + 1 >= 0),
// weight [4h, h, 2].
inline void check_diagonal_lstm_inputs(const at::Tensor& i2s, const at::Tensor& weight,
                                       const char* op) {
  TORCH_CHECK(i2s.scalar_type() == at::kFloat || i2s.scalar_type() == at::kDouble, op,
              ": i2s must be float32 or float64, got ", i2s.scalar_type());
  TORCH_CHECK(i2s.dim() == 4, op, ": i2s must be [B, 4 * hidden, H, W + H - 1], got ",
              i2s.dim(), "-D");
  TORCH_CHECK(i2s.size(1) > 0 && i2s.size(1) % 4 == 0, op,
              ": i2s must have 4 * hidden channels (gates o, f, i, g), got ", i2s.size(1));
  TORCH_CHECK(i2s.size(3) + 1 >= i2s.size(2), op,
              ": i2s must be a skewed image, at least H - 1 columns wide, got H = ", i2s.size(2),
              " and ", i2s.size(3), " columns");
  const int64_t hidden = i2s.size(1) / 4;
  TORCH_CHECK(weight.dim() == 3 && weight.size(0) == 4 * hidden && weight.size(1) == hidden &&
                  weight.size(2) == 2,
              op, ": weight must be [4 * hidden, hidden, 2] = [", 4 * hidden, ", ", hidden,
              ", 2], got ", weight.sizes());
  TORCH_CHECK(weight.scalar_type() == i2s.scalar_type() && weight.device() == i2s.device(), op,
              ": weight must match i2s in dtype and device (", i2s.scalar_type(), " on ",
              i2s.device(), "), got ", weight.scalar_type(), " on ", weight.device());
}

// A gradient or saved state shaped like the outputs [B, hidden, H, Ws].
inline void check_diagonal_lstm_state(const at::Tensor& t, const at::Tensor& i2s,
                                      const char* name, const char* op) {
  const at::IntArrayRef s = i2s.sizes();
  TORCH_CHECK(t.dim() == 4 && t.size(0) == s[0] && t.size(1) == s[1] / 4 && t.size(2) == s[2] &&
                  t.size(3) == s[3],
              op, ": ", name, " must be [B, hidden, H, Ws] = [", s[0], ", ", s[1] / 4, ", ",
              s[2], ", ", s[3], "], got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == i2s.scalar_type() && t.device() == i2s.device(), op, ": ",
              name, " must match i2s in dtype and device (", i2s.scalar_type(), " on ",
              i2s.device(), "), got ", t.scalar_type(), " on ", t.device());
}

// Everything the backward op takes; grad_c may be absent.
inline void check_diagonal_lstm_backward_inputs(const at::Tensor& grad_h,
                                                const std::optional<at::Tensor>& grad_c,
                                                const at::Tensor& i2s, const at::Tensor& weight,
                                                const at::Tensor& h, const at::Tensor& c) {
  constexpr const char* op = "diagonal_lstm_scan_backward";
  check_diagonal_lstm_inputs(i2s, weight, op);
  check_diagonal_lstm_state(grad_h, i2s, "grad_h", op);
  if (grad_c.has_value()) check_diagonal_lstm_state(*grad_c, i2s, "grad_c", op);
  check_diagonal_lstm_state(h, i2s, "h", op);
  check_diagonal_lstm_state(c, i2s, "c", op);
}

}  // namespace gen_ext
