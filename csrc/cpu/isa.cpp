// Run-time choice among the instruction-set builds of the CPU kernels.
#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels.h"

namespace gen_ext {
namespace cpu {
namespace {

Isa processor_isa() {
#if GEN_EXT_BUILD_AVX512
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
    return Isa::kAvx512;
  }
#endif
#if GEN_EXT_BUILD_AVX2
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
#endif
  return Isa::kDefault;
}

Isa requested_isa() {
  const char* env = std::getenv("GEN_EXT_CPU_CAPABILITY");
  if (env == nullptr || *env == '\0') return Isa::kAvx512;
  if (std::strcmp(env, "default") == 0) return Isa::kDefault;
  if (std::strcmp(env, "avx2") == 0) return Isa::kAvx2;
  if (std::strcmp(env, "avx512") == 0) return Isa::kAvx512;
  TORCH_CHECK(false, "GEN_EXT_CPU_CAPABILITY must be one of default, avx2, avx512; got '", env,
              "'");
}

}  // namespace

Isa kernel_isa() {
  static const Isa supported = processor_isa();
  const Isa requested = requested_isa();
  return static_cast<int>(requested) < static_cast<int>(supported) ? requested : supported;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx2:
      return "avx2";
    default:
      return "default";
  }
}

std::string cpu_capability() { return isa_name(kernel_isa()); }

int64_t vector_lanes(at::ScalarType dtype) {
  // at::vec's vectors: 64 bytes under AVX-512, 32 under AVX2 and in the portable build
  const int64_t bytes = kernel_isa() == Isa::kAvx512 ? 64 : 32;
  return bytes / static_cast<int64_t>(c10::elementSize(dtype));
}

}  // namespace cpu
}  // namespace gen_ext
