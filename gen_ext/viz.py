"""PNG output: image grids (with row labels where rows differ in kind), loss curves and waveforms.
Files are written atomically: a failed write leaves no partial PNG."""

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gen_ext.files import atomic_write_bytes

LABEL_GAP = 6  # pixels between a row label and the grid


def _grid_image(images: torch.Tensor, columns: int, scale: int, pad: int):
    from PIL import Image

    images = images.detach().float().clamp(0, 1).cpu()
    n, c, h, w = images.shape
    rows = max(1, math.ceil(n / columns))
    grid = torch.ones((3, rows * (h + pad) + pad, columns * (w + pad) + pad))
    for i in range(n):
        r, col = divmod(i, columns)
        tile = images[i].expand(3, h, w) if c == 1 else images[i][:3]
        grid[
            :,
            pad + r * (h + pad) : pad + r * (h + pad) + h,
            pad + col * (w + pad) : pad + col * (w + pad) + w,
        ] = tile
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(array).resize(
        (array.shape[1] * scale, array.shape[0] * scale), Image.NEAREST
    )


def draw_row_labels(grid, labels: list[str], row_height: int, top: int):
    """`grid` with a white margin on its left holding labels[r] beside row r (rows `row_height`
    pixels apart, the first `top` pixels down), in PIL's default font."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    measure = ImageDraw.Draw(grid)
    width = max(measure.textlength(label, font=font) for label in labels)
    margin = math.ceil(width) + 2 * LABEL_GAP
    labelled = Image.new("RGB", (grid.width + margin, grid.height), "white")
    labelled.paste(grid, (margin, 0))
    draw = ImageDraw.Draw(labelled)
    for r, label in enumerate(labels):
        draw.text(
            (LABEL_GAP, top + r * row_height + row_height / 2),
            label,
            fill="black",
            font=font,
            anchor="lm",
        )
    return labelled


def save_grid(
    images: torch.Tensor,
    path,
    columns: int | None = None,
    scale: int = 4,
    pad: int = 1,
    row_labels: list[str] | None = None,
) -> Path:
    """Writes images [N, C, H, W] in [0, 1] as one PNG grid, each pixel `scale` pixels wide;
    `row_labels`, one per row, are written beside the rows."""
    n, _, h, _ = images.shape
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    image = _grid_image(images, columns, scale, pad)
    if row_labels is not None:
        rows = max(1, math.ceil(n / columns))
        if len(row_labels) != rows:
            raise ValueError(
                f"save_grid: row_labels must give one label per row ({rows}), got {len(row_labels)}"
            )
        image = draw_row_labels(image, row_labels, row_height=(h + pad) * scale, top=pad * scale)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())


def save_curves(
    history: list[dict],
    keys: list[str],
    path,
    title: str = "",
    ylabel: str | None = None,
    names: dict | None = None,
) -> Path:
    """Line plot of history[i][key] against the epoch, one line per key (legend: names[key],
    else the key), the y axis labelled `ylabel`."""
    names = names or {}
    return save_curve_panels(
        history, [CurvePanel(ylabel, {k: names.get(k, k) for k in keys})], path, title
    )


@dataclass
class CurvePanel:
    """One panel of save_curve_panels: its y label and the history keys it draws, each with
    its legend name. A key in step_keys ("train_NAME") is drawn from the per-step values of
    each entry ({"steps": {"NAME": [...]}}) against fractional epochs, where they are recorded.
    `log`: a logarithmic y axis; `references`: {legend name: value} drawn as dashed horizontal
    lines."""

    ylabel: str | None
    lines: dict
    title: str = ""
    step_keys: tuple = ()
    log: bool = False
    references: dict = field(default_factory=dict)


def _step_points(history: list[dict], key: str) -> list[tuple[float, float]]:
    """The per-step values behind the epoch mean `key` ("train_NAME": the steps' "NAME")."""
    points = []
    for h in history:
        values = h.get("steps", {}).get(key.removeprefix("train_")) or []
        n = len(values)
        points += [(h["epoch"] - 1 + (i + 1) / n, v) for i, v in enumerate(values) if v is not None]
    return points


def save_curve_panels(history: list[dict], panels: list[CurvePanel], path, title: str = "") -> Path:
    """Panels side by side (two to a row) of history values against the epoch: losses, metrics
    and per-step logs of one training run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    columns = min(2, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6.4 * columns, 4.4 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        for key, name in panel.lines.items():
            if key in panel.step_keys and _step_points(history, key):
                ax.plot(*zip(*_step_points(history, key), strict=True), label=name, lw=1)
                continue
            points = [(h["epoch"], h[key]) for h in history if h.get(key) is not None]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=name)
        for (name, value), style in zip(panel.references.items(), ("--", ":", "-."), strict=False):
            ax.axhline(value, color="0.35", linestyle=style, lw=1.2, label=name)
        if panel.log:
            ax.set_yscale("log")
        ax.set_xlabel("epoch", fontsize=11)
        if panel.ylabel:
            ax.set_ylabel(panel.ylabel, fontsize=11)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=10)
        ax.grid(alpha=0.3)
        ax.set_title(panel.title or (title if len(panels) == 1 else ""), fontsize=12)
        if ax.lines:
            ax.legend(fontsize=10)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    if len(panels) > 1 and title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def save_waveforms(
    waveforms: torch.Tensor,
    path,
    sample_rate: int,
    titles: list[str] | None = None,
) -> Path:
    """Waveforms [N, T] (or [N, 1, T]) in [-1, 1], one row each against time in seconds, all on
    the y range [-1, 1]; `titles`, one per waveform, above the rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    waveforms = torch.as_tensor(waveforms).detach().cpu()
    if waveforms.dim() == 3 and waveforms.shape[1] == 1:
        waveforms = waveforms[:, 0]
    if waveforms.dim() != 2 or waveforms.shape[0] < 1 or waveforms.shape[1] < 1:
        raise ValueError(
            f"save_waveforms: waveforms must have shape [N, T] or [N, 1, T] with N, T >= 1, "
            f"got {tuple(waveforms.shape)}"
        )
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 1:
        raise ValueError(
            f"save_waveforms: sample_rate must be a positive integer, got {sample_rate!r}"
        )
    n, length = waveforms.shape
    if titles is not None and len(titles) != n:
        raise ValueError(
            f"save_waveforms: titles must give one title per waveform ({n}), got {len(titles)}"
        )
    seconds = np.arange(length) / sample_rate
    fig, axes = plt.subplots(
        n, 1, figsize=(8, 0.6 + 1.3 * n), sharex=True, sharey=True, squeeze=False
    )
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(seconds, waveforms[i].float().numpy(), linewidth=0.6)
        ax.set_ylim(-1, 1)
        ax.set_xlim(0, seconds[-1] if length > 1 else 1 / sample_rate)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    axes[-1, 0].set_xlabel("time (s)", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())
