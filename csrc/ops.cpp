// Every schema of the gen_ext operator library. Kernels register per dispatch key in cpu/ and
// cuda/; autograd and fake (meta) kernels are registered from Python in gen_ext/ops/.
#include <torch/library.h>

#include "cpu/kernels.h"

TORCH_LIBRARY(gen_ext, m) {
  // The instruction-set build the CPU kernels run on this processor (default, avx2, avx512).
  m.def("cpu_capability() -> str", &gen_ext::cpu::cpu_capability);
  // Each family's fake kernels and autograd live in the Python module named before its schemas;
  // torch imports it when it needs them.
  m.set_python_module("gen_ext.ops.dlm");
  m.def("discretized_logistic_mixture_nll(Tensor x, Tensor params, int num_bins) -> Tensor");
  m.def(
      "discretized_logistic_mixture_nll_backward(Tensor grad, Tensor x, Tensor params, "
      "Tensor nll, int num_bins) -> (Tensor, Tensor)");
  m.def(
      "discretized_logistic_mixture_sample(Tensor params, Tensor noise_mixture, "
      "Tensor noise_logistic, int num_channels, int num_bins) -> Tensor");

  m.set_python_module("gen_ext.ops.gaussian");
  m.def("gaussian_reparameterize_kl(Tensor mu, Tensor logvar, Tensor eps) -> (Tensor, Tensor)");
  m.def(
      "gaussian_reparameterize_kl_backward(Tensor grad_z, Tensor grad_kl, Tensor mu, "
      "Tensor logvar, Tensor eps) -> (Tensor, Tensor, Tensor)");
}
