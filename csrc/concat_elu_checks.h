#pragma once
// Argument checks of the concat-ELU ops, shared by the CPU and CUDA kernels.
// gen_ext/ops/concat_elu.py checks the same things with the same messages for the fake kernels.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <vector>

namespace gen_ext {

// The dropout probability p in [0, 1) (gen_ext.ops.arg_checks.check_dropout_p prints it alike).
inline void check_dropout_p(double p, const char* op) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, op, ": p must lie in [0, 1), got ", p);
}

inline void check_concat_elu_inputs(const at::Tensor& x, double p, const char* op) {
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
              ": x must be float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(x.dim() >= 2, op, ": x must have at least 2 dimensions [B, C, *spatial], got ",
              x.dim(), "-D");
  check_dropout_p(p, op);
}

// pad: empty, or (left, right, top, bottom) >= 0 for a 4-D x.
inline void check_concat_elu_pad(const at::Tensor& x, at::IntArrayRef pad, const char* op) {
  if (pad.empty()) return;
  TORCH_CHECK(pad.size() == 4, op, ": pad must be empty or (left, right, top, bottom), got ",
              pad.size(), " values");
  TORCH_CHECK(x.dim() == 4, op, ": pad needs x of shape [B, C, H, W], got ", x.dim(), "-D");
  for (const int64_t v : pad) {
    TORCH_CHECK(v >= 0, op, ": pad must be non-negative, got ", pad);
  }
}

// x's shape with the channels doubled, and the border added: [B, 2C, *spatial].
inline std::vector<int64_t> concat_elu_output_shape(const at::Tensor& x,
                                                    at::IntArrayRef pad = {}) {
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape[1] *= 2;
  if (!pad.empty()) {
    shape[2] += pad[2] + pad[3];
    shape[3] += pad[0] + pad[1];
  }
  return shape;
}

inline void check_concat_elu_grad(const at::Tensor& grad, const at::Tensor& x,
                                  at::IntArrayRef pad, const char* op) {
  const auto want = concat_elu_output_shape(x, pad);
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(want), op, ": grad must have the output's shape ",
              at::IntArrayRef(want), ", got ", grad.sizes());
  TORCH_CHECK(grad.scalar_type() == x.scalar_type() && grad.device() == x.device(), op,
              ": grad must match x in dtype and device (", x.scalar_type(), " on ", x.device(),
              "), got ", grad.scalar_type(), " on ", grad.device());
}

}  // namespace gen_ext
