#pragma once
// Lets one inline function serve the CPU kernels and the CUDA kernels.
#if defined(__CUDACC__) || defined(__HIPCC__)
#define GEN_EXT_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define GEN_EXT_HOST_DEVICE inline
#endif
