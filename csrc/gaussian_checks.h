#pragma once
// Argument checks of the Gaussian reparameterization+KL ops, shared by the CPU and CUDA kernels.
// gen_ext/ops/gaussian.py checks the same things with the same messages for the fake kernels.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace gen_ext {

inline void check_gaussian_dtype(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, op, ": ", name,
              " must be float32 or float64, got ", t.scalar_type());
}

// An undefined eps stands for noise drawn inside the kernel.
inline void check_gaussian_inputs(const at::Tensor& mu, const at::Tensor& logvar,
                                  const at::Tensor& eps, const char* op) {
  check_gaussian_dtype(mu, op, "mu");
  TORCH_CHECK(mu.dim() >= 1, op, ": mu must have a batch dimension, got a 0-d tensor");
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor*>{"logvar", &logvar},
                                {"eps", &eps}}) {
    if (!t->defined()) continue;
    TORCH_CHECK(t->sizes() == mu.sizes(), op, ": ", name, " must have the shape of mu ",
                mu.sizes(), ", got ", t->sizes());
    TORCH_CHECK(t->scalar_type() == mu.scalar_type() && t->device() == mu.device(), op, ": ",
                name, " must match mu in dtype and device (", mu.scalar_type(), " on ",
                mu.device(), "), got ", t->scalar_type(), " on ", t->device());
  }
}

inline void check_gaussian_grads(const at::Tensor& grad_z, const at::Tensor& grad_kl,
                                 const at::Tensor& mu, const char* op) {
  TORCH_CHECK(grad_z.sizes() == mu.sizes(), op, ": grad_z must have the shape of mu ", mu.sizes(),
              ", got ", grad_z.sizes());
  TORCH_CHECK(grad_kl.dim() == 1 && grad_kl.size(0) == mu.size(0), op,
              ": grad_kl must have shape [B] = [", mu.size(0), "], got ", grad_kl.sizes());
  for (const auto* t : {&grad_z, &grad_kl}) {
    TORCH_CHECK(t->scalar_type() == mu.scalar_type() && t->device() == mu.device(), op,
                ": gradients must match mu in dtype and device, got ", t->scalar_type(), " on ",
                t->device());
  }
}

// [B, D] view of a [B, *] tensor (a copy only when not contiguous).
inline at::Tensor as_batch_rows(const at::Tensor& t) {
  return t.contiguous().view({t.size(0), t.size(0) == 0 ? 0 : t.numel() / t.size(0)});
}

}  // namespace gen_ext
