#pragma once
// Argument checks of the masked convolution ops, shared by the CPU and CUDA kernels.
// gen_ext/ops/masked_conv.py checks the same things with the same messages for the fake kernels.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <string>

#include "conv2d_checks.h"
#include "gen_ext/pixelcnn_mask.h"

namespace gen_ext {

// Checks the inputs (bias may be undefined) and returns the mask they describe.
inline PixelCnnMask check_masked_conv_inputs(const at::Tensor& x, const at::Tensor& weight,
                                             const at::Tensor& bias, const std::string& mask_type,
                                             int64_t color_channels, const char* op) {
  check_conv2d_operands(x, weight, op);
  TORCH_CHECK(weight.size(2) % 2 == 1 && weight.size(3) % 2 == 1, op,
              ": weight's kernel size must be odd in both dimensions, got ", weight.size(2), "x",
              weight.size(3));
  TORCH_CHECK(mask_type == "A" || mask_type == "B", op, ": mask_type must be 'A' or 'B', got '",
              mask_type, "'");
  TORCH_CHECK(color_channels == 1 || color_channels == 3, op,
              ": color_channels must be 1 or 3, got ", color_channels);
  if (color_channels == 3) {
    TORCH_CHECK(weight.size(0) % 3 == 0 && weight.size(1) % 3 == 0, op,
                ": with color_channels=3 the input and output channel counts must be divisible "
                "by 3, got ",
                weight.size(1), " and ", weight.size(0));
  }
  check_conv2d_bias(bias, weight, x, op);
  return PixelCnnMask{weight.size(0), weight.size(1), weight.size(2), weight.size(3),
                      mask_type == "B", color_channels};
}

}  // namespace gen_ext
