"""Sampling speed: each autoregressive model's cached (fast) sampler against its naive one, in
samples per second (sub-pixels for the image models, audio samples for WaveNet), one process,
the two measured one after the other on the same model and weights.

The naive samplers' cost per step is constant (a full forward pass; WaveNet's over its receptive
field once t has passed it), so their rate is measured over a few steps at that steady state. The
fast samplers' rate is measured over a whole sample: every cache filled from empty, every draw
made. `gen-ext bench --suite sampling` runs it and writes sampling.{json,md}.
"""

import itertools
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from gen_ext.models import MODELS, PixelCNNPlusPlus, WaveNet
from gen_ext.models.softmax_pixel import SoftmaxPixelModel

from .model_cases import SIZES as MODEL_SIZES
from .model_cases import TINY_SIZES as TINY_MODEL_SIZES
from .model_cases import ModelSize

# steady-state naive steps timed (after one untimed): a few where a step takes seconds
NAIVE_STEPS = {"pixelcnn++": 3}
DEFAULT_NAIVE_STEPS = 10

# The sizes: PixelCNN++ with 5 blocks per stage and 64 filters on 32x32 RGB, WaveNet with 2
# stacks of 10 layers (receptive field 2047) and 64 residual channels generating 8,000 samples;
# the softmax models at their model-benchmark sizes. Batch 16 throughout.
SIZES = {
    "wavenet": ModelSize(
        {**MODEL_SIZES["wavenet"].config, "input_shape": (1, 8000)},
        16,
        "2 stacks of 10 layers (receptive field 2047), 64 residual/skip channels, 8,000 samples",
    ),
    "pixelcnn++": ModelSize(
        dict(input_shape=(3, 32, 32), levels=256, channels=64, resolutions=3, blocks=5),
        16,
        "3x32x32, 256 levels, 5 blocks per stage, 3 stages, 64 filters, 10 mixtures",
    ),
    "pixelcnn": MODEL_SIZES["pixelcnn"],
    "gated-pixelcnn": MODEL_SIZES["gated-pixelcnn"],
}
# Sizes at which each measurement takes well under a second (the tests).
TINY_SIZES = {name: TINY_MODEL_SIZES[name] for name in SIZES}


@dataclass
class SamplingRow:
    model: str
    size: str
    batch: int
    naive_samples_per_s: float
    fast_samples_per_s: float
    speedup: float
    fast_seconds: float  # the whole fast sample


def _naive_seconds_per_step(model, batch: int, steps: int) -> float:
    """Seconds per step of the naive sampler at its steady state (one untimed step first)."""
    p = next(model.parameters())
    if isinstance(model, WaveNet):
        rf = model.receptive_field
        levels = torch.zeros((batch, rf + steps + 1), dtype=torch.long, device=p.device)
        run = model._naive_steps(levels, None, start=rf)
    else:
        x = torch.zeros((batch, *model.input_shape), device=p.device, dtype=p.dtype)
        run = (
            model._naive_steps(x, None)
            if isinstance(model, SoftmaxPixelModel)
            else model._naive_steps(x)
        )
    with torch.no_grad():
        next(run)
        start = time.perf_counter()
        for _ in itertools.islice(run, steps):
            pass
        return (time.perf_counter() - start) / steps


def measure(
    name: str, sizes: dict | None = None, device: torch.device | None = None, quick: bool = False
) -> SamplingRow:
    """One model's row: its naive and fast sampling rates at `sizes[name]` (default SIZES;
    quick: fewer naive steps timed)."""
    size, device = (sizes or SIZES)[name], device or torch.device("cpu")
    torch.manual_seed(0)
    model = MODELS[name](**size.config).to(device).eval()
    steps = NAIVE_STEPS.get(name, DEFAULT_NAIVE_STEPS)
    steps = min(steps, 2) if quick else steps
    per_step = _naive_seconds_per_step(model, size.batch, steps)
    # a naive step draws one sample per sequence of the batch: a sub-pixel for the softmax
    # models, an audio sample for WaveNet, a whole pixel (all its colours) for PixelCNN++
    per_draw = model.input_shape[0] if isinstance(model, PixelCNNPlusPlus) else 1
    naive_rate = size.batch * per_draw / per_step
    generator = torch.Generator(device=device).manual_seed(0)
    start = time.perf_counter()
    samples = model.sample(size.batch, generator, fast=True)
    fast_seconds = time.perf_counter() - start
    fast_rate = samples.numel() / fast_seconds
    return SamplingRow(
        name, size.describe, size.batch, naive_rate, fast_rate, fast_rate / naive_rate, fast_seconds
    )


def markdown(rows: list[SamplingRow], conditions_line: str) -> str:
    lines = [
        "| model | size | batch | naive samples/s | fast samples/s | fast / naive | fast run |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.size} | {r.batch} | {r.naive_samples_per_s:,.1f} | "
            f"{r.fast_samples_per_s:,.0f} | {r.speedup:,.0f}x | {r.fast_seconds:.1f} s |"
        )
    lines.append("")
    lines.append(
        "Samples are sub-pixels (image models) or audio samples (WaveNet), summed over the "
        "batch. Naive: a full forward pass per step, timed over a few steps at its steady state; "
        "fast: a whole sample from empty caches. " + conditions_line
    )
    return "\n".join(lines)


def write(rows: list[SamplingRow], info: dict, text: str, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "sampling.json", "markdown": out_dir / "sampling.md"}
    paths["json"].write_text(
        json.dumps({"conditions": info, "rows": [asdict(r) for r in rows]}, indent=2)
    )
    paths["markdown"].write_text(text + "\n")
    return paths
