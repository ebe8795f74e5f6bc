"""Keeping the memory a training process frees, instead of handing it back to the system.

glibc's allocator returns freed memory to the system: large blocks (each a few MB of activations
and gradients) are unmapped on free, and the top of the heap is trimmed. The next step then
allocates the same sizes again and faults every page of them in anew. Measured on PixelCNN++ at
the benchmark's size (2-core Intel Xeon, 2026-12-04, 20 steps after 2 of warm-up): one step in
five took 2.0-2.5 s instead of 1.6 s, median 1.62-1.67 s with an IQR of 7-9% of it; with freed
memory kept, 1.52 s with an IQR of 2%. The price: the process keeps its peak footprint until it
ends, which a training run reaches every step anyway. `gen-ext train` and `gen-ext bench` call
keep_freed_cpu_memory() before their first step (bench: before any implementation runs, so all
of them get it); a script of one's own calls it once at the start.
"""

import ctypes
import ctypes.util
import functools

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# freed memory at the top of the heap is returned to the system only above this much (bytes)
KEEP_UP_TO = 2**31 - 1  # 2 GB, the most mallopt takes (an int): freed memory is kept below it


@functools.cache
def _mallopt():
    """glibc's mallopt(param, value) -> int, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt


def set_malloc_option(param: int, value: int) -> bool:
    """mallopt(param, value) (malloc.h's M_* parameters); False where refused or not glibc."""
    mallopt = _mallopt()
    return mallopt is not None and bool(mallopt(param, value))


@functools.cache
def keep_freed_cpu_memory() -> bool:
    """Has glibc serve every allocation from its heap (no per-block mmap) and never trim it, for
    the rest of the process. True when done; False where the C library is not glibc or refused
    (nothing changes then)."""
    trim = set_malloc_option(M_TRIM_THRESHOLD, KEEP_UP_TO)
    return set_malloc_option(M_MMAP_MAX, 0) and trim
