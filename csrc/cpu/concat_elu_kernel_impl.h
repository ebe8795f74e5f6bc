#pragma once
// CPU kernels of the fused concat-ELU with dropout, compiled once per instruction set (see
// vec_ops.h). Without a border x is seen as [B, N] rows (N = C * spatial) and the output as
// [B, 2N]: a row's first N values are elu(x), the next N elu(-x), so both halves are contiguous
// runs that vectorize; with one, each image row is such a run; channels last, each pixel's
// channels are one (the dropout stream then steps H * W between them). One routine per direction
// processes a run, for every layout.
// The dropout factors (concat_elu_math.h) of a vector are drawn lane by lane into a small buffer:
// splitmix64 is a few integer operations, far cheaper than the memory traffic around it.

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <type_traits>
#if defined(CPU_CAPABILITY_AVX2)
#include <immintrin.h>
#endif

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

#if defined(CPU_CAPABILITY_AVX2)
// AVX2 has no 64-bit multiply, so the compiler leaves splitmix64's loop scalar: the AVX2 build's
// concat-ELU with dropout measured 5x slower than the AVX-512 build's on the same Intel Xeon, most
// of it drawing. Four draws at once instead, each 64-bit product's low half from three 32x32->64
// multiplies: lo(a) * lo(b) + ((hi(a) * lo(b) + lo(a) * hi(b)) << 32).
inline __m256i mul64_low(__m256i a, uint64_t b) {
  const __m256i b_lo = _mm256_set1_epi64x(static_cast<int64_t>(b));
  const __m256i b_hi = _mm256_set1_epi64x(static_cast<int64_t>(b >> 32));
  const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), b_lo),
                                         _mm256_mul_epu32(a, b_hi));
  return _mm256_add_epi64(_mm256_mul_epu32(a, b_lo), _mm256_slli_epi64(cross, 32));
}

// The top 32 bits of splitmix64 (gaussian_math.h) of the four states z.
inline __m256i splitmix64_high4(__m256i z) {
  z = mul64_low(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), gaussian::kSplitmixMultiplier1);
  z = mul64_low(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), gaussian::kSplitmixMultiplier2);
  return _mm256_srli_epi64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 31)), 32);
}
#endif

// The factors of output elements first, first + stride, ..., first + (count - 1) * stride (the
// stream counts elements of the NCHW output: a channels-last run steps H * W between channels).
template <typename T>
void dropout_factors(const Dropout& d, int64_t first, int64_t stride, int64_t count, T* out) {
  const T scale = static_cast<T>(d.keep_scale);
  int64_t i = 0;
#if defined(CPU_CAPABILITY_AVX2)
  constexpr uint64_t golden = gaussian::kSplitmixIncrement;
  const uint64_t lane = static_cast<uint64_t>(stride) * golden;
  // states seed + (j + 1) * golden of the first four elements j, then 4 * stride * golden
  // further each time
  __m256i z = _mm256_add_epi64(
      _mm256_set1_epi64x(static_cast<int64_t>(d.seed + (static_cast<uint64_t>(first) + 1) * golden)),
      _mm256_setr_epi64x(0, static_cast<int64_t>(lane), static_cast<int64_t>(2 * lane),
                         static_cast<int64_t>(3 * lane)));
  const __m256i step = _mm256_set1_epi64x(static_cast<int64_t>(4 * lane));
  // both sides of the comparison lie below 2^33, so the signed one serves; the factors come from
  // masks, not branches (a branch per draw, taken at random, cost as much as the scalar hash)
  const __m256i threshold = _mm256_set1_epi64x(static_cast<int64_t>(d.threshold));
  for (; i + 4 <= count; i += 4) {
    const __m256i drop = _mm256_cmpgt_epi64(threshold, splitmix64_high4(z));
    if constexpr (std::is_same_v<T, float>) {
      // the low 32 bits of each 64-bit mask, gathered into four float lanes
      const __m128i drop32 = _mm256_castsi256_si128(
          _mm256_permutevar8x32_epi32(drop, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
      _mm_storeu_ps(out + i, _mm_andnot_ps(_mm_castsi128_ps(drop32), _mm_set1_ps(scale)));
    } else {
      _mm256_storeu_pd(out + i, _mm256_andnot_pd(_mm256_castsi256_pd(drop), _mm256_set1_pd(scale)));
    }
    z = _mm256_add_epi64(z, step);
  }
#endif
  for (; i < count; ++i) {
    out[i] = concat_elu::dropout_factor<T>(d.seed, static_cast<uint64_t>(first + i * stride),
                                           d.threshold, scale);
  }
}

// The n values of one run of input into its two output runs; pos_index, neg_index: the dropout
// stream positions of their first elements, `stride` apart along the run (1 in NCHW, H * W for a
// channels-last pixel). Whole vectors, then the tail one element at a time on the scalar policy
// the CUDA kernels use (so the CPU tests run that math too).
template <typename T>
void forward_row(const T* xr, T* pos, T* neg, int64_t n, int64_t pos_index, int64_t neg_index,
                 int64_t stride, const Dropout& d) {
  using Vec = concat_elu::Element<VecOps<T>>;
  using Tail = concat_elu::Element<TailOps<T>>;
  using V = at::vec::Vectorized<T>;
  constexpr int64_t W = V::size();
  T fp[W], fn[W];
  int64_t j = 0;
  for (; j + W <= n; j += W) {
    V p, q;
    Vec::forward(V::loadu(xr + j), p, q);
    if (d.on) {
      dropout_factors(d, pos_index + j * stride, stride, W, fp);
      dropout_factors(d, neg_index + j * stride, stride, W, fn);
      p = p * V::loadu(fp);
      q = q * V::loadu(fn);
    }
    p.store(pos + j);
    q.store(neg + j);
  }
  for (; j < n; ++j) {
    T p, q;
    Tail::forward(xr[j], p, q);
    if (d.on) {
      dropout_factors(d, pos_index + j * stride, stride, 1, fp);
      dropout_factors(d, neg_index + j * stride, stride, 1, fn);
      p *= fp[0];
      q *= fn[0];
    }
    pos[j] = p;
    neg[j] = q;
  }
}

template <typename T>
void backward_row(const T* gp, const T* gn, const T* xr, T* gx, int64_t n, int64_t pos_index,
                  int64_t neg_index, int64_t stride, const Dropout& d) {
  using Vec = concat_elu::Element<VecOps<T>>;
  using Tail = concat_elu::Element<TailOps<T>>;
  using V = at::vec::Vectorized<T>;
  constexpr int64_t W = V::size();
  T fp[W], fn[W];
  int64_t j = 0;
  for (; j + W <= n; j += W) {
    V p = V::loadu(gp + j), q = V::loadu(gn + j);
    if (d.on) {
      dropout_factors(d, pos_index + j * stride, stride, W, fp);
      dropout_factors(d, neg_index + j * stride, stride, W, fn);
      p = p * V::loadu(fp);
      q = q * V::loadu(fn);
    }
    Vec::backward(p, q, V::loadu(xr + j)).store(gx + j);
  }
  for (; j < n; ++j) {
    T p = gp[j], q = gn[j];
    if (d.on) {
      dropout_factors(d, pos_index + j * stride, stride, 1, fp);
      dropout_factors(d, neg_index + j * stride, stride, 1, fn);
      p *= fp[0];
      q *= fn[0];
    }
    gx[j] = Tail::backward(p, q, xr[j]);
  }
}

// ---- the dense layout: x [B, N] rows (N = C * spatial), out [B, 2N] ----
// Spans of each row, split over B * N elements, go through the run routines above.

template <typename T>
void concat_elu_forward_typed(const T* x, T* out, int64_t B, int64_t N, const Dropout& d) {
  at::parallel_for(0, B * N, kGatedGrain, [&](int64_t begin, int64_t end) {
    for_each_row_span(begin, end, N, [&](int64_t b, int64_t j0, int64_t j1) {
      const int64_t row = b * 2 * N;  // the output row's first element
      forward_row(x + b * N + j0, out + row + j0, out + row + N + j0, j1 - j0, row + j0,
                  row + N + j0, 1, d);
    });
  });
}

template <typename T>
void concat_elu_backward_typed(const T* grad, const T* x, T* grad_x, int64_t B, int64_t N,
                               const Dropout& d) {
  at::parallel_for(0, B * N, kGatedGrain, [&](int64_t begin, int64_t end) {
    for_each_row_span(begin, end, N, [&](int64_t b, int64_t j0, int64_t j1) {
      const int64_t row = b * 2 * N;
      backward_row(grad + row + j0, grad + row + N + j0, x + b * N + j0, grad_x + b * N + j0,
                   j1 - j0, row + j0, row + N + j0, 1, d);
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
inline Padding padding_or_none(at::IntArrayRef pad) {
  return pad.empty() ? Padding{0, 0, 0, 0} : padding_of(pad);
}

// Rows per parallel task: about kGatedGrain elements.
inline int64_t row_grain(int64_t W) {
  return std::max<int64_t>(1, kGatedGrain / std::max<int64_t>(W, 1));
}

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
                  pos_index + C * H * W, 1, d);
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
                   pos_index + C * H * W, 1, d);
    }
  });
}

// ---- channels last: x [B, H, W, C] in memory, out [B, Hp, Wp, 2C], zeros in the border ----
// Each pixel's C input values are one run; its output pixel holds elu(x) in its first C values
// and elu(-x) in the next C. Work is split over the input's image rows (b, h), each writing its
// output row with the border pixels beside it (and the border rows above or below for the first
// and last row). The dropout stream counts the NCHW output's elements, as in the other layouts,
// so the layout changes where values are stored, never which.

template <typename T>
void concat_elu_forward_channels_last(const T* x, T* out, int64_t B, int64_t C, int64_t H,
                                      int64_t W, const Padding& pad, const Dropout& d) {
  const int64_t Hp = pad.top + H + pad.bottom, Wp = pad.left + W + pad.right, HW = H * W;
  const int64_t out_row = Wp * 2 * C;  // one output image row, all channels
  at::parallel_for(0, B * H, row_grain(W * C), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t h = r % H, b = r / H;
      T* image = out + b * Hp * out_row;
      if (h == 0) std::fill(image, image + pad.top * out_row, T(0));
      if (h == H - 1) std::fill(image + (pad.top + H) * out_row, image + Hp * out_row, T(0));
      T* row = image + (pad.top + h) * out_row;
      std::fill(row, row + pad.left * 2 * C, T(0));
      std::fill(row + (pad.left + W) * 2 * C, row + out_row, T(0));
      for (int64_t w = 0; w < W; ++w) {
        T* pixel = row + (pad.left + w) * 2 * C;
        const int64_t pos_index = b * 2 * C * HW + h * W + w;  // channel 0's NCHW position
        forward_row(x + (r * W + w) * C, pixel, pixel + C, C, pos_index, pos_index + C * HW, HW,
                    d);
      }
    }
  });
}

template <typename T>
void concat_elu_backward_channels_last(const T* grad, const T* x, T* grad_x, int64_t B, int64_t C,
                                       int64_t H, int64_t W, const Padding& pad,
                                       const Dropout& d) {
  const int64_t Hp = pad.top + H + pad.bottom, Wp = pad.left + W + pad.right, HW = H * W;
  at::parallel_for(0, B * H, row_grain(W * C), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t h = r % H, b = r / H;
      for (int64_t w = 0; w < W; ++w) {
        const T* gp = grad + ((b * Hp + pad.top + h) * Wp + pad.left + w) * 2 * C;
        const int64_t pos_index = b * 2 * C * HW + h * W + w;
        const int64_t i = (r * W + w) * C;
        backward_row(gp, gp + C, x + i, grad_x + i, C, pos_index, pos_index + C * HW, HW, d);
      }
    }
  });
}

inline Dropout dropout_of(double p, int64_t seed) {
  return {p > 0, static_cast<uint64_t>(seed), concat_elu::dropout_threshold(p),
          concat_elu::dropout_keep_scale(p)};
}

// x, grad_x: contiguous, seen as [B, N]; out, grad: contiguous, [B, 2N] (pad empty) or
// [B, 2C, Hp, Wp] (pad given; x then [B, C, H, W]). channels_last: x, grad_x, out and grad are
// 4-D and channels-last contiguous instead (pad empty or given). Non-empty; checks are the
// caller's.
void concat_elu_forward(const at::Tensor& x, double p, int64_t seed, at::IntArrayRef pad,
                        bool channels_last, at::Tensor& out) {
  const Dropout d = dropout_of(p, seed);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "concat_elu", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    if (channels_last) {
      concat_elu_forward_channels_last<scalar_t>(xp, op, x.size(0), x.size(1), x.size(2),
                                                 x.size(3), padding_or_none(pad), d);
    } else if (pad.empty()) {
      concat_elu_forward_typed<scalar_t>(xp, op, x.size(0), x.numel() / x.size(0), d);
    } else {
      concat_elu_forward_padded<scalar_t>(xp, op, x.size(0), x.size(1), x.size(2), x.size(3),
                                          padding_of(pad), d);
    }
  });
}

void concat_elu_backward(const at::Tensor& grad, const at::Tensor& x, double p, int64_t seed,
                         at::IntArrayRef pad, bool channels_last, at::Tensor& grad_x) {
  const Dropout d = dropout_of(p, seed);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "concat_elu_backward", [&] {
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* gx = grad_x.mutable_data_ptr<scalar_t>();
    if (channels_last) {
      concat_elu_backward_channels_last<scalar_t>(gp, xp, gx, x.size(0), x.size(1), x.size(2),
                                                  x.size(3), padding_or_none(pad), d);
    } else if (pad.empty()) {
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
