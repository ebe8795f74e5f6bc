// AVX-512 (F, BW, VL, DQ) build of the CPU kernels, chosen at run time when the processor has
// them. The build compiles this file with -mavx512f -mavx512bw -mavx512vl -mavx512dq and the AVX2
// flags (build_config.ISA_FLAGS, CMakeLists.txt).
#include "capability.h"
#if GEN_EXT_BUILD_AVX512
#define CPU_CAPABILITY AVX512
#define CPU_CAPABILITY_AVX512
#include "kernels_impl.h"
#endif
