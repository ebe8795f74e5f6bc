// CUDA kernels of the discretized logistic mixture likelihood: one thread per position, over the
// same per-element math (gen_ext/dlm_math.h) the CPU kernels run and the tests check. The sampler's
// GPU kernel is the Triton one in kernels/dlm_sample.py.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../dlm_checks.h"
#include "../dlm_shapes.h"
#include "launch.h"
#include "gen_ext/dlm_math.h"

namespace gen_ext {
namespace cuda {
namespace {

using dlm::BinGrid;
using dlm::GradientOut;
using dlm::MixtureAt;
using dlm::ParamLayout;
using dlm::ScalarOps;
using dlm::ScalarTerms;

// Grid-stride loop over positions, handing fn the index and the mixture at it.
template <typename T, int C, typename Fn>
__device__ void for_each_mixture(const T* x, const T* params, int64_t B, int64_t S, int M,
                                 const BinGrid<T>& grid, Fn fn) {
  const int64_t P = dlm::params_per_component(C) * M;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < B * S;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t b = i / S, s = i % S;
    fn(i, b * P * S + s, b * C * S + s,
       MixtureAt<ScalarOps<T>, ScalarTerms, C>{params + b * P * S + s, S, x + b * C * S + s, S,
                                                ParamLayout{M}, grid});
  }
}

template <typename T, int C>
__global__ void nll_forward_kernel(const T* __restrict__ x, const T* __restrict__ params,
                                   T* __restrict__ out, int64_t B, int64_t S, int M,
                                   BinGrid<T> grid) {
  for_each_mixture<T, C>(x, params, B, S, M, grid,
                         [&](int64_t i, int64_t, int64_t, const auto& mix) { out[i] = mix.nll(); });
}

// The gradients of grad * nll (grad null: an incoming gradient of 1) and, unless out is null, the
// NLL; grad_x may be null. Each thread evaluates its mixture twice, for the totals and then for
// the gradients: the CPU kernels' one-pass path would keep M components per thread in local
// memory.
template <typename T, int C>
__global__ void nll_gradients_kernel(const T* __restrict__ grad, const T* __restrict__ x,
                                     const T* __restrict__ params, T* __restrict__ out,
                                     T* __restrict__ grad_x, T* __restrict__ grad_params,
                                     int64_t B, int64_t S, int M, BinGrid<T> grid) {
  for_each_mixture<T, C>(x, params, B, S, M, grid,
                         [&](int64_t i, int64_t p_offset, int64_t x_offset, const auto& mix) {
                           const GradientOut<T> to{grad_params + p_offset, S,
                                                   grad_x == nullptr ? nullptr : grad_x + x_offset};
                           const T nll = mix.backward(grad == nullptr ? T(1) : grad[i], to);
                           if (out != nullptr) out[i] = nll;
                         });
}

// Launches nll_gradients_kernel; undefined grad, out or grad_x: null.
void launch_gradients(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& params,
                      int64_t num_bins, const at::Tensor& out, const at::Tensor& grad_x,
                      const at::Tensor& grad_params) {
  const int64_t B = x.size(0), C = x.size(1), S = spatial_numel(x);
  const int M = static_cast<int>(params.size(1) / dlm::params_per_component(C));
  const auto x_rows = as_rows(x);
  const auto p_rows = as_rows(params);
  const auto g = grad.defined() ? grad.contiguous() : grad;
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "discretized_logistic_mixture_nll_gradients", [&] {
    auto ptr = [](const at::Tensor& t) {
      return t.defined() ? t.mutable_data_ptr<scalar_t>() : nullptr;
    };
    const BinGrid<scalar_t> grid(num_bins);
    auto kernel = C == 3 ? nll_gradients_kernel<scalar_t, 3> : nll_gradients_kernel<scalar_t, 1>;
    kernel<<<blocks_for(B * S), kThreads, 0, stream>>>(
        g.defined() ? g.const_data_ptr<scalar_t>() : nullptr, x_rows.const_data_ptr<scalar_t>(),
        p_rows.const_data_ptr<scalar_t>(), ptr(out), ptr(grad_x), ptr(grad_params), B, S, M,
        grid);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

at::Tensor nll_cuda(const at::Tensor& x, const at::Tensor& params, int64_t num_bins) {
  constexpr const char* op = "discretized_logistic_mixture_nll";
  const int64_t M = check_dlm_nll_inputs(x, params, num_bins, op);
  check_dlm_x_range(x, op);
  const c10::cuda::CUDAGuard guard(x.device());
  auto out = at::empty(position_shape(x.sizes()), x.options());
  if (out.numel() == 0) return out;
  const int64_t B = x.size(0), C = x.size(1), S = spatial_numel(x);
  const auto x_rows = as_rows(x);
  const auto p_rows = as_rows(params);
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), op, [&] {
    const BinGrid<scalar_t> grid(num_bins);
    auto kernel = C == 3 ? nll_forward_kernel<scalar_t, 3> : nll_forward_kernel<scalar_t, 1>;
    kernel<<<blocks_for(B * S), kThreads, 0, stream>>>(
        x_rows.const_data_ptr<scalar_t>(), p_rows.const_data_ptr<scalar_t>(),
        out.mutable_data_ptr<scalar_t>(), B, S, static_cast<int>(M), grid);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> nll_with_grad_cuda(const at::Tensor& x,
                                                                  const at::Tensor& params,
                                                                  int64_t num_bins, bool x_grad) {
  constexpr const char* op = "discretized_logistic_mixture_nll_with_grad";
  check_dlm_nll_inputs(x, params, num_bins, op);
  check_dlm_x_range(x, op);
  const c10::cuda::CUDAGuard guard(x.device());
  auto [out, grad_x, grad_params] = nll_with_grad_results(x, params, x_grad);
  if (out.numel() == 0) return {out, grad_x, grad_params};
  launch_gradients(at::Tensor(), x, params, num_bins, out, x_grad ? grad_x : at::Tensor(),
                   grad_params);
  return {out, grad_x, grad_params};
}

std::tuple<at::Tensor, at::Tensor> nll_backward_cuda(const at::Tensor& grad, const at::Tensor& x,
                                                     const at::Tensor& params, int64_t num_bins) {
  constexpr const char* op = "discretized_logistic_mixture_nll_backward";
  check_dlm_nll_inputs(x, params, num_bins, op);
  check_dlm_nll_grad(grad, x, op);
  const c10::cuda::CUDAGuard guard(x.device());
  auto grad_x = at::empty(x.sizes(), x.options());
  auto grad_params = at::empty(params.sizes(), params.options());
  if (x.numel() == 0) return {grad_x.zero_(), grad_params.zero_()};
  launch_gradients(grad, x, params, num_bins, at::Tensor(), grad_x, grad_params);
  return {grad_x, grad_params};
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CUDA, m) {
  m.impl("discretized_logistic_mixture_nll", &nll_cuda);
  m.impl("discretized_logistic_mixture_nll_with_grad", &nll_with_grad_cuda);
  m.impl("discretized_logistic_mixture_nll_backward", &nll_backward_cuda);
}

}  // namespace cuda
}  // namespace gen_ext
