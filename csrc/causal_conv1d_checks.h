#pragma once
// Argument checks of the causal 1-D convolution ops, shared by their CPU and CUDA registrations.
// gen_ext/ops/causal_conv1d.py checks the same things, in the same order, with the same messages
// for the fake kernels.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <vector>

namespace gen_ext {

inline void check_causal_conv1d_same(const at::Tensor& t, const at::Tensor& x, const char* op,
                                     const char* name) {
  TORCH_CHECK(t.scalar_type() == x.scalar_type() && t.device() == x.device(), op, ": ", name,
              " must match x in dtype and device (", x.scalar_type(), " on ", x.device(), "), got ",
              t.scalar_type(), " on ", t.device());
}

// x [B, C_in, T], weight [C_out, C_in, K], bias [C_out] (may be undefined), dilation >= 1.
inline void check_causal_conv1d_inputs(const at::Tensor& x, const at::Tensor& weight,
                                       const at::Tensor& bias, int64_t dilation, const char* op) {
  TORCH_CHECK(x.dim() == 3, op, ": x must be 3-D [B, C_in, T], got ", x.dim(), "-D");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
              ": x must be float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(weight.dim() == 3, op, ": weight must be 3-D [C_out, C_in, K], got ", weight.dim(),
              "-D");
  check_causal_conv1d_same(weight, x, op, "weight");
  TORCH_CHECK(weight.size(1) == x.size(1), op, ": weight must have x's ", x.size(1),
              " input channels (dim 1), got ", weight.size(1));
  TORCH_CHECK(weight.size(2) >= 1, op, ": weight's kernel size (dim 2) must be at least 1, got ",
              weight.size(2));
  TORCH_CHECK(dilation >= 1, op, ": dilation must be at least 1, got ", dilation);
  if (bias.defined()) {
    TORCH_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), op, ": bias must have shape [",
                weight.size(0), "], got ", bias.sizes());
    check_causal_conv1d_same(bias, x, op, "bias");
  }
}

inline void check_causal_conv1d_grad(const at::Tensor& grad, const at::Tensor& x,
                                     const at::Tensor& weight, const char* op) {
  const std::vector<int64_t> want{x.size(0), weight.size(0), x.size(2)};
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(want), op, ": grad must have the output's shape ",
              at::IntArrayRef(want), ", got ", grad.sizes());
  check_causal_conv1d_same(grad, x, op, "grad");
}

}  // namespace gen_ext
