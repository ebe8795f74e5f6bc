// CUDA kernels of the fused concat-ELU with dropout over the shared per-element math
// (gen_ext/concat_elu_math.h): grid-stride loops over the input's elements. x is seen as [B, N]
// rows (N = C * spatial) and the output as [B, 2N], elu(x) in a row's first N values and elu(-x)
// in the next N. With a pad (left, right, top, bottom) the output is [B, 2C, Hp, Wp] with a zero
// border: its forward runs one thread per output element, the dropout stream still counting
// unpadded elements. One backward kernel serves both layouts (the dense one is a border of 0).
// A channels-last x (memory_layout.h) has its own pair of kernels, output channels last too.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../concat_elu_checks.h"
#include "../memory_layout.h"
#include "gen_ext/concat_elu_math.h"
#include "launch.h"

namespace gen_ext {
namespace cuda {
namespace {

struct Dropout {
  bool on;
  uint64_t seed, threshold;
  double keep_scale;
};

Dropout dropout_of(double p, int64_t seed) {
  return {p > 0, static_cast<uint64_t>(seed), concat_elu::dropout_threshold(p),
          concat_elu::dropout_keep_scale(p)};
}

template <typename T>
__device__ __forceinline__ T factor(const Dropout& d, int64_t index) {
  return d.on ? concat_elu::dropout_factor<T>(d.seed, static_cast<uint64_t>(index), d.threshold,
                                              static_cast<T>(d.keep_scale))
              : T(1);
}

// Offset in the output of input element i's elu(x) value (its elu(-x) value is N further on).
__device__ __forceinline__ int64_t pos_offset(int64_t i, int64_t N) { return i + (i / N) * N; }

template <typename T>
__global__ void forward_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t n, int64_t N,
                               Dropout d) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t k = pos_offset(i, N);
    T pos, neg;
    concat_elu::Element<ScalarOps<T>>::forward(x[i], pos, neg);
    out[k] = pos * factor<T>(d, k);
    out[k + N] = neg * factor<T>(d, k + N);
  }
}

struct Padded {
  int64_t C, H, W, left, top, Hp, Wp;
};

// x as [B, C, H, W] in an output of [B, 2C, Hp, Wp]; without a pad, x as [B, 1, 1, N] (N its
// elements per batch row), whose output [B, 2, 1, N] is the dense layout [B, 2N].
Padded padded_of(const at::Tensor& x, at::IntArrayRef pad) {
  if (pad.empty()) {
    const int64_t N = x.numel() / x.size(0);
    return {1, 1, N, 0, 0, 1, N};
  }
  const int64_t H = x.size(2), W = x.size(3);
  return {x.size(1), H, W, pad[0], pad[2], pad[2] + H + pad[3], pad[0] + W + pad[1]};
}

// Output element k of [B, 2C, Hp, Wp]: zero in the border, else one half of its input's value.
template <typename T>
__global__ void forward_padded_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t n,
                                      Padded s, Dropout d) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(blockDim.x) * gridDim.x) {
    const int64_t w = k % s.Wp - s.left, h = (k / s.Wp) % s.Hp - s.top;
    if (w < 0 || w >= s.W || h < 0 || h >= s.H) {
      out[k] = T(0);
      continue;
    }
    const int64_t c2 = (k / (s.Wp * s.Hp)) % (2 * s.C), b = k / (s.Wp * s.Hp * 2 * s.C);
    const int64_t c = c2 < s.C ? c2 : c2 - s.C;
    T pos, neg;
    concat_elu::Element<ScalarOps<T>>::forward(x[((b * s.C + c) * s.H + h) * s.W + w], pos, neg);
    const int64_t index = ((b * 2 * s.C + c2) * s.H + h) * s.W + w;  // unpadded
    out[k] = (c2 < s.C ? pos : neg) * factor<T>(d, index);
  }
}

// Input element i of [B, C, H, W], its gradients read from the padded output's interior (both
// layouts: see padded_of).
template <typename T>
__global__ void backward_padded_kernel(const T* __restrict__ grad, const T* __restrict__ x,
                                       T* __restrict__ grad_x, int64_t n, Padded s, Dropout d) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t w = i % s.W, h = (i / s.W) % s.H, c = (i / (s.W * s.H)) % s.C;
    const int64_t b = i / (s.W * s.H * s.C);
    const int64_t gk = ((b * 2 * s.C + c) * s.Hp + h + s.top) * s.Wp + w + s.left;
    const int64_t k = ((b * 2 * s.C + c) * s.H + h) * s.W + w;  // unpadded
    const int64_t plane = s.C * s.Hp * s.Wp, unpadded_plane = s.C * s.H * s.W;
    grad_x[i] = concat_elu::Element<ScalarOps<T>>::backward(
        grad[gk] * factor<T>(d, k), grad[gk + plane] * factor<T>(d, k + unpadded_plane), x[i]);
  }
}

// Channels last: x [B, H, W, C] in memory, out [B, Hp, Wp, 2C]; output element k, zero in the
// border, else one half of its input's value (the stream counting the NCHW output's elements).
template <typename T>
__global__ void forward_channels_last_kernel(const T* __restrict__ x, T* __restrict__ out,
                                             int64_t n, Padded s, Dropout d) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(blockDim.x) * gridDim.x) {
    const int64_t c2 = k % (2 * s.C), w = (k / (2 * s.C)) % s.Wp - s.left;
    const int64_t h = (k / (2 * s.C * s.Wp)) % s.Hp - s.top, b = k / (2 * s.C * s.Wp * s.Hp);
    if (w < 0 || w >= s.W || h < 0 || h >= s.H) {
      out[k] = T(0);
      continue;
    }
    const int64_t c = c2 < s.C ? c2 : c2 - s.C;
    T pos, neg;
    concat_elu::Element<ScalarOps<T>>::forward(x[((b * s.H + h) * s.W + w) * s.C + c], pos, neg);
    const int64_t index = ((b * 2 * s.C + c2) * s.H + h) * s.W + w;  // NCHW, unpadded
    out[k] = (c2 < s.C ? pos : neg) * factor<T>(d, index);
  }
}

// Input element i of x [B, H, W, C] in memory, its gradients read from the output's interior.
template <typename T>
__global__ void backward_channels_last_kernel(const T* __restrict__ grad, const T* __restrict__ x,
                                              T* __restrict__ grad_x, int64_t n, Padded s,
                                              Dropout d) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t c = i % s.C, w = (i / s.C) % s.W, h = (i / (s.C * s.W)) % s.H;
    const int64_t b = i / (s.C * s.W * s.H);
    const int64_t gk = ((b * s.Hp + h + s.top) * s.Wp + w + s.left) * 2 * s.C + c;
    const int64_t k = ((b * 2 * s.C + c) * s.H + h) * s.W + w;  // NCHW, unpadded
    grad_x[i] = concat_elu::Element<ScalarOps<T>>::backward(
        grad[gk] * factor<T>(d, k), grad[gk + s.C] * factor<T>(d, k + s.C * s.H * s.W), x[i]);
  }
}

// A 4-D x's shape and border (none when pad is empty), for the kernels over output elements.
Padded image_padding_of(const at::Tensor& x, at::IntArrayRef pad) {
  const int64_t H = x.size(2), W = x.size(3);
  if (pad.empty()) return {x.size(1), H, W, 0, 0, H, W};
  return padded_of(x, pad);
}

at::Tensor forward(const at::Tensor& x, double p, int64_t seed, at::IntArrayRef pad) {
  constexpr const char* op = "concat_elu";
  check_concat_elu_inputs(x, p, op);
  check_concat_elu_pad(x, pad, op);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto layout = kernel_layout(x);
  auto out = at::empty(concat_elu_output_shape(x, pad), x.options().memory_format(layout));
  const int64_t n = x.numel();
  if (n == 0) return out.zero_();  // an empty x may still have a border
  const auto xc = x.contiguous(layout);
  const bool channels_last = is_channels_last(layout);
  if (channels_last || !pad.empty()) {  // one thread per output element, border included
    const int64_t n_out = out.numel();
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "concat_elu", [&] {
      const auto kernel = channels_last ? forward_channels_last_kernel<scalar_t>
                                        : forward_padded_kernel<scalar_t>;
      kernel<<<blocks_for(n_out), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
          xc.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), n_out,
          image_padding_of(x, pad), dropout_of(p, seed));
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return out;
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "concat_elu", [&] {
    forward_kernel<scalar_t><<<blocks_for(n), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        xc.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), n, n / x.size(0),
        dropout_of(p, seed));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor backward(const at::Tensor& grad, const at::Tensor& x, double p, int64_t seed,
                    at::IntArrayRef pad) {
  constexpr const char* op = "concat_elu_backward";
  check_concat_elu_inputs(x, p, op);
  check_concat_elu_pad(x, pad, op);
  check_concat_elu_grad(grad, x, pad, op);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto layout = kernel_layout(x);
  auto grad_x = at::empty(x.sizes(), x.options().memory_format(layout));
  const int64_t n = x.numel();
  if (n == 0) return grad_x;
  const auto g = grad.contiguous(layout), xc = x.contiguous(layout);
  if (is_channels_last(layout)) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "concat_elu_backward", [&] {
      backward_channels_last_kernel<scalar_t>
          <<<blocks_for(n), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
              g.const_data_ptr<scalar_t>(), xc.const_data_ptr<scalar_t>(),
              grad_x.mutable_data_ptr<scalar_t>(), n, image_padding_of(x, pad),
              dropout_of(p, seed));
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return grad_x;
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "concat_elu_backward", [&] {
    backward_padded_kernel<scalar_t>
        <<<blocks_for(n), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
            g.const_data_ptr<scalar_t>(), xc.const_data_ptr<scalar_t>(),
            grad_x.mutable_data_ptr<scalar_t>(), n, padded_of(x, pad), dropout_of(p, seed));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return grad_x;
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CUDA, m) {
  m.impl("concat_elu", &forward);
  m.impl("concat_elu_backward", &backward);
}

}  // namespace cuda
}  // namespace gen_ext
