"""Autoregressive models with a softmax over the intensity levels for every sub-pixel (PixelCNN,
Gated PixelCNN), and their naive sampler."""

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from gen_ext.nn import MaskedConv2d

from .autoregressive import (
    AutoregressiveImageModel,
    categorical_by_inversion,
    raster_order,
)
from .cached_sampling import one_thread_for_small_steps


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
        fast: bool | None = None,
    ) -> torch.Tensor:
        """n images [n, C, H, W] on the level grid, one sub-pixel at a time in raster order
        (R, G, B within a pixel).

        fast=False runs a full forward pass for every sub-pixel: the exact reference.
        fast=True computes each layer only at the current pixel (or row), from per-layer caches
        of what earlier steps computed; None (the default) takes it where the model has one
        (`has_fast_sampler`). Both draw the same uniforms, drawn up front, one per sub-pixel,
        so for a seed they give the same images. `progress` shows a bar over the sub-pixels on
        stderr."""
        device, dtype, labels = self._sampling_setup(n, labels)
        fast = self._fast_choice(fast)
        C, H, W = self.input_shape
        noise = torch.rand((n, C, H, W), generator=generator, device=device, dtype=dtype)
        x = torch.zeros((n, C, H, W), device=device, dtype=dtype)
        passes = self._fast_steps(x, labels) if fast else self._naive_steps(x, labels)
        order = raster_order(self.input_shape, per_channel=True, progress=progress)
        with one_thread_for_small_steps(device, n if fast else None):
            for (i, j, c), logits in zip(order, passes, strict=True):
                k = categorical_by_inversion(logits, noise[:, c, i, j])
                x[:, c, i, j] = k.to(dtype) / (self.levels - 1)
        return x

    def _naive_steps(self, x: torch.Tensor, labels):
        """The logits [n, levels] of each sub-pixel in raster order, each from a full forward
        pass over x as the caller has filled it so far."""
        C, H, W = self.input_shape
        for i, j, c in itertools.product(range(H), range(W), range(C)):
            yield self.logits(x, labels)[:, c, :, i, j]

    def _fast_steps(self, x: torch.Tensor, labels):
        """The same logits from per-layer caches (models with a fast sampler)."""
        raise NotImplementedError

    @property
    def has_fast_sampler(self) -> bool:
        return type(self)._fast_steps is not SoftmaxPixelModel._fast_steps

    def _fast_choice(self, fast: bool | None) -> bool:
        if fast and not self.has_fast_sampler:
            raise ValueError(
                f"{type(self).__name__}.sample: no fast sampler for this model; pass fast=False"
            )
        return self.has_fast_sampler if fast is None else bool(fast)


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
