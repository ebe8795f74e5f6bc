#pragma once
// Argument checks of the discretized logistic mixture ops, shared by the CPU and CUDA kernels.
// The fake kernels in gen_ext/ops/dlm.py check the same shapes with the same messages.
#include <ATen/core/Tensor.h>
#include <ATen/ops/aminmax.h>
#include <c10/util/Exception.h>

#include "dlm_shapes.h"
#include "gen_ext/dlm_math.h"

namespace gen_ext {

inline void check_dlm_dtype(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, op, ": ", name,
              " must be float32 or float64, got ", t.scalar_type());
}

inline void check_dlm_num_bins(int64_t num_bins, const char* op) {
  TORCH_CHECK(num_bins >= 2, op, ": num_bins must be at least 2, got ", num_bins);
}

// params [B, P, *spatial] against a data shape [B, C, *spatial]; returns M.
inline int64_t check_dlm_params(const at::Tensor& params, at::IntArrayRef data_shape,
                                int64_t channels, const char* op) {
  check_dlm_dtype(params, op, "params");
  TORCH_CHECK(params.dim() == static_cast<int64_t>(data_shape.size()), op,
              ": params must have the same number of dimensions as x ([B, P, *spatial] against [B, C, "
              "*spatial]), got params of shape ",
              params.sizes(), " and x of shape ", data_shape);
  TORCH_CHECK(params.size(0) == data_shape[0], op, ": params and x must have the same batch size, got ",
              params.size(0), " and ", data_shape[0]);
  for (size_t d = 2; d < data_shape.size(); ++d) {
    TORCH_CHECK(params.size(d) == data_shape[d], op,
                ": params and x must have the same spatial shape, got params of shape ",
                params.sizes(), " and x of shape ", data_shape);
  }
  const int64_t per = dlm::params_per_component(channels);
  const int64_t P = params.size(1);
  TORCH_CHECK(P > 0 && P % per == 0, op, ": params must have ", per, "*M channels for ", channels,
              "-channel data (M mixture components), got ", P);
  return P / per;
}

inline int64_t check_dlm_nll_inputs(const at::Tensor& x, const at::Tensor& params, int64_t num_bins,
                                    const char* op) {
  check_dlm_num_bins(num_bins, op);
  check_dlm_dtype(x, op, "x");
  TORCH_CHECK(x.dim() >= 2, op, ": x must have shape [B, C, *spatial], got ", x.sizes());
  const int64_t C = x.size(1);
  TORCH_CHECK(C == 1 || C == 3, op, ": x must have 1 or 3 channels, got ", C);
  TORCH_CHECK(params.device() == x.device(), op, ": params and x must be on the same device, got ",
              params.device(), " and ", x.device());
  TORCH_CHECK(params.scalar_type() == x.scalar_type(), op,
              ": params and x must have the same dtype, got ", params.scalar_type(), " and ",
              x.scalar_type());
  return check_dlm_params(params, x.sizes(), C, op);
}

// The incoming gradient of the NLL, [B, *spatial].
inline void check_dlm_nll_grad(const at::Tensor& grad, const at::Tensor& x,
                               const char* op) {
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(position_shape(x.sizes())), op,
              ": grad must have shape [B, *spatial] = ", position_shape(x.sizes()), ", got ",
              grad.sizes());
  TORCH_CHECK(grad.scalar_type() == x.scalar_type() && grad.device() == x.device(), op,
              ": grad must match x in dtype and device, got ", grad.scalar_type(), " on ",
              grad.device());
}

// One reduction over x (a device sync on a GPU); the kernels assume data on [-1, 1].
inline void check_dlm_x_range(const at::Tensor& x, const char* op) {
  if (x.numel() == 0) return;
  const auto [min, max] = at::aminmax(x);
  const double lo = min.item<double>();
  const double hi = max.item<double>();
  TORCH_CHECK(lo >= -1.0 && hi <= 1.0, op, ": x must lie in [-1, 1], got values in [", lo, ", ",
              hi, "]");
}

// The sampler's arguments; returns M.
inline int64_t check_dlm_sample_inputs(const at::Tensor& params, const at::Tensor& noise_mixture,
                                const at::Tensor& noise_logistic, int64_t num_channels,
                                int64_t num_bins) {
  constexpr const char* op = "discretized_logistic_mixture_sample";
  check_dlm_num_bins(num_bins, op);
  TORCH_CHECK(num_channels == 1 || num_channels == 3, op, ": num_channels must be 1 or 3, got ",
              num_channels);
  TORCH_CHECK(params.dim() >= 2, op, ": params must have shape [B, P, *spatial], got ",
              params.sizes());
  const auto data_shape = with_channels(params.sizes(), num_channels);
  const int64_t M = check_dlm_params(params, data_shape, num_channels, op);
  const auto mix_shape = with_channels(params.sizes(), M);
  TORCH_CHECK(noise_mixture.sizes() == at::IntArrayRef(mix_shape), op,
              ": noise_mixture must have shape [B, M, *spatial] = ", mix_shape, ", got ",
              noise_mixture.sizes());
  TORCH_CHECK(noise_logistic.sizes() == at::IntArrayRef(data_shape), op,
              ": noise_logistic must have shape [B, C, *spatial] = ", data_shape, ", got ",
              noise_logistic.sizes());
  for (const auto* t : {&noise_mixture, &noise_logistic}) {
    TORCH_CHECK(t->scalar_type() == params.scalar_type() && t->device() == params.device(), op,
                ": noise must match params in dtype and device (", params.scalar_type(), " on ",
                params.device(), "), got ", t->scalar_type(), " on ", t->device());
  }
  return M;
}

}  // namespace gen_ext
