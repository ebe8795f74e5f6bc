// AVX-512 (F, BW, VL, DQ) build of the CPU kernels, chosen at run time when the processor has
// them; see kernels_avx2.cpp for why the target is set by pragma.
#include "capability.h"
#if GEN_EXT_BUILD_AVX512
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#include "avx2_feature_macros.h"
#ifndef __AVX512F__
#define __AVX512F__ 1
#endif
#ifndef __AVX512BW__
#define __AVX512BW__ 1
#endif
#ifndef __AVX512VL__
#define __AVX512VL__ 1
#endif
#ifndef __AVX512DQ__
#define __AVX512DQ__ 1
#endif
#define CPU_CAPABILITY AVX512
#define CPU_CAPABILITY_AVX512
#include "kernels_impl.h"
#endif
