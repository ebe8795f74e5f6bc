#pragma once
// CPU kernels of the fused concat-ELU with dropout, compiled once per instruction set (see
// vec_ops.h). x is seen as [B, N] rows (N = C * spatial) and the output as [B, 2N]: a row's first
// N values are elu(x), the next N elu(-x), so both halves are contiguous runs that vectorize.
// The dropout factors (concat_elu_math.h) of a vector are drawn lane by lane into a small buffer:
// splitmix64 is a few integer operations, far cheaper than the memory traffic around it.

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#include <algorithm>

#include "gen_ext/concat_elu_math.h"
#include "gated_kernel_impl.h"  // for_each_row_span
#include "vec_ops.h"

namespace gen_ext {
namespace cpu {
namespace CPU_CAPABILITY {

struct Dropout {
  bool on;
  uint64_t seed, threshold;
  double keep_scale;
};

// The factors of output elements first, first + 1, ..., first + count - 1.
template <typename T>
void dropout_factors(const Dropout& d, int64_t first, int64_t count, T* out) {
  const T scale = static_cast<T>(d.keep_scale);
  for (int64_t i = 0; i < count; ++i) {
    out[i] = concat_elu::dropout_factor<T>(d.seed, static_cast<uint64_t>(first + i), d.threshold,
                                           scale);
  }
}

// The factors of positions j, ..., j + count - 1 of a row whose output starts at `row`: of their
// elu(x) values into pos, of their elu(-x) values (N further on) into neg.
template <typename T>
void half_factors(const Dropout& d, int64_t row, int64_t N, int64_t j, int64_t count, T* pos,
                  T* neg) {
  dropout_factors(d, row + j, count, pos);
  dropout_factors(d, row + N + j, count, neg);
}

template <typename T>
void concat_elu_forward_typed(const T* x, T* out, int64_t B, int64_t N, const Dropout& d) {
  using Vec = concat_elu::Element<VecOps<T>>;
  using Tail = concat_elu::Element<TailOps<T>>;
  using V = at::vec::Vectorized<T>;
  constexpr int64_t W = V::size();
  at::parallel_for(0, B * N, kGatedGrain, [&](int64_t begin, int64_t end) {
    T fp[W], fn[W];
    for_each_row_span(begin, end, N, [&](int64_t b, int64_t j0, int64_t j1) {
      const T* xr = x + b * N;
      T* pos = out + b * 2 * N;
      T* neg = pos + N;
      const int64_t row = b * 2 * N;
      int64_t j = j0;
      for (; j + W <= j1; j += W) {
        V p, q;
        Vec::forward(V::loadu(xr + j), p, q);
        if (d.on) {
          half_factors(d, row, N, j, W, fp, fn);
          p = p * V::loadu(fp);
          q = q * V::loadu(fn);
        }
        p.store(pos + j);
        q.store(neg + j);
      }
      for (; j < j1; ++j) {
        T p, q;
        Tail::forward(xr[j], p, q);
        if (d.on) {
          half_factors(d, row, N, j, 1, fp, fn);
          p *= fp[0];
          q *= fn[0];
        }
        pos[j] = p;
        neg[j] = q;
      }
    });
  });
}

template <typename T>
void concat_elu_backward_typed(const T* grad, const T* x, T* grad_x, int64_t B, int64_t N,
                               const Dropout& d) {
  using Vec = concat_elu::Element<VecOps<T>>;
  using Tail = concat_elu::Element<TailOps<T>>;
  using V = at::vec::Vectorized<T>;
  constexpr int64_t W = V::size();
  at::parallel_for(0, B * N, kGatedGrain, [&](int64_t begin, int64_t end) {
    T fp[W], fn[W];
    for_each_row_span(begin, end, N, [&](int64_t b, int64_t j0, int64_t j1) {
      const T* xr = x + b * N;
      const T* gp = grad + b * 2 * N;
      const T* gn = gp + N;
      T* gx = grad_x + b * N;
      const int64_t row = b * 2 * N;
      int64_t j = j0;
      for (; j + W <= j1; j += W) {
        V p = V::loadu(gp + j), q = V::loadu(gn + j);
        if (d.on) {
          half_factors(d, row, N, j, W, fp, fn);
          p = p * V::loadu(fp);
          q = q * V::loadu(fn);
        }
        Vec::backward(p, q, V::loadu(xr + j)).store(gx + j);
      }
      for (; j < j1; ++j) {
        T p = gp[j], q = gn[j];
        if (d.on) {
          half_factors(d, row, N, j, 1, fp, fn);
          p *= fp[0];
          q *= fn[0];
        }
        gx[j] = Tail::backward(p, q, xr[j]);
      }
    });
  });
}

// x, grad_x: contiguous [B, N]; out, grad: contiguous [B, 2N]. Non-empty; checks are the
// caller's.
void concat_elu_forward(const at::Tensor& x, double p, int64_t seed, at::Tensor& out) {
  const Dropout d{p > 0, static_cast<uint64_t>(seed), concat_elu::dropout_threshold(p),
                   concat_elu::dropout_keep_scale(p)};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "concat_elu", [&] {
    concat_elu_forward_typed<scalar_t>(x.const_data_ptr<scalar_t>(),
                                       out.mutable_data_ptr<scalar_t>(), x.size(0), x.size(1), d);
  });
}

void concat_elu_backward(const at::Tensor& grad, const at::Tensor& x, double p, int64_t seed,
                         at::Tensor& grad_x) {
  const Dropout d{p > 0, static_cast<uint64_t>(seed), concat_elu::dropout_threshold(p),
                   concat_elu::dropout_keep_scale(p)};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "concat_elu_backward", [&] {
    concat_elu_backward_typed<scalar_t>(grad.const_data_ptr<scalar_t>(),
                                        x.const_data_ptr<scalar_t>(),
                                        grad_x.mutable_data_ptr<scalar_t>(), x.size(0), x.size(1),
                                        d);
  });
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace gen_ext
