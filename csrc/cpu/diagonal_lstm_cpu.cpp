// CPU entry points of the diagonal LSTM scan: checks, the kernels' layout
// (diagonal_lstm_layout.h), dispatch to the instruction-set build.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <tuple>

#include "../diagonal_lstm_checks.h"
#include "../diagonal_lstm_layout.h"
#include "kernels.h"

namespace gen_ext {
namespace cpu {
namespace {

std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& i2s, const at::Tensor& weight) {
  check_diagonal_lstm_inputs(i2s, weight, "diagonal_lstm_scan");
  const int64_t B = i2s.size(0), hid = i2s.size(1) / 4, H = i2s.size(2), Ws = i2s.size(3);
  auto h_pm = at::empty({B, H, Ws, hid}, i2s.options());
  auto c_pm = at::empty({B, H, Ws, hid}, i2s.options());
  if (h_pm.numel() > 0) {
    GEN_EXT_DISPATCH_ISA(
        diagonal_lstm_forward(position_major(i2s), taps_transposed(weight), h_pm, c_pm));
  }
  return {channel_major(h_pm), channel_major(c_pm)};
}

std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad_h,
                                            const std::optional<at::Tensor>& grad_c,
                                            const at::Tensor& i2s, const at::Tensor& weight,
                                            const at::Tensor& h, const at::Tensor& c) {
  check_diagonal_lstm_backward_inputs(grad_h, grad_c, i2s, weight, h, c);
  const int64_t B = i2s.size(0), G = i2s.size(1), H = i2s.size(2), Ws = i2s.size(3);
  const int64_t hid = G / 4;
  auto d_i2s_pm = at::empty({B, H, Ws, G}, i2s.options());
  auto dwt = at::empty({B, 2, hid, G}, i2s.options());  // each image fills its own
  if (d_i2s_pm.numel() > 0) {
    const at::Tensor grad_c_pm = grad_c.has_value() ? position_major(*grad_c) : at::Tensor();
    GEN_EXT_DISPATCH_ISA(diagonal_lstm_backward(
        position_major(grad_h), grad_c_pm, position_major(i2s), taps_transposed(weight),
        taps(weight), position_major(h), position_major(c), d_i2s_pm,
        dwt));
  } else {
    dwt.zero_();
  }
  return {channel_major(d_i2s_pm), weight_grad(dwt)};
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CPU, m) {
  m.impl("diagonal_lstm_scan", &forward);
  m.impl("diagonal_lstm_scan_backward", &backward);
}

}  // namespace cpu
}  // namespace gen_ext
