"""Runs the benchmark cases and writes the results as a table (stdout), JSON, Markdown and a PNG
chart. Ratios are taken within one run, so they compare implementations under the same load."""

import contextlib
import json
import logging
import os
import platform
import re
import subprocess
import textwrap
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from tqdm import tqdm

from .cases import CASES, IMPLEMENTATIONS
from .measure import measure, time_call

MIB = 1024 * 1024


@dataclass
class BenchRow:
    op: str
    shape: str
    impl: str
    full_ms: float  # forward + backward (forward alone for ops without a backward)
    full_iqr_ms: float
    forward_ms: float
    peak_mib: float  # peak memory allocated during one full step, above what was there before
    workspace_mib: float  # the peak less the results every implementation must hold
    reps: int


def _lscpu() -> dict:
    """lscpu's "Key: value" lines ({} where lscpu is missing)."""
    try:
        text = subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def _cpuinfo_field(name: str) -> str | None:
    """The first `name` field of /proc/cpuinfo (Linux), or None."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    match = re.search(rf"^{name}\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else None


def processor() -> tuple[str, str]:
    """(the processor's model name, its clock) as lscpu reports them, /proc/cpuinfo otherwise.
    The clock is the maximum where the system publishes one, else the current one."""
    cpu = _lscpu()
    name = (
        cpu.get("Model name")
        or _cpuinfo_field("model name")
        or platform.processor()
        or platform.machine()
    )
    mhz = cpu.get("CPU max MHz") or cpu.get("CPU MHz") or _cpuinfo_field("cpu MHz")
    try:
        clock = f"{float(mhz) / 1000:.2f} GHz"
    except (TypeError, ValueError):
        clock = "unknown clock"
    return name, clock


INSTRUCTION_SETS = {"avx512": "AVX-512", "avx2": "AVX2", "default": "portable (no AVX2)"}


def conditions(device: torch.device, load: tuple = (None, None)) -> dict:
    """What the times depend on: versions, processor (model, clock, the kernels' instruction
    set) or GPU, threads, date, and the 1-minute load average before and after the run."""
    info = {
        "torch": torch.__version__,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if device.type == "cpu":
        info["processor"], info["clock"] = processor()
        capability = torch.ops.gen_ext.cpu_capability()
        info["instruction_set"] = INSTRUCTION_SETS.get(capability, capability)
    else:
        info["gpu"] = torch.cuda.get_device_name(device)
    if None not in load:
        info["load_1min"] = f"{load[0]:.1f} before, {load[1]:.1f} after"
    return info


def load_average() -> float | None:
    """The 1-minute load average, or None where the system has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def busy_warning(before: float | None, after: float | None, threads: int) -> str | None:
    """A warning when the 1-minute load average before or after the run exceeded the threads the
    benchmark used: the run itself adds at most that many, so the rest is other work sharing the
    processor, and the times (not only their spread) are then inflated."""
    loads = [x for x in (before, after) if x is not None]
    if not loads or max(loads) <= threads:
        return None
    return (
        f"warning: the machine was busy during this benchmark (1-minute load average "
        f"{before:.1f} before, {after:.1f} after, above its {threads} threads): other "
        "work shared the processor, so times are slower and noisier than on a quiet machine; "
        "rerun when `uptime` shows a load below the thread count"
    )


@contextlib.contextmanager
def _quiet_loggers(names=("torch.utils.cpp_extension",)):
    """torch.compile imports torch.utils.cpp_extension, which logs its guess of a CUDA folder on
    machines without a GPU; that is about building extensions, not about this benchmark."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)


def run(device: torch.device, names=None, quick: bool = False) -> list[BenchRow]:
    warmup, reps = (2, 7) if quick else (5, 30)
    cases = [make(device) for name, make in CASES.items() if names is None or name in names]
    jobs = [(case, impl) for case in cases for impl in IMPLEMENTATIONS]
    rows = []
    with _quiet_loggers():
        for case, impl in tqdm(jobs, desc="gen-ext bench", unit="run"):
            rows.append(_run_one(case, impl, device, warmup, reps))
    return rows


def _run_one(case, impl: str, device: torch.device, warmup: int, reps: int) -> BenchRow:
    step = case.make[impl]()  # builds (and for "compiled", compiles on first call)
    m = measure(step, device=device, warmup=warmup, reps=reps)
    if case.forward_only is case.make:
        forward_ms = m.median_ms
    else:
        forward_ms = time_call(case.forward_only[impl](), device=device, warmup=warmup, reps=reps)[
            0
        ]
    return BenchRow(
        case.op,
        case.shape,
        impl,
        m.median_ms,
        m.iqr_ms,
        forward_ms,
        m.peak_bytes / MIB,
        max(0, m.peak_bytes - case.result_bytes) / MIB,
        m.reps,
    )


def _by_op(rows):
    ops = {}
    for r in rows:
        ops.setdefault(r.op, {})[r.impl] = r
    return ops


def summary(rows) -> list[dict]:
    """Per op: how many times faster the fused op is than each alternative, and its memory as a
    fraction of the eager reference's."""
    out = []
    for op, impls in _by_op(rows).items():
        fused = impls["fused"]
        entry = {"op": op, "shape": fused.shape}
        for other in ("eager", "compiled"):
            if other in impls:
                entry[f"speedup_vs_{other}"] = impls[other].full_ms / fused.full_ms
        if "eager" in impls and impls["eager"].peak_mib > 0:
            entry["memory_vs_eager"] = fused.peak_mib / impls["eager"].peak_mib
        if "eager" in impls and impls["eager"].workspace_mib > 0:
            entry["workspace_vs_eager"] = fused.workspace_mib / impls["eager"].workspace_mib
        out.append(entry)
    return out


def markdown(rows, info: dict) -> str:
    lines = [
        "| op | implementation | fwd+bwd ms (median ± IQR) | forward ms | peak extra MiB "
        "| workspace MiB | fused is x faster |",
        "|---|---|---|---|---|---|---|",
    ]
    for op, impls in _by_op(rows).items():
        fused = impls["fused"]
        for impl in IMPLEMENTATIONS:
            r = impls.get(impl)
            if r is None:
                continue
            faster = "" if impl == "fused" else f"{r.full_ms / fused.full_ms:.1f}"
            lines.append(
                f"| {op} | {impl} | {r.full_ms:.2f} ± {r.full_iqr_ms:.2f} | "
                f"{r.forward_ms:.2f} | {r.peak_mib:.1f} | {r.workspace_mib:.1f} | {faster} |"
            )
    shapes = sorted({r.shape for r in rows})
    cond = ", ".join(f"{k}={v}" for k, v in info.items())
    notes = (
        "peak extra: memory allocated at the peak of one step above what existed before it; "
        "workspace: that peak less the outputs and gradients every implementation must "
        "return. Ops without a backward show the forward alone."
    )
    return (
        "\n".join(lines)
        + "\n\nShapes: "
        + "; ".join(shapes)
        + f"\n\nConditions: {cond}\n\n"
        + notes
        + "\n"
    )


def conditions_line(info: dict) -> str:
    """The conditions of a run in one line, for the figure."""
    if "processor" in info:
        where = (
            f"{info['processor']} at {info['clock']}, {info['instruction_set']} kernels, "
            f"{info['threads']} threads"
        )
    else:
        where = f"{info.get('gpu', info['device'])}, {info['threads']} CPU threads"
    load = f"; load average {info['load_1min']}" if "load_1min" in info else ""
    return f"{where}; torch {info['torch']}; {info['date']}{load}"


def plot(rows, path: Path, info: dict) -> None:
    """One small panel per op (its own scale: the ops differ by 100x), four to a row, each bar
    labelled with its time, the conditions under the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops = _by_op(rows)
    cols = min(4, len(ops))
    nrows = -(-len(ops) // cols)
    width = max(7.2, 3.6 * cols)  # inches; wide enough for the conditions on two lines
    fig, axes = plt.subplots(nrows, cols, figsize=(width, 3.0 * nrows + 1.1), squeeze=False)
    for ax, (op, impls) in zip(axes.flat, ops.items(), strict=False):
        names = [i for i in IMPLEMENTATIONS if i in impls]
        times = [impls[i].full_ms for i in names]
        bars = ax.bar(names, times, color=["#2a7", "#888", "#48c"][: len(names)])
        ax.bar_label(bars, labels=[f"{t:.2f}" for t in times], fontsize=9)
        ax.set_title("\n".join(textwrap.wrap(op, 36)), fontsize=10)
        ax.set_ylabel("ms per step", fontsize=9)
        ax.set_ylim(0, max(times) * 1.18)
        ax.tick_params(labelsize=9)
    for ax in list(axes.flat)[len(ops) :]:
        ax.axis("off")
    # about 11 characters of 10-point text per inch
    conditions_text = "\n".join(textwrap.wrap(conditions_line(info), int(width * 11)))
    fig.suptitle(
        "gen-ext bench: forward + backward, lower is better\n" + conditions_text, fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(rows, info: dict, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "bench.json",
        "markdown": out_dir / "bench.md",
        "png": out_dir / "bench.png",
    }
    paths["json"].write_text(
        json.dumps(
            {"conditions": info, "rows": [asdict(r) for r in rows], "summary": summary(rows)},
            indent=2,
        )
    )
    paths["markdown"].write_text(markdown(rows, info))
    plot(rows, paths["png"], info)
    return paths
