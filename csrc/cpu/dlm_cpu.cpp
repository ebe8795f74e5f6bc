// CPU entry points of the discretized logistic mixture ops: checks, layout, and the choice
// between the AVX2 and portable kernel builds.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../dlm_checks.h"
#include "../dlm_shapes.h"
#include "dlm_kernels.h"
#include "gen_ext/dlm_math.h"

namespace gen_ext {
namespace cpu {
namespace {

at::Tensor nll_cpu(const at::Tensor& x, const at::Tensor& params, int64_t num_bins) {
  constexpr const char* op = "discretized_logistic_mixture_nll";
  check_dlm_nll_inputs(x, params, num_bins, op);
  check_dlm_x_range(x, op);
  auto out = at::empty(position_shape(x.sizes()), x.options());
  if (out.numel() == 0) return out;
  const auto x_rows = as_rows(x);
  const auto p_rows = as_rows(params);
  auto out_rows = out.view({x.size(0), spatial_numel(x)});
  GEN_EXT_DISPATCH_ISA(dlm_nll_forward(x_rows, p_rows, out_rows, num_bins));
  return out;
}

std::tuple<at::Tensor, at::Tensor> nll_backward_cpu(const at::Tensor& grad, const at::Tensor& x,
                                                    const at::Tensor& params, const at::Tensor& nll,
                                                    int64_t num_bins) {
  constexpr const char* op = "discretized_logistic_mixture_nll_backward";
  check_dlm_nll_inputs(x, params, num_bins, op);
  check_dlm_nll_grad(grad, nll, x, op);
  auto grad_x = at::empty(x.sizes(), x.options());
  auto grad_params = at::empty(params.sizes(), params.options());
  if (x.numel() == 0) return {grad_x.zero_(), grad_params.zero_()};
  const int64_t S = spatial_numel(x);
  const auto g_rows = grad.contiguous().view({x.size(0), S});
  const auto nll_rows = nll.contiguous().view({x.size(0), S});
  auto gx_rows = grad_x.view({x.size(0), x.size(1), S});
  auto gp_rows = grad_params.view({params.size(0), params.size(1), S});
  const auto x_rows = as_rows(x);
  const auto p_rows = as_rows(params);
  GEN_EXT_DISPATCH_ISA(
      dlm_nll_backward(g_rows, x_rows, p_rows, nll_rows, num_bins, gx_rows, gp_rows));
  return {grad_x, grad_params};
}

template <typename T, int C>
void sample_typed(const T* params, const T* noise_mix, const T* noise_logistic, T* out, int64_t B,
                  int64_t S, int M, int64_t num_bins) {
  const dlm::ParamLayout layout{M};
  const int64_t P = C == 3 ? 10 * M : 3 * M;
  at::parallel_for(0, B * S, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / S, s = i % S;
      dlm::sample_at<T, C>(params + b * P * S + s, S, noise_mix + b * M * S + s,
                           noise_logistic + b * C * S + s, S, out + b * C * S + s, S, layout,
                           num_bins);
    }
  });
}

at::Tensor sample_cpu(const at::Tensor& params, const at::Tensor& noise_mixture,
                      const at::Tensor& noise_logistic, int64_t num_channels, int64_t num_bins) {
  const int64_t M =
      check_dlm_sample_inputs(params, noise_mixture, noise_logistic, num_channels, num_bins);
  auto out = at::empty(with_channels(params.sizes(), num_channels), params.options());
  if (out.numel() == 0) return out;
  const int64_t B = params.size(0), S = spatial_numel(params);
  const auto p = as_rows(params), nm = as_rows(noise_mixture), nl = as_rows(noise_logistic);
  AT_DISPATCH_FLOATING_TYPES(params.scalar_type(), "discretized_logistic_mixture_sample", [&] {
    auto fn = num_channels == 3 ? sample_typed<scalar_t, 3> : sample_typed<scalar_t, 1>;
    fn(p.const_data_ptr<scalar_t>(), nm.const_data_ptr<scalar_t>(),
       nl.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), B, S,
       static_cast<int>(M), num_bins);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CPU, m) {
  m.impl("discretized_logistic_mixture_nll", &nll_cpu);
  m.impl("discretized_logistic_mixture_nll_backward", &nll_backward_cpu);
  m.impl("discretized_logistic_mixture_sample", &sample_cpu);
}

}  // namespace cpu
}  // namespace gen_ext
