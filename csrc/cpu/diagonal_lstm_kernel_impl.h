#pragma once
// CPU kernels of PixelRNN's diagonal LSTM scan, compiled once per instruction set (see
// vec_ops.h). Inside, every tensor is channels-last, [B, H, Ws, channels] (what the ops take and
// give without a copy), so the gate pre-activations of one position (4h values) and its state
// (h values) are contiguous runs that vectorize. Each image is scanned by one task, column by
// column; its state stays in cache, and the state-to-state weights (2 * 4h * h values, 32 KB at
// h = 32 in float) are read from cache by every position instead of a GEMM being launched per
// column. Only the image's own positions (row r: columns r .. r + W - 1) are computed; the rest
// are written as zero.

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <vector>

#include "gen_ext/lstm_math.h"
#include "gen_ext/skewed_image.h"
#include "row_ops.h"
#include "vec_ops.h"

namespace gen_ext {
namespace cpu {
namespace CPU_CAPABILITY {
namespace diagonal_lstm {

using Shape = ::gen_ext::diagonal_lstm::SkewedImage;

// The gate pre-activations of a position into acc [G]: its i2s values plus the state-to-state
// taps of the neighbours inside the image (above, same: null where outside).
template <typename T>
void gate_preactivations(const T* a, const T* above, const T* same, const T* wt0, const T* wt1,
                         int64_t hid, int64_t G, T* acc) {
  std::copy(a, a + G, acc);
  if (above != nullptr) add_matvec(above, wt0, hid, G, acc);
  if (same != nullptr) add_matvec(same, wt1, hid, G, acc);
}

// dw[k, n] += sum_p states[p][k] * grads[p][n] (k < K, n < N): the rank-P update of a column's
// positions, each dw row loaded and stored once per column rather than once per position.
template <typename T>
void rank_update(const std::vector<const T*>& states, const std::vector<const T*>& grads,
                 int64_t K, int64_t N, T* dw) {
  const int64_t P = static_cast<int64_t>(states.size());
  for (int64_t k = 0; k < K && P > 0; ++k) {
    T* row = dw + k * N;
    add_scaled_rows(
        row, P, [&](int64_t p) { return states[p][k]; }, [&](int64_t p) { return grads[p]; }, N,
        row);
  }
}

template <typename T>
void zero_outside(const Shape& s, int64_t b, int64_t j, int64_t channels, T* t) {
  for (int64_t r = 0; r < s.H; ++r) {
    if (!s.inside(r, j)) {
      T* p = t + s.position(b, r, j) * channels;
      std::fill(p, p + channels, T(0));
    }
  }
}

template <typename T>
void forward_typed(const Shape& s, const T* a, const T* wt0, const T* wt1, T* hs, T* cs) {
  using Cell = lstm::Element<VecOps<T>>;
  using V = at::vec::Vectorized<T>;
  constexpr int64_t L = V::size();
  const int64_t hid = s.hid, G = s.G;
  at::parallel_for(0, s.B, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> acc(G);
    for (int64_t b = b0; b < b1; ++b) {
      for (int64_t j = 0; j < s.Ws; ++j) {
        zero_outside(s, b, j, hid, hs);
        zero_outside(s, b, j, hid, cs);
        for (int64_t r = s.first_row(j); r <= s.last_row(j); ++r) {
          const int64_t pos = s.position(b, r, j), prev = pos - 1;  // (r, j) and (r, j - 1)
          const T* same = s.inside(r, j - 1) ? hs + prev * hid : nullptr;
          const T* above = s.inside(r - 1, j - 1) ? hs + (prev - s.Ws) * hid : nullptr;
          gate_preactivations(a + pos * G, above, same, wt0, wt1, hid, G, acc.data());
          for (int64_t u = 0; u < hid; u += L) {
            const int64_t n = std::min<int64_t>(L, hid - u);
            const V c_prev = same != nullptr ? V::loadu(cs + prev * hid + u, n) : V(T(0));
            V h, c;
            Cell::forward(V::loadu(acc.data() + u, n), V::loadu(acc.data() + hid + u, n),
                          V::loadu(acc.data() + 2 * hid + u, n),
                          V::loadu(acc.data() + 3 * hid + u, n), c_prev, h, c);
            h.store(hs + pos * hid + u, n);
            c.store(cs + pos * hid + u, n);
          }
        }
      }
    }
  });
}

// grad_c may be null. d_a: [B, H, Ws, G]; dwt: [B, 2, hid, G], each image's weight gradient
// (taps 0 and 1, transposed), summed by the caller in a fixed order; wn0, wn1: [G, hid] (the
// taps untransposed), for the gradient of the previous column's state.
template <typename T>
void backward_typed(const Shape& s, const T* grad_h, const T* grad_c, const T* a, const T* wt0,
                    const T* wt1, const T* wn0, const T* wn1, const T* hs, const T* cs, T* d_a,
                    T* dwt) {
  using Cell = lstm::Element<VecOps<T>>;
  using V = at::vec::Vectorized<T>;
  constexpr int64_t L = V::size();
  const int64_t hid = s.hid, G = s.G, H = s.H;
  at::parallel_for(0, s.B, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> acc(G);
    // the gradients of column j's h and c from column j + 1 (carry), and those being gathered
    // for column j - 1 (next)
    std::vector<T> carry_h(H * hid), carry_c(H * hid), next_h(H * hid), next_c(H * hid);
    std::vector<const T*> states[2], grads[2];  // a column's (state, gate gradient) pairs per tap
    for (int64_t b = b0; b < b1; ++b) {
      T* dw[2] = {dwt + b * 2 * hid * G, dwt + (b * 2 + 1) * hid * G};
      std::fill(dw[0], dw[0] + 2 * hid * G, T(0));
      std::fill(carry_h.begin(), carry_h.end(), T(0));
      std::fill(carry_c.begin(), carry_c.end(), T(0));
      for (int64_t j = s.Ws - 1; j >= 0; --j) {
        zero_outside(s, b, j, G, d_a);
        std::fill(next_h.begin(), next_h.end(), T(0));
        std::fill(next_c.begin(), next_c.end(), T(0));
        for (int tap = 0; tap < 2; ++tap) {
          states[tap].clear();
          grads[tap].clear();
        }
        for (int64_t r = s.first_row(j); r <= s.last_row(j); ++r) {
          const int64_t pos = s.position(b, r, j), prev = pos - 1;
          const T* same = s.inside(r, j - 1) ? hs + prev * hid : nullptr;
          const T* above = s.inside(r - 1, j - 1) ? hs + (prev - s.Ws) * hid : nullptr;
          gate_preactivations(a + pos * G, above, same, wt0, wt1, hid, G, acc.data());
          T* da = d_a + pos * G;
          for (int64_t u = 0; u < hid; u += L) {
            const int64_t n = std::min<int64_t>(L, hid - u);
            const V c_prev = same != nullptr ? V::loadu(cs + prev * hid + u, n) : V(T(0));
            const V dh = V::loadu(grad_h + pos * hid + u, n) + V::loadu(&carry_h[r * hid + u], n);
            V dc = V::loadu(&carry_c[r * hid + u], n);
            if (grad_c != nullptr) dc = dc + V::loadu(grad_c + pos * hid + u, n);
            V d_o, d_f, d_i, d_g, dc_prev;
            Cell::backward(V::loadu(acc.data() + u, n), V::loadu(acc.data() + hid + u, n),
                           V::loadu(acc.data() + 2 * hid + u, n),
                           V::loadu(acc.data() + 3 * hid + u, n), c_prev,
                           V::loadu(cs + pos * hid + u, n), dh, dc, d_o, d_f, d_i, d_g, dc_prev);
            d_o.store(da + u, n);
            d_f.store(da + hid + u, n);
            d_i.store(da + 2 * hid + u, n);
            d_g.store(da + 3 * hid + u, n);
            if (same != nullptr) dc_prev.store(&next_c[r * hid + u], n);
          }
          // the previous column's hidden-state gradient: rows r (tap 1) and r - 1 (tap 0)
          if (same != nullptr) {
            add_matvec(da, wn1, G, hid, &next_h[r * hid]);
            states[1].push_back(same);
            grads[1].push_back(da);
          }
          if (above != nullptr) {
            add_matvec(da, wn0, G, hid, &next_h[(r - 1) * hid]);
            states[0].push_back(above);
            grads[0].push_back(da);
          }
        }
        for (int tap = 0; tap < 2; ++tap) rank_update(states[tap], grads[tap], hid, G, dw[tap]);
        std::swap(carry_h, next_h);
        std::swap(carry_c, next_c);
      }
    }
  });
}

}  // namespace diagonal_lstm

using diagonal_lstm::Shape;

// i2s_pm: [B, H, Ws, 4h] contiguous (channels-last); wt: [2, h, 4h] (the taps transposed);
// h_pm, c_pm: [B, H, Ws, h] outputs. Checks and layouts are the caller's.
void diagonal_lstm_forward(const at::Tensor& i2s_pm, const at::Tensor& wt, at::Tensor& h_pm,
                           at::Tensor& c_pm) {
  // i2s_pm is [B, H, Ws, G]
  const Shape s = ::gen_ext::diagonal_lstm::skewed_image(i2s_pm.size(0), i2s_pm.size(3),
                                                         i2s_pm.size(1), i2s_pm.size(2));
  const int64_t hid = s.hid, G = s.G;
  AT_DISPATCH_FLOATING_TYPES(i2s_pm.scalar_type(), "diagonal_lstm_scan", [&] {
    const scalar_t* w = wt.const_data_ptr<scalar_t>();
    diagonal_lstm::forward_typed<scalar_t>(s, i2s_pm.const_data_ptr<scalar_t>(), w,
                                           w + hid * G, h_pm.mutable_data_ptr<scalar_t>(),
                                           c_pm.mutable_data_ptr<scalar_t>());
  });
}

// grad_h_pm, grad_c_pm (undefined: none), h_pm, c_pm: [B, H, Ws, h]; wn: [2, 4h, h] (the taps);
// d_i2s_pm: [B, H, Ws, 4h] and dwt: [B, 2, h, 4h] outputs.
void diagonal_lstm_backward(const at::Tensor& grad_h_pm, const at::Tensor& grad_c_pm,
                            const at::Tensor& i2s_pm, const at::Tensor& wt, const at::Tensor& wn,
                            const at::Tensor& h_pm, const at::Tensor& c_pm, at::Tensor& d_i2s_pm,
                            at::Tensor& dwt) {
  // i2s_pm is [B, H, Ws, G]
  const Shape s = ::gen_ext::diagonal_lstm::skewed_image(i2s_pm.size(0), i2s_pm.size(3),
                                                         i2s_pm.size(1), i2s_pm.size(2));
  const int64_t hid = s.hid, G = s.G;
  AT_DISPATCH_FLOATING_TYPES(i2s_pm.scalar_type(), "diagonal_lstm_scan_backward", [&] {
    const scalar_t* t = wt.const_data_ptr<scalar_t>();
    const scalar_t* n = wn.const_data_ptr<scalar_t>();
    diagonal_lstm::backward_typed<scalar_t>(
        s, grad_h_pm.const_data_ptr<scalar_t>(),
        grad_c_pm.defined() ? grad_c_pm.const_data_ptr<scalar_t>() : nullptr,
        i2s_pm.const_data_ptr<scalar_t>(), t, t + hid * G, n, n + G * hid,
        h_pm.const_data_ptr<scalar_t>(), c_pm.const_data_ptr<scalar_t>(),
        d_i2s_pm.mutable_data_ptr<scalar_t>(), dwt.mutable_data_ptr<scalar_t>());
  });
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace gen_ext
