// CPU entry point of wavenet_layer_step: checks, layouts, dispatch to the instruction-set build
// (wavenet_step_kernel_impl.h).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "../wavenet_step_checks.h"
#include "kernels.h"

namespace gen_ext {
namespace cpu {
namespace {

at::Tensor dense(const std::optional<at::Tensor>& t) {
  return t.has_value() ? t->contiguous() : at::Tensor();
}

std::tuple<at::Tensor, at::Tensor> wavenet_layer_step(
    const at::Tensor& x, at::Tensor& cache, int64_t step, const at::Tensor& weight_taps,
    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& cond,
    const at::Tensor& out_weight, const std::optional<at::Tensor>& out_bias) {
  const int64_t dilation =
      check_wavenet_layer_step(x, cache, step, weight_taps, bias, cond, out_weight, out_bias);
  const int64_t B = x.size(0), R = x.size(1);
  auto residual = at::empty({B, R}, x.options());
  auto skip = at::empty({B, out_weight.size(1) - R}, x.options());
  if (B == 0) return {residual, skip};
  // the cache is updated in place: a strided one is worked on densely and copied back
  at::Tensor c = cache.is_contiguous() ? cache : cache.contiguous();
  GEN_EXT_DISPATCH_ISA(wavenet_step(x.contiguous(), c, step, dilation, weight_taps.contiguous(),
                                    dense(bias), dense(cond), out_weight.contiguous(),
                                    dense(out_bias), residual, skip));
  if (!c.is_same(cache)) cache.copy_(c);
  return {residual, skip};
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CPU, m) { m.impl("wavenet_layer_step", &wavenet_layer_step); }

}  // namespace cpu
}  // namespace gen_ext
