#pragma once
// expm1(v) for float vectors without Sleef's expm1f, which computes in double-float pairs and
// measured about 26 cycles per element here (5x torch.exp): it made concat-ELU, whose only
// transcendental is one expm1 per element, cost 40x a copy of its output.
//
// |v| < ln 2: the Taylor polynomial to v^10 (truncation below 1e-9 relative, under float32's
// 6e-8), evaluated by Horner as v + v^2 (1/2 + v (1/6 + ...)), so a small result keeps every digit.
// |v| >= ln 2: exp(v) - 1, where the subtraction no longer cancels: for v <= -ln 2, exp(v) <= 1/2
// and the result lies in [-1, -1/2]; for v >= ln 2 the result is at least 1. NaN stays NaN (it
// takes the exp branch, which keeps it), -inf gives -1 and inf gives inf, as the exp policy does.
// double keeps the policy's own expm1 (its error is far below the float64 tests' tolerances and
// float64 is not the fast path).
#include "gen_ext/macros.h"

namespace gen_ext {

constexpr float kExpm1PolyBound = 0.693147182f;  // ln 2

template <typename Ops>
GEN_EXT_HOST_DEVICE typename Ops::V expm1_polynomial(typename Ops::V v) {
  using T = typename Ops::Scalar;
  using V = typename Ops::V;
  V p = Ops::splat(T(1.0 / 3628800.0));     // 1/10!
  p = p * v + Ops::splat(T(1.0 / 362880.0));  // 1/9!
  p = p * v + Ops::splat(T(1.0 / 40320.0));
  p = p * v + Ops::splat(T(1.0 / 5040.0));
  p = p * v + Ops::splat(T(1.0 / 720.0));
  p = p * v + Ops::splat(T(1.0 / 120.0));
  p = p * v + Ops::splat(T(1.0 / 24.0));
  p = p * v + Ops::splat(T(1.0 / 6.0));
  p = p * v + Ops::splat(T(0.5));
  return v + (v * v) * p;
}

// expm1 of a float vector from the policy's exp and the polynomial above.
template <typename Ops>
GEN_EXT_HOST_DEVICE typename Ops::V expm1_from_exp(typename Ops::V v) {
  using T = typename Ops::Scalar;
  const auto far = Ops::exp(v) - Ops::splat(T(1));
  return Ops::select(Ops::gt(Ops::splat(T(kExpm1PolyBound)), Ops::abs(v)), expm1_polynomial<Ops>(v),
                     far);
}

}  // namespace gen_ext
