// CPU entry points of the discretized logistic mixture ops: checks, layout, and the choice
// between the AVX2 and portable kernel builds.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../dlm_checks.h"
#include "../dlm_shapes.h"
#include "kernels.h"

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

at::Tensor sample_cpu(const at::Tensor& params, const at::Tensor& noise_mixture,
                      const at::Tensor& noise_logistic, int64_t num_channels, int64_t num_bins) {
  check_dlm_sample_inputs(params, noise_mixture, noise_logistic, num_channels, num_bins);
  auto out = at::empty(with_channels(params.sizes(), num_channels), params.options());
  if (out.numel() == 0) return out;
  const auto p = as_rows(params), nm = as_rows(noise_mixture), nl = as_rows(noise_logistic);
  auto out_rows = out.view({params.size(0), num_channels, spatial_numel(params)});
  GEN_EXT_DISPATCH_ISA(dlm_sample(p, nm, nl, num_channels, num_bins, out_rows));
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
