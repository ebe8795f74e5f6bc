#pragma once
// Row-times-matrix products of the CPU kernels that work one small vector at a time (the diagonal
// LSTM's positions, the WaveNet sampling step's rows), where a GEMM call per vector would cost
// more than the arithmetic. Compiled once per instruction set (see vec_ops.h).

#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>

namespace gen_ext {
namespace cpu {
namespace CPU_CAPABILITY {

// out[n] = init[n] + sum_{k < K} scale(k) * row(k)[n] for n < N (init may be out). Blocks of four
// vectors are summed in registers over all k (independent sums hide the FMA latency), so out
// is written once. It serves the diagonal LSTM's gates (rows of a weight matrix scaled by
// a state), its previous column's state gradient and its weight gradient's rank update (rows of
// gate gradients scaled by a state value), and the WaveNet sampling step's two matrix products.
template <typename T, typename Scale, typename Row>
void add_scaled_rows(const T* init, int64_t K, const Scale& scale, const Row& row, int64_t N,
                     T* out) {
  using V = at::vec::Vectorized<T>;
  constexpr int64_t L = V::size();
  int64_t n = 0;
  for (; n + 4 * L <= N; n += 4 * L) {
    V a0 = V::loadu(init + n), a1 = V::loadu(init + n + L), a2 = V::loadu(init + n + 2 * L),
      a3 = V::loadu(init + n + 3 * L);
    for (int64_t k = 0; k < K; ++k) {
      const V sk(scale(k));
      const T* m = row(k) + n;
      a0 = at::vec::fmadd(sk, V::loadu(m), a0);
      a1 = at::vec::fmadd(sk, V::loadu(m + L), a1);
      a2 = at::vec::fmadd(sk, V::loadu(m + 2 * L), a2);
      a3 = at::vec::fmadd(sk, V::loadu(m + 3 * L), a3);
    }
    a0.store(out + n);
    a1.store(out + n + L);
    a2.store(out + n + 2 * L);
    a3.store(out + n + 3 * L);
  }
  for (; n < N; n += L) {
    const int64_t m = std::min<int64_t>(L, N - n);
    V a = V::loadu(init + n, m);
    for (int64_t k = 0; k < K; ++k) a = at::vec::fmadd(V(scale(k)), V::loadu(row(k) + n, m), a);
    a.store(out + n, m);
  }
}

// out[n] += sum_k s[k] M[k, n], M: [K, N] row-major.
template <typename T>
void add_matvec(const T* s, const T* M, int64_t K, int64_t N, T* out) {
  add_scaled_rows(
      out, K, [&](int64_t k) { return s[k]; }, [&](int64_t k) { return M + k * N; }, N, out);
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace gen_ext
