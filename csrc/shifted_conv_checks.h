#pragma once
// Argument checks of the shifted convolution ops (PixelCNN++'s down- and down-right-shifted
// convolutions), and the geometry the checked arguments describe. gen_ext/ops/shifted_conv.py
// checks the same things with the same messages for the fake kernels and the Triton kernels.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <string>
#include <vector>

namespace gen_ext {

// A stride-1 convolution of a [out_channels, in_channels, kh, kw] kernel over an input bordered
// by `top` zero rows above and `left` / `right` zero columns: output (i, j) reads input
// (i + dy - top, j + dx - left) at tap (dy, dx). "down" centres the columns (kw odd),
// "down_right" reads only columns at or left of j.
struct ShiftedConv {
  int64_t out_channels, in_channels, kh, kw;
  int64_t top, left, right;
  // The symmetric column padding of a source copy in which every tap reads in bounds.
  int64_t side() const { return std::max(left, right); }
};

inline void check_shifted_conv_same(const at::Tensor& t, const at::Tensor& x, const char* op,
                                    const char* name) {
  TORCH_CHECK(t.scalar_type() == x.scalar_type() && t.device() == x.device(), op, ": ", name,
              " must match x in dtype and device (", x.scalar_type(), " on ", x.device(),
              "), got ", t.scalar_type(), " on ", t.device());
}

// Checks the inputs (bias may be undefined) and returns the convolution they describe.
inline ShiftedConv check_shifted_conv_inputs(const at::Tensor& x, const at::Tensor& weight,
                                             const at::Tensor& bias, const std::string& shift,
                                             const char* op) {
  TORCH_CHECK(x.dim() == 4, op, ": x must be 4-D [B, C, H, W], got ", x.dim(), "-D");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
              ": x must be float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(weight.dim() == 4, op,
              ": weight must be 4-D [out_channels, in_channels, kh, kw], got ", weight.dim(),
              "-D");
  check_shifted_conv_same(weight, x, op, "weight");
  TORCH_CHECK(weight.size(1) == x.size(1), op, ": weight has ", weight.size(1),
              " input channels but x has ", x.size(1));
  const int64_t kh = weight.size(2), kw = weight.size(3);
  TORCH_CHECK(kh >= 1 && kw >= 1, op, ": weight's kernel size must be at least 1x1, got ", kh,
              "x", kw);
  TORCH_CHECK(shift == "down" || shift == "down_right", op,
              ": shift must be 'down' or 'down_right', got '", shift, "'");
  if (shift == "down") {
    TORCH_CHECK(kw % 2 == 1, op,
                ": with shift 'down' weight's kernel width must be odd (it is centred), got ",
                kh, "x", kw);
  }
  if (bias.defined()) {
    TORCH_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), op,
                ": bias must have shape [", weight.size(0), "], got ", bias.sizes());
    check_shifted_conv_same(bias, x, op, "bias");
  }
  const bool down = shift == "down";
  return ShiftedConv{weight.size(0), weight.size(1), kh, kw, kh - 1,
                     down ? (kw - 1) / 2 : kw - 1, down ? (kw - 1) / 2 : 0};
}

inline void check_shifted_conv_grad(const at::Tensor& grad, const at::Tensor& x,
                                     const at::Tensor& weight, const char* op) {
  const std::vector<int64_t> want{x.size(0), weight.size(0), x.size(2), x.size(3)};
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(want), op,
              ": grad must have the output's shape ", at::IntArrayRef(want), ", got ",
              grad.sizes());
  check_shifted_conv_same(grad, x, op, "grad");
}

}  // namespace gen_ext
