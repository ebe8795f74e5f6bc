// CPU entry points of the discretized logistic mixture ops: checks, layout, and the choice
// among the instruction-set builds of the kernels (default, avx2, avx512).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../dlm_checks.h"
#include "../dlm_shapes.h"
#include "kernels.h"

namespace gen_ext {
namespace cpu {
namespace {

// The kernels vectorize over the positions of a row and take what does not fill a vector on the
// scalar path, ~25x slower per position. When that remainder is over a quarter of a row, the batch
// is folded into the position axis ([N, B*S] as one row) so the lanes stay full; the copy this
// costs is small next to the scalar path it avoids.
bool fold_batch(const at::Tensor& x) {
  const int64_t S = spatial_numel(x), W = vector_lanes(x.scalar_type());
  return x.size(0) > 1 && (S % W) * 4 > S;
}

// [B, N, *spatial] as kernel rows: [B, N, S], or folded [1, N, B*S].
at::Tensor kernel_rows(const at::Tensor& t, bool folded) {
  if (!folded) return as_rows(t);
  const int64_t B = t.size(0), N = t.size(1), S = spatial_numel(t);
  return t.reshape({B, N, S}).transpose(0, 1).contiguous().view({1, N, B * S});
}

// An output [B, N, *spatial] as the kernel's rows: itself viewed [B, N, S] or, folded, a new
// [1, N, B*S] block that unfold_into copies back.
at::Tensor output_rows(const at::Tensor& out, bool folded) {
  if (!folded) return out.view({out.size(0), out.size(1), spatial_numel(out)});
  return at::empty({1, out.size(1), out.size(0) * spatial_numel(out)}, out.options());
}

void unfold_into(at::Tensor& out, const at::Tensor& rows, bool folded) {
  if (!folded) return;
  const int64_t B = out.size(0), N = out.size(1), S = spatial_numel(out);
  out.view({B, N, S}).copy_(rows.view({N, B, S}).transpose(0, 1));
}

// The per-position [B, *spatial] tensor as rows: [B, S], or folded [1, B*S] (the same memory).
at::Tensor position_rows(const at::Tensor& t, bool folded) {
  return folded ? t.contiguous().view({1, t.numel()}) : t.contiguous().view({t.size(0), -1});
}

at::Tensor nll_cpu(const at::Tensor& x, const at::Tensor& params, int64_t num_bins) {
  constexpr const char* op = "discretized_logistic_mixture_nll";
  check_dlm_nll_inputs(x, params, num_bins, op);
  check_dlm_x_range(x, op);
  auto out = at::empty(position_shape(x.sizes()), x.options());
  if (out.numel() == 0) return out;
  const bool folded = fold_batch(x);
  auto out_rows = position_rows(out, folded);
  GEN_EXT_DISPATCH_ISA(dlm_nll_forward(kernel_rows(x, folded), kernel_rows(params, folded),
                                       out_rows, num_bins));
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> nll_with_grad_cpu(const at::Tensor& x,
                                                                 const at::Tensor& params,
                                                                 int64_t num_bins, bool x_grad) {
  constexpr const char* op = "discretized_logistic_mixture_nll_with_grad";
  check_dlm_nll_inputs(x, params, num_bins, op);
  check_dlm_x_range(x, op);
  auto [out, grad_x, grad_params] = nll_with_grad_results(x, params, x_grad);
  if (out.numel() == 0) return {out, grad_x, grad_params};
  const bool folded = fold_batch(x);
  auto out_rows = position_rows(out, folded);
  auto gx_rows = x_grad ? output_rows(grad_x, folded) : at::Tensor();
  auto gp_rows = output_rows(grad_params, folded);
  GEN_EXT_DISPATCH_ISA(dlm_nll_with_grad(kernel_rows(x, folded), kernel_rows(params, folded),
                                         num_bins, out_rows, gx_rows, gp_rows));
  if (x_grad) unfold_into(grad_x, gx_rows, folded);
  unfold_into(grad_params, gp_rows, folded);
  return {out, grad_x, grad_params};
}

std::tuple<at::Tensor, at::Tensor> nll_backward_cpu(const at::Tensor& grad, const at::Tensor& x,
                                                    const at::Tensor& params, int64_t num_bins) {
  constexpr const char* op = "discretized_logistic_mixture_nll_backward";
  check_dlm_nll_inputs(x, params, num_bins, op);
  check_dlm_nll_grad(grad, x, op);
  auto grad_x = at::empty(x.sizes(), x.options());
  auto grad_params = at::empty(params.sizes(), params.options());
  if (x.numel() == 0) return {grad_x.zero_(), grad_params.zero_()};
  const bool folded = fold_batch(x);
  auto gx_rows = output_rows(grad_x, folded);
  auto gp_rows = output_rows(grad_params, folded);
  GEN_EXT_DISPATCH_ISA(dlm_nll_backward(position_rows(grad, folded), kernel_rows(x, folded),
                                        kernel_rows(params, folded), num_bins, gx_rows, gp_rows));
  unfold_into(grad_x, gx_rows, folded);
  unfold_into(grad_params, gp_rows, folded);
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
  m.impl("discretized_logistic_mixture_nll_with_grad", &nll_with_grad_cpu);
  m.impl("discretized_logistic_mixture_nll_backward", &nll_backward_cpu);
  m.impl("discretized_logistic_mixture_sample", &sample_cpu);
}

}  // namespace cpu
}  // namespace gen_ext
