#pragma once
// The CPU side of the shared per-element math: a vector policy over at::vec and the loop that hands
// positions to it. Compiled once per instruction set: the kernels_<isa>.cpp file that includes this
// defines CPU_CAPABILITY (DEFAULT, AVX2 or AVX512) first, so every type below lives in a namespace
// of its own and the builds never share a symbol.

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <limits>

#include "gen_ext/expm1_float.h"
#include "gen_ext/scalar_ops.h"
#include "gen_ext/tanh_near_zero.h"

namespace gen_ext {
namespace cpu {
namespace CPU_CAPABILITY {

// A scalar policy of this instruction set's own, so the tail instantiations differ by type (and
// so by symbol) among the DEFAULT, AVX2 and AVX512 builds.
template <typename T>
struct TailOps : gen_ext::ScalarOps<T> {};

template <typename T>
struct VecOps {
  using Scalar = T;
  using V = at::vec::Vectorized<T>;
  using Mask = V;
  static V splat(T v) { return V(v); }
  static V load(const T* p) { return V::loadu(p); }
  static void store(T* p, V v) { v.store(p); }
  // at::vec's own polynomial exp (2 ulp) is several times cheaper than Sleef's 1-ulp one. It
  // clamps its argument with min/max instructions, which turn a NaN into a bound (a finite
  // result) and an argument past log(max) into log(max) (a finite result): those lanes are put
  // back to NaN and inf (v + inf is both).
  static V exp(V v) {
    static constexpr T kLogMax = sizeof(T) == 4 ? T(88.72283935546875) : T(709.782712893384);
    const V special = (v > V(kLogMax)) | (v != v);
    return V::blendv(v.exp_u20(), v + V(std::numeric_limits<T>::infinity()), special);
  }
  // float: exp above and a polynomial near zero (gen_ext/expm1_float.h), several times cheaper
  // than Sleef's expm1f; double: Sleef's (1 ulp)
  static V expm1(V v) {
    if constexpr (sizeof(T) == 4) {
      return expm1_from_exp<VecOps>(v);
    } else {
      return v.expm1();
    }
  }
  static V log(V v) { return v.log(); }
  // Through one exp, like the rest, several times cheaper than Sleef's tanh or expm1; below
  // |v| = 0.4 a polynomial instead, where 1 - e would cancel (gen_ext/tanh_near_zero.h).
  static V tanh(V v) {
    const V e = exp(V(T(-2)) * v.abs());
    const V t = (V(T(1)) - e) / (V(T(1)) + e);
    return tanh_fix_near_zero<VecOps>(v, select(v < V(T(0)), -t, t));
  }
  // Two at the cost of one division: 1/(1+e_v) = (1+e_w) / ((1+e_v)(1+e_w)).
  static void tanh_pair(V v, V w, V& tv, V& tw) {
    const V ev = exp(V(T(-2)) * v.abs()), ew = exp(V(T(-2)) * w.abs());
    const V one_ev = V(T(1)) + ev, one_ew = V(T(1)) + ew;
    const V d = V(T(1)) / (one_ev * one_ew);
    const V t_v = (V(T(1)) - ev) * one_ew * d, t_w = (V(T(1)) - ew) * one_ev * d;
    tv = tanh_fix_near_zero<VecOps>(v, select(v < V(T(0)), -t_v, t_v));
    tw = tanh_fix_near_zero<VecOps>(w, select(w < V(T(0)), -t_w, t_w));
  }
  static V abs(V v) { return v.abs(); }
  static V max(V a, V b) { return at::vec::maximum(a, b); }
  static V min(V a, V b) { return at::vec::minimum(a, b); }
  static V floor(V v) { return v.floor(); }
  static Mask gt(V a, V b) { return a > b; }
  static Mask ge(V a, V b) { return a >= b; }
  static V select(Mask m, V a, V b) { return V::blendv(b, a, m); }
  static bool any(Mask m) { return m.zero_mask() != (1 << V::size()) - 1; }
};

// Walks positions [begin, end) of a [B, S] grid, handing full vectors that stay inside one row to
// `vec(b, s)` and everything else to `scalar(b, s)`.
template <typename T, typename VecFn, typename ScalarFn>
void for_each_position(int64_t begin, int64_t end, int64_t S, const VecFn& vec,
                       const ScalarFn& scalar) {
  constexpr int64_t W = at::vec::Vectorized<T>::size();
  int64_t i = begin;
  while (i < end) {
    const int64_t b = i / S;
    const int64_t s = i % S;
    if (s + W <= S && i + W <= end) {
      vec(b, s);
      i += W;
    } else {
      scalar(b, s);
      i += 1;
    }
  }
}

// Positions per parallel task: enough work to amortise the fork, small enough for two cores.
constexpr int64_t kGrain = 256;

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace gen_ext
