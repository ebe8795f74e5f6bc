"""What the autoregressive image models (PixelCNN, Gated PixelCNN, PixelCNN++) share: exact
likelihoods of images quantized to the dataset's intensity levels, bits/dim as the held-out
metric, optional class labels, and the naive sampler's inverse-CDF draw.

log p(x) = sum over sub-pixels in raster order (row, column, then R -> G -> B) of
log p(x_k | x_<k); the models compute every conditional in one pass, their layers being causal.
"""

import itertools
import math

import torch
from tqdm import tqdm

from gen_ext.metrics import bits_per_dim, intensity_indices

from .base import GenerativeModel

# images per forward pass in `evaluate`, so a large held-out set does not hold every logit at once
EVAL_BATCH = 256


def nll_in_batches(nll, x: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    """nll(x, extra) [B] over x (and its labels or conditioning `extra`, or None) in chunks of
    EVAL_BATCH, so a large held-out set does not hold every output at once."""
    return torch.cat(
        [
            nll(x[i : i + EVAL_BATCH], None if extra is None else extra[i : i + EVAL_BATCH])
            for i in range(0, x.shape[0], EVAL_BATCH)
        ]
    )


def categorical_by_inversion(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Index drawn from softmax(logits) [N, K] by inverting its CDF at the uniforms u [N]: the
    first k whose cumulative probability reaches u. A given u always gives the same k, so a
    sampler that draws its uniforms up front is reproducible and checkable."""
    cdf = torch.softmax(logits, dim=-1).cumsum(-1)
    # rounding can leave the last cumulative value a hair under u; the last level takes that mass
    return (cdf < u[:, None]).sum(-1).clamp(max=logits.shape[-1] - 1)


def raster_order(shape, per_channel: bool, progress: bool):
    """(i, j, c) for every pixel of shape (C, H, W) in raster order, every channel c in turn when
    `per_channel` (else c is always 0), through a progress bar on stderr when `progress`: the
    naive samplers run one forward pass per step, which takes a while on a big image."""
    C, H, W = shape
    channels = C if per_channel else 1
    steps = itertools.product(range(H), range(W), range(channels))
    return tqdm(
        steps,
        total=H * W * channels,
        desc="sampling",
        leave=False,
        disable=not progress,
        unit="sub-pixel" if per_channel else "pixel",
    )


class AutoregressiveImageModel(GenerativeModel):
    """Subclasses implement `_nll(x, labels) -> [B]` in nats per image for x in [0, 1] on the
    level grid, and `sample`. `num_classes` > 0 makes a model class-conditional."""

    main_metric = "bits_per_dim"
    unit = "bits/dim"
    num_classes = 0

    def __init__(self, input_shape=(1, 8, 8), levels: int = 17, **config):
        super().__init__(input_shape=list(input_shape), levels=levels, **config)
        name = type(self).__name__
        if len(input_shape) != 3 or input_shape[0] not in (1, 3) or min(input_shape) < 1:
            raise ValueError(
                f"{name}: input_shape must be (C, H, W) with C 1 or 3, got {tuple(input_shape)}"
            )
        if not isinstance(levels, int) or levels < 2:
            raise ValueError(f"{name}: levels must be an int of at least 2, got {levels!r}")
        self.input_shape = tuple(input_shape)
        self.levels = levels

    @property
    def dims(self) -> int:
        return math.prod(self.input_shape)

    def check_images(self, x: torch.Tensor) -> torch.Tensor:
        """Level indices of x [B, C, H, W]; a clear error for the wrong shape or values."""
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"{type(self).__name__}: x must have shape [B, "
                f"{', '.join(map(str, self.input_shape))}], got {list(x.shape)}"
            )
        return intensity_indices(x, self.levels, "x")

    def check_labels(self, labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
        name = type(self).__name__
        if not self.num_classes:
            if labels is not None:
                raise ValueError(f"{name}: labels given to an unconditional model (num_classes=0)")
            return None
        if labels is None:
            raise ValueError(
                f"{name}: the model is class-conditional (num_classes="
                f"{self.num_classes}); pass labels"
            )
        if labels.shape != (n,) or labels.dtype != torch.long:
            raise ValueError(
                f"{name}: labels must be int64 of shape [{n}], got {labels.dtype} "
                f"of shape {list(labels.shape)}"
            )
        if n and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(
                f"{name}: labels must lie in [0, {self.num_classes}), got "
                f"[{labels.min().item()}, {labels.max().item()}]"
            )
        return labels

    def _nll(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x) in nats per image, [B]."""
        return -self._nll(x, labels)

    def bits_per_dim(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """-log2 p(x) per sub-pixel, per image, [B]."""
        return bits_per_dim(self._nll(x, labels), self.dims)

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        # bits/dim rather than nats per image: the training curve then shares the held-out
        # metric's units
        bpd = self.bits_per_dim(x, labels).mean()
        return bpd, {"bits_per_dim": bpd.detach()}

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        nll = nll_in_batches(self._nll, x, labels)
        return {
            "bits_per_dim": bits_per_dim(nll, self.dims).mean().item(),
            "nll_nats": nll.mean().item(),
        }

    def _sampling_setup(self, n: int, labels: torch.Tensor | None):
        """(device, dtype, labels) for a sampler; a conditional model given no labels cycles
        through the classes."""
        if not isinstance(n, int) or n < 0:
            raise ValueError(
                f"{type(self).__name__}.sample: n must be a non-negative int, got {n!r}"
            )
        p = next(self.parameters())
        if self.num_classes and labels is None:
            labels = torch.arange(n, device=p.device) % self.num_classes
        return p.device, p.dtype, self.check_labels(labels, n)
