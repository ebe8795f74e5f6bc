// Dilated causal 1-D convolution: one GEMM per tap between that tap's weight and the shifted
// view of x, accumulated into the shifted view of the output (no padded copy of x; a tap whose
// shift reaches past the sequence's start adds nothing there, so a non-finite weight reaches only
// the outputs that read it). The body is device-generic ATen and is registered for both CPU and
// CUDA; what differs is the schedule: on the CPU one task per sample runs its taps one after the
// other while that sample's output is in cache (the GEMMs single-threaded inside the task), on
// other devices one batched GEMM per tap covers every sample. On the CPU each shape may instead
// run oneDNN's conv1d over a left-padded copy, whichever is faster there (cpu/conv_path.h).
#include <ATen/Parallel.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/baddbmm.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/constant_pad_nd.h>
#include <ATen/ops/conv1d.h>
#include <ATen/ops/convolution_backward.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>

#include "causal_conv1d_checks.h"
#include "finite_checks.h"
#include "cpu/conv_path.h"

namespace gen_ext {
namespace {

// How far back tap k of K reads, (K-1-k)*d, or -1 where that is at least T (the tap reads no x
// for any output); computed without forming a product that could overflow.
int64_t tap_shift(int64_t k, int64_t K, int64_t dilation, int64_t T) {
  const int64_t back = K - 1 - k;
  if (back == 0) return 0;
  if (dilation >= (T + back - 1) / back) return -1;
  return back * dilation;
}

// One task per sample on the CPU, when there are enough samples to share out; otherwise the
// batched GEMMs, threaded inside.
// (measured at WaveNet's sizes on the CPU: the per-sample tasks 1.5-3x faster than the batched
// GEMMs, whose every tap streams the whole output through memory again)
bool per_sample_schedule(const at::Tensor& x) {
  return x.is_cpu() && x.size(0) >= at::get_num_threads();
}

// Samples per task: enough multiply-adds (about 2^18) that a task outweighs its scheduling.
int64_t sample_grain(int64_t macs_per_sample) {
  return std::max<int64_t>(1, (int64_t{1} << 18) / std::max<int64_t>(1, macs_per_sample));
}

// wt [K, C_out, C_in]: the taps' weights, each a contiguous matrix.
at::Tensor weight_taps(const at::Tensor& weight) { return weight.permute({2, 0, 1}).contiguous(); }

// The kernel: checked, non-empty inputs.
at::Tensor kernel_forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                          int64_t dilation) {
  const int64_t B = x.size(0), Cin = x.size(1), T = x.size(2);
  const int64_t Cout = weight.size(0), K = weight.size(2);
  const auto xc = x.contiguous();
  const auto wt = weight_taps(weight);
  const auto b = bias.defined() ? bias.contiguous().view({Cout, 1}) : at::Tensor();
  if (per_sample_schedule(x)) {
    auto out = at::empty({B, Cout, T}, x.options());
    at::parallel_for(0, B, sample_grain(K * Cout * Cin * T), [&](int64_t b0, int64_t b1) {
      // the pool's threads do not inherit the caller's place below autograd: without this the
      // ATen calls would go through autograd again (and refuse out= for inputs needing grad)
      const at::AutoDispatchBelowADInplaceOrView below_autograd;
      for (int64_t i = b0; i < b1; ++i) {
        const auto xi = xc.select(0, i);
        auto oi = out.select(0, i);
        // tap K-1 reads x at t itself: it covers every output, so it starts the sum
        if (b.defined()) {
          at::addmm_out(oi, b, wt.select(0, K - 1), xi);
        } else {
          at::mm_out(oi, wt.select(0, K - 1), xi);
        }
        for (int64_t k = 0; k + 1 < K; ++k) {
          const int64_t s = tap_shift(k, K, dilation, T);
          if (s < 0) continue;
          oi.narrow(1, s, T - s).addmm_(wt.select(0, k), xi.narrow(1, 0, T - s));
        }
      }
    });
    return out;
  }
  const auto tap = [&](int64_t k) { return wt.select(0, k).expand({B, Cout, Cin}); };
  auto out = b.defined() ? at::baddbmm(b.view({1, Cout, 1}).expand({B, Cout, T}), tap(K - 1), xc)
                         : at::bmm(tap(K - 1), xc);
  for (int64_t k = 0; k + 1 < K; ++k) {
    const int64_t s = tap_shift(k, K, dilation, T);
    if (s < 0) continue;
    out.narrow(2, s, T - s).baddbmm_(tap(k), xc.narrow(2, 0, T - s));
  }
  return out;
}

using Grads = std::tuple<at::Tensor, at::Tensor>;

// The kernel's input and weight gradients (those wanted; the others undefined): checked,
// non-empty inputs.
Grads kernel_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& weight,
                      int64_t dilation, bool want_x, bool want_weight) {
  const int64_t B = x.size(0), Cin = x.size(1), T = x.size(2);
  const int64_t Cout = weight.size(0), K = weight.size(2);
  at::Tensor grad_x, grad_weight;
  if (want_x) grad_x = at::empty({B, Cin, T}, x.options());
  const auto g = grad.contiguous();  // autograd may hand a stride-0 expanded gradient
  const auto xc = x.contiguous();
  const auto wt = weight_taps(weight);
  // the weight's gradient as [K, C_out, C_in], summed over the samples at the end (in a fixed
  // order, so the result does not depend on the number of threads)
  at::Tensor taps_grad;
  if (per_sample_schedule(x)) {
    const auto parts = want_weight ? at::empty({B, K, Cout, Cin}, x.options()) : at::Tensor();
    at::parallel_for(0, B, sample_grain(K * Cout * Cin * T), [&](int64_t b0, int64_t b1) {
      // the pool's threads do not inherit the caller's place below autograd: without this the
      // ATen calls would go through autograd again (and refuse out= for inputs needing grad)
      const at::AutoDispatchBelowADInplaceOrView below_autograd;
      for (int64_t i = b0; i < b1; ++i) {
        const auto gi = g.select(0, i), xi = xc.select(0, i);
        if (want_x) {
          auto gxi = grad_x.select(0, i);
          at::mm_out(gxi, wt.select(0, K - 1).t(), gi);
          for (int64_t k = 0; k + 1 < K; ++k) {
            const int64_t s = tap_shift(k, K, dilation, T);
            if (s < 0) continue;
            gxi.narrow(1, 0, T - s).addmm_(wt.select(0, k).t(), gi.narrow(1, s, T - s));
          }
        }
        if (want_weight) {
          for (int64_t k = 0; k < K; ++k) {
            auto part = parts.select(0, i).select(0, k);
            const int64_t s = tap_shift(k, K, dilation, T);
            if (s < 0) {
              part.zero_();
              continue;
            }
            at::mm_out(part, gi.narrow(1, s, T - s), xi.narrow(1, 0, T - s).t());
          }
        }
      }
    });
    if (want_weight) taps_grad = parts.sum(0);
  } else {
    if (want_x) {
      const auto tap_t = [&](int64_t k) { return wt.select(0, k).t().expand({B, Cin, Cout}); };
      grad_x = at::bmm(tap_t(K - 1), g);
      for (int64_t k = 0; k + 1 < K; ++k) {
        const int64_t s = tap_shift(k, K, dilation, T);
        if (s < 0) continue;
        grad_x.narrow(2, 0, T - s).baddbmm_(tap_t(k), g.narrow(2, s, T - s));
      }
    }
    if (want_weight) {
      taps_grad = at::zeros({K, Cout, Cin}, x.options());
      for (int64_t k = 0; k < K; ++k) {
        const int64_t s = tap_shift(k, K, dilation, T);
        if (s < 0) continue;
        taps_grad.select(0, k).copy_(
            at::bmm(g.narrow(2, s, T - s), xc.narrow(2, 0, T - s).transpose(1, 2)).sum(0));
      }
    }
  }
  if (want_weight) grad_weight = taps_grad.permute({1, 2, 0}).contiguous();
  return {grad_x, grad_weight};
}

// ---- the dense alternative on the CPU: oneDNN's conv1d over x padded with (K-1)d zeros ----
// It multiplies the padding's zeros by the weights (forward) and by the output gradient (the
// weight's gradient), which is exact while those are finite: a finite sum of the forward's
// results proves it (a non-finite weight makes some padded product NaN), and the backward checks
// the gradient first; otherwise the call runs the kernel, which matches the reference in every
// case. Offered only where every tap reads some x ((K-1)d < T), so the copy stays shorter than
// twice the sequence.

bool dense_offered(const at::Tensor& x, const at::Tensor& weight, int64_t dilation) {
  return x.is_cpu() && x.size(1) > 0 && weight.size(0) > 0 &&  // conv1d refuses empty channels
         tap_shift(0, weight.size(2), dilation, x.size(2)) >= 0;
}

// Identifies a call's shape for the path choice: everything the speed of either path depends on.
std::string path_key(const char* op, const at::Tensor& x, const at::Tensor& weight,
                     int64_t dilation, bool bias) {
  std::ostringstream key;
  key << op << " x[" << x.size(0) << "," << x.size(1) << "," << x.size(2) << "] out "
      << weight.size(0) << " K " << weight.size(2) << " d " << dilation << " "
      << c10::toString(x.scalar_type()) << (bias ? " bias" : "") << " " << at::get_num_threads()
      << " threads";
  return key.str();
}

int64_t left_padding(const at::Tensor& weight, int64_t dilation) {
  return (weight.size(2) - 1) * dilation;
}

// The dense forward, where a finite result proves it exact.
std::optional<at::Tensor> dense_forward(const at::Tensor& x, const at::Tensor& weight,
                                        const at::Tensor& bias, int64_t dilation) {
  const std::optional<at::Tensor> b = bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt;
  const auto padded = at::constant_pad_nd(x, {left_padding(weight, dilation), 0});
  auto out = at::conv1d(padded, weight, b, at::IntArrayRef{1}, at::IntArrayRef{0},
                        at::IntArrayRef{dilation})
                 .contiguous();
  if (!all_finite(out)) return std::nullopt;
  return out;
}

// The dense input and weight gradients (those wanted), where a finite output gradient proves
// them exact.
std::optional<Grads> dense_backward(const at::Tensor& grad, const at::Tensor& x,
                                    const at::Tensor& weight, int64_t dilation, bool want_x,
                                    bool want_weight) {
  if (!all_finite(grad)) return std::nullopt;
  const int64_t pad = left_padding(weight, dilation);
  auto [gx, gw, gb] = at::convolution_backward(
      grad, at::constant_pad_nd(x, {pad, 0}), weight, std::nullopt, at::IntArrayRef{1},
      at::IntArrayRef{0}, at::IntArrayRef{dilation}, false, at::IntArrayRef{0}, 1,
      {want_x, want_weight, false});
  return Grads{want_x ? gx.narrow(2, pad, x.size(2)).contiguous() : at::Tensor(),
               want_weight ? gw.contiguous() : at::Tensor()};
}

at::Tensor forward(const at::Tensor& x, const at::Tensor& weight,
                   const std::optional<at::Tensor>& bias_opt, int64_t dilation) {
  constexpr const char* op = "causal_conv1d";
  const at::Tensor bias = bias_opt.has_value() ? *bias_opt : at::Tensor();
  check_causal_conv1d_inputs(x, weight, bias, dilation, op);
  const int64_t B = x.size(0), Cout = weight.size(0), T = x.size(2);
  if (B == 0 || Cout == 0 || T == 0) return at::empty({B, Cout, T}, x.options());
  if (!dense_offered(x, weight, dilation)) return kernel_forward(x, weight, bias, dilation);
  return cpu::run_on_conv_path<at::Tensor>(
      [&] { return path_key(op, x, weight, dilation, bias.defined()); },
      [&] { return kernel_forward(x, weight, bias, dilation); },
      [&] { return dense_forward(x, weight, bias, dilation); });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(const at::Tensor& grad, const at::Tensor& x,
                                                        const at::Tensor& weight, int64_t dilation,
                                                        std::array<bool, 3> output_mask) {
  constexpr const char* op = "causal_conv1d_backward";
  check_causal_conv1d_inputs(x, weight, at::Tensor(), dilation, op);
  check_causal_conv1d_grad(grad, x, weight, op);
  const int64_t B = x.size(0), Cin = x.size(1), T = x.size(2);
  const auto [want_x, want_weight, want_bias] = output_mask;
  const auto none = [&] { return at::empty({0}, x.options()); };
  at::Tensor grad_x = none(), grad_weight = none();
  at::Tensor grad_bias = want_bias ? grad.sum(at::IntArrayRef{0, 2}) : none();
  if (B == 0 || T == 0) {
    if (want_x) grad_x = at::zeros({B, Cin, T}, x.options());
    if (want_weight) grad_weight = at::zeros(weight.sizes(), x.options());
    return {grad_x, grad_weight, grad_bias};
  }
  if (!want_x && !want_weight) return {grad_x, grad_weight, grad_bias};
  const auto [gx, gw] =
      !dense_offered(x, weight, dilation)
          ? kernel_backward(grad, x, weight, dilation, want_x, want_weight)
          : cpu::run_on_conv_path<Grads>(
                [&] { return path_key(op, x, weight, dilation, false); },
                [&] { return kernel_backward(grad, x, weight, dilation, want_x, want_weight); },
                [&] { return dense_backward(grad, x, weight, dilation, want_x, want_weight); });
  return {want_x ? gx : grad_x, want_weight ? gw : grad_weight, grad_bias};
}

}  // namespace

// The same device-generic body serves both keys (the CUDA registration is inert in a build
// whose torch has no CUDA).
TORCH_LIBRARY_IMPL(gen_ext, CPU, m) {
  m.impl("causal_conv1d", &forward);
  m.impl("causal_conv1d_backward", &backward);
}

TORCH_LIBRARY_IMPL(gen_ext, CUDA, m) {
  m.impl("causal_conv1d", &forward);
  m.impl("causal_conv1d_backward", &backward);
}

}  // namespace gen_ext
