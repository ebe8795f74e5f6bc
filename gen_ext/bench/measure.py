"""Wall-clock and peak-memory measurement of a zero-argument forward+backward callable.

Only the standard library and torch are imported at module level; the profiler is
imported lazily because it is needed only for CPU memory measurement, and its native log lines
are kept out of the output.
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

__all__ = ["Measurement", "time_call", "peak_memory_bytes", "measure"]


@dataclass
class Measurement:
    median_ms: float
    iqr_ms: float  # interquartile range of the per-repetition times
    reps: int
    peak_bytes: int  # peak memory allocated by the call above what was allocated before it


def _as_device(device) -> torch.device:
    # Callers sometimes pass "cpu"/"cuda:0"; normalising keeps the .type checks valid.
    return device if isinstance(device, torch.device) else torch.device(device)


def _sync(device: torch.device) -> None:
    # CUDA kernels run asynchronously, so the clock is only meaningful after a sync.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_iqr(samples_ms: list[float]) -> tuple[float, float]:
    median = statistics.median(samples_ms)
    if len(samples_ms) < 2:
        return median, 0.0
    # 'inclusive' treats the samples as the whole population, so the quartiles stay
    # inside the observed range even for a handful of repetitions.
    q1, _, q3 = statistics.quantiles(samples_ms, n=4, method="inclusive")
    return median, q3 - q1


def time_call(
    fn: Callable[[], object],
    *,
    device: torch.device,
    warmup: int = 3,
    reps: int = 20,
    min_time_s: float = 0.0,
) -> tuple[float, float, int]:
    """Return (median_ms, iqr_ms, reps_run).

    At least ``reps`` timed calls are made; more follow while the accumulated timed
    duration is below ``min_time_s``, so the returned count can exceed ``reps``.
    """
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    device = _as_device(device)

    for _ in range(warmup):
        fn()

    samples_ms: list[float] = []
    total_s = 0.0
    # Drain any work queued before the first timed call so it is not billed to it.
    _sync(device)
    while len(samples_ms) < reps or total_s < min_time_s:
        start = time.perf_counter()
        fn()
        _sync(device)
        elapsed = time.perf_counter() - start
        total_s += elapsed
        samples_ms.append(elapsed * 1e3)

    median, iqr = _median_iqr(samples_ms)
    return median, iqr, len(samples_ms)


def _running_peak(deltas: Iterable[int]) -> int:
    peak = 0
    current = 0
    for delta in deltas:
        current += delta
        if current > peak:
            peak = current
    return peak


def _cpu_memory_deltas(prof) -> list[int]:
    """Signed CPU allocation sizes recorded by ``prof``, in time order.

    ``prof.events()`` is unsuitable: allocations made inside an operator are folded
    into that operator's ``cpu_memory_usage`` and lose their ordering relative to
    frees, which can hide or inflate the peak. The raw profiler results keep every
    '[memory]' instant event with its own timestamp and signed byte count.
    """
    from torch.autograd import DeviceType

    results = prof.profiler.kineto_results

    try:
        records = [
            (e.start_ns(), e.nbytes())
            for e in results.events()
            if e.name() == "[memory]" and e.device_type() == DeviceType.CPU
        ]
    except AttributeError:
        # Older/newer bindings may not expose nbytes() on kineto events; the
        # experimental event tree carries the same data as Allocation nodes.
        from torch._C._profiler import _EventType

        records = []
        stack = list(results.experimental_event_tree())
        while stack:
            node = stack.pop()
            if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu":
                records.append((node.start_time_ns, node.extra_fields.alloc_size))
            stack.extend(node.children)

    # Stable sort: events sharing a timestamp keep their recording order.
    records.sort(key=lambda r: r[0])
    return [nbytes for _, nbytes in records]


def _peak_memory_cuda(fn: Callable[[], object], device: torch.device) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return max(0, torch.cuda.max_memory_allocated(device) - baseline)


# Lines the profiler's native code writes straight to the process's stderr each time it runs
# (start/stop traces, a warning about blocks allocated before it started, a failed GPU probe on a
# machine without one): they say nothing about the benchmark, so they are dropped.
PROFILER_NOISE = re.compile(
    r"SyncActivityProfilerHandler|profiler_st(art|op)|Memory block of unknown size was allocated"
    r"|gpuGetDeviceCount failed|DeviceProperties\.cpp"
)


@contextlib.contextmanager
def _without_profiler_noise():
    """Captures what is written to file descriptor 2 (native code bypasses sys.stderr) and
    writes back every line except PROFILER_NOISE, so real errors and warnings still show."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode(errors="replace").splitlines(True)
                if not PROFILER_NOISE.search(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def _peak_memory_cpu(fn: Callable[[], object]) -> int:
    from torch.profiler import ProfilerActivity, profile

    with (
        _without_profiler_noise(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        fn()
    # The profiler only reports frees of blocks it saw allocated, so starting the
    # running sum at zero measures exactly what the call added on top of the baseline.
    return _running_peak(_cpu_memory_deltas(prof))


def _peak_memory(fn: Callable[[], object], device: torch.device, warm_first: bool) -> int:
    if warm_first:
        # Lazy initialisation (kernel caches, autograd engine threads, workspaces)
        # would otherwise be charged to the measured call.
        fn()
    if device.type == "cuda":
        return _peak_memory_cuda(fn, device)
    if device.type == "cpu":
        return _peak_memory_cpu(fn)
    raise NotImplementedError(f"peak memory measurement not supported on {device.type!r}")


def peak_memory_bytes(fn: Callable[[], object], *, device: torch.device) -> int:
    """Peak bytes allocated during one call of ``fn`` beyond what was allocated before it."""
    return _peak_memory(fn, _as_device(device), warm_first=True)


def measure(
    fn: Callable[[], object],
    *,
    device: torch.device,
    warmup: int = 3,
    reps: int = 20,
) -> Measurement:
    device = _as_device(device)
    median, iqr, n = time_call(fn, device=device, warmup=warmup, reps=reps)
    # time_call has already run fn at least once, so a further warm-up call is redundant.
    peak = _peak_memory(fn, device, warm_first=False)
    return Measurement(median_ms=median, iqr_ms=iqr, reps=n, peak_bytes=peak)
