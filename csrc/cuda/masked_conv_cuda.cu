// CUDA kernels of the masked convolution over the shared mask (gen_ext/pixelcnn_mask.h): one
// thread per output (or input-gradient) element looping over the kept taps and, at the centre,
// the colour mask's channel range only; one block per weight element for the weight gradient,
// a block reduction in a fixed order so results do not vary run to run. A masked tap is never
// read or multiplied.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <optional>
#include <string>
#include <tuple>

#include "../masked_conv_checks.h"
#include "gen_ext/pixelcnn_mask.h"
#include "launch.h"

namespace gen_ext {
namespace cuda {
namespace {

struct Dims {
  int64_t B, H, W;
};

template <typename T>
__global__ void masked_conv_forward_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                           const T* __restrict__ bias, PixelCnnMask m, Dims d,
                                           T* __restrict__ out) {
  const int64_t n = d.B * m.out_channels * d.H * d.W;
  const int64_t cr = m.centre_row(), cc = m.centre_col();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t px = i % d.W, py = (i / d.W) % d.H, co = (i / (d.W * d.H)) % m.out_channels;
    const int64_t b = i / (d.W * d.H * m.out_channels);
    T acc = bias != nullptr ? bias[co] : T(0);
    for (int64_t dy = 0; dy <= cr; ++dy) {
      const int64_t sy = py + dy - cr;
      if (sy < 0) continue;
      for (int64_t dx = 0; dx < m.kw; ++dx) {
        const int64_t sx = px + dx - cc;
        if (sx < 0 || sx >= d.W) continue;
        const int64_t ci_end = m.tap_open(dy, dx) ? m.in_channels
                               : m.is_centre(dy, dx) ? m.centre_in_end(co) : 0;
        for (int64_t ci = 0; ci < ci_end; ++ci) {
          acc += x[((b * m.in_channels + ci) * d.H + sy) * d.W + sx] *
                 w[((co * m.in_channels + ci) * m.kh + dy) * m.kw + dx];
        }
      }
    }
    out[i] = acc;
  }
}

template <typename T>
__global__ void masked_conv_input_grad_kernel(const T* __restrict__ grad, const T* __restrict__ w,
                                              PixelCnnMask m, Dims d, T* __restrict__ grad_x) {
  const int64_t n = d.B * m.in_channels * d.H * d.W;
  const int64_t cr = m.centre_row(), cc = m.centre_col();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t px = i % d.W, py = (i / d.W) % d.H, ci = (i / (d.W * d.H)) % m.in_channels;
    const int64_t b = i / (d.W * d.H * m.in_channels);
    T acc = T(0);
    for (int64_t dy = 0; dy <= cr; ++dy) {
      const int64_t oy = py - dy + cr;  // the output that reads this input through tap (dy, dx)
      if (oy >= d.H) continue;
      for (int64_t dx = 0; dx < m.kw; ++dx) {
        const int64_t ox = px - dx + cc;
        if (ox < 0 || ox >= d.W) continue;
        const int64_t co_begin = m.tap_open(dy, dx) ? 0
                                 : m.is_centre(dy, dx) ? m.centre_out_begin(ci) : m.out_channels;
        for (int64_t co = co_begin; co < m.out_channels; ++co) {
          acc += grad[((b * m.out_channels + co) * d.H + oy) * d.W + ox] *
                 w[((co * m.in_channels + ci) * m.kh + dy) * m.kw + dx];
        }
      }
    }
    grad_x[i] = acc;
  }
}

// One block per weight element (co, ci, dy, dx); masked elements get zero.
template <typename T>
__global__ void masked_conv_weight_grad_kernel(const T* __restrict__ grad, const T* __restrict__ x,
                                               PixelCnnMask m, Dims d, T* __restrict__ grad_w) {
  __shared__ T partial[kThreads];
  const int64_t e = blockIdx.x;
  const int64_t dx = e % m.kw, dy = (e / m.kw) % m.kh, ci = (e / (m.kw * m.kh)) % m.in_channels;
  const int64_t co = e / (m.kw * m.kh * m.in_channels);
  if (!m.kept(co, ci, dy, dx)) {
    if (threadIdx.x == 0) grad_w[e] = T(0);
    return;
  }
  const int64_t pixels = d.B * d.H * d.W;
  T acc = T(0);
  for (int64_t p = threadIdx.x; p < pixels; p += blockDim.x) {
    const int64_t px = p % d.W, py = (p / d.W) % d.H, b = p / (d.W * d.H);
    const int64_t sy = py + dy - m.centre_row(), sx = px + dx - m.centre_col();
    if (sy < 0 || sx < 0 || sx >= d.W) continue;
    acc += grad[((b * m.out_channels + co) * d.H + py) * d.W + px] *
           x[((b * m.in_channels + ci) * d.H + sy) * d.W + sx];
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) grad_w[e] = partial[0];
}

at::Tensor forward(const at::Tensor& x, const at::Tensor& weight,
                   const std::optional<at::Tensor>& bias_opt, c10::string_view mask_type,
                   int64_t color_channels) {
  const at::Tensor bias = bias_opt.has_value() ? *bias_opt : at::Tensor();
  const auto m = check_masked_conv_inputs(x, weight, bias, std::string(mask_type),
                                          color_channels, "masked_conv2d");
  const c10::cuda::CUDAGuard guard(x.device());
  const Dims d{x.size(0), x.size(2), x.size(3)};
  auto out = at::empty({d.B, m.out_channels, d.H, d.W}, x.options());
  const int64_t n = out.numel();
  if (n == 0) return out;
  const auto xc = x.contiguous(), wc = weight.contiguous();
  const at::Tensor bc = bias.defined() ? bias.contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "masked_conv2d", [&] {
    masked_conv_forward_kernel<scalar_t><<<blocks_for(n), kThreads, 0,
                                           c10::cuda::getCurrentCUDAStream()>>>(
        xc.const_data_ptr<scalar_t>(), wc.const_data_ptr<scalar_t>(),
        bc.defined() ? bc.const_data_ptr<scalar_t>() : nullptr, m, d,
        out.mutable_data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad, const at::Tensor& x,
                                            const at::Tensor& weight, c10::string_view mask_type,
                                            int64_t color_channels) {
  const char* op = "masked_conv2d_backward";
  const auto m = check_masked_conv_inputs(x, weight, at::Tensor(), std::string(mask_type),
                                          color_channels, op);
  check_masked_conv_grad(grad, x, weight, op);
  const c10::cuda::CUDAGuard guard(x.device());
  const Dims d{x.size(0), x.size(2), x.size(3)};
  auto grad_x = at::empty(x.sizes(), x.options());
  auto grad_w = at::zeros(weight.sizes(), weight.options());
  if (d.B * d.H * d.W == 0 || m.out_channels == 0 || m.in_channels == 0) {
    return {grad_x.zero_(), grad_w};
  }
  const auto gc = grad.contiguous(), xc = x.contiguous(), wc = weight.contiguous();
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "masked_conv2d_backward", [&] {
    masked_conv_input_grad_kernel<scalar_t><<<blocks_for(grad_x.numel()), kThreads, 0, stream>>>(
        gc.const_data_ptr<scalar_t>(), wc.const_data_ptr<scalar_t>(), m, d,
        grad_x.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    masked_conv_weight_grad_kernel<scalar_t><<<grad_w.numel(), kThreads, 0, stream>>>(
        gc.const_data_ptr<scalar_t>(), xc.const_data_ptr<scalar_t>(), m, d,
        grad_w.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {grad_x, grad_w};
}

}  // namespace

TORCH_LIBRARY_IMPL(gen_ext, CUDA, m) {
  m.impl("masked_conv2d", &forward);
  m.impl("masked_conv2d_backward", &backward);
}

}  // namespace cuda
}  // namespace gen_ext
