#pragma once
// Per-element math of the discretized logistic mixture (PixelCNN++), written once and used by the
// CPU kernels (scalar and at::vec lanes) and the CUDA kernels.
//
// Everything is templated on an `Ops` policy that supplies the value type V (a scalar or a SIMD
// vector), its mask type and the handful of primitives the formulas need: ScalarOps
// (gen_ext/scalar_ops.h) here and in the CUDA kernels, a vector policy over at::vec::Vectorized in
// the CPU kernels (csrc/cpu/vec_ops.h). Branches are chosen either by
// control flow (scalar) or by blending whole lanes (vector): in both cases the value that reaches
// an output, gradients included, comes from the selected branch only, so a NaN or inf computed in
// an unselected lane never leaks.

#include <cmath>
#include <cstdint>
#include <limits>

#include "gen_ext/macros.h"
#include "gen_ext/scalar_ops.h"

namespace gen_ext {
namespace dlm {

// The public code clamps log-scales from below at -7 and treats a bin mass under 1e-5 as an
// underflow, replacing it by density-at-centre times bin width.
constexpr double kMinLogScale = -7.0;
constexpr double kMinBinMass = 1e-5;
// Log-scales above this are clamped by the sampler only, so exp() cannot overflow there.
constexpr double kMaxSampleLogScale = 80.0;
// Uniform noise is clamped from below so that log(u) stays finite.
constexpr double kTinyUniform = 1e-30;

// Where the bins are: num_bins values on [-1, 1], spaced 2 / (num_bins - 1) apart. The first and
// last bins are open-ended; x is in the first (last) bin when it lies below (above) the midpoint
// between the first (last) two grid values.
template <typename T>
struct BinGrid {
  T half_bin;
  T lower_edge;
  T upper_edge;
  T log_half_bins;  // log((num_bins - 1) / 2) = -log(bin width)
  int64_t num_bins;

  GEN_EXT_HOST_DEVICE explicit BinGrid(int64_t bins)
      : half_bin(T(1) / T(bins - 1)),
        lower_edge(T(-1) + T(1) / T(bins - 1)),
        upper_edge(T(1) - T(1) / T(bins - 1)),
        log_half_bins(log_(T(bins - 1) / T(2))),
        num_bins(bins) {}
};

// Index of each parameter plane along P (the public code's layout): M logits, then per colour
// channel a block of M means, M log-scales and (for three channels) M raw coefficients.
struct ParamLayout {
  int M;
  GEN_EXT_HOST_DEVICE int logit(int k) const { return k; }
  GEN_EXT_HOST_DEVICE int mean(int c, int k) const { return M + 3 * M * c + k; }
  GEN_EXT_HOST_DEVICE int log_scale(int c, int k) const { return mean(c, k) + M; }
  GEN_EXT_HOST_DEVICE int coeff(int c, int k) const { return mean(c, k) + 2 * M; }
};

template <typename Ops>
struct Term;

using gen_ext::ScalarOps;

// z together with e = exp(-|z|) and r = 1 / (1 + e): sigmoid, its slope and softplus
// (max(z, 0) - log r) all follow from these without overflow, for either sign of z.
template <typename Ops>
struct Logistic {
  using V = typename Ops::V;
  V z, e, r;
  GEN_EXT_HOST_DEVICE explicit Logistic(V z_) : z(z_) {
    e = Ops::exp(-Ops::abs(z));
    r = Ops::splat(1) / (Ops::splat(1) + e);
  }
  GEN_EXT_HOST_DEVICE Logistic(V z_, V e_, V r_) : z(z_), e(e_), r(r_) {}
  Logistic() = default;
  // Both ends of a bin with one division: 1/(1+e_a) = (1+e_b) / ((1+e_a)(1+e_b)), and
  // e <= 1 keeps the product in [1, 4].
  GEN_EXT_HOST_DEVICE static void pair(V za, V zb, Logistic& a, Logistic& b) {
    const V ea = Ops::exp(-Ops::abs(za)), eb = Ops::exp(-Ops::abs(zb));
    const V one_ea = Ops::splat(1) + ea, one_eb = Ops::splat(1) + eb;
    const V d = Ops::splat(1) / (one_ea * one_eb);
    a = Logistic(za, ea, one_eb * d);
    b = Logistic(zb, eb, one_ea * d);
  }
  GEN_EXT_HOST_DEVICE V sigmoid() const { return Ops::select(Ops::ge(z, Ops::splat(0)), r, e * r); }
  GEN_EXT_HOST_DEVICE V sigmoid_of_neg() const {
    return Ops::select(Ops::ge(z, Ops::splat(0)), e * r, r);
  }
  // sigmoid(z) * sigmoid(-z), exact even where sigmoid(z) rounds to 1
  GEN_EXT_HOST_DEVICE V sigmoid_slope() const { return e * r * r; }
};

// Log-mass of x's bin under one logistic component, split as log_part + log(mass) with mass in
// [1e-5, 1] (at least 1/4 outside the interior branch): a component multiplies its channels'
// masses and takes one log, instead of one per channel. Also the derivatives of the log-mass with
// respect to the centred value u = x - mean and the clamped log-scale s (filled only when Grad).
template <typename Ops>
struct Term {
  using V = typename Ops::V;
  V log_part, mass, d_u, d_s;
};

// First bin: log sigmoid(a) = -max(-a, 0) + log(1 / (1 + exp(-|a|))), a = (u + half_bin) / scale.
template <typename Ops, bool Grad>
GEN_EXT_HOST_DEVICE Term<Ops> lower_edge_term(const Logistic<Ops>& a, typename Ops::V inv_scale) {
  Term<Ops> t;
  t.log_part = -Ops::max(-a.z, Ops::splat(0));
  t.mass = a.r;
  if (Grad) {
    const auto d = a.sigmoid_of_neg();
    t.d_u = inv_scale * d;
    t.d_s = -(a.z * d);
  }
  return t;
}

// Last bin: log(1 - sigmoid(b)) = -max(b, 0) + log(1 / (1 + exp(-|b|))), b = (u - half_bin) / scale.
template <typename Ops, bool Grad>
GEN_EXT_HOST_DEVICE Term<Ops> upper_edge_term(const Logistic<Ops>& b, typename Ops::V inv_scale) {
  Term<Ops> t;
  t.log_part = -Ops::max(b.z, Ops::splat(0));
  t.mass = b.r;
  if (Grad) {
    const auto d = -b.sigmoid();
    t.d_u = inv_scale * d;
    t.d_s = -(b.z * d);
  }
  return t;
}

// sigmoid(a) - sigmoid(b) for a > b. Where both lie above 1/2 it is taken as
// sigmoid(-b) - sigmoid(-a), which does not cancel as both approach 1 (in float32 the direct
// difference keeps only ~1e-7 / mass of relative precision there).
template <typename Ops>
GEN_EXT_HOST_DEVICE typename Ops::V interior_mass(const Logistic<Ops>& a, const Logistic<Ops>& b) {
  return Ops::select(Ops::ge(b.z, Ops::splat(0)), b.sigmoid_of_neg() - a.sigmoid_of_neg(),
                     a.sigmoid() - b.sigmoid());
}

// Interior bin: log(sigmoid(a) - sigmoid(b)), used where that mass exceeds kMinBinMass.
template <typename Ops, bool Grad>
GEN_EXT_HOST_DEVICE Term<Ops> interior_term(const Logistic<Ops>& a, const Logistic<Ops>& b,
                                            typename Ops::V inv_scale, typename Ops::V mass) {
  Term<Ops> t;
  t.log_part = Ops::splat(0);
  t.mass = mass;
  if (Grad) {
    const auto inv_mass = Ops::splat(1) / mass;
    const auto da = a.sigmoid_slope() * inv_mass;
    const auto db = -(b.sigmoid_slope() * inv_mass);
    t.d_u = inv_scale * (da + db);
    t.d_s = -(a.z * da + b.z * db);
  }
  return t;
}

// Underflowed interior bin: log density at x times the bin width,
// c - s - 2 softplus(c) - log((num_bins - 1) / 2) with c = u / scale.
template <typename Ops, bool Grad>
GEN_EXT_HOST_DEVICE Term<Ops> bin_centre_term(typename Ops::V u, typename Ops::V s,
                                              typename Ops::V inv_scale,
                                              typename Ops::Scalar log_half_bins) {
  using V = typename Ops::V;
  const V c = inv_scale * u;
  const Logistic<Ops> lc(c);
  Term<Ops> t;
  t.log_part = c - s - Ops::splat(2) * Ops::max(c, Ops::splat(0)) - Ops::splat(log_half_bins);
  t.mass = lc.r * lc.r;
  if (Grad) {
    const V dc = Ops::splat(1) - Ops::splat(2) * lc.sigmoid();
    t.d_u = inv_scale * dc;
    t.d_s = -(c * dc) - Ops::splat(1);
  }
  return t;
}

// One (channel, component) term with the branch chosen by control flow: only the selected
// branch is evaluated.
template <typename Ops, bool Grad, typename T = typename Ops::Scalar>
GEN_EXT_HOST_DEVICE Term<Ops> channel_term(T x, T mean, T s, const BinGrid<T>& grid) {
  const T u = x - mean;
  const T inv_scale = exp_(-s);
  if (x < grid.lower_edge) {
    return lower_edge_term<Ops, Grad>(Logistic<Ops>(inv_scale * (u + grid.half_bin)), inv_scale);
  }
  if (x > grid.upper_edge) {
    return upper_edge_term<Ops, Grad>(Logistic<Ops>(inv_scale * (u - grid.half_bin)), inv_scale);
  }
  Logistic<Ops> a, b;
  Logistic<Ops>::pair(inv_scale * (u + grid.half_bin), inv_scale * (u - grid.half_bin), a, b);
  const T mass = interior_mass(a, b);
  if (mass > T(kMinBinMass)) return interior_term<Ops, Grad>(a, b, inv_scale, mass);
  return bin_centre_term<Ops, Grad>(u, s, inv_scale, grid.log_half_bins);
}

template <typename T>
struct ScalarTerms {
  template <bool Grad>
  GEN_EXT_HOST_DEVICE static Term<ScalarOps<T>> eval(T x, T mean, T s, const BinGrid<T>& grid) {
    return channel_term<ScalarOps<T>, Grad>(x, mean, s, grid);
  }
};

// Mixture at one position (or one vector of positions). `params` points at parameter plane 0 of
// the position and consecutive planes are `plane` elements apart; likewise `x` and `x_plane`.
// Terms<Ops> supplies eval<Grad>(x, mean, s, grid) -> Term<Ops> for the policy.
template <typename Ops, template <typename> class Terms, int C>
struct MixtureAt {
  using OpsType = Ops;
  using T = typename Ops::Scalar;
  using V = typename Ops::V;

  const T* params;
  int64_t plane;
  const T* x;
  int64_t x_plane;
  ParamLayout layout;
  const BinGrid<T>& grid;

  GEN_EXT_HOST_DEVICE V param(int i) const { return Ops::load(params + i * plane); }

  // log of the softmax normaliser of the mixture logits
  GEN_EXT_HOST_DEVICE V log_normaliser() const {
    V top = param(layout.logit(0));
    for (int k = 1; k < layout.M; ++k) top = Ops::max(top, param(layout.logit(k)));
    V sum = Ops::splat(0);
    for (int k = 0; k < layout.M; ++k) sum = sum + Ops::exp(param(layout.logit(k)) - top);
    return top + Ops::log(sum);
  }

  // Mean of channel c under component k, linear in the preceding sub-pixels through tanh'd
  // coefficients; tanh values are returned for the backward pass.
  GEN_EXT_HOST_DEVICE V mean(int c, int k, const V* xs, V* tanh_out) const {
    V m = param(layout.mean(c, k));
    if (C == 3 && c == 1) {
      tanh_out[0] = Ops::tanh(param(layout.coeff(0, k)));
      m = m + tanh_out[0] * xs[0];
    } else if (C == 3 && c == 2) {
      Ops::tanh_pair(param(layout.coeff(1, k)), param(layout.coeff(2, k)), tanh_out[0],
                     tanh_out[1]);
      m = m + (tanh_out[0] * xs[0] + tanh_out[1] * xs[1]);
    }
    return m;
  }

  // log pi_k + sum_c log p(x_c | k) for component k; fills terms and tanh values when Grad.
  template <bool Grad>
  GEN_EXT_HOST_DEVICE V component_log_prob(int k, const V* xs, V log_z, Term<Ops>* terms,
                                           V (*tanhs)[2]) const {
    V lp = param(layout.logit(k)) - log_z;
    V mass = Ops::splat(1);
    for (int c = 0; c < C; ++c) {
      const V raw_s = param(layout.log_scale(c, k));
      const V s = Ops::max(raw_s, Ops::splat(T(kMinLogScale)));
      const V m = mean(c, k, xs, tanhs[c]);
      const Term<Ops> t = Terms<T>::template eval<Grad>(xs[c], m, s, grid);
      lp = lp + t.log_part;
      mass = mass * t.mass;  // >= 1e-15 for three channels: no underflow in float
      if (Grad) terms[c] = t;
    }
    return lp + Ops::log(mass);
  }

  GEN_EXT_HOST_DEVICE void load_x(V* xs) const {
    for (int c = 0; c < C; ++c) xs[c] = Ops::load(x + c * x_plane);
  }

  // -log p(x)
  GEN_EXT_HOST_DEVICE V nll() const {
    V xs[C];
    load_x(xs);
    V tanhs[C][2];
    const V log_z = log_normaliser();
    // online log-sum-exp over components, one exp per component
    V run_max = Ops::splat(-std::numeric_limits<T>::infinity());
    V run_sum = Ops::splat(0);
    for (int k = 0; k < layout.M; ++k) {
      const V lp = component_log_prob<false>(k, xs, log_z, nullptr, tanhs);
      const V d = Ops::exp(-Ops::abs(lp - run_max));
      run_sum = Ops::select(Ops::gt(lp, run_max), run_sum * d + Ops::splat(1), run_sum + d);
      run_max = Ops::max(run_max, lp);
    }
    return -(run_max + Ops::log(run_sum));
  }

  // Gradients of grad * nll with respect to every parameter plane and every channel of x, given
  // the forward's result: -nll is the log-sum-exp the responsibilities need, so one pass suffices.
  GEN_EXT_HOST_DEVICE void backward(V grad, V nll_value, T* grad_params, T* grad_x) const {
    const V log_z = log_normaliser();
    const V lse = -nll_value;
    V xs[C];
    load_x(xs);
    V gx[C];
    for (int c = 0; c < C; ++c) gx[c] = Ops::splat(0);
    for (int k = 0; k < layout.M; ++k) {
      Term<Ops> terms[C];
      V tanhs[C][2];
      const V lp = component_log_prob<true>(k, xs, log_z, terms, tanhs);
      const V w = Ops::exp(lp - lse);  // posterior responsibility of component k
      const V prior = Ops::exp(param(layout.logit(k)) - log_z);
      Ops::store(grad_params + layout.logit(k) * plane, grad * (prior - w));
      const V g_lp = -(grad * w);
      for (int c = 0; c < C; ++c) {
        const V g_u = g_lp * terms[c].d_u;  // d/du, u = x_c - mean_c
        const V g_s = g_lp * terms[c].d_s;
        const V raw_s = param(layout.log_scale(c, k));
        Ops::store(grad_params + layout.mean(c, k) * plane, -g_u);
        Ops::store(grad_params + layout.log_scale(c, k) * plane,
                   // strictly above the clamp, as torch.clamp passes gradient
                   Ops::select(Ops::gt(raw_s, Ops::splat(T(kMinLogScale))), g_s,
                               Ops::splat(0)));
        gx[c] = gx[c] + g_u;
        if (C == 3 && c == 1) {
          const V t0 = tanhs[1][0];
          Ops::store(grad_params + layout.coeff(0, k) * plane,
                     -(g_u * xs[0] * (Ops::splat(1) - t0 * t0)));
          gx[0] = gx[0] - g_u * t0;
        } else if (C == 3 && c == 2) {
          const V t1 = tanhs[2][0];
          const V t2 = tanhs[2][1];
          Ops::store(grad_params + layout.coeff(1, k) * plane,
                     -(g_u * xs[0] * (Ops::splat(1) - t1 * t1)));
          Ops::store(grad_params + layout.coeff(2, k) * plane,
                     -(g_u * xs[1] * (Ops::splat(1) - t2 * t2)));
          gx[0] = gx[0] - g_u * t1;
          gx[1] = gx[1] - g_u * t2;
        }
      }
    }
    for (int c = 0; c < C; ++c) Ops::store(grad_x + c * x_plane, gx[c]);
  }
};

// Sampling at one position (or one vector of positions) from uniforms: Gumbel-max over
// components, then the logistic of each channel in turn, conditioned on the already quantized
// preceding channels, snapped to the grid. `noise_mix` holds M uniforms (`noise_plane` apart),
// `noise_logistic` C uniforms, `out` C values. The chosen component's parameters are carried
// along by selection, so vector lanes need no gather.
template <typename Ops, int C>
GEN_EXT_HOST_DEVICE void sample_at(const typename Ops::Scalar* params, int64_t plane,
                                   const typename Ops::Scalar* noise_mix,
                                   const typename Ops::Scalar* noise_logistic, int64_t noise_plane,
                                   typename Ops::Scalar* out, int64_t out_plane, ParamLayout layout,
                                   int64_t num_bins) {
  using T = typename Ops::Scalar;
  using V = typename Ops::V;
  const V tiny = Ops::splat(T(kTinyUniform));
  auto param = [&](int i) { return Ops::load(params + i * plane); };
  V best = Ops::splat(-std::numeric_limits<T>::infinity());
  V mean[C], log_scale[C], coeff[C];
  for (int c = 0; c < C; ++c) mean[c] = log_scale[c] = coeff[c] = Ops::splat(0);
  for (int k = 0; k < layout.M; ++k) {
    const V u = Ops::max(Ops::load(noise_mix + k * noise_plane), tiny);
    const V score = param(layout.logit(k)) - Ops::log(-Ops::log(u));
    const auto better = Ops::gt(score, best);  // strict: the first of equal scores wins
    best = Ops::select(better, score, best);
    for (int c = 0; c < C; ++c) {
      mean[c] = Ops::select(better, param(layout.mean(c, k)), mean[c]);
      log_scale[c] = Ops::select(better, param(layout.log_scale(c, k)), log_scale[c]);
      if (C == 3) coeff[c] = Ops::select(better, param(layout.coeff(c, k)), coeff[c]);
    }
  }
  const T steps = T(num_bins - 1);
  V xs[C];
  for (int c = 0; c < C; ++c) {
    V m = mean[c];
    if (C == 3 && c == 1) {
      m = m + Ops::tanh(coeff[0]) * xs[0];
    } else if (C == 3 && c == 2) {
      m = m + (Ops::tanh(coeff[1]) * xs[0] + Ops::tanh(coeff[2]) * xs[1]);
    }
    const V s = Ops::min(Ops::max(log_scale[c], Ops::splat(T(kMinLogScale))),
                         Ops::splat(T(kMaxSampleLogScale)));
    const V v = Ops::max(Ops::load(noise_logistic + c * noise_plane), tiny);
    const V y = m + Ops::exp(s) * (Ops::log(v) - Ops::log(Ops::splat(1) - v));
    V j = Ops::floor((y + Ops::splat(1)) * Ops::splat(steps / T(2)) + Ops::splat(T(0.5)));
    j = Ops::min(Ops::max(j, Ops::splat(0)), Ops::splat(steps));
    // (2j - steps) is an exact integer, so the one rounding of the division gives the same grid
    // value in every implementation, whether or not the compiler fuses multiply-adds
    xs[c] = (Ops::splat(2) * j - Ops::splat(steps)) / Ops::splat(steps);
    Ops::store(out + c * out_plane, xs[c]);
  }
}

}  // namespace dlm
}  // namespace gen_ext
