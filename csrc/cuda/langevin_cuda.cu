// CUDA kernel of langevin_step and its in-place form (checks and layouts in langevin_schemas.h):
// a grid-stride loop over the flat tensor,
// each element's noise drawn where it is needed from the counter-based stream
// (gen_ext/gaussian_math.h) and stepped by the per-element math the CPU kernels share
// (gen_ext/langevin_math.h).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <optional>

#include "../langevin_schemas.h"
#include "gen_ext/gaussian_math.h"
#include "gen_ext/langevin_math.h"
#include "launch.h"

namespace gen_ext {
namespace cuda {
namespace {

template <typename T>
__global__ void langevin_step_kernel(const T* x, const T* __restrict__ grad,
                                     T* out, int64_t n, langevin::Step<T> step,  // out may be x
                                     uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const T noise =
        step.noise_scale != T(0) ? gaussian::standard_normal<T>(seed, static_cast<uint64_t>(i))
                                 : T(0);
    out[i] = step(x[i], grad[i], noise);
  }
}

// x contiguous; out may be x itself (the in-place step).
void run(const at::Tensor& x, const at::Tensor& grad_energy, double step_size,
         double noise_scale, const std::optional<double>& lo, const std::optional<double>& hi,
         int64_t seed, at::Tensor& out) {
  const int64_t n = x.numel();
  if (n == 0) return;
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor grad = grad_energy.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "langevin_step", [&] {
    const langevin::Step<scalar_t> step{scalar_t(step_size), scalar_t(noise_scale),
                                        scalar_t(lo.value_or(0.0)), scalar_t(hi.value_or(0.0)),
                                        lo.has_value(), hi.has_value()};
    langevin_step_kernel<scalar_t>
        <<<blocks_for(n), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
            x.const_data_ptr<scalar_t>(), grad.const_data_ptr<scalar_t>(),
            out.mutable_data_ptr<scalar_t>(), n, step, static_cast<uint64_t>(seed));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CUDA, m) { register_langevin_kernels<&run>(m); }

}  // namespace cuda
}  // namespace gen_ext
