#pragma once
// CPU kernels of the fused Gaussian reparameterization and KL, compiled once per instruction set
// (see vec_ops.h). Rows (the batch) run in parallel, each by one thread in a fixed order, so the
// KL sum is the same for any thread count.

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

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

template <typename T>
void gaussian_forward_typed(const T* mu, const T* logvar, const T* eps, T* z, T* kl, int64_t B,
                            int64_t D) {
  using Vec = gaussian::Element<VecOps<T>>;
  using Tail = gaussian::Element<TailOps<T>>;
  for_each_row(B, D, [&](int64_t b) {
      const int64_t o = b * D;
      at::vec::Vectorized<T> acc(T(0));
      T tail = T(0);
      for_each_in_row<T>(
          D,
          [&](int64_t i) {
            at::vec::Vectorized<T> zi, kl2;
            Vec::forward(VecOps<T>::load(mu + o + i), VecOps<T>::load(logvar + o + i),
                         VecOps<T>::load(eps + o + i), zi, kl2);
            zi.store(z + o + i);
            acc = acc + kl2;
          },
          [&](int64_t i) {
            T zi, kl2;
            Tail::forward(mu[o + i], logvar[o + i], eps[o + i], zi, kl2);
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
template <typename T>
void gaussian_backward_typed(const T* grad_z, int64_t gz_row, int64_t gz_col, const T* grad_kl,
                             const T* mu, const T* logvar, const T* eps, T* grad_mu,
                             T* grad_logvar, T* grad_eps, int64_t B, int64_t D) {
  using Vec = gaussian::Element<VecOps<T>>;
  using Tail = gaussian::Element<TailOps<T>>;
  for_each_row(B, D, [&](int64_t b) {
      const int64_t o = b * D;
      for_each_in_row<T>(
          D,
          [&](int64_t i) {
            using V = at::vec::Vectorized<T>;
            V gm, gl, ge;
            const T* gz = grad_z + b * gz_row + i * gz_col;
            Vec::backward(gz_col == 0 ? V(*gz) : V::loadu(gz), V(grad_kl[b]), V::loadu(mu + o + i),
                          V::loadu(logvar + o + i), V::loadu(eps + o + i), gm, gl, ge);
            gm.store(grad_mu + o + i);
            gl.store(grad_logvar + o + i);
            ge.store(grad_eps + o + i);
          },
          [&](int64_t i) {
            Tail::backward(grad_z[b * gz_row + i * gz_col], grad_kl[b], mu[o + i], logvar[o + i],
                           eps[o + i],
                           grad_mu[o + i], grad_logvar[o + i], grad_eps[o + i]);
          });
  });
}

// Tensors arrive as contiguous [B, D] rows (kl, grad_kl: [B]), except grad_z, which may also be a
// fully broadcast [B, D] view (strides 0, 0); checks are the caller's.
void gaussian_forward(const at::Tensor& mu, const at::Tensor& logvar, const at::Tensor& eps,
                      at::Tensor& z, at::Tensor& kl) {
  AT_DISPATCH_FLOATING_TYPES(mu.scalar_type(), "gaussian_reparameterize_kl", [&] {
    gaussian_forward_typed<scalar_t>(mu.const_data_ptr<scalar_t>(),
                                     logvar.const_data_ptr<scalar_t>(),
                                     eps.const_data_ptr<scalar_t>(), z.mutable_data_ptr<scalar_t>(),
                                     kl.mutable_data_ptr<scalar_t>(), mu.size(0), mu.size(1));
  });
}

void gaussian_backward(const at::Tensor& grad_z, const at::Tensor& grad_kl, const at::Tensor& mu,
                       const at::Tensor& logvar, const at::Tensor& eps, at::Tensor& grad_mu,
                       at::Tensor& grad_logvar, at::Tensor& grad_eps) {
  AT_DISPATCH_FLOATING_TYPES(mu.scalar_type(), "gaussian_reparameterize_kl_backward", [&] {
    gaussian_backward_typed<scalar_t>(
        grad_z.const_data_ptr<scalar_t>(), grad_z.stride(0), grad_z.stride(1),
        grad_kl.const_data_ptr<scalar_t>(),
        mu.const_data_ptr<scalar_t>(), logvar.const_data_ptr<scalar_t>(),
        eps.const_data_ptr<scalar_t>(), grad_mu.mutable_data_ptr<scalar_t>(),
        grad_logvar.mutable_data_ptr<scalar_t>(), grad_eps.mutable_data_ptr<scalar_t>(),
        mu.size(0), mu.size(1));
  });
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace gen_ext
