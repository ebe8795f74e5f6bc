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
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from tqdm import tqdm

from .cases import CASES, IMPLEMENTATIONS
from .measure import measure, time_call
from .model_cases import MODEL_CASES, NOT_BENCHED, NOT_COMPILED

MIB = 1024 * 1024

# every case by name: the op cases, then the model cases (named by `gen-ext train`'s model names)
ALL_CASES = {**CASES, **MODEL_CASES}
SUITES = {"ops": tuple(CASES), "models": tuple(MODEL_CASES), "all": tuple(ALL_CASES)}
DEFAULT_SUITE = "ops"
# (warm-up calls after the first, timed calls) per kind of case, full and --quick. A model step
# takes up to seconds on a CPU, so it gets fewer repetitions than an op.
REPETITIONS = {
    ("op", False): (5, 30),
    ("op", True): (2, 7),
    ("model", False): (2, 10),
    ("model", True): (1, 3),
}


@dataclass
class BenchRow:
    op: str  # the case: an op, or a model family
    shape: str
    impl: str
    # ops: forward + backward (forward alone for ops without a backward); models: a training step
    full_ms: float
    full_iqr_ms: float
    # ops: the forward alone; models: a sampling step; None for a model without a sampler
    forward_ms: float | None
    peak_mib: float  # peak memory allocated during one full step, above what was there before
    workspace_mib: float  # the peak less the results every implementation must hold
    reps: int
    kind: str = "op"
    # the first call of the full step, and of the forward / sampling step: for "compiled" this is
    # where torch.compile compiles, excluded from the times above
    first_call_s: float = 0.0
    first_forward_s: float | None = None
    # set where this implementation's forward result differed from the eager reference's (see
    # results_differ): its times are not a comparison, and no ratio is given for it
    wrong_result: str | None = None
    # the case's reason for not comparing results (BenchCase.uncompared), "" where they are
    uncompared: str = ""


# How far a forward result may lie from the eager reference's and still count as the same
# computation: float32 kernels differ from the reference by rounding, orders of magnitude less.
RESULT_TOLERANCE = 1e-3


def _tensors(result) -> list:
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (tuple, list)):
        return [t for r in result for t in _tensors(r)]
    return []


def results_differ(got, want) -> str | None:
    """Why `got` (a forward's result: a tensor or a tuple of them) is not the eager reference's
    `want`, or None where it is: the same shapes, NaN and infinities where `want` has them, and
    every other value within RESULT_TOLERANCE of `want`'s largest magnitude."""
    got, want = _tensors(got), _tensors(want)
    if len(got) != len(want):
        return f"{len(got)} results against the reference's {len(want)}"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        name = "result" if len(got) == 1 else f"result {i}"
        if g.shape != w.shape:
            return f"{name} has shape {list(g.shape)}, the reference's {list(w.shape)}"
        g, w = g.detach().double().cpu(), w.detach().double().cpu()
        finite = torch.isfinite(w)
        if not torch.equal(torch.isfinite(g), finite) or not torch.equal(
            g[~finite].nan_to_num(), w[~finite].nan_to_num()
        ):
            return f"{name}: NaN or infinity where the reference has none, or the reverse"
        if not finite.any():
            continue
        scale = w[finite].abs().max().item()
        error = (g[finite] - w[finite]).abs().max().item()
        if error > RESULT_TOLERANCE * max(scale, 1e-30):
            return (
                f"{name}: max |difference| {error:.3g} where the reference's largest is {scale:.3g}"
            )
    return None


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
    """Every implementation of the cases `names` (op or model case names; None: the default
    suite, the op cases)."""
    names = SUITES[DEFAULT_SUITE] if names is None else names
    unknown = [n for n in names if n not in ALL_CASES]
    if unknown:
        raise ValueError(f"bench: unknown cases {unknown}; known: {list(ALL_CASES)}")
    cases = [make(device) for name, make in ALL_CASES.items() if name in names]
    impls = {case.op: [i for i in IMPLEMENTATIONS if i in case.make] for case in cases}
    rows = []
    total = sum(map(len, impls.values()))
    with _quiet_loggers(), tqdm(total=total, desc="gen-ext bench", unit="run") as progress:
        for case in cases:
            results = {}  # impl -> forward result, held for this case only
            for impl in impls[case.op]:
                row, results[impl] = _run_one(case, impl, device, *REPETITIONS[case.kind, quick])
                rows.append(row)
                progress.update()
            mark_wrong_results(rows[-len(results) :], results)
    return rows


def mark_wrong_results(rows, results: dict) -> None:
    """Compares the forward result of each of a case's rows (results[impl], None where the case
    is not compared) with the eager reference's and marks the rows that computed something
    else."""
    want = results.get("eager")
    for row in rows:
        if row.impl != "eager" and want is not None and results[row.impl] is not None:
            row.wrong_result = results_differ(results[row.impl], want)


def _first_call(step) -> float:
    """Seconds taken by the first call of step: where torch.compile compiles, and lazy
    initialisation (Adam's state, oneDNN's kernels) happens."""
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


@contextlib.contextmanager
def _no_recompilation():
    """After its first call, a step must run the code compiled then: a recompilation during the
    warm-up or the timed calls raises instead of being timed (or, past dynamo's recompile limit,
    of silently running eagerly)."""
    import torch._dynamo

    with torch._dynamo.config.patch(error_on_recompile=True):
        yield


def _run_one(case, impl: str, device: torch.device, warmup: int, reps: int) -> BenchRow:
    step = case.make[impl]()  # builds (and for "compiled", compiles on first call)
    first_s = _first_call(step)
    with _no_recompilation():
        m = measure(step, device=device, warmup=warmup, reps=reps)
    # the forward result, for comparison with the eager reference's (one more call, made only
    # where the case is compared)
    forward_ms = first_forward_s = result = None
    if case.forward_only is case.make:
        forward_ms = m.median_ms
        if case.compared:
            result = step()
    elif impl in case.forward_only:
        forward = case.forward_only[impl]()
        first_forward_s = _first_call(forward)
        with _no_recompilation():
            forward_ms = time_call(forward, device=device, warmup=warmup, reps=reps)[0]
            if case.compared:
                result = forward()
    row = BenchRow(
        case.op,
        case.shape,
        impl,
        m.median_ms,
        m.iqr_ms,
        forward_ms,
        m.peak_bytes / MIB,
        max(0, m.peak_bytes - case.result_bytes) / MIB,
        m.reps,
        kind=case.kind,
        first_call_s=first_s,
        first_forward_s=first_forward_s,
        uncompared=case.uncompared,
    )
    return row, result


def _by_op(rows):
    ops = {}
    for r in rows:
        ops.setdefault(r.op, {})[r.impl] = r
    return ops


def summary(rows) -> list[dict]:
    """Per case: how many times faster the fused implementation is than each alternative (for a
    model, its training step and its sampling step), and its memory as a fraction of the eager
    reference's."""
    out = []
    for op, impls in _by_op(rows).items():
        fused = impls["fused"]
        entry = {"op": op, "kind": fused.kind, "shape": fused.shape}
        wrong = {i: r.wrong_result for i, r in impls.items() if r.wrong_result}
        if wrong:
            entry["wrong_results"] = wrong
        # no ratio against a wrong result, nor any where the fused op's own is wrong
        valid = [o for o in ("eager", "compiled") if o in impls and not wrong.keys() & {"fused", o}]
        for other in valid:
            entry[f"speedup_vs_{other}"] = impls[other].full_ms / fused.full_ms
        if fused.kind == "model" and fused.forward_ms is not None:
            for other in valid:
                if impls[other].forward_ms is not None:
                    entry[f"sampling_speedup_vs_{other}"] = (
                        impls[other].forward_ms / fused.forward_ms
                    )
        if "eager" in impls and impls["eager"].peak_mib > 0:
            entry["memory_vs_eager"] = fused.peak_mib / impls["eager"].peak_mib
        if "eager" in impls and impls["eager"].workspace_mib > 0:
            entry["workspace_vs_eager"] = fused.workspace_mib / impls["eager"].workspace_mib
        out.append(entry)
    return out


def _table(rows, header: list[str], line) -> list[str]:
    """header, then line(op, impl, row or None, the op's fused row) for every implementation of
    every op in order, where it returns a line."""
    lines = list(header)
    for op, impls in _by_op(rows).items():
        for impl in IMPLEMENTATIONS:
            text = line(op, impl, impls.get(impl), impls["fused"])
            if text is not None:
                lines.append(text)
    return lines


def _op_line(op, impl, r, fused) -> str | None:
    if r is None:
        return None
    faster = "" if impl == "fused" else f"{r.full_ms / fused.full_ms:.1f}"
    if r.wrong_result or (impl != "fused" and fused.wrong_result):
        faster = f"wrong result: {r.wrong_result}" if r.wrong_result else "–"
    return (
        f"| {op} | {impl} | {r.full_ms:.2f} ± {r.full_iqr_ms:.2f} | "
        f"{r.forward_ms:.2f} | {r.peak_mib:.1f} | {r.workspace_mib:.1f} | {faster} |"
    )


def _op_table(rows) -> list[str]:
    header = [
        "| op | implementation | fwd+bwd ms (median ± IQR) | forward ms | peak extra MiB "
        "| workspace MiB | fused is x faster |",
        "|---|---|---|---|---|---|---|",
    ]
    return _table(rows, header, _op_line)


def _ratio(other: float | None, fused: float | None) -> str:
    return "–" if other is None or fused is None else f"{other / fused:.2f}"


def _model_line(op, impl, r, fused) -> str | None:
    if r is None:
        if impl == "compiled" and op in NOT_COMPILED:
            return f"| {op} | {impl} | not run: {NOT_COMPILED[op]} | | | | |"
        return None
    sampling = "–" if r.forward_ms is None else f"{r.forward_ms:.2f}"
    first_sampling = "–" if r.first_forward_s is None else f"{r.first_forward_s:.1f}"
    training, sampling_ratio = (
        _ratio(r.full_ms, fused.full_ms),
        _ratio(r.forward_ms, fused.forward_ms),
    )
    faster = "" if impl == "fused" else f"{training} / {sampling_ratio}"
    return (
        f"| {op} | {impl} | {r.full_ms:.2f} ± {r.full_iqr_ms:.2f} | {sampling} "
        f"| {r.peak_mib:.1f} | {r.first_call_s:.1f} / {first_sampling} | {faster} |"
    )


def _model_table(rows) -> list[str]:
    header = [
        "| model | implementation | training step ms (median ± IQR) | sampling step ms "
        "| peak extra MiB (training) | first call s (training / sampling) "
        "| fused is x faster (training / sampling) |",
        "|---|---|---|---|---|---|---|",
    ]
    return _table(rows, header, _model_line)


OP_NOTES = (
    "Ops: peak extra: memory allocated at the peak of one step above what existed before it; "
    "workspace: that peak less the outputs and gradients every implementation must "
    "return. Ops without a backward show the forward alone. Before timing, each "
    "implementation's forward result is compared with the eager reference's (NaN and "
    f"infinities where it has them, other values within {RESULT_TOLERANCE:g} of its largest "
    "magnitude); one that differs is marked 'wrong result' and gets no ratio."
)
MODEL_NOTES = (
    "Models: a training step is zero_grad, the loss, backward and an Adam step; a sampling step "
    "is one pass of the network over a sample batch under no_grad and one draw, as the naive "
    "sampler does per pixel (the VAE: its sample() call; the autoencoders have no sampler). "
    "fused: the default kernels; eager: the same model and weights on the reference backend; "
    "compiled: its loss (training) or network (sampling) through torch.compile on the reference "
    "backend. The first call, which compiles, is excluded from the times."
)


def markdown(rows, info: dict) -> str:
    ops = [r for r in rows if r.kind == "op"]
    models = [r for r in rows if r.kind == "model"]
    parts, notes = [], []
    if ops:
        parts.append("\n".join(_op_table(ops)))
        notes.append(OP_NOTES)
        uncompared = {r.op: r.uncompared for r in ops if r.uncompared}
        if uncompared:
            notes.append(
                "Results not compared: "
                + "; ".join(f"{op} ({why})" for op, why in uncompared.items())
                + "."
            )
    if models:
        parts.append("\n".join(_model_table(models)))
        notes.append(MODEL_NOTES)
        by_reason = {}
        for name, why in NOT_BENCHED.items():
            by_reason.setdefault(why, []).append(name)
        notes.append(
            "Not measured: "
            + "; ".join(f"{', '.join(names)} ({why})" for why, names in by_reason.items())
            + "."
        )
    shapes = list(dict.fromkeys(f"{r.op}: {r.shape}" for r in rows))
    cond = ", ".join(f"{k}={v}" for k, v in info.items())
    return (
        "\n\n".join(parts)
        + "\n\nShapes: "
        + "; ".join(shapes)
        + f"\n\nConditions: {cond}\n\n"
        + "\n\n".join(notes)
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


def _panels(rows) -> list[tuple[str, dict[str, float]]]:
    """(title, implementation -> ms) of each chart panel: an op's forward + backward; a model's
    training step and, where it has one, its sampling step."""
    panels = []
    for op, impls in _by_op(rows).items():
        if impls["fused"].kind == "op":
            panels.append((op, {i: r.full_ms for i, r in impls.items()}))
            continue
        panels.append((f"{op}: training step", {i: r.full_ms for i, r in impls.items()}))
        sampling = {i: r.forward_ms for i, r in impls.items() if r.forward_ms is not None}
        if sampling:
            panels.append((f"{op}: sampling step", sampling))
    return panels


def plot(rows, path: Path, info: dict) -> None:
    """One small panel per op and per model step (its own scale: they differ by 1000x), four to
    a row, each bar labelled with its time (hatched and marked where its result was wrong), the
    conditions under the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(rows)
    # an op panel's title is its op; model steps are not compared
    wrong = {(r.op, r.impl) for r in rows if r.wrong_result}
    cols = min(4, len(panels))
    nrows = -(-len(panels) // cols)
    width = max(7.2, 3.6 * cols)  # inches; wide enough for the conditions on two lines
    fig, axes = plt.subplots(nrows, cols, figsize=(width, 3.0 * nrows + 1.1), squeeze=False)
    for ax, (title, by_impl) in zip(axes.flat, panels, strict=False):
        names = [i for i in IMPLEMENTATIONS if i in by_impl]
        times = [by_impl[i] for i in names]
        colors = {"fused": "#2a7", "eager": "#888", "compiled": "#48c"}
        bars = ax.bar(
            names,
            times,
            color=[colors[i] for i in names],
            hatch=["//" if (title, i) in wrong else "" for i in names],
        )
        labels = [
            f"{t:.2f}" + (" wrong" if (title, i) in wrong else "")
            for t, i in zip(times, names, strict=True)
        ]
        ax.bar_label(bars, labels=labels, fontsize=9)
        ax.set_title("\n".join(textwrap.wrap(title, 36)), fontsize=10)
        ax.set_ylabel("ms per step", fontsize=9)
        ax.set_ylim(0, max(times) * 1.18)
        ax.tick_params(labelsize=9)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    # about 11 characters of 10-point text per inch
    conditions_text = "\n".join(textwrap.wrap(conditions_line(info), int(width * 11)))
    what = (
        "ops: forward + backward; models: training / sampling step"
        if any(r.kind == "model" for r in rows)
        else "forward + backward"
    )
    fig.suptitle(f"gen-ext bench: {what}, lower is better\n" + conditions_text, fontsize=10)
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
