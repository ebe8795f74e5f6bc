// AVX2+FMA build of the CPU kernels, chosen at run time when the processor has them. The target
// pragma (rather than a per-file flag, which setuptools cannot express) must come before any
// other include so the at::vec AVX2 intrinsics are available.
#include "capability.h"
#if GEN_EXT_BUILD_AVX2
#pragma GCC target("avx2,fma,f16c")
#include "avx2_feature_macros.h"
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#include "kernels_impl.h"
#endif
