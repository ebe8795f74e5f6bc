#pragma once
// Which instruction-set builds of the CPU kernels this compiler makes. Preprocessor only; the
// per-ISA files are compiled with their own -m flags (build_config.ISA_FLAGS).
#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(_M_X64))
#define GEN_EXT_BUILD_AVX2 1
#define GEN_EXT_BUILD_AVX512 1
#else
#define GEN_EXT_BUILD_AVX2 0
#define GEN_EXT_BUILD_AVX512 0
#endif
