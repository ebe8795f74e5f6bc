#pragma once
// Lets one inline function serve the CPU kernels and the CUDA kernels.
#if defined(__CUDACC__) || defined(__HIPCC__)
#define GEN_EXT_HOST_DEVICE __host__ __device__ __forceinline__
#else
// Forced on the host too: the mixture kernels are one large function per instruction set, and
// past GCC's growth limits it would call even at::vec's one-instruction helpers out of line.
#define GEN_EXT_HOST_DEVICE inline __attribute__((always_inline))
#endif

// Full unrolling of a loop over a compile-time count (the colour channels), so that per-channel
// branches fold away.
#if defined(__CUDACC__) || defined(__HIPCC__) || defined(__clang__)
#define GEN_EXT_UNROLL _Pragma("unroll")
#else
#define GEN_EXT_UNROLL _Pragma("GCC unroll 4")
#endif
