#pragma once
// Argument checks of the fused PixelCNN++ gated residual block (gated_resnet_block.cpp).
// gen_ext/ops/gated_resnet_block.py checks the same things with the same messages for the fake
// kernels.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "concat_elu_checks.h"
#include "conv2d_checks.h"
#include "shifted_conv_checks.h"

namespace gen_ext {

inline void check_block_tensor(const at::Tensor& t, const at::Tensor& x,
                               const std::vector<int64_t>& shape, const char* name,
                               const char* op) {
  TORCH_CHECK(t.sizes() == at::IntArrayRef(shape), op, ": ", name, " must have shape ",
              at::IntArrayRef(shape), ", got ", t.sizes());
  check_conv2d_same_as_x(t, x, op, name);
}

inline void check_block_optional(const std::optional<at::Tensor>& t, const at::Tensor& x,
                                 const std::vector<int64_t>& shape, const char* name,
                                 const char* op) {
  if (t.has_value()) check_block_tensor(*t, x, shape, name, op);
}

// x [B, C, H, W], aux [B, Ca, H, W] or none, w_in [Cm, 2C, kh, kw], w_aux [Cm, 2Ca, 1, 1] exactly
// when aux is given, w_gate [2C, 2Cm, kh, kw], biases of the convolutions' output channels.
// Returns the border of the stream.
inline std::vector<int64_t> check_gated_resnet_block(
    const at::Tensor& x, const std::optional<at::Tensor>& aux, const at::Tensor& w_in,
    const std::optional<at::Tensor>& b_in, const std::optional<at::Tensor>& w_aux,
    const std::optional<at::Tensor>& b_aux, const at::Tensor& w_gate,
    const std::optional<at::Tensor>& b_gate, const std::string& stream, double p, const char* op) {
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
              ": x must be float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(x.dim() == 4, op, ": x must be 4-D [B, C, H, W], got ", x.dim(), "-D");
  TORCH_CHECK(x.size(1) >= 1 && x.size(2) >= 1 && x.size(3) >= 1, op,
              ": x must have at least one channel, row and column, got ", x.sizes());
  TORCH_CHECK(stream == "down" || stream == "down_right", op,
              ": stream must be 'down' or 'down_right', got '", stream, "'");
  check_dropout_p(p, op);
  TORCH_CHECK(w_in.dim() == 4 && w_in.size(0) >= 1, op,
              ": w_in must be 4-D [Cm, 2C, kh, kw] with Cm >= 1, got ", w_in.sizes());
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Cm = w_in.size(0), kh = w_in.size(2), kw = w_in.size(3);
  TORCH_CHECK(kh >= 1 && kw >= 1, op, ": w_in's kernel must be at least 1x1, got ", kh, "x", kw);
  TORCH_CHECK(stream != "down" || kw % 2 == 1, op,
              ": the 'down' stream's kernel width must be odd (it is centred), got ", kw);
  check_block_tensor(w_in, x, {Cm, 2 * C, kh, kw}, "w_in", op);
  check_block_optional(b_in, x, {Cm}, "b_in", op);
  check_block_tensor(w_gate, x, {2 * C, 2 * Cm, kh, kw}, "w_gate", op);
  check_block_optional(b_gate, x, {2 * C}, "b_gate", op);
  TORCH_CHECK(aux.has_value() == w_aux.has_value(), op,
              ": pass aux exactly when w_aux is given, got aux ",
              aux.has_value() ? "given" : "None", " and w_aux ",
              w_aux.has_value() ? "given" : "None");
  TORCH_CHECK(w_aux.has_value() || !b_aux.has_value(), op, ": b_aux needs w_aux");
  if (aux.has_value()) {
    TORCH_CHECK(aux->dim() == 4 && aux->size(1) >= 1, op,
                ": aux must be 4-D [B, Ca, H, W] with Ca >= 1, got ", aux->sizes());
    const int64_t Ca = aux->size(1);
    check_block_tensor(*aux, x, {B, Ca, H, W}, "aux", op);
    check_block_tensor(*w_aux, x, {Cm, 2 * Ca, 1, 1}, "w_aux", op);
    check_block_optional(b_aux, x, {Cm}, "b_aux", op);
  }
  return shifted_padding(stream == "down", kh, kw);
}

// The backward's saved tensors: the incoming gradient [B, C, H, W], the convolutions' outputs
// h [B, Cm, H, W] (before the second concat-ELU) and g [B, 2C, H, W] (before the gate).
inline void check_gated_resnet_block_saved(const at::Tensor& grad, const at::Tensor& x,
                                           const at::Tensor& w_in, const at::Tensor& h,
                                           const at::Tensor& g, const char* op) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  check_block_tensor(grad, x, {B, C, H, W}, "grad", op);
  check_block_tensor(h, x, {B, w_in.size(0), H, W}, "h", op);
  check_block_tensor(g, x, {B, 2 * C, H, W}, "g", op);
}

}  // namespace gen_ext
