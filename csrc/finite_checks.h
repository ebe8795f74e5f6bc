#pragma once
// The finiteness test behind the convolutions' exactness proofs. A dense convolution multiplies
// what the kernels skip (zero padding, masked taps), which is exact while every factor is finite
// and NaN otherwise (0 * inf); the implicit GEMM's tiles over the padding likewise.
#include <ATen/core/Tensor.h>
#include <ATen/ops/sum.h>

#include <cmath>

namespace gen_ext {

// Proves every value of t finite: its sum is (one reduction, no boolean map: 8 us for a
// 160x160x2x3 weight where isfinite(t).all() took 170 us). A NaN or inf makes the sum NaN or inf;
// a sum of finite values that overflows reads as not proven, which only sends the call to the
// path that is exact for any values.
inline bool all_finite(const at::Tensor& t) {
  return t.numel() == 0 || std::isfinite(t.sum().item<double>());
}

}  // namespace gen_ext
