#pragma once
// tanh(v) for small |v| in float, as an odd Taylor polynomial: the kernels' tanh from
// e = exp(-2|v|), (1 - e) / (1 + e), is off by about 2e-7 absolute (exp's few ulps, then the
// cancellation of 1 - e), which relative to a small tanh is many ulps (55 at 1e-3), and a small
// colour coefficient's tanh scales a gradient. Below kTanhPolyBound the polynomial (terms to
// v^13, truncation under 5e-9 relative) is used instead; above it 1 - e no longer cancels much
// (about 2 ulps at 0.4). double keeps the exp form: its 1e-16 absolute error is far below
// float32's precision and the float64 tests' tolerances.
#include "gen_ext/macros.h"

namespace gen_ext {

constexpr float kTanhPolyBound = 0.4f;

// v (1 + z (-1/3 + z (2/15 + z (-17/315 + z (62/2835 + z (-1382/155925 + z 21844/6081075)))))),
// z = v^2: the Taylor series of tanh.
template <typename Ops>
GEN_EXT_HOST_DEVICE typename Ops::V tanh_polynomial(typename Ops::V v) {
  using T = typename Ops::Scalar;
  using V = typename Ops::V;
  const V z = v * v;
  V p = Ops::splat(T(21844.0 / 6081075.0));
  p = p * z + Ops::splat(T(-1382.0 / 155925.0));
  p = p * z + Ops::splat(T(62.0 / 2835.0));
  p = p * z + Ops::splat(T(-17.0 / 315.0));
  p = p * z + Ops::splat(T(2.0 / 15.0));
  p = p * z + Ops::splat(T(-1.0 / 3.0));
  return v + v * (z * p);
}

// t (tanh(v) from the exp form) replaced by the polynomial where |v| is small, for float.
template <typename Ops>
GEN_EXT_HOST_DEVICE typename Ops::V tanh_fix_near_zero(typename Ops::V v, typename Ops::V t) {
  using T = typename Ops::Scalar;
  if constexpr (sizeof(T) == 4) {
    return Ops::select(Ops::gt(Ops::splat(T(kTanhPolyBound)), Ops::abs(v)),
                       tanh_polynomial<Ops>(v), t);
  } else {
    return t;
  }
}

}  // namespace gen_ext
