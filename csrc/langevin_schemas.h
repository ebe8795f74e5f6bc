#pragma once
// The langevin_step schemas (ops.cpp) in terms of one device's kernel, so the CPU and CUDA files
// register the same two entry points with the same checks and layout handling:
//   Run(x contiguous, grad_energy, step_size, noise_scale, lo, hi, seed, out) writes the step
//   into out, which may be x itself.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <optional>

#include "langevin_checks.h"

namespace gen_ext {

template <auto Run>
void register_langevin_kernels(torch::Library& m) {
  m.impl("langevin_step",
         [](const at::Tensor& x, const at::Tensor& grad_energy, double step_size,
            double noise_scale, std::optional<double> lo, std::optional<double> hi,
            int64_t seed) {
           check_langevin_step(x, grad_energy, step_size, noise_scale, lo, hi, "langevin_step");
           const at::Tensor dense = x.contiguous();
           auto out =
               at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
           Run(dense, grad_energy, step_size, noise_scale, lo, hi, seed, out);
           return out;
         });
  m.impl("langevin_step_",
         [](at::Tensor& x, const at::Tensor& grad_energy, double step_size, double noise_scale,
            std::optional<double> lo, std::optional<double> hi, int64_t seed) {
           check_langevin_step(x, grad_energy, step_size, noise_scale, lo, hi, "langevin_step_");
           // a strided x is stepped densely and copied back, so element i is always row-major
           // element i of the noise stream
           at::Tensor dense = x.is_contiguous() ? x : x.contiguous();
           Run(dense, grad_energy, step_size, noise_scale, lo, hi, seed, dense);
           if (!dense.is_same(x)) x.copy_(dense);
         });
}

}  // namespace gen_ext
