#pragma once
// Per-element math of the fused concat-ELU with dropout (PixelCNN++'s nonlinearity), shared by
// the CPU kernels (scalar and at::vec lanes) and the CUDA kernels.
//
//   x [B, C, *]  ->  out [B, 2C, *] = dropout(cat(elu(x), elu(-x)))
//
// elu(v) = v for v > 0, exp(v) - 1 otherwise. One expm1 serves both halves: with m = expm1(-|v|),
//   elu(v) = v > 0 ? v : m          elu(-v) = v < 0 ? -v : m
//   d elu(v)/dv = v > 0 ? 1 : m + 1     d elu(-v)/dv = v < 0 ? -1 : -(m + 1)
// A NaN fails every comparison and takes the m branches: NaN in both halves and their gradients.
//
// Dropout multiplies output element i by its factor: 1 / (1 - p) where the top 32 bits of the
// i-th output of splitmix64 started at `seed` reach threshold = ceil(p * 2^32), 0 elsewhere (as
// torch's dropout multiplies by its mask, a NaN stays NaN). The backward regenerates the factors
// from the seed instead of storing a mask. p = 0 draws nothing: every factor is 1.
#include <cmath>
#include <cstdint>

#include "gen_ext/gaussian_math.h"
#include "gen_ext/macros.h"
#include "gen_ext/scalar_ops.h"

namespace gen_ext {
namespace concat_elu {

// Dropout's keep threshold on the top 32 bits of a draw, ceil(p * 2^32) (exact in double), and
// the factor of a kept element, 1 / (1 - p). Computed on the host.
inline uint64_t dropout_threshold(double p) {
  return static_cast<uint64_t>(std::ceil(p * 4294967296.0));
}
inline double dropout_keep_scale(double p) { return 1.0 / (1.0 - p); }

// The dropout factor of output element `index` (keep_scale = 1 / (1 - p) in the element type).
template <typename T>
GEN_EXT_HOST_DEVICE T dropout_factor(uint64_t seed, uint64_t index, uint64_t threshold,
                                     T keep_scale) {
  return (gaussian::splitmix64(seed, index) >> 32) >= threshold ? keep_scale : T(0);
}

template <typename Ops>
struct Element {
  using T = typename Ops::Scalar;
  using V = typename Ops::V;

  // The two halves' values for input v (before dropout).
  GEN_EXT_HOST_DEVICE static void forward(V v, V& pos, V& neg) {
    const V zero = Ops::splat(T(0));
    const V m = Ops::expm1(-Ops::abs(v));
    pos = Ops::select(Ops::gt(v, zero), v, m);
    neg = Ops::select(Ops::gt(zero, v), -v, m);
  }

  // The gradient of v given the gradients of its two outputs (already times their factors).
  GEN_EXT_HOST_DEVICE static V backward(V grad_pos, V grad_neg, V v) {
    const V zero = Ops::splat(T(0)), one = Ops::splat(T(1));
    const V e = Ops::expm1(-Ops::abs(v)) + one;  // exp(-|v|)
    const V d_pos = Ops::select(Ops::gt(v, zero), one, e);
    const V d_neg = Ops::select(Ops::gt(zero, v), one, e);
    return grad_pos * d_pos - grad_neg * d_neg;
  }
};

}  // namespace concat_elu
}  // namespace gen_ext
