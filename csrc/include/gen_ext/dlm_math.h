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

// Parameter planes per mixture component: its logit, and per colour channel a mean and a log-scale,
// plus three colour coefficients for RGB. So P = 10*M for RGB, 3*M for one channel; the one
// definition in C++ (gen_ext/reference/dlm.py holds Python's).
GEN_EXT_HOST_DEVICE constexpr int64_t params_per_component(int64_t channels) {
  return channels == 3 ? 10 : 3;
}

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
  // User-provided, not defaulted, here and in the structs below: a compiler-generated
  // constructor does not carry the kernels' per-ISA target attribute, so GCC could not inline
  // at::vec's constructors into it and called them out of line (measured: a few percent of the
  // kernels' time, and their objects kept in memory).
  GEN_EXT_HOST_DEVICE Logistic() {}
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

// Probability of x's bin under one logistic component, split as exp(log_part) * mass with mass in
// [1e-5, 1] (at least 1/4 outside the interior branch): a mixture then sums exp(exponent) * mass
// over its components, one exp each and no log per channel or component. With Grad, also n_u and
// n_s: the derivatives of that probability with respect to the centred value u = x - mean and the
// clamped log-scale s, divided by exp(log_part) (so n_u / mass is d log p / du). In the interior
// branch they need no division by the mass, which is why the kernels carry them instead of
// derivatives of the log.
template <typename Ops>
struct Term {
  using V = typename Ops::V;
  V log_part, mass, n_u, n_s;
  GEN_EXT_HOST_DEVICE Term() {}
};

// First bin: log sigmoid(a) = -max(-a, 0) + log(1 / (1 + exp(-|a|))), a = (u + half_bin) / scale.
template <typename Ops, bool Grad>
GEN_EXT_HOST_DEVICE Term<Ops> lower_edge_term(const Logistic<Ops>& a, typename Ops::V inv_scale) {
  Term<Ops> t;
  t.log_part = -Ops::max(-a.z, Ops::splat(0));
  t.mass = a.r;
  if (Grad) {
    const auto d = a.sigmoid_of_neg() * a.r;  // d log p / da, times the mass
    t.n_u = inv_scale * d;
    t.n_s = -(a.z * d);
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
    const auto d = -(b.sigmoid() * b.r);
    t.n_u = inv_scale * d;
    t.n_s = -(b.z * d);
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

// Interior bin: sigmoid(a) - sigmoid(b), used where that mass exceeds kMinBinMass.
template <typename Ops, bool Grad>
GEN_EXT_HOST_DEVICE Term<Ops> interior_term(const Logistic<Ops>& a, const Logistic<Ops>& b,
                                            typename Ops::V inv_scale, typename Ops::V mass) {
  Term<Ops> t;
  t.log_part = Ops::splat(0);
  t.mass = mass;
  if (Grad) {
    const auto da = a.sigmoid_slope();
    const auto db = -b.sigmoid_slope();
    t.n_u = inv_scale * (da + db);
    t.n_s = -(a.z * da + b.z * db);
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
    const V dc = (Ops::splat(1) - Ops::splat(2) * lc.sigmoid()) * t.mass;
    t.n_u = inv_scale * dc;
    t.n_s = -(c * dc) - t.mass;
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

// Where the gradients of a mixture go: the parameter gradients in planes `plane` elements apart
// (the CPU kernels stage them in a buffer of their own) and, unless `x` is null, the gradient of x
// laid out as x.
template <typename T>
struct GradientOut {
  T* params;
  int64_t plane;
  T* x;
};

// What component k of a mixture contributes at a position: with the softmax normaliser left out,
// its probability of x is exp(exponent) * mass, times exp(top) for the largest logit top. With Grad, also the gradients of the NLL per unit
// of r = (incoming gradient) * exp(exponent) / (sum over components of exp(exponent) * mass):
// r * d_mean[c] with respect to mean c, r * d_log_scale[c] with respect to raw log-scale c; and the
// tanh'd coefficients, which the chain rule to x and the coefficients needs.
template <typename Ops, int C>
struct Component {
  using V = typename Ops::V;
  V exponent;  // (logit - top) plus the channels' log_parts
  V mass;      // product of the channels' masses, >= 1e-15
  V d_mean[C];
  V d_log_scale[C];
  V tanh[3];  // of coefficient 0 (G from R), then 1 and 2 (B from R and G); unused for C = 1
  GEN_EXT_HOST_DEVICE Component() {}
};

// Mixture at one position (or one vector of positions). `params` points at parameter plane 0 of
// the position and consecutive planes are `plane` elements apart; likewise `x` and `x_plane`.
// Terms<Ops> supplies eval<Grad>(x, mean, s, grid) -> Term<Ops> for the policy.
template <typename Ops, template <typename> class Terms, int C>
struct MixtureAt {
  using OpsType = Ops;
  using T = typename Ops::Scalar;
  using V = typename Ops::V;
  using ComponentType = Component<Ops, C>;

  const T* params;
  int64_t plane;
  const T* x;
  int64_t x_plane;
  ParamLayout layout;
  BinGrid<T> grid;

  GEN_EXT_HOST_DEVICE V param(int i) const { return Ops::load(params + i * plane); }

  // Component k's planes as element offsets from plane 0, planes `plane` apart (the gradients
  // share the layout), named once per component rather than indexed per load.
  struct Planes {
    ParamLayout layout;
    int k;
    int64_t plane;
    GEN_EXT_HOST_DEVICE int64_t logit() const { return layout.logit(k) * plane; }
    GEN_EXT_HOST_DEVICE int64_t mean(int c) const { return layout.mean(c, k) * plane; }
    GEN_EXT_HOST_DEVICE int64_t log_scale(int c) const { return layout.log_scale(c, k) * plane; }
    GEN_EXT_HOST_DEVICE int64_t coeff(int c) const { return layout.coeff(c, k) * plane; }
  };

  // The largest logit; the softmax normaliser is then top + log(sum_k exp(logit_k - top)).
  GEN_EXT_HOST_DEVICE V top_logit() const {
    V top = param(layout.logit(0));
    for (int k = 1; k < layout.M; ++k) top = Ops::max(top, param(layout.logit(k)));
    return top;
  }

  // sum over k of exp(logit_k - top); each term also goes to each[k] unless each is null
  GEN_EXT_HOST_DEVICE V prior_sum(V top, V* each = nullptr) const {
    V sum = Ops::splat(0);
    for (int k = 0; k < layout.M; ++k) {
      const V term = Ops::exp(param(layout.logit(k)) - top);
      if (each != nullptr) each[k] = term;
      sum = sum + term;
    }
    return sum;
  }

  // Mean of channel c under the component at `at`, linear in the preceding sub-pixels through
  // tanh'd coefficients; tanh values are returned for the backward pass.
  GEN_EXT_HOST_DEVICE V mean(int c, const Planes& at, const V* xs, V* tanh_out) const {
    V m = Ops::load(params + at.mean(c));
    if (C == 3 && c == 1) {
      tanh_out[0] = Ops::tanh(Ops::load(params + at.coeff(0)));
      m = m + tanh_out[0] * xs[0];
    } else if (C == 3 && c == 2) {
      Ops::tanh_pair(Ops::load(params + at.coeff(1)), Ops::load(params + at.coeff(2)),
                     tanh_out[1], tanh_out[2]);
      m = m + (tanh_out[1] * xs[0] + tanh_out[2] * xs[1]);
    }
    return m;
  }

  // top: the largest logit, taken off the logit before the log-parts are added, so a logit of
  // any size cancels exactly instead of swallowing the log-parts' digits
  template <bool Grad>
  GEN_EXT_HOST_DEVICE void component(int k, V top, const V* xs, ComponentType& out) const {
    const Planes at{layout, k, plane};
    Term<Ops> terms[C];
    V raw_s[C];
    out.exponent = Ops::load(params + at.logit()) - top;
    GEN_EXT_UNROLL
    for (int c = 0; c < C; ++c) {
      raw_s[c] = Ops::load(params + at.log_scale(c));
      const V s = Ops::max(raw_s[c], Ops::splat(T(kMinLogScale)));
      const V m = mean(c, at, xs, out.tanh);
      terms[c] = Terms<T>::template eval<Grad>(xs[c], m, s, grid);
      out.exponent = out.exponent + terms[c].log_part;
    }
    // others[c]: the product of the other channels' masses, which scales channel c's derivatives
    V others[C];
    if constexpr (C == 3) {
      const V m01 = terms[0].mass * terms[1].mass;
      out.mass = m01 * terms[2].mass;
      others[0] = terms[1].mass * terms[2].mass;
      others[1] = terms[0].mass * terms[2].mass;
      others[2] = m01;
    } else {
      out.mass = terms[0].mass;
      others[0] = Ops::splat(1);
    }
    if (Grad) {
      GEN_EXT_UNROLL
      for (int c = 0; c < C; ++c) {
        out.d_mean[c] = others[c] * terms[c].n_u;
        // where the clamp holds the log-scale, store_gradients stores zero instead
        out.d_log_scale[c] = -(others[c] * terms[c].n_s);
      }
    }
  }

  GEN_EXT_HOST_DEVICE void load_x(V* xs) const {
    GEN_EXT_UNROLL
    for (int c = 0; c < C; ++c) xs[c] = Ops::load(x + c * x_plane);
  }

  // Stores component k's parameter gradients and adds its part of the x gradient to gx. r scales
  // its derivatives (see Component); prior is the incoming gradient times its softmax weight.
  GEN_EXT_HOST_DEVICE void store_gradients(int k, const ComponentType& e, V r, V prior,
                                           const V* xs, const GradientOut<T>& out, V* gx) const {
    const Planes at{layout, k, out.plane};
    T* grad_params = out.params;
    Ops::store(grad_params + at.logit(), prior - r * e.mass);
    V g_mean[C];
    GEN_EXT_UNROLL
    for (int c = 0; c < C; ++c) {
      g_mean[c] = r * e.d_mean[c];
      Ops::store(grad_params + at.mean(c), g_mean[c]);
      // exactly zero where the clamp holds the log-scale, even for a NaN r (as torch.clamp's
      // backward, which masks rather than multiplies)
      const V raw_s = Ops::load(params + Planes{layout, k, plane}.log_scale(c));
      Ops::store(grad_params + at.log_scale(c),
                 Ops::select(Ops::ge(Ops::splat(T(kMinLogScale)), raw_s), Ops::splat(0),
                             r * e.d_log_scale[c]));
      gx[c] = gx[c] - g_mean[c];  // u = x - mean
    }
    if constexpr (C == 3) {
      // mean 1 = ... + t0 x0, mean 2 = ... + t1 x0 + t2 x1, t = tanh(raw coefficient)
      const V g1 = g_mean[1], g2 = g_mean[2];
      const V t0 = e.tanh[0], t1 = e.tanh[1], t2 = e.tanh[2];
      Ops::store(grad_params + at.coeff(0), g1 * xs[0] * (Ops::splat(1) - t0 * t0));
      Ops::store(grad_params + at.coeff(1), g2 * xs[0] * (Ops::splat(1) - t1 * t1));
      Ops::store(grad_params + at.coeff(2), g2 * xs[1] * (Ops::splat(1) - t2 * t2));
      gx[0] = gx[0] + (g1 * t0 + g2 * t1);
      gx[1] = gx[1] + g2 * t2;
    }
  }

  GEN_EXT_HOST_DEVICE void store_x_gradient(const V* gx, T* grad_x) const {
    if (grad_x == nullptr) return;
    GEN_EXT_UNROLL
    for (int c = 0; c < C; ++c) Ops::store(grad_x + c * x_plane, gx[c]);
  }

  // What the gradients need from the whole mixture at x: its NLL is
  // log(prior / total) - top_exponent.
  struct Totals {
    V top;           // the largest logit
    V prior;         // sum over k of exp(logit_k - top): the softmax normaliser over exp(top)
    V top_exponent;  // the largest component exponent (logits relative to top)
    V total;         // sum over k of exp(exponent_k - top_exponent) * mass_k, >= 1e-15
    GEN_EXT_HOST_DEVICE Totals() {}
    GEN_EXT_HOST_DEVICE V nll() const { return Ops::log(prior / total) - top_exponent; }
  };

  // The entry points below work on a local copy of the mixture: SIMD stores may alias any memory,
  // so fields read through `this` would be reloaded after every store, and a local copy whose
  // address never escapes lives in registers.

  // -log p(x)
  GEN_EXT_HOST_DEVICE V nll() const {
    const MixtureAt mix = *this;
    V xs[C];
    mix.load_x(xs);
    return mix.totals(xs).nll();
  }

  // Gradients of grad * nll into `out`, evaluating the components twice (once for the totals,
  // once for the gradients) and keeping nothing in between; returns the NLL. The scalar path:
  // the CUDA kernels and the CPU kernels' row tails.
  GEN_EXT_HOST_DEVICE V backward(V grad, const GradientOut<T>& out) const {
    const MixtureAt mix = *this;
    V xs[C];
    mix.load_x(xs);
    const Totals t = mix.totals(xs);
    V g_total, g_prior;
    mix.gradient_scales(grad, t, g_total, g_prior);
    V gx[C];
    for (int c = 0; c < C; ++c) gx[c] = Ops::splat(0);
    for (int k = 0; k < mix.layout.M; ++k) {
      ComponentType e;
      mix.template component<true>(k, t.top, xs, e);
      mix.store_gradients(k, e, g_total * Ops::exp(e.exponent - t.top_exponent),
                          g_prior * Ops::exp(mix.param(mix.layout.logit(k)) - t.top), xs, out,
                          gx);
    }
    mix.store_x_gradient(gx, out.x);
    return t.nll();
  }

  // The same from one evaluation of the components, which `scratch` (M of them) and `priors`
  // (M values) hold until the totals are known: the vector path of the CPU kernels.
  GEN_EXT_HOST_DEVICE V backward(V grad, const GradientOut<T>& out, ComponentType* scratch,
                                 V* priors) const {
    const MixtureAt mix = *this;
    V xs[C];
    mix.load_x(xs);
    Totals t;
    t.top = mix.top_logit();
    t.prior = mix.prior_sum(t.top, priors);
    t.top_exponent = Ops::splat(-std::numeric_limits<T>::infinity());
    for (int k = 0; k < mix.layout.M; ++k) {
      mix.template component<true>(k, t.top, xs, scratch[k]);
      t.top_exponent = Ops::max(t.top_exponent, scratch[k].exponent);
    }
    t.total = Ops::splat(0);
    for (int k = 0; k < mix.layout.M; ++k) {
      scratch[k].exponent = Ops::exp(scratch[k].exponent - t.top_exponent);
      t.total = t.total + scratch[k].exponent * scratch[k].mass;
    }
    V g_total, g_prior;
    mix.gradient_scales(grad, t, g_total, g_prior);
    V gx[C];
    for (int c = 0; c < C; ++c) gx[c] = Ops::splat(0);
    for (int k = 0; k < mix.layout.M; ++k) {
      mix.store_gradients(k, scratch[k], g_total * scratch[k].exponent, g_prior * priors[k], xs,
                          out, gx);
    }
    mix.store_x_gradient(gx, out.x);
    return t.nll();
  }

 private:
  GEN_EXT_HOST_DEVICE Totals totals(const V* xs) const {
    Totals t;
    t.top = top_logit();
    t.prior = prior_sum(t.top);
    // online: the sum is rescaled whenever a larger exponent arrives
    t.top_exponent = Ops::splat(-std::numeric_limits<T>::infinity());
    t.total = Ops::splat(0);
    for (int k = 0; k < layout.M; ++k) {
      ComponentType e;
      component<false>(k, t.top, xs, e);
      const V d = rescale(e.exponent, t.top_exponent);
      t.total = Ops::select(Ops::gt(e.exponent, t.top_exponent), t.total * d + e.mass,
                            t.total + d * e.mass);
      t.top_exponent = Ops::max(t.top_exponent, e.exponent);
    }
    return t;
  }

  // exp(-|exponent - top|): the online sum's factor for the smaller of the two. A component
  // switched off (a logit of -inf) has an exponent of -inf, and while every exponent so far is
  // -inf too the difference is NaN; its factor is then 0 (it adds nothing), while a NaN
  // exponent keeps its NaN.
  GEN_EXT_HOST_DEVICE static V rescale(V exponent, V top) {
    const V d = Ops::exp(-Ops::abs(exponent - top));
    const auto is_number = [](V v) { return Ops::ge(v, v); };
    return Ops::select(is_number(exponent), Ops::select(is_number(d), d, Ops::splat(0)), exponent);
  }

  // grad / total and grad / prior (one division): the posterior responsibility of component k is
  // exp(exponent_k - top_exponent) * mass_k / total, its prior exp(logit_k - top) / prior.
  GEN_EXT_HOST_DEVICE static void gradient_scales(V grad, const Totals& t, V& g_total,
                                                  V& g_prior) {
    const V d = grad / (t.total * t.prior);
    g_total = t.prior * d;
    g_prior = t.total * d;
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
  auto score = [&](int k) {
    const V u = Ops::max(Ops::load(noise_mix + k * noise_plane), tiny);
    return param(layout.logit(k)) - Ops::log(-Ops::log(u));
  };
  // Component 0 to begin with, so that all scores -inf (every component switched off) still
  // picks the first, as argmax does.
  V best = score(0);
  V mean[C], log_scale[C], coeff[C];
  for (int c = 0; c < C; ++c) {
    mean[c] = param(layout.mean(c, 0));
    log_scale[c] = param(layout.log_scale(c, 0));
    coeff[c] = C == 3 ? param(layout.coeff(c, 0)) : Ops::splat(0);
  }
  for (int k = 1; k < layout.M; ++k) {
    const V s = score(k);
    const auto better = Ops::gt(s, best);  // strict: the first of equal scores wins
    // a NaN score is kept as the best, and no score beats it
    best = Ops::select(Ops::ge(s, s), Ops::select(better, s, best), s);
    for (int c = 0; c < C; ++c) {
      mean[c] = Ops::select(better, param(layout.mean(c, k)), mean[c]);
      log_scale[c] = Ops::select(better, param(layout.log_scale(c, k)), log_scale[c]);
      if (C == 3) coeff[c] = Ops::select(better, param(layout.coeff(c, k)), coeff[c]);
    }
  }
  // A NaN score (a NaN logit or noise) leaves the choice undefined: the draw is NaN, through the
  // means (channels after the first see it through the conditioning too).
  for (int c = 0; c < C; ++c) mean[c] = Ops::select(Ops::ge(best, best), mean[c], best);
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
