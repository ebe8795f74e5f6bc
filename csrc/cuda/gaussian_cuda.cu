// CUDA kernels of the fused Gaussian reparameterization and KL over the shared per-element math
// (gen_ext/gaussian_math.h): one block per row for the forward (its KL is a block reduction in a
// fixed order, so results do not vary run to run), a grid-stride loop for the backward.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../gaussian_checks.h"
#include "../gaussian_schemas.h"
#include "launch.h"
#include "gen_ext/gaussian_math.h"

namespace gen_ext {
namespace cuda {
namespace {

// eps == nullptr: noise from the counter-based stream `seed`, as the CPU kernels draw it.
template <typename T>
__device__ T noise_at(const T* eps, uint64_t seed, int64_t i) {
  return eps != nullptr ? eps[i] : gaussian::standard_normal<T>(seed, static_cast<uint64_t>(i));
}

template <typename T>
__global__ void gaussian_noise_kernel(uint64_t seed, T* __restrict__ out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    out[i] = gaussian::standard_normal<T>(seed, static_cast<uint64_t>(i));
  }
}

template <typename T>
__global__ void gaussian_forward_kernel(const T* __restrict__ mu, const T* __restrict__ logvar,
                                        const T* __restrict__ eps, uint64_t seed,
                                        T* __restrict__ z, T* __restrict__ kl, int64_t D) {
  __shared__ T partial[kThreads];
  const int64_t o = blockIdx.x * D;
  T acc = T(0);
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    T zi, kl2;
    gaussian::Element<ScalarOps<T>>::forward(mu[o + i], logvar[o + i], noise_at(eps, seed, o + i),
                                             zi, kl2);
    z[o + i] = zi;
    acc += kl2;
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) kl[blockIdx.x] = T(0.5) * partial[0];
}

template <typename T>
__global__ void gaussian_backward_kernel(const T* __restrict__ grad_z,
                                         const T* __restrict__ grad_kl, const T* __restrict__ mu,
                                         const T* __restrict__ logvar, const T* __restrict__ eps,
                                         uint64_t seed, T* __restrict__ grad_mu,
                                         T* __restrict__ grad_logvar, T* __restrict__ grad_eps,
                                         int64_t n, int64_t D) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    T ge;
    gaussian::Element<ScalarOps<T>>::backward(grad_z[i], grad_kl[i / D], mu[i], logvar[i],
                                              noise_at(eps, seed, i), grad_mu[i], grad_logvar[i],
                                              ge);
    if (grad_eps != nullptr) grad_eps[i] = ge;
  }
}

// eps undefined: noise drawn from the stream `seed` inside the kernel.
std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& mu, const at::Tensor& logvar,
                                           const at::Tensor& eps, int64_t seed, const char* op) {
  check_gaussian_inputs(mu, logvar, eps, op);
  const c10::cuda::CUDAGuard guard(mu.device());
  auto z = at::empty(mu.sizes(), mu.options());
  auto kl = at::empty({mu.size(0)}, mu.options());
  if (mu.size(0) == 0) return {z, kl};
  const auto m = as_batch_rows(mu), l = as_batch_rows(logvar);
  const at::Tensor e = eps.defined() ? as_batch_rows(eps) : at::Tensor();
  const int64_t B = m.size(0), D = m.size(1);
  TORCH_CHECK(B <= 2147483647, op, ": batch too large for one launch, got ", B);
  AT_DISPATCH_FLOATING_TYPES(mu.scalar_type(), "gaussian_reparameterize_kl", [&] {
    gaussian_forward_kernel<scalar_t><<<B, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        m.const_data_ptr<scalar_t>(), l.const_data_ptr<scalar_t>(),
        e.defined() ? e.const_data_ptr<scalar_t>() : nullptr, static_cast<uint64_t>(seed),
        z.mutable_data_ptr<scalar_t>(), kl.mutable_data_ptr<scalar_t>(), D);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {z, kl};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(const at::Tensor& grad_z,
                                                        const at::Tensor& grad_kl,
                                                        const at::Tensor& mu,
                                                        const at::Tensor& logvar,
                                                        const at::Tensor& eps, int64_t seed,
                                                        const char* op) {
  check_gaussian_inputs(mu, logvar, eps, op);
  check_gaussian_grads(grad_z, grad_kl, mu, op);
  const c10::cuda::CUDAGuard guard(mu.device());
  auto grad_mu = at::empty(mu.sizes(), mu.options());
  auto grad_logvar = at::empty(mu.sizes(), mu.options());
  auto grad_eps = eps.defined() ? at::empty(mu.sizes(), mu.options()) : at::Tensor();
  const int64_t n = mu.numel();
  if (n == 0) return {grad_mu, grad_logvar, grad_eps};
  const int64_t D = n / mu.size(0);
  const auto gz = grad_z.contiguous(), gk = grad_kl.contiguous();
  const auto m = mu.contiguous(), l = logvar.contiguous();
  const at::Tensor e = eps.defined() ? eps.contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(mu.scalar_type(), "gaussian_reparameterize_kl_backward", [&] {
    gaussian_backward_kernel<scalar_t><<<blocks_for(n), kThreads, 0,
                                         c10::cuda::getCurrentCUDAStream()>>>(
        gz.const_data_ptr<scalar_t>(), gk.const_data_ptr<scalar_t>(), m.const_data_ptr<scalar_t>(),
        l.const_data_ptr<scalar_t>(), e.defined() ? e.const_data_ptr<scalar_t>() : nullptr,
        static_cast<uint64_t>(seed), grad_mu.mutable_data_ptr<scalar_t>(),
        grad_logvar.mutable_data_ptr<scalar_t>(),
        grad_eps.defined() ? grad_eps.mutable_data_ptr<scalar_t>() : nullptr, n, D);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {grad_mu, grad_logvar, grad_eps};
}

at::Tensor gaussian_noise_cuda(const at::Tensor& like, int64_t seed) {
  check_gaussian_dtype(like, "gaussian_noise", "like");
  const c10::cuda::CUDAGuard guard(like.device());
  auto out = at::empty(like.sizes(), like.options());
  const int64_t n = out.numel();
  if (n == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "gaussian_noise", [&] {
    gaussian_noise_kernel<scalar_t><<<blocks_for(n), kThreads, 0,
                                      c10::cuda::getCurrentCUDAStream()>>>(
        static_cast<uint64_t>(seed), out.mutable_data_ptr<scalar_t>(), n);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CUDA, m) {
  register_gaussian_kernels<&forward, &backward, &gaussian_noise_cuda>(m);
}

}  // namespace cuda
}  // namespace gen_ext
