#pragma once
// Per-element math of the fused Gaussian reparameterization and KL, shared by the CPU kernels
// (scalar and at::vec lanes) and the CUDA kernels; see dlm_math.h for the Ops policies.
//
//   z  = mu + exp(lv / 2) * eps
//   kl = 1/2 sum (exp(lv) + mu^2 - 1 - lv)      KL(N(mu, exp(lv)) || N(0, 1)), summed per row
// with lv = clamp(logvar, -30, 20): exp(lv / 2) stays within [3e-7, 2.2e4] and exp(lv) within
// [9e-14, 4.9e8], so z, kl and every gradient are finite in float32 for any finite logvar (a row
// of 512 dims sums to at most ~2.5e11). As with torch.clamp, logvar outside the range or on its
// bounds gets no gradient through lv.
#include "gen_ext/macros.h"
#include "gen_ext/scalar_ops.h"

namespace gen_ext {
namespace gaussian {

constexpr double kMinLogVar = -30.0;
constexpr double kMaxLogVar = 20.0;

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
    // strictly inside the clamp: torch.clamp passes no gradient at the bounds themselves
    const auto inside = Ops::gt(logvar, Ops::splat(T(kMinLogVar)));
    const auto below_max = Ops::gt(Ops::splat(T(kMaxLogVar)), logvar);
    grad_logvar = Ops::select(inside, Ops::select(below_max, g, Ops::splat(T(0))), Ops::splat(T(0)));
  }
};

}  // namespace gaussian
}  // namespace gen_ext
