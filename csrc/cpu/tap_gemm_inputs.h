#pragma once
// What the CPU entry points of the tap-plan convolutions (masked_conv_cpu.cpp,
// shifted_conv_cpu.cpp) hand the implicit GEMM (masked_conv_kernel_impl.h): the side-padded
// source and the packed weights of the plan's taps (the finiteness tests that decide whether a
// dense convolution, or the GEMM's tiles over the padding, is exact: ../finite_checks.h).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/tensor.h>

#include <vector>

#include "../finite_checks.h"
#include "masked_conv_plan.h"

namespace gen_ext {
namespace cpu {

// t [B, C, H, W] with `side` zero columns left and right: [B, C, H, side + W + side], contiguous.
// Rows are not padded: the kernels leave out taps whose row is outside the image.
inline at::Tensor side_padded(const at::Tensor& t, int64_t side) {
  auto out = at::empty({t.size(0), t.size(1), t.size(2), side + t.size(3) + side}, t.options());
  out.narrow(3, 0, side).zero_();
  out.narrow(3, side + t.size(3), side).zero_();
  out.narrow(3, side, t.size(3)).copy_(t);
  return out;
}

// Positions of the plan's taps in the flattened kh*kw kernel.
inline at::Tensor tap_index(const TapPlan& plan, int64_t kw) {
  std::vector<int64_t> index;
  for (size_t t = 0; t < plan.dy.size(); ++t) index.push_back(plan.dy[t] * kw + plan.dx[t]);
  return at::tensor(index, at::kLong);
}

// The plan's taps of weight [Cout, Cin, kh, kw] as [T, Cin, Cout] (forward) or [T, Cout, Cin]
// (input gradient): one contiguous k-by-n matrix per tap.
inline at::Tensor packed_taps(const at::Tensor& weight, const at::Tensor& index, bool transposed) {
  auto taps = weight.reshape({weight.size(0), weight.size(1), -1}).index_select(2, index);
  return (transposed ? taps.permute({2, 0, 1}) : taps.permute({2, 1, 0})).contiguous();
}

}  // namespace cpu
}  // namespace gen_ext
