// The fused PixelCNN++ gated residual block (gen_ext/reference/gated_resnet_block.py is the spec):
//   h   = conv_in(concat_elu(x) in its causal border) [+ nin(concat_elu(aux))]
//   g   = conv_gate(dropout(concat_elu(h)) in its causal border)
//   out = tanh(g_a) * sigmoid(g_b) + x
// One implementation serves the CPU and the GPU: the convolutions are the device's own (oneDNN,
// cuDNN) and the elementwise passes gen_ext's concat-ELU and gated-activation kernels for the
// device, reached through the dispatcher. What the block adds over the same layers composed in
// Python:
// - each concat-ELU writes its convolution's zero border in the same pass (no padded copy), and
//   keeps the layout it is given (channels last on a CPU);
// - the auxiliary 1x1 convolution accumulates into h in place, its bias folded into conv_in's;
// - the backward keeps only x, aux, h and g: the concat-ELU outputs the weight gradients need
//   (twice the channels, with the border) are recomputed in one elementwise pass each, and the
//   dropout factors are drawn again from the seed, so no mask is stored.
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/convolution.h>
#include <ATen/ops/convolution_backward.h>
#include <ATen/ops/add.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "gated_resnet_block_checks.h"
#include "memory_layout.h"

namespace gen_ext {
namespace {

at::Tensor concat_elu(const at::Tensor& x, double p, int64_t seed, at::IntArrayRef pad) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("gen_ext::concat_elu", "")
          .typed<at::Tensor(const at::Tensor&, double, int64_t, at::IntArrayRef)>();
  return op.call(x, p, seed, pad);
}

at::Tensor concat_elu_backward(const at::Tensor& grad, const at::Tensor& x, double p,
                               int64_t seed, at::IntArrayRef pad) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("gen_ext::concat_elu_backward", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double, int64_t,
                            at::IntArrayRef)>();
  return op.call(grad, x, p, seed, pad);
}

at::Tensor gated_activation(const at::Tensor& x, const std::optional<at::Tensor>& residual) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("gen_ext::gated_activation", "")
          .typed<at::Tensor(const at::Tensor&, const std::optional<at::Tensor>&)>();
  return op.call(x, residual);
}

at::Tensor gated_activation_backward(const at::Tensor& grad, const at::Tensor& x) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("gen_ext::gated_activation_backward", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&)>();
  return op.call(grad, x);
}

// A stride-1 convolution with no padding: the input already holds its zero border.
at::Tensor conv(const at::Tensor& input, const at::Tensor& weight,
                const std::optional<at::Tensor>& bias) {
  return at::convolution(input, weight, bias, {1, 1}, {0, 0}, {1, 1}, false, {0, 0}, 1);
}

// (grad_input, grad_weight, grad_bias) of conv(input, weight, bias) for the output gradient.
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv_backward(const at::Tensor& grad,
                                                             const at::Tensor& input,
                                                             const at::Tensor& weight) {
  return at::convolution_backward(grad, input, weight, at::IntArrayRef{weight.size(0)}, {1, 1},
                                  {0, 0}, {1, 1}, false, {0, 0}, 1, {true, true, true});
}

// (out, h, g): the block's output and the two convolutions' outputs, which the backward reads.
std::tuple<at::Tensor, at::Tensor, at::Tensor> forward(
    const at::Tensor& x, const std::optional<at::Tensor>& aux, const at::Tensor& w_in,
    const std::optional<at::Tensor>& b_in, const std::optional<at::Tensor>& w_aux,
    const std::optional<at::Tensor>& b_aux, const at::Tensor& w_gate,
    const std::optional<at::Tensor>& b_gate, c10::string_view stream, double p, int64_t seed) {
  const auto pad = check_gated_resnet_block(x, aux, w_in, b_in, w_aux, b_aux, w_gate, b_gate,
                                            std::string(stream), p, "gated_resnet_block");
  // the auxiliary convolution's bias joins conv_in's: one bias pass instead of two
  std::optional<at::Tensor> bias = b_in;
  if (b_aux.has_value()) bias = b_in.has_value() ? at::add(*b_in, *b_aux) : *b_aux;
  at::Tensor h = conv(concat_elu(x, 0.0, 0, pad), w_in, bias);
  if (aux.has_value()) h.add_(conv(concat_elu(*aux, 0.0, 0, {}), *w_aux, std::nullopt));
  at::Tensor g = conv(concat_elu(h, p, seed, pad), w_gate, b_gate);
  at::Tensor out = gated_activation(g, x);
  // every result in x's layout, as the fake kernel promises (a no-op unless a convolution chose
  // another layout for a map that is ambiguous, such as a 1x1 one)
  const auto layout = kernel_layout(x);
  return {out.contiguous(layout), h.contiguous(layout), g.contiguous(layout)};
}

// (grad_x, grad_aux, grad_w_in, grad_b_in, grad_w_aux, grad_b_aux, grad_w_gate, grad_b_gate); the
// auxiliary input's three are empty [0] tensors when there is none. The biases are not read (h and
// g hold them); they are in the schema so the second derivative can reach them.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
           at::Tensor>
backward(const at::Tensor& grad, const at::Tensor& x, const std::optional<at::Tensor>& aux,
         const at::Tensor& w_in, const std::optional<at::Tensor>& b_in,
         const std::optional<at::Tensor>& w_aux, const std::optional<at::Tensor>& b_aux,
         const at::Tensor& w_gate, const std::optional<at::Tensor>& b_gate, const at::Tensor& h,
         const at::Tensor& g, c10::string_view stream, double p, int64_t seed) {
  const char* op = "gated_resnet_block_backward";
  const auto pad = check_gated_resnet_block(x, aux, w_in, b_in, w_aux, b_aux, w_gate, b_gate,
                                            std::string(stream), p, op);
  check_gated_resnet_block_saved(grad, x, w_in, h, g, op);
  const at::Tensor grad_g = gated_activation_backward(grad, g);
  auto [grad_dropped, grad_w_gate, grad_b_gate] =
      conv_backward(grad_g, concat_elu(h, p, seed, pad), w_gate);
  const at::Tensor grad_h = concat_elu_backward(grad_dropped, h, p, seed, pad);
  // three distinct empty tensors without aux (outputs of an op must not alias one another)
  at::Tensor grad_aux = at::empty({0}, x.options()), grad_w_aux = at::empty({0}, x.options()),
             grad_b_aux = at::empty({0}, x.options());
  if (aux.has_value()) {
    at::Tensor grad_elu_aux;
    std::tie(grad_elu_aux, grad_w_aux, grad_b_aux) =
        conv_backward(grad_h, concat_elu(*aux, 0.0, 0, {}), *w_aux);
    grad_aux = concat_elu_backward(grad_elu_aux, *aux, 0.0, 0, {});
  }
  auto [grad_elu_x, grad_w_in, grad_b_in] =
      conv_backward(grad_h, concat_elu(x, 0.0, 0, pad), w_in);
  // out = gate + x: the residual passes the incoming gradient through unchanged
  at::Tensor grad_x = concat_elu_backward(grad_elu_x, x, 0.0, 0, pad).add_(grad);
  // the layouts the fake kernel promises: the inputs' own, the weights' contiguous
  if (aux.has_value()) {
    grad_aux = grad_aux.contiguous(kernel_layout(*aux));
    grad_w_aux = grad_w_aux.contiguous();
  }
  return {grad_x.contiguous(kernel_layout(x)),
          grad_aux,
          grad_w_in.contiguous(),
          grad_b_in,
          grad_w_aux,
          grad_b_aux,
          grad_w_gate.contiguous(),
          grad_b_gate};
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CPU, m) {
  m.impl("gated_resnet_block", &forward);
  m.impl("gated_resnet_block_backward", &backward);
}

TORCH_LIBRARY_IMPL(gen_ext, CUDA, m) {
  m.impl("gated_resnet_block", &forward);
  m.impl("gated_resnet_block_backward", &backward);
}

}  // namespace gen_ext
