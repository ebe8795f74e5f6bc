#pragma once
// Finiteness tests behind the convolutions' exactness proofs. A dense convolution multiplies
// what the kernels skip (zero padding, masked taps), which is exact while every factor is finite
// and NaN otherwise (0 * inf); the implicit GEMM's tiles over the padding likewise.
#include <ATen/core/Tensor.h>
#include <ATen/ops/all.h>
#include <ATen/ops/isfinite.h>
#include <ATen/ops/sum.h>

#include <cmath>

namespace gen_ext {

// Whether any value of t is NaN or infinite: exact, a pass over t with a boolean map, for small
// tensors (weights, weight gradients).
inline bool has_nonfinite(const at::Tensor& t) {
  return t.numel() > 0 && !at::isfinite(t).all().item<bool>();
}

// A proof that every value of a large result is finite: its sum is (one reduction, no map). An
// overflowing sum of finite values reads as not proven, which only sends the call to the kernel.
inline bool sum_is_finite(const at::Tensor& t) {
  return t.numel() == 0 || std::isfinite(t.sum().item<double>());
}

}  // namespace gen_ext
