"""torch.compile's on-disk cache kept apart per CPU capability, for the benchmark.

Inductor vectorizes its C++ for the capability ATen runs at (ATEN_CPU_CAPABILITY can hold it
below the processor's, as the README's AVX2 runs do), but torch 2.14.1's cache does not key its
compiled graphs on it: a graph compiled under ATEN_CPU_CAPABILITY=avx2 (8-lane loops) and found
again by a later process at AVX-512 (16-lane vectors) stored past its buffers there and aborted
the process ("double free or corruption"); the other way round, an index check failed. Each
capability gets a cache of its own, below inductor's default one, unless the user chose one.
"""

import os

import torch

VARIABLE = "TORCHINDUCTOR_CACHE_DIR"


def default_cache_dir() -> str:
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir as inductors

    return os.path.abspath(inductors())


def cache_dir_for_capability() -> str:
    """The cache folder for the capability ATen runs at in this process."""
    capability = torch.backends.cpu.get_cpu_capability().lower()
    return os.path.join(default_cache_dir(), f"cpu_{capability}")


def keep_inductor_cache_per_capability() -> str:
    """Points torch.compile at this capability's cache folder unless TORCHINDUCTOR_CACHE_DIR names
    one of the user's own (inductor sets it to its default on first use, which is not a choice);
    returns the folder in use. Call it before the first compilation."""
    chosen = os.environ.get(VARIABLE)
    if chosen is None or os.path.abspath(chosen) == default_cache_dir():
        os.environ[VARIABLE] = cache_dir_for_capability()
    return os.environ[VARIABLE]
