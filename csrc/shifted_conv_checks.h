#pragma once
// Argument checks of the shifted convolution ops (PixelCNN++'s down- and down-right-shifted
// convolutions), and the geometry the checked arguments describe. gen_ext/ops/shifted_conv.py
// checks the same things with the same messages for the fake kernels and the Triton kernels.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <string>
#include <vector>

#include "conv2d_checks.h"

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

// The zero border (left, right, top, bottom), as F.pad orders it, that makes a kh x kw
// convolution causal for the shift: "down" sees its own row and the rows above (kw odd,
// centred), "down_right" also stops at its own column.
inline std::vector<int64_t> shifted_padding(bool down, int64_t kh, int64_t kw) {
  if (down) return {(kw - 1) / 2, (kw - 1) / 2, kh - 1, 0};
  return {kw - 1, 0, kh - 1, 0};
}

// Checks the inputs (bias may be undefined) and returns the convolution they describe.
inline ShiftedConv check_shifted_conv_inputs(const at::Tensor& x, const at::Tensor& weight,
                                             const at::Tensor& bias, const std::string& shift,
                                             const char* op) {
  check_conv2d_operands(x, weight, op);
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
  check_conv2d_bias(bias, weight, x, op);
  const auto pad = shifted_padding(shift == "down", kh, kw);
  return ShiftedConv{weight.size(0), weight.size(1), kh, kw, pad[2], pad[0], pad[1]};
}

}  // namespace gen_ext
