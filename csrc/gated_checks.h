#pragma once
// Argument checks of the gated activation ops, shared by the CPU and CUDA kernels.
// gen_ext/ops/gated.py checks the same things with the same messages for the fake kernels.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <utility>
#include <vector>

namespace gen_ext {

inline void check_gated_x(const at::Tensor& x, const char* op) {
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
              ": x must be float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(x.dim() >= 2, op, ": x must have at least 2 dimensions [B, 2C, *spatial], got ",
              x.dim(), "-D");
  TORCH_CHECK(x.size(1) % 2 == 0, op, ": x must have an even number of channels (dim 1), got ",
              x.size(1));
}

// x's shape with the channels halved: [B, C, *spatial].
inline std::vector<int64_t> gated_output_shape(const at::Tensor& x) {
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape[1] /= 2;
  return shape;
}

// The rows the kernels see the output as, [rows, N], x being [rows, 2N] with each row's first
// N values the a half and the next N the b half: one row per image in NCHW (N = C * spatial),
// one per pixel in channels last (N = C). out: the output, or a tensor of its shape.
inline std::pair<int64_t, int64_t> gated_rows(const at::Tensor& out, at::MemoryFormat layout) {
  const int64_t n = out.numel();
  const int64_t N = layout == at::MemoryFormat::ChannelsLast ? out.size(1) : n / out.size(0);
  return {n / N, N};
}

// A dense tensor in that layout, seen as its rows (a view: its memory is already in row order).
inline at::Tensor as_rows(const at::Tensor& t, int64_t rows, int64_t N) {
  return t.as_strided({rows, N}, {N, 1});
}

// A tensor that must look like the output (the residual, the incoming gradient).
inline void check_gated_like_output(const at::Tensor& t, const at::Tensor& x, const char* op,
                                    const char* name) {
  const auto want = gated_output_shape(x);
  TORCH_CHECK(t.sizes() == at::IntArrayRef(want), op, ": ", name, " must have the output's shape ",
              at::IntArrayRef(want), ", got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == x.scalar_type() && t.device() == x.device(), op, ": ", name,
              " must match x in dtype and device (", x.scalar_type(), " on ", x.device(),
              "), got ", t.scalar_type(), " on ", t.device());
}

}  // namespace gen_ext
