#pragma once
// The layouts the diagonal LSTM kernels scan in, shared by the CPU and CUDA entry points:
// channels-last [B, H, Ws, channels], so one position's gates and state are contiguous. A
// channels-last tensor goes in without a copy, and the results come out as channels-last views.
#include <ATen/core/Tensor.h>

namespace gen_ext {

// [B, C, H, Ws] -> [B, H, Ws, C] contiguous: no copy for a channels-last tensor
inline at::Tensor position_major(const at::Tensor& t) {
  return t.permute({0, 2, 3, 1}).contiguous();
}

// [B, H, Ws, C] contiguous -> [B, C, H, Ws] with channels-last strides (a view)
inline at::Tensor channel_major(const at::Tensor& t) { return t.permute({0, 3, 1, 2}); }

// weight [4h, h, 2] -> [2, h, 4h]: each tap transposed, so a state value scales a gate row
inline at::Tensor taps_transposed(const at::Tensor& weight) {
  return weight.permute({2, 1, 0}).contiguous();
}

// weight [4h, h, 2] -> [2, 4h, h]: each tap as it is, so a gate gradient scales a state row
inline at::Tensor taps(const at::Tensor& weight) { return weight.permute({2, 0, 1}).contiguous(); }

// the images' weight gradients [B, 2, h, 4h] summed in a fixed order (bit-identical for any
// thread count) -> [4h, h, 2]
inline at::Tensor weight_grad(const at::Tensor& per_image) {
  return per_image.sum(0).permute({2, 1, 0}).contiguous();
}

}  // namespace gen_ext
