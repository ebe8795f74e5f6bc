#pragma once
// The Gaussian reparameterization+KL schemas (ops.cpp) in terms of one device's forward, backward
// and noise functions, so the CPU and CUDA files register the same five entry points:
//   forward(mu, logvar, eps or undefined, seed, op name) -> (z, kl)
//   backward(grad_z, grad_kl, mu, logvar, eps or undefined, seed, op name)
//       -> (grad_mu, grad_logvar, grad_eps or undefined)
//   noise(like, seed) -> the counter-based N(0, 1) stream shaped like `like`
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <tuple>

namespace gen_ext {

template <auto Forward, auto Backward, auto Noise>
void register_gaussian_kernels(torch::Library& m) {
  m.impl("gaussian_reparameterize_kl",
         [](const at::Tensor& mu, const at::Tensor& logvar, const at::Tensor& eps) {
           return Forward(mu, logvar, eps, 0, "gaussian_reparameterize_kl");
         });
  m.impl("gaussian_reparameterize_kl_backward",
         [](const at::Tensor& grad_z, const at::Tensor& grad_kl, const at::Tensor& mu,
            const at::Tensor& logvar, const at::Tensor& eps) {
           return Backward(grad_z, grad_kl, mu, logvar, eps, 0,
                           "gaussian_reparameterize_kl_backward");
         });
  m.impl("gaussian_reparameterize_kl_seeded",
         [](const at::Tensor& mu, const at::Tensor& logvar, int64_t seed) {
           return Forward(mu, logvar, at::Tensor(), seed, "gaussian_reparameterize_kl_seeded");
         });
  m.impl("gaussian_reparameterize_kl_seeded_backward",
         [](const at::Tensor& grad_z, const at::Tensor& grad_kl, const at::Tensor& mu,
            const at::Tensor& logvar, int64_t seed) {
           auto [grad_mu, grad_logvar, none] =
               Backward(grad_z, grad_kl, mu, logvar, at::Tensor(), seed,
                        "gaussian_reparameterize_kl_seeded_backward");
           return std::make_tuple(grad_mu, grad_logvar);
         });
  m.impl("gaussian_noise", Noise);
}

}  // namespace gen_ext
