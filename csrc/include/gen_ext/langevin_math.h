#pragma once
// Per-element math of the Langevin step, shared by the CPU kernels and the CUDA kernel:
//   out = clamp(x - step_size * grad + noise_scale * noise, lo, hi)
// with only the bounds given applied. Comparisons with NaN are false, so a NaN stays NaN (as
// with torch.clamp); the noise is gaussian::standard_normal of the element's row-major index.
#include "gen_ext/macros.h"

namespace gen_ext {
namespace langevin {

template <typename T>
struct Step {
  T step_size, noise_scale, lo, hi;
  bool has_lo, has_hi;

  GEN_EXT_HOST_DEVICE T operator()(T x, T grad, T noise) const {
    T v = x - step_size * grad + noise_scale * noise;
    if (has_lo && v < lo) v = lo;
    if (has_hi && v > hi) v = hi;
    return v;
  }
};

}  // namespace langevin
}  // namespace gen_ext
