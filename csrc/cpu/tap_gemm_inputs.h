#pragma once
// What the CPU entry points of the tap-plan convolutions (masked_conv_cpu.cpp,
// shifted_conv_cpu.cpp) hand the implicit GEMM (masked_conv_kernel_impl.h): the side-padded
// source, the packed weights of the plan's taps, and the finiteness tests that decide whether a
// dense convolution (or the GEMM's tiles over the padding) is exact.
#include <ATen/core/Tensor.h>
#include <ATen/ops/all.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/isfinite.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/tensor.h>

#include <cmath>
#include <vector>

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

// Whether the implicit GEMM must leave out the taps outside the image one edge pixel at a time
// (gemm_rows' exact_edges): only a non-finite weight makes the zero padding matter, and checking
// the packed weights costs a pass over them, nothing next to the convolution.
inline bool has_nonfinite(const at::Tensor& packed) {
  return !at::isfinite(packed).all().item<bool>();
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

// A dense convolution multiplies what the kernels skip (the zero padding, masked taps), which is
// exact while every value is finite and NaN otherwise (0 * inf). A finite sum of its results
// proves it exact; a non-finite sum (or an overflow) sends the call to the kernel instead.
inline bool all_finite(const at::Tensor& t) {
  return t.numel() == 0 || std::isfinite(t.sum().item<double>());
}

}  // namespace cpu
}  // namespace gen_ext
