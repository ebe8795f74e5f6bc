#pragma once
// Argument checks of langevin_step (CPU and CUDA entry points). gen_ext/ops/langevin.py checks the
// same things with the same messages for the fake kernel and the reference backend.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <optional>

namespace gen_ext {

inline void check_langevin_step(const at::Tensor& x, const at::Tensor& grad_energy,
                                double step_size, double noise_scale,
                                const std::optional<double>& lo, const std::optional<double>& hi,
                                const char* op) {
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
              ": x must be float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(grad_energy.sizes() == x.sizes(), op, ": grad_energy must have the shape of x ",
              x.sizes(), ", got ", grad_energy.sizes());
  TORCH_CHECK(grad_energy.scalar_type() == x.scalar_type() && grad_energy.device() == x.device(),
              op, ": grad_energy must match x in dtype and device (", x.scalar_type(), " on ",
              x.device(), "), got ", grad_energy.scalar_type(), " on ", grad_energy.device());
  TORCH_CHECK(std::isfinite(step_size), op, ": step_size must be finite, got ", step_size);
  TORCH_CHECK(std::isfinite(noise_scale) && noise_scale >= 0, op,
              ": noise_scale must be finite and >= 0, got ", noise_scale);
  TORCH_CHECK(!lo.has_value() || !std::isnan(*lo), op, ": lo must not be NaN");
  TORCH_CHECK(!hi.has_value() || !std::isnan(*hi), op, ": hi must not be NaN");
  TORCH_CHECK(!lo.has_value() || !hi.has_value() || *lo <= *hi, op,
              ": lo must not exceed hi, got lo = ", *lo, " and hi = ", *hi);
}

}  // namespace gen_ext
