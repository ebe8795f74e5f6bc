#pragma once
// The memory layout the elementwise kernels (concat-ELU, gated activation) read, compute and
// return in: channels last for a 4-D tensor stored that way (torch's suggest_memory_format, which
// gen_ext/ops/memory_layout.py mirrors for the fake kernels), else contiguous NCHW. A
// channels-last model then stays channels last from one convolution to the next, with no copy.
#include <ATen/core/Tensor.h>

namespace gen_ext {

inline at::MemoryFormat kernel_layout(const at::Tensor& x) {
  return x.dim() == 4 ? x.suggest_memory_format() : at::MemoryFormat::Contiguous;
}

inline bool is_channels_last(at::MemoryFormat layout) {
  return layout == at::MemoryFormat::ChannelsLast;
}

}  // namespace gen_ext
