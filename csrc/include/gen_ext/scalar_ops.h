#pragma once
// The scalar policy of the shared per-element math (float or double, branches by control flow),
// used by the CUDA kernels and by the CPU kernels' row tails. The CPU vector policy with the same
// members is in csrc/cpu/vec_ops.h.
#include <cmath>

#include "gen_ext/macros.h"

namespace gen_ext {

GEN_EXT_HOST_DEVICE float exp_(float v) { return ::expf(v); }
GEN_EXT_HOST_DEVICE double exp_(double v) { return ::exp(v); }
GEN_EXT_HOST_DEVICE float expm1_(float v) { return ::expm1f(v); }
GEN_EXT_HOST_DEVICE double expm1_(double v) { return ::expm1(v); }
GEN_EXT_HOST_DEVICE float log_(float v) { return ::logf(v); }
GEN_EXT_HOST_DEVICE double log_(double v) { return ::log(v); }
GEN_EXT_HOST_DEVICE float tanh_(float v) { return ::tanhf(v); }
GEN_EXT_HOST_DEVICE double tanh_(double v) { return ::tanh(v); }
GEN_EXT_HOST_DEVICE float floor_(float v) { return ::floorf(v); }
GEN_EXT_HOST_DEVICE double floor_(double v) { return ::floor(v); }
GEN_EXT_HOST_DEVICE float sqrt_(float v) { return ::sqrtf(v); }
GEN_EXT_HOST_DEVICE double sqrt_(double v) { return ::sqrt(v); }
GEN_EXT_HOST_DEVICE float sin_(float v) { return ::sinf(v); }
GEN_EXT_HOST_DEVICE double sin_(double v) { return ::sin(v); }
GEN_EXT_HOST_DEVICE float cos_(float v) { return ::cosf(v); }
GEN_EXT_HOST_DEVICE double cos_(double v) { return ::cos(v); }

template <typename T>
struct ScalarOps {
  using Scalar = T;
  using V = T;
  using Mask = bool;
  GEN_EXT_HOST_DEVICE static V splat(T v) { return v; }
  GEN_EXT_HOST_DEVICE static V load(const T* p) { return *p; }
  GEN_EXT_HOST_DEVICE static void store(T* p, V v) { *p = v; }
  GEN_EXT_HOST_DEVICE static V exp(V v) { return exp_(v); }
  GEN_EXT_HOST_DEVICE static V expm1(V v) { return expm1_(v); }
  GEN_EXT_HOST_DEVICE static V log(V v) { return log_(v); }
  GEN_EXT_HOST_DEVICE static V tanh(V v) { return tanh_(v); }
  GEN_EXT_HOST_DEVICE static void tanh_pair(V v, V w, V& tv, V& tw) {
    tv = tanh_(v);
    tw = tanh_(w);
  }
  GEN_EXT_HOST_DEVICE static V abs(V v) { return v < T(0) ? -v : v; }
  // NaN in either argument gives NaN, as at::vec::maximum/minimum and torch.clamp do (a bare
  // `a > b ? a : b` would return b for a NaN a, turning a NaN input into a finite bound).
  GEN_EXT_HOST_DEVICE static V max(V a, V b) { return (a > b || a != a) ? a : b; }
  GEN_EXT_HOST_DEVICE static V min(V a, V b) { return (a < b || a != a) ? a : b; }
  GEN_EXT_HOST_DEVICE static V floor(V v) { return floor_(v); }
  GEN_EXT_HOST_DEVICE static Mask gt(V a, V b) { return a > b; }
  GEN_EXT_HOST_DEVICE static Mask ge(V a, V b) { return a >= b; }
  GEN_EXT_HOST_DEVICE static V select(Mask m, V a, V b) { return m ? a : b; }
};

}  // namespace gen_ext
