"""PNG output: image grids and loss curves."""

import math
from pathlib import Path

import numpy as np
import torch


def save_grid(images: torch.Tensor, path, columns: int | None = None, scale: int = 4,
              pad: int = 1) -> Path:
    """Writes images [N, C, H, W] in [0, 1] as one PNG grid, each pixel `scale` pixels wide."""
    from PIL import Image

    images = images.detach().float().clamp(0, 1).cpu()
    n, c, h, w = images.shape
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / columns))
    grid = torch.ones((3, rows * (h + pad) + pad, columns * (w + pad) + pad))
    for i in range(n):
        r, col = divmod(i, columns)
        tile = images[i].expand(3, h, w) if c == 1 else images[i][:3]
        grid[:, pad + r * (h + pad):pad + r * (h + pad) + h,
             pad + col * (w + pad):pad + col * (w + pad) + w] = tile
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    image = Image.fromarray(array).resize((array.shape[1] * scale, array.shape[0] * scale),
                                          Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def save_curves(history: list[dict], keys: list[str], path, title: str = "") -> Path:
    """Line plot of history[i][key] against the epoch, one line per key."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key in keys:
        points = [(h["epoch"], h[key]) for h in history if key in h]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
