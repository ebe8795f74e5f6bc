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

// ---- the padded layout: out [B, 2C, top + H + bottom, left + W + right], zeros in the border ----
// Work is split over the input's rows (b, c, h): each writes its elu(x) row into output channel
// c and its elu(-x) row into channel C + c, and the border columns beside them; the first and
// last row of a plane also write the border rows above and below. The dropout stream counts the
// unpadded output's elements, so a padded output holds the same values as an unpadded one.

struct Padding {
  int64_t left, right, top, bottom;
};

inline Padding padding_of(at::IntArrayRef pad) { return {pad[0], pad[1], pad[2], pad[3]}; }

// The n values of one input row into its two output rows; pos_index, neg_index: the dropout
// stream positions of their first elements. The last vector is a partial one (masked load and
// store), so every element goes through the same vector math wherever a row starts or ends.
template <typename T>
void forward_row(const T* xr, T* pos, T* neg, int64_t n, int64_t pos_index, int64_t neg_index,
                 const Dropout& d) {
  using Vec = concat_elu::Element<VecOps<T>>;
  using V = at::vec::Vectorized<T>;
  constexpr int64_t W = V::size();
  T fp[W], fn[W];
  for (int64_t j = 0; j < n; j += W) {
    const int64_t count = std::min<int64_t>(W, n - j);
    V p, q;
    Vec::forward(V::loadu(xr + j, count), p, q);
    if (d.on) {
      dropout_factors(d, pos_index + j, count, fp);
      dropout_factors(d, neg_index + j, count, fn);
      p = p * V::loadu(fp, count);
      q = q * V::loadu(fn, count);
    }
    p.store(pos + j, count);
    q.store(neg + j, count);
  }
}

template <typename T>
void backward_row(const T* gp, const T* gn, const T* xr, T* gx, int64_t n, int64_t pos_index,
                  int64_t neg_index, const Dropout& d) {
  using Vec = concat_elu::Element<VecOps<T>>;
  using V = at::vec::Vectorized<T>;
  constexpr int64_t W = V::size();
  T fp[W], fn[W];
  for (int64_t j = 0; j < n; j += W) {
    const int64_t count = std::min<int64_t>(W, n - j);
    V p = V::loadu(gp + j, count), q = V::loadu(gn + j, count);
    if (d.on) {
      dropout_factors(d, pos_index + j, count, fp);
      dropout_factors(d, neg_index + j, count, fn);
      p = p * V::loadu(fp, count);
      q = q * V::loadu(fn, count);
    }
    Vec::backward(p, q, V::loadu(xr + j, count)).store(gx + j, count);
  }
}

// Rows per parallel task: about kGatedGrain elements.
inline int64_t row_grain(int64_t W) { return std::max<int64_t>(1, kGatedGrain / std::max<int64_t>(W, 1)); }

template <typename T>
void concat_elu_forward_padded(const T* x, T* out, int64_t B, int64_t C, int64_t H, int64_t W,
                               const Padding& pad, const Dropout& d) {
  const int64_t Hp = pad.top + H + pad.bottom, Wp = pad.left + W + pad.right;
  at::parallel_for(0, B * C * H, row_grain(W), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t h = r % H, c = (r / H) % C, b = r / (H * C);
      T* pos_plane = out + (b * 2 * C + c) * Hp * Wp;
      T* neg_plane = pos_plane + C * Hp * Wp;
      for (T* plane : {pos_plane, neg_plane}) {
        if (h == 0) std::fill(plane, plane + pad.top * Wp, T(0));
        if (h == H - 1) std::fill(plane + (pad.top + H) * Wp, plane + Hp * Wp, T(0));
        T* row = plane + (pad.top + h) * Wp;
        std::fill(row, row + pad.left, T(0));
        std::fill(row + pad.left + W, row + Wp, T(0));
      }
      const int64_t pos_index = ((b * 2 * C + c) * H + h) * W;
      forward_row(x + r * W, pos_plane + (pad.top + h) * Wp + pad.left,
                  neg_plane + (pad.top + h) * Wp + pad.left, W, pos_index,
                  pos_index + C * H * W, d);
    }
  });
}

template <typename T>
void concat_elu_backward_padded(const T* grad, const T* x, T* grad_x, int64_t B, int64_t C,
                                int64_t H, int64_t W, const Padding& pad, const Dropout& d) {
  const int64_t Hp = pad.top + H + pad.bottom, Wp = pad.left + W + pad.right;
  at::parallel_for(0, B * C * H, row_grain(W), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t h = r % H, c = (r / H) % C, b = r / (H * C);
      const T* gp = grad + ((b * 2 * C + c) * Hp + pad.top + h) * Wp + pad.left;
      const int64_t pos_index = ((b * 2 * C + c) * H + h) * W;
      backward_row(gp, gp + C * Hp * Wp, x + r * W, grad_x + r * W, W, pos_index,
                   pos_index + C * H * W, d);
    }
  });
}

inline Dropout dropout_of(double p, int64_t seed) {
  return {p > 0, static_cast<uint64_t>(seed), concat_elu::dropout_threshold(p),
          concat_elu::dropout_keep_scale(p)};
}

// x, grad_x: contiguous, seen as [B, N]; out, grad: contiguous, [B, 2N] (pad empty) or
// [B, 2C, Hp, Wp] (pad given; x then [B, C, H, W]). Non-empty; checks are the caller's.
void concat_elu_forward(const at::Tensor& x, double p, int64_t seed, at::IntArrayRef pad,
                        at::Tensor& out) {
  const Dropout d = dropout_of(p, seed);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "concat_elu", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    if (pad.empty()) {
      concat_elu_forward_typed<scalar_t>(xp, op, x.size(0), x.numel() / x.size(0), d);
    } else {
      concat_elu_forward_padded<scalar_t>(xp, op, x.size(0), x.size(1), x.size(2), x.size(3),
                                          padding_of(pad), d);
    }
  });
}

void concat_elu_backward(const at::Tensor& grad, const at::Tensor& x, double p, int64_t seed,
                         at::IntArrayRef pad, at::Tensor& grad_x) {
  const Dropout d = dropout_of(p, seed);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "concat_elu_backward", [&] {
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* gx = grad_x.mutable_data_ptr<scalar_t>();
    if (pad.empty()) {
      concat_elu_backward_typed<scalar_t>(gp, xp, gx, x.size(0), x.numel() / x.size(0), d);
    } else {
      concat_elu_backward_padded<scalar_t>(gp, xp, gx, x.size(0), x.size(1), x.size(2),
                                           x.size(3), padding_of(pad), d);
    }
  });
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace gen_ext
