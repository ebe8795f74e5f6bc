// CUDA kernels of PixelRNN's diagonal LSTM scan over the shared cell math
// (gen_ext/lstm_math.h), in the channels-last layout of diagonal_lstm_layout.h. One thread block
// scans one image: the columns follow one another inside the kernel (no launch per column),
// separated by block barriers, and within a column the block's threads share the (row, channel)
// work. The previous column's state, the column's gates and (backward) the gradients carried
// between columns stay in shared memory; the weights are read through the caches.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>

#include "../diagonal_lstm_checks.h"
#include "../diagonal_lstm_layout.h"
#include "gen_ext/lstm_math.h"
#include "gen_ext/skewed_image.h"
#include "launch.h"

namespace gen_ext {
namespace cuda {
namespace {

using Shape = diagonal_lstm::SkewedImage;

// Column j's gate pre-activations of every row inside the image into gates [H, G]:
// a + wt0^T h(r - 1, j - 1) + wt1^T h(r, j - 1), wt: [hid, G]; h_prev: column j - 1's hidden
// state [H, hid], in shared memory.
template <typename T>
__device__ void column_gates(const Shape& s, int64_t b, int64_t j, const T* a, const T* wt0,
                             const T* wt1, const T* h_prev, T* gates) {
  for (int64_t e = threadIdx.x; e < s.H * s.G; e += blockDim.x) {
    const int64_t r = e / s.G, g = e % s.G;
    if (!s.inside(r, j)) continue;
    T acc = a[s.position(b, r, j) * s.G + g];
    if (s.inside(r, j - 1)) {
      const T* same = h_prev + r * s.hid;
      for (int64_t k = 0; k < s.hid; ++k) acc += same[k] * wt1[k * s.G + g];
    }
    if (s.inside(r - 1, j - 1)) {
      const T* above = h_prev + (r - 1) * s.hid;
      for (int64_t k = 0; k < s.hid; ++k) acc += above[k] * wt0[k * s.G + g];
    }
    gates[r * s.G + g] = acc;
  }
}

// The state stays on chip: shared memory holds the previous column's h and c [H, hid] each and
// the column's gates [H, G] (forward_shared_elements of them).
inline int64_t forward_shared_elements(const Shape& s) { return 2 * s.H * s.hid + s.H * s.G; }

template <typename T>
__global__ void forward_kernel(Shape s, const T* __restrict__ a, const T* __restrict__ wt0,
                               const T* __restrict__ wt1, T* hs, T* cs) {
  using Cell = lstm::Element<ScalarOps<T>>;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  T* h_prev = reinterpret_cast<T*>(shared_bytes);
  T* c_prev = h_prev + s.H * s.hid;
  T* gates = c_prev + s.H * s.hid;
  const int64_t b = blockIdx.x;
  for (int64_t j = 0; j < s.Ws; ++j) {
    column_gates(s, b, j, a, wt0, wt1, h_prev, gates);
    __syncthreads();
    for (int64_t e = threadIdx.x; e < s.H * s.hid; e += blockDim.x) {
      const int64_t r = e / s.hid, u = e % s.hid;
      const int64_t idx = s.position(b, r, j) * s.hid + u;
      T h = T(0), c = T(0);
      if (s.inside(r, j)) {
        const T* g = gates + r * s.G;
        const T c_before = s.inside(r, j - 1) ? c_prev[e] : T(0);
        Cell::forward(g[u], g[s.hid + u], g[2 * s.hid + u], g[3 * s.hid + u], c_before, h, c);
      }
      hs[idx] = h;
      cs[idx] = c;
      h_prev[e] = h;  // each thread owns its (r, u): read above, written here
      c_prev[e] = c;
    }
    __syncthreads();
  }
}

// Shared memory: the previous column's h [H, hid] (loaded from the saved states), the column's
// gates [H, G], and the gradients carried between columns [2 (h, c), 2 (ping, pong), H, hid].
inline int64_t backward_shared_elements(const Shape& s) {
  return s.H * s.hid + s.H * s.G + 4 * s.H * s.hid;
}

// grad_c may be null. dwt: [2, hid, G] per image; wn: [G, hid] per tap.
template <typename T>
__global__ void backward_kernel(Shape s, const T* __restrict__ grad_h,
                                const T* __restrict__ grad_c, const T* __restrict__ a,
                                const T* __restrict__ wt0, const T* __restrict__ wt1,
                                const T* __restrict__ wn0, const T* __restrict__ wn1,
                                const T* __restrict__ hs, const T* __restrict__ cs, T* d_a,
                                T* dwt_ws) {
  using Cell = lstm::Element<ScalarOps<T>>;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  const int64_t b = blockIdx.x, HU = s.H * s.hid;
  T* h_prev = reinterpret_cast<T*>(shared_bytes);
  T* gates = h_prev + HU;
  T* carry = gates + s.H * s.G;
  T* dw0 = dwt_ws + b * 2 * s.hid * s.G;
  T* dw1 = dw0 + s.hid * s.G;
  for (int64_t e = threadIdx.x; e < 4 * HU; e += blockDim.x) carry[e] = T(0);
  for (int64_t e = threadIdx.x; e < 2 * s.hid * s.G; e += blockDim.x) dw0[e] = T(0);
  int ping = 0;
  for (int64_t j = s.Ws - 1; j >= 0; --j) {
    T* carry_h = carry + ping * HU;  // gradients of column j's h and c from column j + 1
    T* carry_c = carry + (2 + ping) * HU;
    T* next_h = carry + (1 - ping) * HU;  // those of column j - 1, gathered here
    T* next_c = carry + (3 - ping) * HU;
    for (int64_t e = threadIdx.x; e < HU; e += blockDim.x) {  // column j - 1's saved h
      const int64_t r = e / s.hid, u = e % s.hid;
      h_prev[e] = s.inside(r, j - 1) ? hs[s.position(b, r, j - 1) * s.hid + u] : T(0);
    }
    __syncthreads();
    column_gates(s, b, j, a, wt0, wt1, h_prev, gates);
    __syncthreads();
    for (int64_t e = threadIdx.x; e < HU; e += blockDim.x) {
      const int64_t r = e / s.hid, u = e % s.hid;
      const int64_t pos = s.position(b, r, j), idx = pos * s.hid + u;
      T* da = d_a + pos * s.G;
      if (!s.inside(r, j)) {
        da[u] = da[s.hid + u] = da[2 * s.hid + u] = da[3 * s.hid + u] = T(0);
        next_c[e] = T(0);
        continue;
      }
      const T* g = gates + r * s.G;
      const bool has_prev = s.inside(r, j - 1);
      const T c_before = has_prev ? cs[idx - s.hid] : T(0);
      const T dh = grad_h[idx] + carry_h[e];
      const T dc = carry_c[e] + (grad_c != nullptr ? grad_c[idx] : T(0));
      T d_o, d_f, d_i, d_g, dc_prev;
      Cell::backward(g[u], g[s.hid + u], g[2 * s.hid + u], g[3 * s.hid + u], c_before, cs[idx],
                     dh, dc, d_o, d_f, d_i, d_g, dc_prev);
      da[u] = d_o;
      da[s.hid + u] = d_f;
      da[2 * s.hid + u] = d_i;
      da[3 * s.hid + u] = d_g;
      next_c[e] = has_prev ? dc_prev : T(0);
    }
    __syncthreads();
    // column j - 1's hidden-state gradient: row r gets tap 1 of (r, j) and tap 0 of (r + 1, j)
    for (int64_t e = threadIdx.x; e < HU; e += blockDim.x) {
      const int64_t r = e / s.hid, k = e % s.hid;
      T acc = T(0);
      if (s.inside(r, j) && s.inside(r, j - 1)) {
        const T* da = d_a + s.position(b, r, j) * s.G;
        for (int64_t g = 0; g < s.G; ++g) acc += da[g] * wn1[g * s.hid + k];
      }
      if (s.inside(r + 1, j) && s.inside(r, j - 1)) {
        const T* da = d_a + s.position(b, r + 1, j) * s.G;
        for (int64_t g = 0; g < s.G; ++g) acc += da[g] * wn0[g * s.hid + k];
      }
      next_h[e] = acc;
    }
    // the weights' gradient: tap 1 pairs (r, j) with h(r, j - 1), tap 0 with h(r - 1, j - 1)
    for (int64_t e = threadIdx.x; e < s.hid * s.G; e += blockDim.x) {
      const int64_t k = e / s.G, g = e % s.G;
      T acc0 = T(0), acc1 = T(0);
      for (int64_t r = 0; r < s.H; ++r) {
        if (!s.inside(r, j)) continue;
        const T da = d_a[s.position(b, r, j) * s.G + g];
        if (s.inside(r, j - 1)) acc1 += h_prev[r * s.hid + k] * da;
        if (s.inside(r - 1, j - 1)) acc0 += h_prev[(r - 1) * s.hid + k] * da;
      }
      dw0[e] += acc0;
      dw1[e] += acc1;
    }
    __syncthreads();
    ping = 1 - ping;
  }
}

// Dynamic shared memory of `elements` values of T for `kernel`, opting in above the default
// 48 KB; a clear error where the device has less than the shape needs.
template <typename T, typename Kernel>
size_t shared_bytes_for(Kernel kernel, int64_t elements, const char* op, const Shape& s) {
  const size_t bytes = static_cast<size_t>(elements) * sizeof(T);
  int device = 0, limit = 0;
  C10_CUDA_CHECK(cudaGetDevice(&device));
  C10_CUDA_CHECK(
      cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  TORCH_CHECK(bytes <= static_cast<size_t>(limit), op, ": the scan keeps a column's state on "
              "chip, which needs ", bytes, " bytes of shared memory for H = ", s.H,
              " and hidden = ", s.hid, "; this GPU has ", limit, " per block");
  if (bytes > 48 * 1024) {
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
  }
  return bytes;
}

Shape shape_of(const at::Tensor& i2s) {
  return diagonal_lstm::skewed_image(i2s.size(0), i2s.size(1), i2s.size(2), i2s.size(3));
}

std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& i2s, const at::Tensor& weight) {
  check_diagonal_lstm_inputs(i2s, weight, "diagonal_lstm_scan");
  const c10::cuda::CUDAGuard guard(i2s.device());
  const Shape s = shape_of(i2s);
  const int64_t B = s.B;
  auto h_pm = at::empty({B, s.H, s.Ws, s.hid}, i2s.options());
  auto c_pm = at::empty({B, s.H, s.Ws, s.hid}, i2s.options());
  if (h_pm.numel() > 0) {
    const auto a = position_major(i2s), wt = taps_transposed(weight);
    AT_DISPATCH_FLOATING_TYPES(i2s.scalar_type(), "diagonal_lstm_scan", [&] {
      const size_t shared = shared_bytes_for<scalar_t>(
          forward_kernel<scalar_t>, forward_shared_elements(s), "diagonal_lstm_scan", s);
      const scalar_t* w = wt.const_data_ptr<scalar_t>();
      forward_kernel<scalar_t><<<B, kThreads, shared, c10::cuda::getCurrentCUDAStream()>>>(
          s, a.const_data_ptr<scalar_t>(), w, w + s.hid * s.G, h_pm.mutable_data_ptr<scalar_t>(),
          c_pm.mutable_data_ptr<scalar_t>());
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {channel_major(h_pm), channel_major(c_pm)};
}

std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad_h,
                                            const std::optional<at::Tensor>& grad_c,
                                            const at::Tensor& i2s, const at::Tensor& weight,
                                            const at::Tensor& h, const at::Tensor& c) {
  check_diagonal_lstm_backward_inputs(grad_h, grad_c, i2s, weight, h, c);
  const c10::cuda::CUDAGuard guard(i2s.device());
  const Shape s = shape_of(i2s);
  const int64_t B = s.B;
  auto d_i2s_pm = at::empty({B, s.H, s.Ws, s.G}, i2s.options());
  auto dwt = at::empty({B, 2, s.hid, s.G}, i2s.options());  // each image fills its own
  if (d_i2s_pm.numel() == 0) {
    dwt.zero_();
    return {channel_major(d_i2s_pm), weight_grad(dwt)};
  }
  const auto gh = position_major(grad_h), a = position_major(i2s), hp = position_major(h),
             cp = position_major(c), wt = taps_transposed(weight), wn = taps(weight);
  const at::Tensor gc = grad_c.has_value() ? position_major(*grad_c) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(i2s.scalar_type(), "diagonal_lstm_scan_backward", [&] {
    const size_t shared =
        shared_bytes_for<scalar_t>(backward_kernel<scalar_t>, backward_shared_elements(s),
                                   "diagonal_lstm_scan_backward", s);
    const scalar_t* t = wt.const_data_ptr<scalar_t>();
    const scalar_t* n = wn.const_data_ptr<scalar_t>();
    backward_kernel<scalar_t><<<B, kThreads, shared, c10::cuda::getCurrentCUDAStream()>>>(
        s, gh.const_data_ptr<scalar_t>(), gc.defined() ? gc.const_data_ptr<scalar_t>() : nullptr,
        a.const_data_ptr<scalar_t>(), t, t + s.hid * s.G, n, n + s.G * s.hid,
        hp.const_data_ptr<scalar_t>(), cp.const_data_ptr<scalar_t>(),
        d_i2s_pm.mutable_data_ptr<scalar_t>(), dwt.mutable_data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {channel_major(d_i2s_pm), weight_grad(dwt)};
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CUDA, m) {
  m.impl("diagonal_lstm_scan", &forward);
  m.impl("diagonal_lstm_scan_backward", &backward);
}

}  // namespace cuda
}  // namespace gen_ext
