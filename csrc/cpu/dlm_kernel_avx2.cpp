// AVX2+FMA build of the CPU kernels, chosen at run time when the processor has them. The target
// pragma (rather than a per-file flag, which setuptools cannot express) must come before any
// other include so the at::vec AVX2 intrinsics are available.
#include "capability.h"
#if GEN_EXT_BUILD_AVX2
#pragma GCC target("avx2,fma,f16c")
// The pragma enables the instructions but not the feature macros that headers (Sleef's among
// them) test to declare their AVX2 entry points, so they are stated here.
#ifndef __AVX__
#define __AVX__ 1
#endif
#ifndef __AVX2__
#define __AVX2__ 1
#endif
#ifndef __FMA__
#define __FMA__ 1
#endif
#ifndef __F16C__
#define __F16C__ 1
#endif
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#include "dlm_kernel_impl.h"
#endif
