#pragma once
// CPU kernels of the discretized logistic mixture, compiled once per instruction set (see
// vec_ops.h). Positions run in at::vec lanes; the few left at the end of a row use the scalar
// path, which is also the CUDA kernels' path.

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "gen_ext/dlm_math.h"
#include "vec_ops.h"

namespace gen_ext {
namespace cpu {
namespace CPU_CAPABILITY {

using dlm::BinGrid;
using dlm::GradientOut;
using dlm::Logistic;
using dlm::MixtureAt;
using dlm::ParamLayout;
using dlm::Term;

template <typename T>
struct TailTerms {
  template <bool Grad>
  static Term<TailOps<T>> eval(T x, T mean, T s, const BinGrid<T>& grid) {
    return dlm::channel_term<TailOps<T>, Grad>(x, mean, s, grid);
  }
};

// One (channel, component) term for a vector of positions: the interior branch is computed for
// every lane (it is the common case); the rare branches are computed only when some lane needs
// them and then blended into those lanes alone.
template <typename T>
struct VecTerms {
  using Ops = VecOps<T>;
  using V = typename Ops::V;

  template <bool Grad>
  static void blend(typename Ops::Mask m, const Term<Ops>& from, Term<Ops>& into) {
    into.log_part = Ops::select(m, from.log_part, into.log_part);
    into.mass = Ops::select(m, from.mass, into.mass);
    if (Grad) {
      into.n_u = Ops::select(m, from.n_u, into.n_u);
      into.n_s = Ops::select(m, from.n_s, into.n_s);
    }
  }

  // Always inlined: returned by value, the four vectors would otherwise travel through memory.
  template <bool Grad>
  C10_ALWAYS_INLINE static Term<Ops> eval(V x, V mean, V s, const BinGrid<T>& grid) {
    const V u = x - mean;
    const V inv_scale = Ops::exp(-s);
    Logistic<Ops> a, b;
    Logistic<Ops>::pair(inv_scale * (u + V(grid.half_bin)), inv_scale * (u - V(grid.half_bin)), a,
                        b);
    const V mass = dlm::interior_mass(a, b);
    Term<Ops> t = dlm::interior_term<Ops, Grad>(a, b, inv_scale, mass);
    const V lower = x < V(grid.lower_edge);
    const V upper = x > V(grid.upper_edge);
    const V interior_ok = mass > V(T(dlm::kMinBinMass));
    const V centre = (lower | upper | interior_ok) ^ V(at::vec::Vectorized<T>(0) == V(0));
    if (Ops::any(centre)) {
      blend<Grad>(centre, dlm::bin_centre_term<Ops, Grad>(u, s, inv_scale, grid.log_half_bins), t);
    }
    if (Ops::any(lower)) blend<Grad>(lower, dlm::lower_edge_term<Ops, Grad>(a, inv_scale), t);
    if (Ops::any(upper)) blend<Grad>(upper, dlm::upper_edge_term<Ops, Grad>(b, inv_scale), t);
    return t;
  }
};

// Calls fn(mix, b, s) for every position, mix being the MixtureAt of a full vector of positions
// or (row tails) of a single one; fn is generic over the two, which differ in their Ops.
template <typename T, int C, typename Fn>
void for_each_mixture(const T* x, const T* params, int64_t B, int64_t S, int M, int64_t num_bins,
                      const Fn& fn) {
  const BinGrid<T> grid(num_bins);
  const ParamLayout layout{M};
  const int64_t P = dlm::params_per_component(C) * M;
  at::parallel_for(0, B * S, kGrain, [&](int64_t begin, int64_t end) {
    for_each_position<T>(
        begin, end, S,
        [&](int64_t b, int64_t s) {
          fn(MixtureAt<VecOps<T>, VecTerms, C>{params + b * P * S + s, S, x + b * C * S + s, S,
                                               layout, grid},
             b, s);
        },
        [&](int64_t b, int64_t s) {
          fn(MixtureAt<TailOps<T>, TailTerms, C>{params + b * P * S + s, S, x + b * C * S + s, S,
                                                 layout, grid},
             b, s);
        });
  });
}

// One vector of positions, or one tail position, of the forward: a function of its own for the
// reason gradients_at gives.
template <typename Mix>
C10_NOINLINE typename Mix::V nll_at(const Mix& mix) {
  return mix.nll();
}

template <typename T, int C>
void nll_forward_typed(const T* x, const T* params, T* out, int64_t B, int64_t S, int M,
                       int64_t num_bins) {
  for_each_mixture<T, C>(x, params, B, S, M, num_bins, [&](const auto& mix, int64_t b, int64_t s) {
    using Ops = typename std::decay_t<decltype(mix)>::OpsType;
    Ops::store(out + b * S + s, nll_at(mix));
  });
}

// Parameter gradients are staged, a tile of one row's positions at a time, before they go to
// their planes: the planes of a [B, P, S] tensor are S elements apart, and with S a multiple of
// 1024 (32x32 images) the P stores of a vector of positions all fall in one L1 set and thrash it
// (measured: a fifth of the kernel's time at S = 1024 against S = 1040). Staged planes are spaced
// off that, and each real plane then gets one contiguous run per tile.
constexpr int64_t kStageWidth = 256;                // positions per tile
constexpr int64_t kStagePlane = kStageWidth + 16;  // elements between staged planes

// The gradients of grad * nll (grad null: an incoming gradient of 1) and, unless out is null, the
// NLL itself; grad_x may be null. Full vectors of positions evaluate each component once and keep
// the M of them in scratch of their task's own; the row tails take the scalar path, the CUDA
// kernels' path, which evaluates them twice instead.
// One vector of positions, or one tail position, of nll_gradients_typed: functions of their own so
// that each gets its registers allocated alone rather than as part of one large loop nest.
template <typename Mix, typename G, typename... Scratch>
C10_NOINLINE G gradients_at(const Mix& mix, G grad, const GradientOut<typename Mix::T>& to,
                            Scratch*... scratch) {
  return mix.backward(grad, to, scratch...);
}

template <typename T, int C>
void nll_gradients_typed(const T* grad, const T* x, const T* params, T* out, T* grad_x,
                         T* grad_params, int64_t B, int64_t S, int M, int64_t num_bins) {
  using VecMix = MixtureAt<VecOps<T>, VecTerms, C>;
  using TailMix = MixtureAt<TailOps<T>, TailTerms, C>;
  using V = typename VecMix::V;
  constexpr int64_t W = V::size();
  const BinGrid<T> grid(num_bins);
  const ParamLayout layout{M};
  const int64_t P = dlm::params_per_component(C) * M;
  at::parallel_for(0, B * S, kGrain, [&](int64_t begin, int64_t end) {
    // Kept by each thread from call to call: a training step's allocations then do not churn
    // the heap, whose trimming would make the next large allocation fault its pages in again.
    thread_local std::vector<typename VecMix::ComponentType> scratch;
    thread_local std::vector<V> priors;
    thread_local std::vector<T> stage;
    scratch.resize(M);
    priors.resize(M);
    stage.resize(P * kStagePlane);
    for (int64_t i = begin; i < end;) {
      const int64_t b = i / S, s0 = i % S;
      const int64_t n = std::min({end - i, S - s0, kStageWidth});
      const int64_t n_vec = n / W * W;
      const T* p_row = params + b * P * S;
      const T* x_row = x + b * C * S;
      T* gx_row = grad_x == nullptr ? nullptr : grad_x + b * C * S;
      for (int64_t v = 0; v < n_vec; v += W) {
        const int64_t s = s0 + v;
        const VecMix mix{p_row + s, S, x_row + s, S, layout, grid};
        const V g = grad == nullptr ? V(T(1)) : V::loadu(grad + b * S + s);
        const GradientOut<T> to{stage.data() + v, kStagePlane,
                                gx_row == nullptr ? nullptr : gx_row + s};
        const V nll = gradients_at(mix, g, to, scratch.data(), priors.data());
        if (out != nullptr) nll.store(out + b * S + s);
      }
      T* gp_tile = grad_params + b * P * S + s0;
      for (int64_t p = 0; p < P; ++p) {
        const T* from = stage.data() + p * kStagePlane;
        for (int64_t v = 0; v < n_vec; v += W) V::loadu(from + v).store(gp_tile + p * S + v);
      }
      for (int64_t s = s0 + n_vec; s < s0 + n; ++s) {
        const TailMix mix{p_row + s, S, x_row + s, S, layout, grid};
        const GradientOut<T> to{grad_params + b * P * S + s, S,
                                gx_row == nullptr ? nullptr : gx_row + s};
        const T nll = gradients_at(mix, grad == nullptr ? T(1) : grad[b * S + s], to);
        if (out != nullptr) out[b * S + s] = nll;
      }
      i += n;
    }
  });
}

template <typename T, int C>
void sample_typed(const T* params, const T* noise_mix, const T* noise_logistic, T* out, int64_t B,
                  int64_t S, int M, int64_t num_bins) {
  const ParamLayout layout{M};
  const int64_t P = dlm::params_per_component(C) * M;
  at::parallel_for(0, B * S, kGrain, [&](int64_t begin, int64_t end) {
    auto at_position = [&](auto ops, int64_t b, int64_t s) {
      using Ops = decltype(ops);
      dlm::sample_at<Ops, C>(params + b * P * S + s, S, noise_mix + b * M * S + s,
                             noise_logistic + b * C * S + s, S, out + b * C * S + s, S, layout,
                             num_bins);
    };
    for_each_position<T>(
        begin, end, S, [&](int64_t b, int64_t s) { at_position(VecOps<T>{}, b, s); },
        [&](int64_t b, int64_t s) { at_position(TailOps<T>{}, b, s); });
  });
}

// Tensors arrive contiguous and shaped [B, C, S], [B, P, S], [B, S] (grad, nll); checks are the
// caller's.
void dlm_nll_forward(const at::Tensor& x, const at::Tensor& params, at::Tensor& out,
                            int64_t num_bins) {
  const int64_t B = x.size(0), C = x.size(1), S = x.size(2);
  const int M = static_cast<int>(params.size(1) / dlm::params_per_component(C));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "discretized_logistic_mixture_nll", [&] {
    auto fn = C == 3 ? nll_forward_typed<scalar_t, 3> : nll_forward_typed<scalar_t, 1>;
    fn(x.const_data_ptr<scalar_t>(), params.const_data_ptr<scalar_t>(),
       out.mutable_data_ptr<scalar_t>(), B, S, M, num_bins);
  });
}

template <typename scalar_t>
scalar_t* data_or_null(const at::Tensor& t) {
  return t.defined() ? t.mutable_data_ptr<scalar_t>() : nullptr;
}

// The NLL and its gradients for an incoming gradient of 1; grad_x undefined: not wanted.
void dlm_nll_with_grad(const at::Tensor& x, const at::Tensor& params, int64_t num_bins,
                       at::Tensor& out, at::Tensor& grad_x, at::Tensor& grad_params) {
  const int64_t B = x.size(0), C = x.size(1), S = x.size(2);
  const int M = static_cast<int>(params.size(1) / dlm::params_per_component(C));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "discretized_logistic_mixture_nll_with_grad", [&] {
    auto fn = C == 3 ? nll_gradients_typed<scalar_t, 3> : nll_gradients_typed<scalar_t, 1>;
    fn(nullptr, x.const_data_ptr<scalar_t>(), params.const_data_ptr<scalar_t>(),
       out.mutable_data_ptr<scalar_t>(), data_or_null<scalar_t>(grad_x),
       grad_params.mutable_data_ptr<scalar_t>(), B, S, M, num_bins);
  });
}

void dlm_nll_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& params,
                      int64_t num_bins, at::Tensor& grad_x, at::Tensor& grad_params) {
  const int64_t B = x.size(0), C = x.size(1), S = x.size(2);
  const int M = static_cast<int>(params.size(1) / dlm::params_per_component(C));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "discretized_logistic_mixture_nll_backward", [&] {
    auto fn = C == 3 ? nll_gradients_typed<scalar_t, 3> : nll_gradients_typed<scalar_t, 1>;
    fn(grad.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
       params.const_data_ptr<scalar_t>(), nullptr, data_or_null<scalar_t>(grad_x),
       grad_params.mutable_data_ptr<scalar_t>(), B, S, M, num_bins);
  });
}

void dlm_sample(const at::Tensor& params, const at::Tensor& noise_mixture,
                const at::Tensor& noise_logistic, int64_t num_channels, int64_t num_bins,
                at::Tensor& out) {
  const int64_t B = params.size(0), S = params.size(2);
  const int M = static_cast<int>(params.size(1) / dlm::params_per_component(num_channels));
  AT_DISPATCH_FLOATING_TYPES(params.scalar_type(), "discretized_logistic_mixture_sample", [&] {
    auto fn = num_channels == 3 ? sample_typed<scalar_t, 3> : sample_typed<scalar_t, 1>;
    fn(params.const_data_ptr<scalar_t>(), noise_mixture.const_data_ptr<scalar_t>(),
       noise_logistic.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), B, S, M,
       num_bins);
  });
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace gen_ext
