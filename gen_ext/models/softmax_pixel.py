"""Autoregressive models with a softmax over the intensity levels for every sub-pixel (PixelCNN,
Gated PixelCNN), and their naive sampler."""

import torch
import torch.nn.functional as F
from torch import nn

from gen_ext.nn import MaskedConv2d

from .autoregressive import (
    AutoregressiveImageModel,
    categorical_by_inversion,
    raster_order,
)


class SoftmaxPixelModel(AutoregressiveImageModel):
    """Subclasses implement `logits(x, labels) -> [B, C, levels, H, W]`, where the logits of
    channel c at (i, j) depend only on the pixels before (i, j) in raster order and on the
    channels before c at (i, j)."""

    def logits(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def check_sizes(self, positive: dict, non_negative: dict | None = None, per_colour=()):
        """Raises a ValueError naming the model and the arguments unless the `positive` sizes are
        at least 1 and the `non_negative` ones at least 0, and, for a colour image, the sizes
        named in `per_colour` are multiples of 3 (one third per colour)."""
        name = type(self).__name__
        non_negative = non_negative or {}
        if any(v < 1 for v in positive.values()) or any(v < 0 for v in non_negative.values()):
            rule = f"{_names(positive)} must be positive"
            if non_negative:
                rule += f" and {_names(non_negative)} non-negative"
            raise ValueError(f"{name}: {rule}, got {_values({**positive, **non_negative})}")
        sizes = {**positive, **non_negative}
        split = {k: sizes[k] for k in per_colour}
        if self.input_shape[0] == 3 and any(v % 3 for v in split.values()):
            raise ValueError(
                f"{name}: with 3 colour channels {_names(split)} must be multiples of 3, "
                f"got {_values(split)}"
            )

    def _nll(self, x, labels):
        target = self.check_images(x)
        logits = self.logits(x, self.check_labels(labels, x.shape[0]))
        nll = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")  # [B, C, H, W]
        return nll.flatten(1).sum(1)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """n images [n, C, H, W] on the level grid, one sub-pixel at a time in raster order
        (R, G, B within a pixel), each from a full forward pass: the exact reference a faster
        sampler must reproduce. The uniforms are drawn up front, one per sub-pixel, so a faster
        sampler given the same generator can match it draw for draw. `progress` shows a bar over
        the sub-pixels on stderr."""
        device, dtype, labels = self._sampling_setup(n, labels)
        C, H, W = self.input_shape
        noise = torch.rand((n, C, H, W), generator=generator, device=device, dtype=dtype)
        x = torch.zeros((n, C, H, W), device=device, dtype=dtype)
        for i, j, c in raster_order(self.input_shape, per_channel=True, progress=progress):
            logits = self.logits(x, labels)[:, c, :, i, j]
            k = categorical_by_inversion(logits, noise[:, c, i, j])
            x[:, c, i, j] = k.to(dtype) / (self.levels - 1)
        return x


class StackedSoftmaxPixelModel(SoftmaxPixelModel):
    """A SoftmaxPixelModel whose `self.net` maps the image, scaled to [-1, 1], to C * levels
    logit channels (colour groups R, G, B of `levels` each), with no labels: PixelCNN and
    PixelRNN, which differ only in the layers before softmax_head."""

    def logits(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self.check_labels(labels, x.shape[0])
        out = self.net(x * 2 - 1)
        return out.view(x.shape[0], self.input_shape[0], self.levels, *x.shape[2:])


def softmax_head(in_channels: int, head: int, color_channels: int, levels: int) -> list:
    """ReLU, a 1x1 mask-B layer to `head` channels, ReLU, a 1x1 mask-B layer to `levels` logits
    per colour: the output layers of PixelCNN and PixelRNN."""
    return [
        nn.ReLU(),
        MaskedConv2d(in_channels, head, 1, "B", color_channels),
        nn.ReLU(),
        MaskedConv2d(head, color_channels * levels, 1, "B", color_channels),
    ]


def _names(sizes: dict) -> str:
    names = list(sizes)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _values(sizes: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sizes.items())
