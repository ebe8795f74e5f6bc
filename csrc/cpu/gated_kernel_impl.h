#pragma once
// CPU kernels of the fused gated activation, compiled once per instruction set (see vec_ops.h).
// x is seen as [B, 2N] rows (N = C * spatial): a row's first N values are the a half, the next N
// the b half, so both halves of a position are contiguous runs and vectorize without gathers.
// The output and its gradient are [B, N]. Positions run in parallel in spans of whole vectors.

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#include <algorithm>

#include "gen_ext/gated_math.h"
#include "vec_ops.h"

namespace gen_ext {
namespace cpu {
namespace CPU_CAPABILITY {

// Positions per parallel task: an element costs a few nanoseconds, so a task of this size is
// ~20-50 us, well above the cost of waking a thread.
constexpr int64_t kGatedGrain = 16384;

// Calls span(b, j0, j1) for each row b of a [B, N] grid that positions [begin, end) touch, with
// [j0, j1) the part of the row inside them.
template <typename Fn>
void for_each_row_span(int64_t begin, int64_t end, int64_t N, const Fn& span) {
  for (int64_t b = begin / N; b * N < end; ++b) {
    span(b, std::max<int64_t>(begin - b * N, 0), std::min<int64_t>(end - b * N, N));
  }
}

// residual: [B, N] or nullptr.
template <typename T>
void gated_forward_typed(const T* x, const T* residual, T* out, int64_t B, int64_t N) {
  using Vec = gated::Element<VecOps<T>>;
  using Tail = gated::Element<TailOps<T>>;
  using V = at::vec::Vectorized<T>;
  constexpr int64_t W = V::size();
  at::parallel_for(0, B * N, kGatedGrain, [&](int64_t begin, int64_t end) {
    for_each_row_span(begin, end, N, [&](int64_t b, int64_t j0, int64_t j1) {
      const T* a = x + b * 2 * N;
      const T* g = a + N;
      const T* r = residual != nullptr ? residual + b * N : nullptr;
      T* o = out + b * N;
      int64_t j = j0;
      for (; j + W <= j1; j += W) {
        V v = Vec::forward(V::loadu(a + j), V::loadu(g + j));
        if (r != nullptr) v = v + V::loadu(r + j);
        v.store(o + j);
      }
      for (; j < j1; ++j) {
        const T v = Tail::forward(a[j], g[j]);
        o[j] = r != nullptr ? v + r[j] : v;
      }
    });
  });
}

// grad is read at grad[b * g_row + j * g_col]: (N, 1) for dense rows, (0, 0) for the broadcast
// scalar that the backward of a sum hands over (read in place rather than copied).
template <typename T>
void gated_backward_typed(const T* grad, int64_t g_row, int64_t g_col, const T* x, T* grad_x,
                          int64_t B, int64_t N) {
  using Vec = gated::Element<VecOps<T>>;
  using Tail = gated::Element<TailOps<T>>;
  using V = at::vec::Vectorized<T>;
  constexpr int64_t W = V::size();
  at::parallel_for(0, B * N, kGatedGrain, [&](int64_t begin, int64_t end) {
    for_each_row_span(begin, end, N, [&](int64_t b, int64_t j0, int64_t j1) {
      const T* a = x + b * 2 * N;
      const T* g = a + N;
      const T* gr = grad + b * g_row;
      T* ga = grad_x + b * 2 * N;
      T* gb = ga + N;
      int64_t j = j0;
      for (; j + W <= j1; j += W) {
        V va, vb;
        Vec::backward(g_col == 0 ? V(*gr) : V::loadu(gr + j), V::loadu(a + j), V::loadu(g + j),
                      va, vb);
        va.store(ga + j);
        vb.store(gb + j);
      }
      for (; j < j1; ++j) Tail::backward(gr[j * g_col], a[j], g[j], ga[j], gb[j]);
    });
  });
}

// x, grad_x: contiguous [B, 2N]; out, residual (undefined when absent): contiguous [B, N]; grad:
// [B, N], dense rows or fully broadcast (strides 0, 0). Non-empty; checks are the caller's.
void gated_forward(const at::Tensor& x, const at::Tensor& residual, at::Tensor& out) {
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gated_activation", [&] {
    gated_forward_typed<scalar_t>(
        x.const_data_ptr<scalar_t>(),
        residual.defined() ? residual.const_data_ptr<scalar_t>() : nullptr,
        out.mutable_data_ptr<scalar_t>(), out.size(0), out.size(1));
  });
}

void gated_backward(const at::Tensor& grad, const at::Tensor& x, at::Tensor& grad_x) {
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gated_activation_backward", [&] {
    gated_backward_typed<scalar_t>(grad.const_data_ptr<scalar_t>(), grad.stride(0),
                                   grad.stride(1), x.const_data_ptr<scalar_t>(),
                                   grad_x.mutable_data_ptr<scalar_t>(), grad.size(0),
                                   grad.size(1));
  });
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace gen_ext
