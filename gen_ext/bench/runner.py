"""Runs the benchmark cases and writes the results as a table (stdout), JSON, Markdown and a PNG
chart. Ratios are taken within one run, so they compare implementations under the same load."""

import json
import platform
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


def conditions(device: torch.device) -> dict:
    info = {
        "torch": torch.__version__,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if device.type == "cpu":
        info["cpu_kernels"] = torch.ops.gen_ext.cpu_capability()
    else:
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def run(device: torch.device, names=None, quick: bool = False) -> list[BenchRow]:
    warmup, reps = (2, 7) if quick else (5, 30)
    cases = [make(device) for name, make in CASES.items() if names is None or name in names]
    jobs = [(case, impl) for case in cases for impl in IMPLEMENTATIONS]
    rows = []
    for case, impl in tqdm(jobs, desc="gen-ext bench", unit="run"):
        step = case.make[impl]()  # builds (and for "compiled", compiles on first call)
        m = measure(step, device=device, warmup=warmup, reps=reps)
        if case.forward_only is case.make:
            forward_ms = m.median_ms
        else:
            forward_ms = time_call(case.forward_only[impl](), device=device, warmup=warmup,
                                   reps=reps)[0]
        rows.append(BenchRow(case.op, case.shape, impl, m.median_ms, m.iqr_ms, forward_ms,
                             m.peak_bytes / MIB, max(0, m.peak_bytes - case.result_bytes) / MIB,
                             m.reps))
    return rows


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
    notes = ("peak extra: memory allocated at the peak of one step above what existed before it; "
             "workspace: that peak less the outputs and gradients every implementation must "
             "return. Ops without a backward show the forward alone.")
    return ("\n".join(lines) + "\n\nShapes: " + "; ".join(shapes) + f"\n\nConditions: {cond}\n\n"
            + notes + "\n")


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops = _by_op(rows)
    fig, axes = plt.subplots(1, len(ops), figsize=(5 * len(ops), 3.5), squeeze=False)
    for ax, (op, impls) in zip(axes[0], ops.items(), strict=True):
        names = [i for i in IMPLEMENTATIONS if i in impls]
        ax.bar(
            names, [impls[i].full_ms for i in names], color=["#2a7", "#888", "#48c"][: len(names)]
        )
        ax.set_title(op, fontsize=9)
        ax.set_ylabel("ms per step (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(rows, info: dict, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "bench.json", "markdown": out_dir / "bench.md",
             "png": out_dir / "bench.png"}
    paths["json"].write_text(json.dumps(
        {"conditions": info, "rows": [asdict(r) for r in rows], "summary": summary(rows)},
        indent=2))
    paths["markdown"].write_text(markdown(rows, info))
    plot(rows, paths["png"])
    return paths
