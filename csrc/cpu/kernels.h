#pragma once
// The per-instruction-set builds of the CPU kernels (kernels_<isa>.cpp), declared for the
// entry points (dlm_cpu.cpp, gaussian_cpu.cpp, masked_conv_cpu.cpp, shifted_conv_cpu.cpp,
// gated_cpu.cpp, concat_elu_cpu.cpp, diagonal_lstm_cpu.cpp, wavenet_step_cpu.cpp,
// langevin_cpu.cpp).
#include <ATen/core/Tensor.h>

#include <string>

#include "capability.h"
#include "masked_conv_plan.h"

namespace gen_ext {
namespace cpu {
#define GEN_EXT_DECLARE_KERNELS(CAP)                                                       \
  namespace CAP {                                                                              \
  void dlm_nll_forward(const at::Tensor& x, const at::Tensor& params, at::Tensor& out,         \
                       int64_t num_bins);                                                      \
  void dlm_nll_with_grad(const at::Tensor& x, const at::Tensor& params, int64_t num_bins,     \
                         at::Tensor& out, at::Tensor& grad_x, at::Tensor& grad_params);        \
  void dlm_nll_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& params, \
                        int64_t num_bins, at::Tensor& grad_x, at::Tensor& grad_params);        \
  void dlm_sample(const at::Tensor& params, const at::Tensor& noise_mixture,                   \
                  const at::Tensor& noise_logistic, int64_t num_channels, int64_t num_bins,    \
                  at::Tensor& out);                                                            \
  void gaussian_forward(const at::Tensor& mu, const at::Tensor& logvar, const at::Tensor& eps, \
                        int64_t seed, at::Tensor& z, at::Tensor& kl);                          \
  void gaussian_backward(const at::Tensor& grad_z, const at::Tensor& grad_kl,                  \
                         const at::Tensor& mu, const at::Tensor& logvar, const at::Tensor& eps, \
                         int64_t seed, at::Tensor& grad_mu, at::Tensor& grad_logvar,           \
                         at::Tensor& grad_eps);                                                \
  void gaussian_noise(int64_t seed, at::Tensor& out);                                          \
  void masked_conv_gemm_rows(const at::Tensor& src, const at::Tensor& packed,                  \
                             const ::gen_ext::cpu::TapPlan& plan, const at::Tensor& bias,      \
                             bool exact_edges, at::Tensor& dst);                               \
  void masked_conv_weight_grad(const at::Tensor& src, const at::Tensor& grad,                  \
                               const ::gen_ext::cpu::TapPlan& plan, at::Tensor& grad_packed);  \
  void to_channels_last(const at::Tensor& src, at::Tensor& dst);                               \
  void gated_forward(const at::Tensor& x, const at::Tensor& residual, at::Tensor& out);        \
  void gated_backward(const at::Tensor& grad, const at::Tensor& x, at::Tensor& grad_x);        \
  void concat_elu_forward(const at::Tensor& x, double p, int64_t seed, at::IntArrayRef pad,     \
                          bool channels_last, at::Tensor& out);                                \
  void concat_elu_backward(const at::Tensor& grad, const at::Tensor& x, double p, int64_t seed, \
                           at::IntArrayRef pad, bool channels_last, at::Tensor& grad_x);       \
  void diagonal_lstm_forward(const at::Tensor& i2s_pm, const at::Tensor& wt, at::Tensor& h_pm,   \
                             at::Tensor& c_pm);                                                \
  void diagonal_lstm_backward(const at::Tensor& grad_h_pm, const at::Tensor& grad_c_pm,         \
                              const at::Tensor& i2s_pm, const at::Tensor& wt,                  \
                              const at::Tensor& wn, const at::Tensor& h_pm,                    \
                              const at::Tensor& c_pm, at::Tensor& d_i2s_pm, at::Tensor& dwt);  \
  void wavenet_step(const at::Tensor& x, at::Tensor& cache, int64_t step, int64_t dilation,      \
                    const at::Tensor& weight_taps, const at::Tensor& bias,                     \
                    const at::Tensor& cond, const at::Tensor& out_weight,                      \
                    const at::Tensor& out_bias, at::Tensor& residual, at::Tensor& skip);       \
  void langevin_step(const at::Tensor& x, const at::Tensor& grad, double step_size,             \
                     double noise_scale, bool has_lo, double lo, bool has_hi, double hi,       \
                     int64_t seed, at::Tensor& out);                                           \
  }
GEN_EXT_DECLARE_KERNELS(DEFAULT)
#if GEN_EXT_BUILD_AVX2
GEN_EXT_DECLARE_KERNELS(AVX2)
#endif
#if GEN_EXT_BUILD_AVX512
GEN_EXT_DECLARE_KERNELS(AVX512)
#endif
#undef GEN_EXT_DECLARE_KERNELS

enum class Isa { kDefault, kAvx2, kAvx512 };

// The widest build both compiled and supported by this processor, lowered by the environment
// variable GEN_EXT_CPU_CAPABILITY (default, avx2 or avx512; read on every call, so tests can
// exercise each build in one process).
Isa kernel_isa();
const char* isa_name(Isa isa);
// Elements of this dtype in one vector of the kernels kernel_isa() selects.
int64_t vector_lanes(at::ScalarType dtype);
// isa_name(kernel_isa()), for gen_ext::cpu_capability().
std::string cpu_capability();

// Calls fn with the namespace's kernels chosen by kernel_isa(): fn(DEFAULT-like tag).
#define GEN_EXT_DISPATCH_ISA(CALL)                                     \
  do {                                                                 \
    switch (::gen_ext::cpu::kernel_isa()) {                            \
      GEN_EXT_ISA_CASE_AVX512(CALL)                                    \
      GEN_EXT_ISA_CASE_AVX2(CALL)                                      \
      default:                                                         \
        ::gen_ext::cpu::DEFAULT::CALL;                                 \
    }                                                                  \
  } while (0)
#if GEN_EXT_BUILD_AVX512
#define GEN_EXT_ISA_CASE_AVX512(CALL) \
  case ::gen_ext::cpu::Isa::kAvx512:  \
    ::gen_ext::cpu::AVX512::CALL;     \
    break;
#else
#define GEN_EXT_ISA_CASE_AVX512(CALL)
#endif
#if GEN_EXT_BUILD_AVX2
#define GEN_EXT_ISA_CASE_AVX2(CALL) \
  case ::gen_ext::cpu::Isa::kAvx2:  \
    ::gen_ext::cpu::AVX2::CALL;     \
    break;
#else
#define GEN_EXT_ISA_CASE_AVX2(CALL)
#endif
}  // namespace cpu
}  // namespace gen_ext
