// wavenet_layer_step on a GPU: one WaveNet layer at one time step from its ring-buffer cache, the
// fast sampler's inner op (gen_ext/reference/wavenet_step.py is the spec). The work is two small
// matrix products around the gated activation: cuBLAS GEMMs over the whole batch and gen_ext's
// gated_activation CUDA kernel, with the taps read from the cache in place. (The CPU kernel,
// csrc/cpu/wavenet_step_cpu.cpp, does each row in one task instead: at sampling's batch sizes a
// CPU GEMM call costs more than its arithmetic.)
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/mm.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "wavenet_step_checks.h"

namespace gen_ext {
namespace {

at::Tensor gated_activation(const at::Tensor& z) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("gen_ext::gated_activation", "")
          .typed<at::Tensor(const at::Tensor&, const std::optional<at::Tensor>&)>();
  return op.call(z, std::nullopt);
}

std::tuple<at::Tensor, at::Tensor> wavenet_layer_step(
    const at::Tensor& x, at::Tensor& cache, int64_t step, const at::Tensor& weight_taps,
    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& cond,
    const at::Tensor& out_weight, const std::optional<at::Tensor>& out_bias) {
  const int64_t dilation =
      check_wavenet_layer_step(x, cache, step, weight_taps, bias, cond, out_weight, out_bias);
  const int64_t K = weight_taps.size(0), R = x.size(1), L = cache.size(0);
  const auto w = weight_taps.contiguous();
  // the current input is the newest tap; each older tap reads its slot of the cache, if its
  // time has come (taps before the start are absent, so the cache's initial contents never count)
  at::Tensor z = bias.has_value() ? at::addmm(*bias, x, w[K - 1]) : at::mm(x, w[K - 1]);
  for (int64_t k = 0; k < K - 1; ++k) {
    const int64_t time = step - (K - 1 - k) * dilation;
    if (time >= 0) z.addmm_(cache[time % L], w[k]);
  }
  if (cond.has_value()) z.add_(*cond);
  const at::Tensor g = gated_activation(z);
  const at::Tensor out =
      out_bias.has_value() ? at::addmm(*out_bias, g, out_weight) : at::mm(g, out_weight);
  at::Tensor residual = out.narrow(1, 0, R).add(x);
  at::Tensor skip = out.narrow(1, R, out.size(1) - R).contiguous();
  // the slot of tap 0 (time step - L), read above, now takes the newest input
  if (L > 0) cache[step % L].copy_(x);
  return {residual, skip};
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CUDA, m) { m.impl("wavenet_layer_step", &wavenet_layer_step); }

}  // namespace gen_ext
