// CUDA kernels of the fused gated activation over the shared per-element math
// (gen_ext/gated_math.h): grid-stride loops over the output's positions. x is seen as [rows, 2N]
// whose first N values are the a half and next N the b half: rows of images (N = C * spatial)
// in NCHW, of pixels (N = C) in channels last (gated_rows, gated_checks.h).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <optional>

#include "../gated_checks.h"
#include "../memory_layout.h"
#include "gen_ext/gated_math.h"
#include "launch.h"

namespace gen_ext {
namespace cuda {
namespace {

// Offset in x of position i's a value (its b value is N further on).
__device__ __forceinline__ int64_t a_offset(int64_t i, int64_t N) { return i + (i / N) * N; }

// residual: [B, N] or nullptr; n = B * N.
template <typename T>
__global__ void gated_forward_kernel(const T* __restrict__ x, const T* __restrict__ residual,
                                     T* __restrict__ out, int64_t n, int64_t N) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t k = a_offset(i, N);
    const T v = gated::Element<ScalarOps<T>>::forward(x[k], x[k + N]);
    out[i] = residual != nullptr ? v + residual[i] : v;
  }
}

template <typename T>
__global__ void gated_backward_kernel(const T* __restrict__ grad, const T* __restrict__ x,
                                      T* __restrict__ grad_x, int64_t n, int64_t N) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t k = a_offset(i, N);
    gated::Element<ScalarOps<T>>::backward(grad[i], x[k], x[k + N], grad_x[k], grad_x[k + N]);
  }
}

at::Tensor forward(const at::Tensor& x, const std::optional<at::Tensor>& residual) {
  constexpr const char* op = "gated_activation";
  check_gated_x(x, op);
  if (residual.has_value()) check_gated_like_output(*residual, x, op, "residual");
  const c10::cuda::CUDAGuard guard(x.device());
  const auto layout = kernel_layout(x);
  auto out = at::empty(gated_output_shape(x), x.options().memory_format(layout));
  const int64_t n = out.numel();
  if (n == 0) return out;
  const int64_t N = gated_rows(out, layout).second;
  const auto xc = x.contiguous(layout);
  const at::Tensor r = residual.has_value() ? residual->contiguous(layout) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gated_activation", [&] {
    gated_forward_kernel<scalar_t><<<blocks_for(n), kThreads, 0,
                                     c10::cuda::getCurrentCUDAStream()>>>(
        xc.const_data_ptr<scalar_t>(), r.defined() ? r.const_data_ptr<scalar_t>() : nullptr,
        out.mutable_data_ptr<scalar_t>(), n, N);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor backward(const at::Tensor& grad, const at::Tensor& x) {
  constexpr const char* op = "gated_activation_backward";
  check_gated_x(x, op);
  check_gated_like_output(grad, x, op, "grad");
  const c10::cuda::CUDAGuard guard(x.device());
  const auto layout = kernel_layout(x);
  auto grad_x = at::empty(x.sizes(), x.options().memory_format(layout));
  const int64_t n = grad.numel();
  if (n == 0) return grad_x;
  const int64_t N = gated_rows(grad, layout).second;
  const auto g = grad.contiguous(layout), xc = x.contiguous(layout);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gated_activation_backward", [&] {
    gated_backward_kernel<scalar_t><<<blocks_for(n), kThreads, 0,
                                      c10::cuda::getCurrentCUDAStream()>>>(
        g.const_data_ptr<scalar_t>(), xc.const_data_ptr<scalar_t>(),
        grad_x.mutable_data_ptr<scalar_t>(), n, N);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return grad_x;
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CUDA, m) {
  m.impl("gated_activation", &forward);
  m.impl("gated_activation_backward", &backward);
}

}  // namespace cuda
}  // namespace gen_ext
