#pragma once
// Whether this compiler builds the AVX2 variant of the CPU kernels. Preprocessor only: the AVX2
// file includes it before its target pragma.
#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(_M_X64))
#define GEN_EXT_BUILD_AVX2 1
#else
#define GEN_EXT_BUILD_AVX2 0
#endif
