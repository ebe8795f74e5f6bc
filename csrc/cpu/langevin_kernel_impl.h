#pragma once
// CPU kernel of the Langevin step, compiled once per instruction set (see vec_ops.h). Chunks of
// the flat tensor run in parallel; each draws its noise from the counter-based stream with the
// vectorized Box-Muller of fill_noise (gaussian_kernel_impl.h), then applies the shared
// per-element step (gen_ext/langevin_math.h). Element i's noise depends only on i, so the result
// is the same for any thread count and chunking.

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <vector>

#include "gaussian_kernel_impl.h"
#include "gen_ext/langevin_math.h"

namespace gen_ext {
namespace cpu {
namespace CPU_CAPABILITY {

template <typename T>
void langevin_step_typed(const T* x, const T* grad, T* out, int64_t n,
                         const langevin::Step<T>& step, uint64_t seed) {
  constexpr int64_t kChunk = 4096;
  at::parallel_for(0, n, kChunk, [&](int64_t begin, int64_t end) {
    thread_local std::vector<T> noise;
    for (int64_t first = begin; first < end; first += kChunk) {
      const int64_t count = std::min(kChunk, end - first);
      noise.resize(count);
      if (step.noise_scale != T(0)) {
        fill_noise(seed, first, count, noise.data());
      } else {
        std::fill(noise.begin(), noise.end(), T(0));
      }
      for (int64_t k = 0; k < count; ++k) {
        out[first + k] = step(x[first + k], grad[first + k], noise[k]);
      }
    }
  });
}

// x, grad: contiguous, same shape and dtype; out may be x itself (the in-place step).
void langevin_step(const at::Tensor& x, const at::Tensor& grad, double step_size,
                          double noise_scale, bool has_lo, double lo, bool has_hi, double hi,
                          int64_t seed, at::Tensor& out) {
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "langevin_step", [&] {
    const langevin::Step<scalar_t> step{scalar_t(step_size), scalar_t(noise_scale),
                                        scalar_t(lo), scalar_t(hi), has_lo, has_hi};
    langevin_step_typed<scalar_t>(x.const_data_ptr<scalar_t>(), grad.const_data_ptr<scalar_t>(),
                                  out.mutable_data_ptr<scalar_t>(), x.numel(), step,
                                  static_cast<uint64_t>(seed));
  });
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace gen_ext
