#pragma once
// CPU kernels of the fused Gaussian reparameterization and KL, compiled once per instruction set
// (see vec_ops.h). Rows (the batch) run in parallel, each by one thread in a fixed order, so the
// KL sum is the same for any thread count.

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#include <vector>

#include "gen_ext/gaussian_math.h"
#include "vec_ops.h"

namespace gen_ext {
namespace cpu {
namespace CPU_CAPABILITY {

// Calls vec(i) for full vectors and scalar(i) for the rest of [0, D).
template <typename T, typename VecFn, typename ScalarFn>
void for_each_in_row(int64_t D, const VecFn& vec, const ScalarFn& scalar) {
  constexpr int64_t W = at::vec::Vectorized<T>::size();
  int64_t i = 0;
  for (; i + W <= D; i += W) vec(i);
  for (; i < D; ++i) scalar(i);
}

// Calls fn(b) for every row b in parallel, rows grouped so each task has ~16K elements.
template <typename Fn>
void for_each_row(int64_t B, int64_t D, const Fn& fn) {
  constexpr int64_t kElementsPerTask = 16384;
  at::parallel_for(0, B, std::max<int64_t>(1, kElementsPerTask / std::max<int64_t>(D, 1)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t b = begin; b < end; ++b) fn(b);
                   });
}

// Elements [first, first + n) of the noise stream `seed` (gaussian::standard_normal) into out:
// the pairs' uniforms by the scalar hash, Box-Muller in at::vec lanes (partial vectors included,
// so every element takes the same path whatever range it is drawn in), then the cos/sin halves
// of each pair to their even/odd elements.
template <typename T>
void fill_noise(uint64_t seed, int64_t first, int64_t n, T* out) {
  if (n <= 0) return;
  using Vec = at::vec::Vectorized<T>;
  const int64_t p0 = first >> 1, pairs = ((first + n - 1) >> 1) - p0 + 1;
  thread_local std::vector<T> cos_part, sin_part;
  cos_part.resize(pairs);
  sin_part.resize(pairs);
  for (int64_t p = 0; p < pairs; ++p) {
    gaussian::pair_uniforms(seed, static_cast<uint64_t>(p0 + p), cos_part[p], sin_part[p]);
  }
  for (int64_t p = 0; p < pairs; p += Vec::size()) {
    const int count = static_cast<int>(std::min<int64_t>(Vec::size(), pairs - p));
    const Vec u1 = Vec::loadu(cos_part.data() + p, count);
    const Vec u2 = Vec::loadu(sin_part.data() + p, count);
    // padding lanes hold zeros: log(0) is -inf there, never stored
    const Vec r = (Vec(T(-2)) * u1.log()).sqrt();
    const Vec theta = Vec(T(gaussian::kTwoPi)) * u2;
    (r * theta.cos()).store(cos_part.data() + p, count);
    (r * theta.sin()).store(sin_part.data() + p, count);
  }
  for (int64_t k = 0; k < n; ++k) {
    const int64_t g = first + k;
    out[k] = (g & 1) ? sin_part[(g >> 1) - p0] : cos_part[(g >> 1) - p0];
  }
}

// Row b's noise: eps's row when given, else the stream `seed` drawn into `buffer`.
template <typename T>
const T* noise_row(const T* eps, uint64_t seed, int64_t b, int64_t D, std::vector<T>& buffer) {
  if (eps != nullptr) return eps + b * D;
  buffer.resize(D);
  fill_noise(seed, b * D, D, buffer.data());
  return buffer.data();
}

template <typename T>
void gaussian_noise_typed(uint64_t seed, T* out, int64_t n) {
  at::parallel_for(0, n, 4096, [&](int64_t begin, int64_t end) {
    fill_noise(seed, begin, end - begin, out + begin);
  });
}

// eps: [B, D] noise, or nullptr to draw it from the stream `seed` inside the kernel.
template <typename T>
void gaussian_forward_typed(const T* mu, const T* logvar, const T* eps_given, uint64_t seed, T* z,
                            T* kl, int64_t B, int64_t D) {
  using Vec = gaussian::Element<VecOps<T>>;
  using Tail = gaussian::Element<TailOps<T>>;
  thread_local std::vector<T> buffer;
  for_each_row(B, D, [&](int64_t b) {
      const T* eps_row = noise_row(eps_given, seed, b, D, buffer);
      const int64_t o = b * D;
      at::vec::Vectorized<T> acc(T(0));
      T tail = T(0);
      for_each_in_row<T>(
          D,
          [&](int64_t i) {
            at::vec::Vectorized<T> zi, kl2;
            Vec::forward(VecOps<T>::load(mu + o + i), VecOps<T>::load(logvar + o + i),
                         VecOps<T>::load(eps_row + i), zi, kl2);
            zi.store(z + o + i);
            acc = acc + kl2;
          },
          [&](int64_t i) {
            T zi, kl2;
            Tail::forward(mu[o + i], logvar[o + i], eps_row[i], zi, kl2);
            z[o + i] = zi;
            tail += kl2;
          });
      T lanes[at::vec::Vectorized<T>::size()];
      acc.store(lanes);
      for (const T lane : lanes) tail += lane;
      kl[b] = T(0.5) * tail;
  });
}

// grad_z is read at grad_z[b * gz_row + i * gz_col]: (D, 1) for dense rows, (0, 0) for the
// broadcast scalar that the backward of a sum hands over (read in place rather than copied).
// grad_eps may be nullptr (noise drawn from `seed`, which gets no gradient).
template <typename T>
void gaussian_backward_typed(const T* grad_z, int64_t gz_row, int64_t gz_col, const T* grad_kl,
                             const T* mu, const T* logvar, const T* eps_given, uint64_t seed,
                             T* grad_mu, T* grad_logvar, T* grad_eps, int64_t B, int64_t D) {
  using Vec = gaussian::Element<VecOps<T>>;
  using Tail = gaussian::Element<TailOps<T>>;
  thread_local std::vector<T> buffer;
  for_each_row(B, D, [&](int64_t b) {
      const T* eps_row = noise_row(eps_given, seed, b, D, buffer);
      const int64_t o = b * D;
      for_each_in_row<T>(
          D,
          [&](int64_t i) {
            using V = at::vec::Vectorized<T>;
            V gm, gl, ge;
            const T* gz = grad_z + b * gz_row + i * gz_col;
            Vec::backward(gz_col == 0 ? V(*gz) : V::loadu(gz), V(grad_kl[b]), V::loadu(mu + o + i),
                          V::loadu(logvar + o + i), V::loadu(eps_row + i), gm, gl, ge);
            gm.store(grad_mu + o + i);
            gl.store(grad_logvar + o + i);
            if (grad_eps != nullptr) ge.store(grad_eps + o + i);
          },
          [&](int64_t i) {
            T ge;
            Tail::backward(grad_z[b * gz_row + i * gz_col], grad_kl[b], mu[o + i], logvar[o + i],
                           eps_row[i], grad_mu[o + i], grad_logvar[o + i], ge);
            if (grad_eps != nullptr) grad_eps[o + i] = ge;
          });
  });
}

// Tensors arrive as contiguous [B, D] rows (kl, grad_kl: [B]), except grad_z, which may also be a
// fully broadcast [B, D] view (strides 0, 0); an undefined eps means noise drawn from `seed` (and
// an undefined grad_eps, no gradient for it). Checks are the caller's.
void gaussian_forward(const at::Tensor& mu, const at::Tensor& logvar, const at::Tensor& eps,
                      int64_t seed, at::Tensor& z, at::Tensor& kl) {
  AT_DISPATCH_FLOATING_TYPES(mu.scalar_type(), "gaussian_reparameterize_kl", [&] {
    gaussian_forward_typed<scalar_t>(
        mu.const_data_ptr<scalar_t>(), logvar.const_data_ptr<scalar_t>(),
        eps.defined() ? eps.const_data_ptr<scalar_t>() : nullptr, static_cast<uint64_t>(seed),
        z.mutable_data_ptr<scalar_t>(), kl.mutable_data_ptr<scalar_t>(), mu.size(0), mu.size(1));
  });
}

void gaussian_backward(const at::Tensor& grad_z, const at::Tensor& grad_kl, const at::Tensor& mu,
                       const at::Tensor& logvar, const at::Tensor& eps, int64_t seed,
                       at::Tensor& grad_mu, at::Tensor& grad_logvar, at::Tensor& grad_eps) {
  AT_DISPATCH_FLOATING_TYPES(mu.scalar_type(), "gaussian_reparameterize_kl_backward", [&] {
    gaussian_backward_typed<scalar_t>(
        grad_z.const_data_ptr<scalar_t>(), grad_z.stride(0), grad_z.stride(1),
        grad_kl.const_data_ptr<scalar_t>(), mu.const_data_ptr<scalar_t>(),
        logvar.const_data_ptr<scalar_t>(), eps.defined() ? eps.const_data_ptr<scalar_t>() : nullptr,
        static_cast<uint64_t>(seed), grad_mu.mutable_data_ptr<scalar_t>(),
        grad_logvar.mutable_data_ptr<scalar_t>(),
        grad_eps.defined() ? grad_eps.mutable_data_ptr<scalar_t>() : nullptr, mu.size(0),
        mu.size(1));
  });
}

void gaussian_noise(int64_t seed, at::Tensor& out) {
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "gaussian_noise", [&] {
    gaussian_noise_typed<scalar_t>(static_cast<uint64_t>(seed), out.mutable_data_ptr<scalar_t>(),
                                   out.numel());
  });
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace gen_ext
