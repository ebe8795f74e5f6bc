"""What the mixture likelihood's speed-up depends on, on this processor: one forward + backward of
the fused op (at each of gen_ext's instruction-set builds) against the eager reference and the
lean published formula, at 2 threads and at 1, interleaved in one process, at `gen-ext bench`'s
size (B=16, 3x32x32, 10 components, float32).

    python benchmarks/dlm_conditions.py [reps] [--fresh-pages]

It prints the median ms of each, the ratios to the fused op, each one's gain from the second
thread, and the fused op's cost per term (one channel of one component at one position) in
cycles at the processor's nominal clock; then how long touching freshly mapped memory the size of
the op's parameter gradient takes, against memory already mapped.

By default freed memory is kept (gen_ext.cpu_memory, as `gen-ext bench` and `gen-ext train` do).
--fresh-pages instead has glibc map every allocation of 128 KiB or more anew and unmap it on
free, so every call faults in the pages of its results: what a process that does not keep its
memory sees at worst, and a cost that differs between machines, virtual ones above all.
"""

import os
import statistics
import sys
import time

import torch

from gen_ext import ops, reference
from gen_ext.bench.cases import lean_dlm_nll
from gen_ext.bench.runner import conditions
from gen_ext.cpu_memory import keep_freed_cpu_memory, set_malloc_option
from gen_ext.testing import make_dlm_inputs

M_MMAP_THRESHOLD = -3  # mallopt parameter (malloc.h)
FRESH_ABOVE = 128 * 1024  # bytes: allocations this large are mapped anew under --fresh-pages
ISAS = ("avx512", "avx2", "default")  # gen_ext's builds (GEN_EXT_CPU_CAPABILITY, read per call)


def fresh_pages() -> None:
    if not set_malloc_option(M_MMAP_THRESHOLD, FRESH_ABOVE):
        sys.exit("dlm_conditions: mallopt refused the mmap threshold (not glibc?)")


def step(fn, x, params):
    params.grad = None
    fn(x, params, 256).sum().backward()


def under_isa(isa):
    def run(x, params, bins):
        os.environ["GEN_EXT_CPU_CAPABILITY"] = isa
        try:
            return ops.discretized_logistic_mixture_nll(x, params, bins)
        finally:
            del os.environ["GEN_EXT_CPU_CAPABILITY"]

    return run


def supported_isas():
    """The builds this processor runs (the others are refused by the op)."""
    x, params = make_dlm_inputs(1, 3, 10, (2, 2), 256, dtype=torch.float32, seed=0)
    usable = []
    for isa in ISAS:
        try:
            under_isa(isa)(x, params, 256)
            usable.append(isa)
        except RuntimeError:
            pass
    return usable


def set_threads(n: int) -> None:
    """Sets n threads and has the pool start them, which costs the first parallel call after a
    change (up to milliseconds), outside the timed calls."""
    torch.set_num_threads(n)
    torch.ones(1 << 20).sum()


def first_touch_ms(nbytes: int, reps: int = 20) -> tuple[float, float]:
    """Median ms to fill nbytes of newly allocated memory, and of memory filled before (the same
    unless freed memory is mapped anew: kept memory is reused)."""
    fresh, warm = [], []
    kept = torch.empty(nbytes // 4)
    kept.fill_(1.0)
    for _ in range(reps):
        t = time.perf_counter()
        torch.empty(nbytes // 4).fill_(1.0)
        fresh.append(time.perf_counter() - t)
        t = time.perf_counter()
        kept.fill_(1.0)
        warm.append(time.perf_counter() - t)
    return statistics.median(fresh) * 1e3, statistics.median(warm) * 1e3


def main(argv):
    reps = int(argv[0]) if argv and argv[0].isdigit() else 25
    fresh = "--fresh-pages" in argv
    if fresh:
        fresh_pages()
    else:
        keep_freed_cpu_memory()
    x, params = make_dlm_inputs(16, 3, 10, (32, 32), 256, dtype=torch.float32, seed=0)
    params.requires_grad_()
    impls = {f"fused ({isa})": under_isa(isa) for isa in supported_isas()}
    impls["eager reference"] = reference.discretized_logistic_mixture_nll
    impls["eager lean formula"] = lean_dlm_nll
    threads = sorted({torch.get_num_threads(), 1}, reverse=True)
    times = {(name, n): [] for name in impls for n in threads}
    for n in threads:
        set_threads(n)
        for fn in impls.values():  # warm-up
            step(fn, x, params)
    for _ in range(reps):
        for n in threads:
            set_threads(n)
            for name, fn in impls.items():
                t = time.perf_counter()
                step(fn, x, params)
                times[name, n].append(time.perf_counter() - t)
    set_threads(threads[0])
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    info = conditions(torch.device("cpu"))
    print(
        f"{info['processor']}, {info['clock']}, {info['instruction_set']}; torch {info['torch']}; "
        f"{info['date']}; {reps} interleaved reps; freed memory "
        + ("mapped anew each call (--fresh-pages)" if fresh else "kept")
    )
    fused = f"fused ({ISAS[0]})" if f"fused ({ISAS[0]})" in impls else next(iter(impls))
    clock_hz = float(info["clock"].split()[0]) * 1e9
    terms = x.numel() * 10  # positions x channels x components
    print(
        f"| implementation | threads | ms (median) | x the {fused} | x from the 2nd thread | "
        "cycles per term |"
    )
    print("|---|---|---|---|---|---|")
    for name in impls:
        for n in threads:
            ms = med[name, n]
            gain = f"{med[name, 1] / ms:.2f}" if n > 1 else ""
            cycles = ms * 1e-3 * clock_hz * n / terms
            print(f"| {name} | {n} | {ms:.2f} | {ms / med[fused, n]:.2f} | {gain} | {cycles:.0f} |")
    nbytes = params.numel() * params.element_size()
    cold, warm = first_touch_ms(nbytes)
    print(
        f"filling {nbytes / 2**20:.2f} MiB (the parameter gradient's size): {cold:.2f} ms newly "
        f"allocated, {warm:.2f} ms already touched"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
