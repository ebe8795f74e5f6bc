#pragma once
// Argument checks of wavenet_layer_step (csrc/wavenet_step.cpp). gen_ext/ops/wavenet_step.py
// checks the same things with the same messages for the fake kernel.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <optional>

namespace gen_ext {

inline void check_step_tensor(const at::Tensor& t, const at::Tensor& x, const char* name,
                              at::IntArrayRef want) {
  constexpr const char* op = "wavenet_layer_step";
  TORCH_CHECK(t.sizes() == want, op, ": ", name, " must have shape ", want, ", got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == x.scalar_type() && t.device() == x.device(), op, ": ", name,
              " must match x in dtype and device (", x.scalar_type(), " on ", x.device(),
              "), got ", t.scalar_type(), " on ", t.device());
}

// Returns the dilation the cache's length implies.
inline int64_t check_wavenet_layer_step(const at::Tensor& x, const at::Tensor& cache, int64_t step,
                                        const at::Tensor& weight_taps,
                                        const std::optional<at::Tensor>& bias,
                                        const std::optional<at::Tensor>& cond,
                                        const at::Tensor& out_weight,
                                        const std::optional<at::Tensor>& out_bias) {
  constexpr const char* op = "wavenet_layer_step";
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
              ": x must be float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(x.dim() == 2, op, ": x must be [B, R] (one time step), got ", x.dim(), "-D");
  TORCH_CHECK(weight_taps.dim() == 3 && weight_taps.size(0) >= 1 && weight_taps.size(2) >= 2 &&
                  weight_taps.size(2) % 2 == 0,
              op, ": weight_taps must be [K, R, 2D] with K >= 1 and an even 2D >= 2, got ",
              weight_taps.sizes());
  const int64_t B = x.size(0), R = x.size(1), K = weight_taps.size(0);
  const int64_t D2 = weight_taps.size(2);
  check_step_tensor(weight_taps, x, "weight_taps", {K, R, D2});
  TORCH_CHECK(cache.dim() == 3, op, ": cache must be [L, B, R], got ", cache.dim(), "-D");
  const int64_t L = cache.size(0);
  TORCH_CHECK(K > 1 ? (L >= K - 1 && L % (K - 1) == 0) : L == 0, op,
              ": cache must hold (K - 1) * dilation time steps for K = ", K,
              " taps, got a length of ", L);
  check_step_tensor(cache, x, "cache", {L, B, R});
  TORCH_CHECK(step >= 0, op, ": step must be >= 0, got ", step);
  TORCH_CHECK(out_weight.dim() == 2 && out_weight.size(0) == D2 / 2 && out_weight.size(1) > R, op,
              ": out_weight must be [D, R + S] = [", D2 / 2, ", ", R, " + S] with S >= 1, got ",
              out_weight.sizes());
  check_step_tensor(out_weight, x, "out_weight", out_weight.sizes());
  if (bias.has_value()) check_step_tensor(*bias, x, "bias", {D2});
  if (cond.has_value()) check_step_tensor(*cond, x, "cond", {B, D2});
  if (out_bias.has_value()) check_step_tensor(*out_bias, x, "out_bias", {out_weight.size(1)});
  return K > 1 ? L / (K - 1) : 0;
}

}  // namespace gen_ext
