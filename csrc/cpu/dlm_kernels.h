#pragma once
// The per-instruction-set builds of the CPU kernels (dlm_kernel_impl.h), declared for the
// dispatcher in dlm_cpu.cpp.
#include <ATen/core/Tensor.h>

#include "capability.h"

namespace gen_ext {
namespace cpu {
#define GEN_EXT_DECLARE_DLM_KERNELS(CAP)                                                       \
  namespace CAP {                                                                              \
  void dlm_nll_forward(const at::Tensor& x, const at::Tensor& params, at::Tensor& out,         \
                       int64_t num_bins);                                                      \
  void dlm_nll_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& params, \
                        int64_t num_bins, at::Tensor& grad_x, at::Tensor& grad_params);        \
  }
GEN_EXT_DECLARE_DLM_KERNELS(DEFAULT)
#if GEN_EXT_BUILD_AVX2
GEN_EXT_DECLARE_DLM_KERNELS(AVX2)
#endif
#undef GEN_EXT_DECLARE_DLM_KERNELS
}  // namespace cpu
}  // namespace gen_ext
