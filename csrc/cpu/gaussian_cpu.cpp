// CPU entry points of the fused Gaussian reparameterization and KL: checks, layout, dispatch to
// the instruction-set build.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>

#include "../gaussian_checks.h"
#include "../gaussian_schemas.h"
#include "kernels.h"

namespace gen_ext {
namespace cpu {
namespace {

// eps undefined: noise drawn from the stream `seed` inside the kernel.
std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& mu, const at::Tensor& logvar,
                                           const at::Tensor& eps, int64_t seed, const char* op) {
  check_gaussian_inputs(mu, logvar, eps, op);
  auto z = at::empty(mu.sizes(), mu.options());
  auto kl = at::empty({mu.size(0)}, mu.options());
  if (mu.size(0) == 0) return {z, kl};
  auto z_rows = z.view({mu.size(0), -1});
  const at::Tensor eps_rows = eps.defined() ? as_batch_rows(eps) : at::Tensor();
  GEN_EXT_DISPATCH_ISA(
      gaussian_forward(as_batch_rows(mu), as_batch_rows(logvar), eps_rows, seed, z_rows, kl));
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
  auto grad_mu = at::empty(mu.sizes(), mu.options());
  auto grad_logvar = at::empty(mu.sizes(), mu.options());
  auto grad_eps = eps.defined() ? at::empty(mu.sizes(), mu.options()) : at::Tensor();
  if (mu.numel() == 0) return {grad_mu, grad_logvar, grad_eps};
  const int64_t B = mu.size(0), D = mu.numel() / mu.size(0);
  auto gm = grad_mu.view({B, D});
  auto gl = grad_logvar.view({B, D});
  auto ge = eps.defined() ? grad_eps.view({B, D}) : at::Tensor();
  // a broadcast scalar (the backward of z.sum()) is read in place; anything else as dense rows
  const bool broadcast = grad_z.numel() > 0 && grad_z.dim() > 0 &&
                         std::all_of(grad_z.strides().begin(), grad_z.strides().end(),
                                     [](int64_t s) { return s == 0; });
  const auto gz = broadcast ? grad_z.as_strided({B, D}, {0, 0}) : as_batch_rows(grad_z);
  const at::Tensor eps_rows = eps.defined() ? as_batch_rows(eps) : at::Tensor();
  GEN_EXT_DISPATCH_ISA(gaussian_backward(gz, grad_kl.contiguous(), as_batch_rows(mu),
                                         as_batch_rows(logvar), eps_rows, seed, gm, gl, ge));
  return {grad_mu, grad_logvar, grad_eps};
}

at::Tensor gaussian_noise_cpu(const at::Tensor& like, int64_t seed) {
  check_gaussian_dtype(like, "gaussian_noise", "like");
  auto out = at::empty(like.sizes(), like.options());
  GEN_EXT_DISPATCH_ISA(gaussian_noise(seed, out));
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CPU, m) {
  register_gaussian_kernels<&forward, &backward, &gaussian_noise_cpu>(m);
}

}  // namespace cpu
}  // namespace gen_ext
