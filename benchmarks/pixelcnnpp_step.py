"""One PixelCNN++ training step (issue 10's size: 3x32x32, 256 levels, 5 blocks per stage, 3
stages, 80 filters, 10 mixtures, dropout 0.5, batch 8; forward, loss, backward, Adam) on the
kernels and on the reference backend, interleaved in one process so both see the same load.

    python benchmarks/pixelcnnpp_step.py [steps] [label] [runs, comma-separated]

The runs: "kernels" (the default: on a CPU the network runs channels last, see
gen_ext/ops/memory_layout.py), "kernels NCHW" (GEN_EXT_CPU_LAYOUT=contiguous), "reference" (the
plain model as written, NCHW), "reference channels-last" (the same fed a channels-last batch,
which it keeps: how much of the gain is the layout alone?) and "torch dropout", the reference
backend with torch's own dropout (a Bernoulli mask from torch's generator, what F.dropout draws)
in place of the reference's counter-based stream, which it computes in integer tensor ops to
match the kernels bit for bit: is the plain model the kernels are compared with slowed by that?
Prints the median seconds per step of each, the ratios to "kernels", every step's time, and the
peak memory of one more step of each (allocated above what was held before it, as `gen-ext
bench` measures it).
`gen-ext bench --models pixelcnn++` measures the same step under torch.compile too
(and its peak memory), at the price of a compilation of several minutes.
"""

import importlib
import os
import statistics
import sys
import time

import torch

from gen_ext import ops
from gen_ext.bench.measure import peak_memory_bytes
from gen_ext.bench.model_cases import SIZES
from gen_ext.cpu_memory import keep_freed_cpu_memory
from gen_ext.models import PixelCNNPlusPlus
from gen_ext.models.base import adam
from gen_ext.nn import GatedResidualBlock

SIZE = SIZES["pixelcnn++"]  # the model-level benchmark's documented size
# the module, not the function gen_ext.reference re-exports under the same name
REFERENCE_CONCAT_ELU = importlib.import_module("gen_ext.reference.concat_elu")
COUNTER_BASED = REFERENCE_CONCAT_ELU.dropout_factors


def torch_dropout_factors(shape, p, seed, dtype=torch.float32, device="cpu"):
    """F.dropout's mask: Bernoulli(1 - p) from torch's generator, scaled by 1 / (1 - p)."""
    return torch.empty(shape, dtype=dtype, device=device).bernoulli_(1 - p).div_(1 - p)


def make():
    torch.manual_seed(0)
    model = PixelCNNPlusPlus(**SIZE.config)
    return model, adam(model.parameters(), 1e-4)


FUSED_BLOCK = GatedResidualBlock.forward

# run -> (backend, GEN_EXT_CPU_LAYOUT, batch layout, dropout factors of the reference, block)
RUNS = {
    "kernels": ("kernels", "channels_last", torch.contiguous_format, COUNTER_BASED, FUSED_BLOCK),
    "kernels unfused blocks": (
        "kernels",
        "channels_last",
        torch.contiguous_format,
        COUNTER_BASED,
        GatedResidualBlock.forward_unfused,
    ),
    "kernels NCHW": ("kernels", "contiguous", torch.contiguous_format, COUNTER_BASED, FUSED_BLOCK),
    "reference": (
        "reference",
        "channels_last",
        torch.contiguous_format,
        COUNTER_BASED,
        FUSED_BLOCK,
    ),
    "reference channels-last": (
        "reference",
        "channels_last",
        torch.channels_last,
        COUNTER_BASED,
        FUSED_BLOCK,
    ),
    "torch dropout": (
        "reference",
        "channels_last",
        torch.contiguous_format,
        torch_dropout_factors,
        FUSED_BLOCK,
    ),
}


def main(steps: int, label: str, names: list[str]) -> None:
    keep_freed_cpu_memory()  # as gen-ext train and bench do, for every run alike
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (SIZE.batch, 3, 32, 32), generator=g).float() / 255
    unknown = set(names) - set(RUNS)
    if unknown:
        sys.exit(f"pixelcnnpp_step.py: unknown runs {sorted(unknown)}; known: {list(RUNS)}")
    runs = {run: make() for run in names}

    def step(run):
        model, optimizer = runs[run]
        backend, cpu_layout, batch_layout, dropout, block = RUNS[run]
        REFERENCE_CONCAT_ELU.dropout_factors = dropout
        GatedResidualBlock.forward = block
        os.environ["GEN_EXT_CPU_LAYOUT"] = cpu_layout
        with ops.use_backend(backend):
            optimizer.zero_grad()
            model.loss(x.contiguous(memory_format=batch_layout))[0].backward()
            optimizer.step()

    for backend in runs:  # warm-up
        step(backend)
    times = {backend: [] for backend in runs}
    for _ in range(steps):
        for backend in runs:
            start = time.perf_counter()
            step(backend)
            times[backend].append(time.perf_counter() - start)
    median = {backend: statistics.median(t) for backend, t in times.items()}
    print(label, "median s/step", {b: round(m, 3) for b, m in median.items()})
    if "kernels" in median:
        print(label, "x kernels", {b: round(m / median["kernels"], 3) for b, m in median.items()})
    if steps >= 4:  # the spread: a slow mode shows as a wide interquartile range
        quartiles = {b: statistics.quantiles(t, n=4) for b, t in times.items()}
        iqr = {b: f"{(q[2] - q[0]) / median[b]:.1%}" for b, q in quartiles.items()}
        print(label, "IQR / median", iqr)
    print(label, "steps", {b: [round(t, 2) for t in ts] for b, ts in times.items()})
    peak = {b: peak_memory_bytes(lambda b=b: step(b), device=x.device) for b in runs}
    print(label, "peak extra MiB", {b: round(v / 2**20) for b, v in peak.items()})


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 5,
        sys.argv[2] if len(sys.argv) > 2 else "",
        sys.argv[3].split(",") if len(sys.argv) > 3 else list(RUNS),
    )
