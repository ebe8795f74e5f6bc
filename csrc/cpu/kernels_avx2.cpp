// AVX2+FMA build of the CPU kernels, chosen at run time when the processor has them. The build
// compiles this file with -mavx2 -mfma -mf16c (build_config.ISA_FLAGS, CMakeLists.txt).
#include "capability.h"
#if GEN_EXT_BUILD_AVX2
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#include "kernels_impl.h"
#endif
