#pragma once
// CPU kernel of wavenet_layer_step (gen_ext/reference/wavenet_step.py), compiled once per
// instruction set (see vec_ops.h). A step is two small products per sequence of the batch (its
// taps [K * R] times weight_taps [K * R, 2D], the gate [D] times out_weight [D, R + S]) around
// the gated activation: each row is done by one task from start to finish with the weights read
// from cache (row-times-matrix, row_ops.h), so no GEMM is launched and, for the batches
// sampling uses, no thread is woken: at this size a fork/join costs more than the arithmetic,
// and on a busy machine a descheduled thread stalls every step.

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <vector>

#include "gen_ext/gated_math.h"
#include "row_ops.h"
#include "vec_ops.h"

namespace gen_ext {
namespace cpu {
namespace CPU_CAPABILITY {

// Multiply-adds per parallel task: ~100 us of work, so small batches run on the calling thread.
constexpr int64_t kWavenetStepGrain = int64_t(1) << 20;

template <typename T>
void wavenet_step_typed(const T* x, T* cache, int64_t L, int64_t B, int64_t R, int64_t step,
                        int64_t dilation, const T* w, int64_t K, int64_t D, const T* bias,
                        const T* cond, const T* wo, int64_t S, const T* out_bias, T* residual,
                        T* skip) {
  using Vec = gated::Element<VecOps<T>>;
  using Tail = gated::Element<TailOps<T>>;
  using V = at::vec::Vectorized<T>;
  constexpr int64_t W = V::size();
  // the first tap whose time has come (earlier ones are absent) and each tap's cache slot
  int64_t first = 0;
  while (first < K - 1 && step - (K - 1 - first) * dilation < 0) ++first;
  std::vector<int64_t> slot(K, -1);
  for (int64_t k = first; k < K - 1; ++k) slot[k] = (step - (K - 1 - k) * dilation) % L;
  const int64_t taps = K - first, work = taps * R * 2 * D + D * (R + S);
  const int64_t grain = std::max<int64_t>(1, kWavenetStepGrain / std::max<int64_t>(work, 1));
  at::parallel_for(0, B, grain, [&](int64_t b0, int64_t b1) {
    std::vector<T> z(2 * D), g(D), o(R + S);
    std::vector<const T*> input(K);
    for (int64_t b = b0; b < b1; ++b) {
      for (int64_t k = first; k < K - 1; ++k) input[k] = cache + (slot[k] * B + b) * R;
      input[K - 1] = x + b * R;
      for (int64_t j = 0; j < 2 * D; ++j) {
        z[j] = (bias != nullptr ? bias[j] : T(0)) + (cond != nullptr ? cond[b * 2 * D + j] : T(0));
      }
      // z += sum over the present taps k and channels r of input[k][r] * w[k, r, :]
      add_scaled_rows(
          z.data(), taps * R, [&](int64_t q) { return input[first + q / R][q % R]; },
          [&](int64_t q) { return w + (first * R + q) * 2 * D; }, 2 * D, z.data());
      int64_t j = 0;
      for (; j + W <= D; j += W) {
        Vec::forward(V::loadu(z.data() + j), V::loadu(z.data() + D + j)).store(g.data() + j);
      }
      for (; j < D; ++j) g[j] = Tail::forward(z[j], z[D + j]);
      for (int64_t n = 0; n < R + S; ++n) o[n] = out_bias != nullptr ? out_bias[n] : T(0);
      add_matvec(g.data(), wo, D, R + S, o.data());
      for (int64_t r = 0; r < R; ++r) residual[b * R + r] = x[b * R + r] + o[r];
      std::copy(o.begin() + R, o.end(), skip + b * S);
      // the slot of the oldest tap (time step - L), read above, takes the newest input
      if (L > 0) std::copy(x + b * R, x + (b + 1) * R, cache + ((step % L) * B + b) * R);
    }
  });
}

void wavenet_step(const at::Tensor& x, at::Tensor& cache, int64_t step, int64_t dilation,
                         const at::Tensor& weight_taps, const at::Tensor& bias,
                         const at::Tensor& cond, const at::Tensor& out_weight,
                         const at::Tensor& out_bias, at::Tensor& residual, at::Tensor& skip) {
  const int64_t B = x.size(0), R = x.size(1), K = weight_taps.size(0), L = cache.size(0);
  const int64_t D = weight_taps.size(2) / 2, S = out_weight.size(1) - R;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "wavenet_layer_step", [&] {
    const auto ptr = [](const at::Tensor& t) {
      return t.defined() ? t.data_ptr<scalar_t>() : static_cast<scalar_t*>(nullptr);
    };
    wavenet_step_typed<scalar_t>(ptr(x), ptr(cache), L, B, R, step, dilation, ptr(weight_taps),
                                 K, D, ptr(bias), ptr(cond), ptr(out_weight), S, ptr(out_bias),
                                 ptr(residual), ptr(skip));
  });
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace gen_ext
