#pragma once
// Launch shape shared by the CUDA kernels: 256 threads a block, and enough blocks for a
// grid-stride loop over n elements (capped; the loops cover the rest).
#include <algorithm>
#include <cstdint>

namespace gen_ext {
namespace cuda {

constexpr int kThreads = 256;

inline int blocks_for(int64_t n) {
  return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535 * 8));
}

}  // namespace cuda
}  // namespace gen_ext
