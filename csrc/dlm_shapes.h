#pragma once
// Views of the public [B, *, *spatial] tensors as the [B, *, S] blocks the kernels walk.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <tuple>

namespace gen_ext {

inline int64_t spatial_numel(const at::Tensor& t) {
  int64_t s = 1;
  for (int64_t d = 2; d < t.dim(); ++d) s *= t.size(d);
  return s;
}

// Contiguous [B, N, S] view (a copy only when t is not contiguous: autograd hands the backward
// expanded, stride-0 gradients, and raw-pointer kernels need dense rows).
inline at::Tensor as_rows(const at::Tensor& t) {
  return t.contiguous().view({t.size(0), t.size(1), spatial_numel(t)});
}

// [B, *spatial] from a [B, C, *spatial] shape.
inline std::vector<int64_t> position_shape(at::IntArrayRef data_shape) {
  std::vector<int64_t> shape{data_shape[0]};
  for (size_t d = 2; d < data_shape.size(); ++d) shape.push_back(data_shape[d]);
  return shape;
}

// [B, N, *spatial] from a [B, C, *spatial] shape.
inline std::vector<int64_t> with_channels(at::IntArrayRef data_shape, int64_t n) {
  std::vector<int64_t> shape(data_shape.begin(), data_shape.end());
  shape[1] = n;
  return shape;
}

// The with-grad op's results, unfilled: the NLL [B, *spatial], the gradient of x (an empty [0]
// unless x_grad) and the gradient of params, contiguous, on x's device.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> nll_with_grad_results(
    const at::Tensor& x, const at::Tensor& params, bool x_grad) {
  return {at::empty(position_shape(x.sizes()), x.options()),
          at::empty(x_grad ? x.sizes() : at::IntArrayRef{0}, x.options()),
          at::empty(params.sizes(), params.options())};
}

}  // namespace gen_ext
