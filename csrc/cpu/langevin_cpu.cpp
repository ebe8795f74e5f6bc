// CPU kernel entry of langevin_step and its in-place form: dispatch to the instruction-set build
// (langevin_kernel_impl.h); checks and layouts in langevin_schemas.h.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <optional>

#include "../langevin_schemas.h"
#include "kernels.h"

namespace gen_ext {
namespace cpu {
namespace {

void run(const at::Tensor& x, const at::Tensor& grad_energy, double step_size,
         double noise_scale, const std::optional<double>& lo, const std::optional<double>& hi,
         int64_t seed, at::Tensor& out) {
  if (x.numel() == 0) return;
  GEN_EXT_DISPATCH_ISA(langevin_step(x, grad_energy.contiguous(), step_size, noise_scale,
                                     lo.has_value(), lo.value_or(0.0), hi.has_value(),
                                     hi.value_or(0.0), seed, out));
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CPU, m) { register_langevin_kernels<&run>(m); }

}  // namespace cpu
}  // namespace gen_ext
