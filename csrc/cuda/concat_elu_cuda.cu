// CUDA kernels of the fused concat-ELU with dropout over the shared per-element math
// (gen_ext/concat_elu_math.h): grid-stride loops over the input's elements. x is seen as [B, N]
// rows (N = C * spatial) and the output as [B, 2N], elu(x) in a row's first N values and elu(-x)
// in the next N.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../concat_elu_checks.h"
#include "gen_ext/concat_elu_math.h"
#include "launch.h"

namespace gen_ext {
namespace cuda {
namespace {

struct Dropout {
  bool on;
  uint64_t seed, threshold;
  double keep_scale;
};

Dropout dropout_of(double p, int64_t seed) {
  return {p > 0, static_cast<uint64_t>(seed), concat_elu::dropout_threshold(p),
          concat_elu::dropout_keep_scale(p)};
}

template <typename T>
__device__ __forceinline__ T factor(const Dropout& d, int64_t index) {
  return d.on ? concat_elu::dropout_factor<T>(d.seed, static_cast<uint64_t>(index), d.threshold,
                                              static_cast<T>(d.keep_scale))
              : T(1);
}

// Offset in the output of input element i's elu(x) value (its elu(-x) value is N further on).
__device__ __forceinline__ int64_t pos_offset(int64_t i, int64_t N) { return i + (i / N) * N; }

template <typename T>
__global__ void forward_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t n, int64_t N,
                               Dropout d) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t k = pos_offset(i, N);
    T pos, neg;
    concat_elu::Element<ScalarOps<T>>::forward(x[i], pos, neg);
    out[k] = pos * factor<T>(d, k);
    out[k + N] = neg * factor<T>(d, k + N);
  }
}

template <typename T>
__global__ void backward_kernel(const T* __restrict__ grad, const T* __restrict__ x,
                                T* __restrict__ grad_x, int64_t n, int64_t N, Dropout d) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t k = pos_offset(i, N);
    grad_x[i] = concat_elu::Element<ScalarOps<T>>::backward(
        grad[k] * factor<T>(d, k), grad[k + N] * factor<T>(d, k + N), x[i]);
  }
}

at::Tensor forward(const at::Tensor& x, double p, int64_t seed) {
  check_concat_elu_inputs(x, p, "concat_elu");
  const c10::cuda::CUDAGuard guard(x.device());
  auto out = at::empty(concat_elu_output_shape(x), x.options());
  const int64_t n = x.numel();
  if (n == 0) return out;
  const auto xc = x.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "concat_elu", [&] {
    forward_kernel<scalar_t><<<blocks_for(n), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        xc.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), n, n / x.size(0),
        dropout_of(p, seed));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor backward(const at::Tensor& grad, const at::Tensor& x, double p, int64_t seed) {
  constexpr const char* op = "concat_elu_backward";
  check_concat_elu_inputs(x, p, op);
  check_concat_elu_grad(grad, x, op);
  const c10::cuda::CUDAGuard guard(x.device());
  auto grad_x = at::empty(x.sizes(), x.options());
  const int64_t n = x.numel();
  if (n == 0) return grad_x;
  const auto g = grad.contiguous(), xc = x.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "concat_elu_backward", [&] {
    backward_kernel<scalar_t><<<blocks_for(n), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        g.const_data_ptr<scalar_t>(), xc.const_data_ptr<scalar_t>(),
        grad_x.mutable_data_ptr<scalar_t>(), n, n / x.size(0), dropout_of(p, seed));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return grad_x;
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CUDA, m) {
  m.impl("concat_elu", &forward);
  m.impl("concat_elu_backward", &backward);
}

}  // namespace cuda
}  // namespace gen_ext
