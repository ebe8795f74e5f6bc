// CPU entry points of the fused Gaussian reparameterization and KL: checks, layout, dispatch to
// the instruction-set build.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <algorithm>

#include "../gaussian_checks.h"
#include "kernels.h"

namespace gen_ext {
namespace cpu {
namespace {

std::tuple<at::Tensor, at::Tensor> gaussian_cpu(const at::Tensor& mu, const at::Tensor& logvar,
                                                const at::Tensor& eps) {
  check_gaussian_inputs(mu, logvar, eps, "gaussian_reparameterize_kl");
  auto z = at::empty(mu.sizes(), mu.options());
  auto kl = at::empty({mu.size(0)}, mu.options());
  if (mu.size(0) == 0) return {z, kl};
  auto z_rows = z.view({mu.size(0), -1});
  GEN_EXT_DISPATCH_ISA(
      gaussian_forward(as_batch_rows(mu), as_batch_rows(logvar), as_batch_rows(eps), z_rows, kl));
  return {z, kl};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gaussian_backward_cpu(
    const at::Tensor& grad_z, const at::Tensor& grad_kl, const at::Tensor& mu,
    const at::Tensor& logvar, const at::Tensor& eps) {
  constexpr const char* op = "gaussian_reparameterize_kl_backward";
  check_gaussian_inputs(mu, logvar, eps, op);
  check_gaussian_grads(grad_z, grad_kl, mu, op);
  auto grad_mu = at::empty(mu.sizes(), mu.options());
  auto grad_logvar = at::empty(mu.sizes(), mu.options());
  auto grad_eps = at::empty(mu.sizes(), mu.options());
  if (mu.numel() == 0) return {grad_mu, grad_logvar, grad_eps};
  auto gm = grad_mu.view({mu.size(0), -1});
  auto gl = grad_logvar.view({mu.size(0), -1});
  auto ge = grad_eps.view({mu.size(0), -1});
  // a broadcast scalar (the backward of z.sum()) is read in place; anything else as dense rows
  const bool broadcast = grad_z.numel() > 0 && grad_z.dim() > 0 &&
                         std::all_of(grad_z.strides().begin(), grad_z.strides().end(),
                                     [](int64_t s) { return s == 0; });
  const auto gz = broadcast ? grad_z.as_strided({mu.size(0), mu.numel() / mu.size(0)}, {0, 0})
                            : as_batch_rows(grad_z);
  GEN_EXT_DISPATCH_ISA(gaussian_backward(gz, grad_kl.contiguous(),
                                         as_batch_rows(mu), as_batch_rows(logvar),
                                         as_batch_rows(eps), gm, gl, ge));
  return {grad_mu, grad_logvar, grad_eps};
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CPU, m) {
  m.impl("gaussian_reparameterize_kl", &gaussian_cpu);
  m.impl("gaussian_reparameterize_kl_backward", &gaussian_backward_cpu);
}

}  // namespace cpu
}  // namespace gen_ext
