#pragma once
// Per-element math of the fused Gaussian reparameterization and KL, shared by the CPU kernels
// (scalar and at::vec lanes) and the CUDA kernels; see dlm_math.h for the Ops policies.
//
//   z  = mu + exp(lv / 2) * eps
//   kl = 1/2 sum (exp(lv) + mu^2 - 1 - lv)      KL(N(mu, exp(lv)) || N(0, 1)), summed per row
// with lv = clamp(logvar, -30, 20): exp(lv / 2) stays within [3e-7, 2.2e4] and exp(lv) within
// [9e-14, 4.9e8], so z, kl and every gradient are finite in float32 for any finite logvar (a row
// of 512 dims sums to at most ~2.5e11). As with torch.clamp, logvar outside the range or on its
// bounds gets no gradient through lv. A NaN logvar gives NaN z, kl and gradients (the clamp keeps
// NaN: Ops::max/min propagate it).
#include <cstdint>

#include "gen_ext/macros.h"
#include "gen_ext/scalar_ops.h"

namespace gen_ext {
namespace gaussian {

constexpr double kMinLogVar = -30.0;
constexpr double kMaxLogVar = 20.0;

// Counter-based standard normal noise: element `index` of the stream `seed`, the same on every
// device and for any thread count, so a kernel draws its noise where it needs it and the
// backward regenerates it instead of storing it. Elements 2j and 2j + 1 are the Box-Muller pair of
// one 64-bit word, the j-th output of splitmix64 started at `seed`: for u1 in (0, 1] and u2 in
// [0, 1), 32 bits each in double and 24 in float (what a float holds exactly, so u1 never rounds
// above 1).
// splitmix64's state increment and its two mixing multipliers (named so a kernel's vector lanes
// use the very constants the scalar function does).
constexpr uint64_t kSplitmixIncrement = 0x9E3779B97F4A7C15ull;
constexpr uint64_t kSplitmixMultiplier1 = 0xBF58476D1CE4E5B9ull;
constexpr uint64_t kSplitmixMultiplier2 = 0x94D049BB133111EBull;

GEN_EXT_HOST_DEVICE uint64_t splitmix64(uint64_t seed, uint64_t j) {
  uint64_t z = seed + (j + 1) * kSplitmixIncrement;
  z = (z ^ (z >> 30)) * kSplitmixMultiplier1;
  z = (z ^ (z >> 27)) * kSplitmixMultiplier2;
  return z ^ (z >> 31);
}

// The two uniforms of Box-Muller pair `pair` of stream `seed`.
template <typename T>
GEN_EXT_HOST_DEVICE void pair_uniforms(uint64_t seed, uint64_t pair, T& u1, T& u2) {
  const uint64_t h = splitmix64(seed, pair);
  constexpr int bits = sizeof(T) == 4 ? 24 : 32;
  constexpr uint64_t mask = (uint64_t(1) << bits) - 1;
  const T scale = T(1) / T(uint64_t(1) << bits);
  u1 = T((h >> 32) & mask) * scale + scale;
  u2 = T(h & mask) * scale;
}

constexpr double kTwoPi = 6.283185307179586;

template <typename T>
GEN_EXT_HOST_DEVICE T standard_normal(uint64_t seed, uint64_t index) {
  T u1, u2;
  pair_uniforms(seed, index >> 1, u1, u2);
  const T r = sqrt_(T(-2) * log_(u1));
  const T theta = T(kTwoPi) * u2;
  return (index & 1) ? r * sin_(theta) : r * cos_(theta);
}

template <typename Ops>
struct Element {
  using T = typename Ops::Scalar;
  using V = typename Ops::V;

  GEN_EXT_HOST_DEVICE static V clamped(V logvar) {
    return Ops::min(Ops::max(logvar, Ops::splat(T(kMinLogVar))), Ops::splat(T(kMaxLogVar)));
  }

  // z, and exp(lv) + mu^2 - 1 - lv (twice this element's share of the row's KL)
  GEN_EXT_HOST_DEVICE static void forward(V mu, V logvar, V eps, V& z, V& kl2) {
    const V lv = clamped(logvar);
    const V sd = Ops::exp(Ops::splat(T(0.5)) * lv);
    z = mu + sd * eps;
    kl2 = sd * sd + mu * mu - Ops::splat(T(1)) - lv;
  }

  // Gradients given those of z (this element) and of its row's kl.
  GEN_EXT_HOST_DEVICE static void backward(V grad_z, V grad_kl, V mu, V logvar, V eps, V& grad_mu,
                                           V& grad_logvar, V& grad_eps) {
    const V lv = clamped(logvar);
    const V sd = Ops::exp(Ops::splat(T(0.5)) * lv);
    const V half = Ops::splat(T(0.5));
    grad_mu = grad_z + grad_kl * mu;
    grad_eps = grad_z * sd;
    const V g = half * (grad_z * sd * eps + grad_kl * (sd * sd - Ops::splat(T(1))));
    // no gradient on or beyond the clamp's bounds, as torch.clamp; a NaN logvar is on neither
    // side of a bound and keeps g, which is NaN
    const auto at_min = Ops::ge(Ops::splat(T(kMinLogVar)), logvar);
    const auto at_max = Ops::ge(logvar, Ops::splat(T(kMaxLogVar)));
    grad_logvar = Ops::select(at_min, Ops::splat(T(0)), Ops::select(at_max, Ops::splat(T(0)), g));
  }
};

}  // namespace gaussian
}  // namespace gen_ext
