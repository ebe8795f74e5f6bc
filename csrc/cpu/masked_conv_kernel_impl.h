#pragma once
// CPU kernels of the masked convolution, compiled once per instruction set (see vec_ops.h): a
// register-blocked implicit GEMM over the kept taps (masked_conv_plan.h). One microkernel serves
// the forward, the input gradient and the weight gradient; only the strides it walks differ. The
// shifted convolutions run the same kernels over plans of every tap (shifted_conv_plan.h).

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <vector>

#include "masked_conv_plan.h"

namespace gen_ext {
namespace cpu {
namespace CPU_CAPABILITY {
namespace masked_conv {

// One run of k over which C += A(r, k) * B(k, j): A(r, k) = a[r * a_rs + k * a_ks] and
// B(k, j) = b[k * b_ks + j].
template <typename T>
struct Segment {
  const T* a;
  const T* b;
  int64_t k;
};

template <typename T>
struct Tile {
  const Segment<T>* segments;
  int64_t count;
  int64_t a_rs, a_ks, b_ks;
  T* c;                  // the MR x (NV vectors) block of the output, rows c_rs apart
  int64_t c_rs;
  const T* init;         // row added to every C row at the start (the bias), or nullptr
  bool accumulate;       // start from C's contents (else from init or zero)
  int64_t last_lanes;    // lanes of the last vector that are in the matrix (a full vector: all)
};

// The microkernel: MR rows by NV vectors of accumulators live in registers for the whole run of
// segments. TAIL: the last vector is partial (last_lanes), loaded and stored by count.
template <typename T, int MR, int NV, bool TAIL>
void tile_kernel(const Tile<T>& t) {
  using V = at::vec::Vectorized<T>;
  constexpr int64_t L = V::size();
  auto load = [&](const T* p, int j) {
    return (TAIL && j == NV - 1) ? V::loadu(p, t.last_lanes) : V::loadu(p);
  };
  V acc[MR][NV];
  for (int r = 0; r < MR; ++r) {
    for (int j = 0; j < NV; ++j) {
      acc[r][j] = t.accumulate ? load(t.c + r * t.c_rs + j * L, j)
                               : (t.init != nullptr ? load(t.init + j * L, j) : V(T(0)));
    }
  }
  for (int64_t s = 0; s < t.count; ++s) {
    const T* a = t.segments[s].a;
    const T* b = t.segments[s].b;
    for (int64_t k = t.segments[s].k; k > 0; --k, a += t.a_ks, b += t.b_ks) {
      V bv[NV];
      for (int j = 0; j < NV; ++j) bv[j] = load(b + j * L, j);
      for (int r = 0; r < MR; ++r) {
        const V av(a[r * t.a_rs]);
        for (int j = 0; j < NV; ++j) acc[r][j] = at::vec::fmadd(av, bv[j], acc[r][j]);
      }
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int j = 0; j < NV; ++j) {
      if (TAIL && j == NV - 1) {
        acc[r][j].store(t.c + r * t.c_rs + j * L, t.last_lanes);
      } else {
        acc[r][j].store(t.c + r * t.c_rs + j * L);
      }
    }
  }
}

// Rows per tile, and vectors per tile: as many accumulators as the registers hold (32 vector
// registers with AVX-512, 16 otherwise) with room for the B row and the broadcast A value.
constexpr int kRows = 6;
template <typename T>
constexpr int vectors_per_tile() {
  return at::vec::Vectorized<T>::size() * sizeof(T) == 64 ? 4 : 2;
}

template <typename T, int MR>
void run_tile_rows(int nv, bool tail, const Tile<T>& t) {
  constexpr int NV = vectors_per_tile<T>();
  static_assert(NV == 2 || NV == 4, "tile widths are 2 or 4 vectors");
  switch (nv) {
    case 1: return tail ? tile_kernel<T, MR, 1, true>(t) : tile_kernel<T, MR, 1, false>(t);
    case 2: return tail ? tile_kernel<T, MR, 2, true>(t) : tile_kernel<T, MR, 2, false>(t);
  }
  if constexpr (NV == 4) {
    switch (nv) {
      case 3: return tail ? tile_kernel<T, MR, 3, true>(t) : tile_kernel<T, MR, 3, false>(t);
      case 4: return tail ? tile_kernel<T, MR, 4, true>(t) : tile_kernel<T, MR, 4, false>(t);
    }
  }
}

template <typename T>
void run_tile(int64_t rows, int nv, bool tail, const Tile<T>& t) {
  switch (rows) {
    case 1: return run_tile_rows<T, 1>(nv, tail, t);
    case 2: return run_tile_rows<T, 2>(nv, tail, t);
    case 3: return run_tile_rows<T, 3>(nv, tail, t);
    case 4: return run_tile_rows<T, 4>(nv, tail, t);
    case 5: return run_tile_rows<T, 5>(nv, tail, t);
    default: return run_tile_rows<T, kRows>(nv, tail, t);
  }
}

// Calls fn(n0, nv, tail, last_lanes) for the column tiles of [begin, end).
// Multiply-adds a parallel task should have at least: below that, starting threads costs more
// than it saves (and on a busy machine a thread that is not scheduled stalls the whole region).
constexpr int64_t kMinMultiplyAddsPerTask = 1 << 19;

// Multiply-adds of one output row of the plan, for every group.
inline int64_t multiply_adds_per_row(const TapPlan& plan, int64_t W) {
  int64_t total = 0;
  for (size_t g = 0; g < plan.group_begin.size(); ++g) {
    for (const KRange& r : plan.k_range[g]) {
      total += std::max<int64_t>(0, r.end - r.begin) * (plan.group_end[g] - plan.group_begin[g]);
    }
  }
  return std::max<int64_t>(1, total * W);
}

template <typename T, typename Fn>
void for_each_column_tile(int64_t begin, int64_t end, const Fn& fn) {
  constexpr int64_t L = at::vec::Vectorized<T>::size();
  constexpr int64_t width = vectors_per_tile<T>() * L;
  for (int64_t n0 = begin; n0 < end; n0 += width) {
    const int64_t cols = std::min(width, end - n0);
    const int64_t nv = (cols + L - 1) / L;
    const int64_t last = cols - (nv - 1) * L;
    fn(n0, static_cast<int>(nv), last != L, last);
  }
}

// Calls fn(begin, size) for [0, total) split into the fewest pieces of at most `most`, evenly:
// 32 in pieces of at most 6 as 5,5,5,5,6,6, not 6,6,6,6,6,2, whose last tile would load as many
// B vectors as a full one for a third of the work.
template <typename Fn>
void for_each_even_piece(int64_t total, int64_t most, const Fn& fn) {
  const int64_t pieces = (total + most - 1) / most;
  for (int64_t i = 0, begin = 0, size = 0; i < pieces; ++i, begin += size) {
    size = (total - begin) / (pieces - i);
    fn(begin, size);
  }
}

// Pixels of a row gathered for one column tile before their transpose into dst: long enough
// runs per channel plane (a 32-pixel row is one piece), and a per-thread buffer whose size does
// not grow with the image's width.
constexpr int64_t kMaxPiecePixels = 256;

// dst[b, :, y, x] = (bias) + the plan's sum over taps, for src [B, K, Hs, Ws] (padded at the
// sides), packed [T, K, N] and dst [B, N, H, W], all contiguous. A tile is MR pixels of a row by
// a few vectors of n: its A values are the source's rows (one channel plane per k); a tap whose
// source row is outside the image adds nothing and is left out. The tiles of a piece of a pixel
// row (the whole row, up to kMaxPiecePixels) are gathered for one column tile before that block
// is transposed into dst's channel planes: each plane then gets one contiguous run per piece
// instead of a short piece per tile, and with planes 4 KiB apart (32x32 images) short pieces of
// many planes thrash one L1 set. Pixel rows run in parallel.
//
// A tile's taps are shared by its pixels, so a tile at the left or right edge multiplies the
// zero columns of the padded source by the weights. That is exact for finite weights (0 * w = 0)
// but NaN for a non-finite one, where the reference (which skips taps outside the image) has a
// finite value. So with exact_edges the edge pixels (those one of whose taps reads a padding
// column) run one pixel per tile with the outside taps left out; interior pixels are unchanged.
template <typename T>
void gemm_rows(const at::Tensor& src, const at::Tensor& packed, const TapPlan& plan,
               const at::Tensor& bias, bool exact_edges, at::Tensor& dst) {
  constexpr int64_t width = vectors_per_tile<T>() * at::vec::Vectorized<T>::size();
  const int64_t B = dst.size(0), N = dst.size(1), H = dst.size(2), W = dst.size(3);
  const int64_t K = src.size(1), Hs = src.size(2), Ws = src.size(3);
  const int64_t taps = static_cast<int64_t>(plan.ry.size());
  const T* s = src.data_ptr<T>();
  const T* w = packed.data_ptr<T>();
  const T* bias_ptr = bias.defined() ? bias.data_ptr<T>() : nullptr;
  T* d = dst.data_ptr<T>();
  const int64_t grain = std::max<int64_t>(1, kMinMultiplyAddsPerTask / multiply_adds_per_row(plan, W));
  // image column x + rx[t] - pad of tap t at pixel x; edge pixels: [0, left) and [right, W)
  const int64_t pad = (Ws - W) / 2;
  int64_t left = 0, right = W;
  for (int64_t t = 0; exact_edges && t < taps; ++t) {
    left = std::max(left, std::min(W, pad - plan.rx[t]));
    right = std::min(right, std::max<int64_t>(0, W + pad - plan.rx[t]));
  }
  right = std::max(left, right);
  at::parallel_for(0, B * H, grain, [&](int64_t begin, int64_t end) {
    std::vector<Segment<T>> segments(taps);
    // one piece of a pixel row by one column tile, pixels `width` apart
    std::vector<T> block(std::min(W, kMaxPiecePixels) * width);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / H, y = row % H;
      for_each_even_piece(W, kMaxPiecePixels, [&](int64_t p0, int64_t pixels) {
        for (size_t g = 0; g < plan.group_begin.size(); ++g) {
          const auto& ranges = plan.k_range[g];
          auto column_tile = [&](int64_t n0, int nv, bool tail, int64_t last) {
            // the tile of `rows` pixels from p0 + x0; an edge pixel's tile (rows 1) leaves out
            // the taps whose column lies outside the image
            auto run = [&](int64_t x0, int64_t rows) {
              const int64_t x = p0 + x0;
              const bool edge = x < left || x >= right;
              int64_t count = 0;
              for (int64_t t = 0; t < taps; ++t) {
                const KRange r = ranges[t];
                const int64_t sy = y + plan.ry[t], sx = x + plan.rx[t] - pad;
                if (r.end <= r.begin || sy < 0 || sy >= Hs) continue;
                if (edge && (sx < 0 || sx >= W)) continue;
                segments[count++] = {s + ((b * K + r.begin) * Hs + sy) * Ws + x + plan.rx[t],
                                     w + (t * K + r.begin) * N + n0, r.end - r.begin};
              }
              const Tile<T> tile{segments.data(), count, 1, Hs * Ws, N, block.data() + x0 * width,
                                 width, bias_ptr != nullptr ? bias_ptr + n0 : nullptr, false,
                                 last};
              run_tile<T>(rows, nv, tail, tile);
            };
            // the piece's pixels [p0, p0 + pixels): left edge, interior, right edge
            const int64_t end = p0 + pixels;
            const int64_t a = std::clamp(left, p0, end), z = std::clamp(right, a, end);
            for (int64_t x = p0; x < a; ++x) run(x - p0, 1);
            for_each_even_piece(z - a, kRows, [&](int64_t x0, int64_t rows) {
              run(a - p0 + x0, rows);
            });
            for (int64_t x = z; x < end; ++x) run(x - p0, 1);
            const int64_t cols = (nv - 1) * at::vec::Vectorized<T>::size() + last;
            at::vec::transpose_mxn<T>(block.data(), width, d + ((b * N + n0) * H + y) * W + p0,
                                      H * W, static_cast<int>(pixels), static_cast<int>(cols));
          };
          for_each_column_tile<T>(plan.group_begin[g], plan.group_end[g], column_tile);
        }
      });
    }
  });
}

// grad_packed[t, k, n] += sum over b, y, x of src[b, k, y + ry[t], x + rx[t]] * grad[b, y, x, n]
// for the (tap, k, n) the plan keeps (the rest is left as it is), with src [B, K, Hs, Ws] padded
// at the sides (rows and columns outside the image are left out) and grad [B, H, W, N]
// channels-last, both contiguous. Each thread sums its own
// share of the pixel rows into a buffer of its own, in blocks of rows that stay in cache; the
// buffers are added at the end in a fixed order.
template <typename T>
void weight_grad(const at::Tensor& src, const at::Tensor& grad, const TapPlan& plan,
                 at::Tensor& grad_packed) {
  const int64_t B = grad.size(0), H = grad.size(1), W = grad.size(2), N = grad.size(3);
  const int64_t K = src.size(1), Hs = src.size(2), Ws = src.size(3);
  const int64_t taps = static_cast<int64_t>(plan.ry.size());
  const int64_t pixel_rows = B * H;
  const int64_t work = pixel_rows * multiply_adds_per_row(plan, W);
  const int64_t shares = std::max<int64_t>(
      1, std::min({static_cast<int64_t>(at::get_num_threads()), pixel_rows,
                   work / kMinMultiplyAddsPerTask}));
  const int64_t per_share = taps * K * N;
  std::vector<T> partial(static_cast<size_t>(shares - 1) * per_share, T(0));
  const T* s = src.data_ptr<T>();
  const T* g = grad.data_ptr<T>();
  T* out = grad_packed.data_ptr<T>();
  // tap t reads the image (not its zero padding) at the pixels [x_begin[t], x_end[t]) of a row:
  // the others are left out, as the reference leaves them, so a non-finite incoming gradient
  // there does not meet the padding's zeros (0 * inf is NaN)
  const int64_t pad = (Ws - W) / 2;
  std::vector<int64_t> x_begin(taps), x_end(taps);
  for (int64_t t = 0; t < taps; ++t) {
    x_begin[t] = std::clamp<int64_t>(pad - plan.rx[t], 0, W);
    x_end[t] = std::clamp<int64_t>(W + pad - plan.rx[t], x_begin[t], W);
  }
  constexpr int64_t kBlockPixels = 512;  // pixels per cache block
  const int64_t block_rows = std::max<int64_t>(1, kBlockPixels / std::max<int64_t>(W, 1));
  at::parallel_for(0, shares, 1, [&](int64_t first, int64_t last_share) {
    for (int64_t share = first; share < last_share; ++share) {
      T* acc = share == 0 ? out : partial.data() + (share - 1) * per_share;
      const int64_t row_begin = pixel_rows * share / shares;
      const int64_t row_end = pixel_rows * (share + 1) / shares;
      std::vector<Segment<T>> segments(block_rows);
      for (int64_t r0 = row_begin; r0 < row_end; r0 += block_rows) {
        const int64_t r1 = std::min(row_end, r0 + block_rows);
        for (int64_t t = 0; t < taps; ++t) {
          for (size_t grp = 0; grp < plan.group_begin.size(); ++grp) {
            const KRange kr = plan.k_range[grp][t];
            for (int64_t k0 = kr.begin; k0 < kr.end; k0 += kRows) {
              const int64_t rows = std::min<int64_t>(kRows, kr.end - k0);
              for_each_column_tile<T>(
                  plan.group_begin[grp], plan.group_end[grp],
                  [&](int64_t n0, int nv, bool tail, int64_t last) {
                    int64_t count = 0;
                    for (int64_t row = r0; row < r1; ++row) {
                      const int64_t b = row / H, y = row % H, sy = y + plan.ry[t];
                      if (sy < 0 || sy >= Hs || x_end[t] <= x_begin[t]) continue;
                      segments[count++] = {
                          s + ((b * K + k0) * Hs + sy) * Ws + plan.rx[t] + x_begin[t],
                          g + ((b * H + y) * W + x_begin[t]) * N + n0, x_end[t] - x_begin[t]};
                    }
                    const Tile<T> tile{segments.data(), count, Hs * Ws, 1, N,
                                       acc + (t * K + k0) * N + n0, N, nullptr, true, last};
                    run_tile<T>(rows, nv, tail, tile);
                  });
            }
          }
        }
      }
    }
  });
  for (int64_t share = 1; share < shares; ++share) {
    const T* p = partial.data() + (share - 1) * per_share;
    at::vec::map2([](auto a, auto b) { return a + b; }, out, out, p, per_share);
  }
}

// src [B, C, H, W] into dst [B, H, W, C], both contiguous. One at::vec block transpose per
// pixel row.
template <typename T>
void to_channels_last(const at::Tensor& src, at::Tensor& dst) {
  const int64_t B = src.size(0), C = src.size(1), H = src.size(2), W = src.size(3);
  const T* s = src.data_ptr<T>();
  T* d = dst.data_ptr<T>();
  constexpr int64_t kElementsPerTask = 1 << 15;
  at::parallel_for(0, B * H, std::max<int64_t>(1, kElementsPerTask / std::max<int64_t>(1, C * W)),
                   [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / H, y = row % H;
      at::vec::transpose_mxn<T>(s + b * C * H * W + y * W, H * W, d + row * W * C, C,
                                static_cast<int>(C), static_cast<int>(W));
    }
  });
}

}  // namespace masked_conv

void masked_conv_gemm_rows(const at::Tensor& src, const at::Tensor& packed,
                           const TapPlan& plan, const at::Tensor& bias, bool exact_edges,
                           at::Tensor& dst) {
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "masked_conv_gemm_rows", [&] {
    masked_conv::gemm_rows<scalar_t>(src, packed, plan, bias, exact_edges, dst);
  });
}

void masked_conv_weight_grad(const at::Tensor& src, const at::Tensor& grad, const TapPlan& plan,
                             at::Tensor& grad_packed) {
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "masked_conv_weight_grad", [&] {
    masked_conv::weight_grad<scalar_t>(src, grad, plan, grad_packed);
  });
}

void to_channels_last(const at::Tensor& src, at::Tensor& dst) {
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "to_channels_last", [&] {
    masked_conv::to_channels_last<scalar_t>(src, dst);
  });
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace gen_ext
