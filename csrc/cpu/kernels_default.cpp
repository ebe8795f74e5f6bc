// Portable build of the CPU kernels (at::vec's generic lanes).
#define CPU_CAPABILITY DEFAULT
#define CPU_CAPABILITY_DEFAULT
#include "kernels_impl.h"
