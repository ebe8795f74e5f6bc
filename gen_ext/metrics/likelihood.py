"""Likelihoods of discrete images in bits per dimension, and the baselines a likelihood model must
beat: the uniform distribution over the intensity levels, and independent per-sub-pixel
histograms fitted on the training set."""

import math

import torch

# how far x * (levels - 1) may sit from an integer and still count as that level (float32 data
# such as k / 255 lands within ~1e-5 of it)
GRID_TOLERANCE = 1e-3


def intensity_indices(x: torch.Tensor, levels: int, name: str = "x") -> torch.Tensor:
    """The level index k of each value of x = k / (levels - 1) in [0, 1], as int64; raises a
    ValueError naming `name` when x lies outside [0, 1] or off that grid."""
    if levels < 2:
        raise ValueError(f"levels must be at least 2, got {levels}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor in [0, 1], got {x.dtype}")
    if x.numel() == 0:
        return torch.zeros(x.shape, dtype=torch.long, device=x.device)
    scaled = x * (levels - 1)
    k = scaled.round()
    # one device-to-host copy for the three checks (a training step calls this)
    lo, hi, off = torch.stack([x.min(), x.max(), (scaled - k).abs().max()]).tolist()
    if lo < 0 or hi > 1:
        raise ValueError(f"{name} must lie in [0, 1], got values in [{lo:g}, {hi:g}]")
    if off > GRID_TOLERANCE:
        raise ValueError(
            f"{name} must be quantized to {levels} levels (k / {levels - 1}); a value "
            f"lies {off:.3g} levels from the nearest one"
        )
    return k.long()


def bits_per_dim(nll_nats: torch.Tensor, dims: int) -> torch.Tensor:
    """Negative log-likelihoods in nats per image -> bits per dimension (sub-pixel)."""
    return nll_nats / (dims * math.log(2.0))


def uniform_bits_per_dim(levels: int) -> float:
    """Every level equally likely: log2(levels) bits per dimension."""
    return math.log2(levels)


def histogram_bits_per_dim(
    train: torch.Tensor, test: torch.Tensor, levels: int, smoothing: float = 1.0
) -> float:
    """Held-out bits/dim of independent categoricals, one per sub-pixel (channel and position),
    fitted on `train` [N, C, H, W] with add-`smoothing` (Laplace) counts: p(k) = (n_k + s) /
    (N + s * levels). Scored on `test` [M, C, H, W]; both in [0, 1] on the grid of `levels`."""
    if smoothing <= 0:
        raise ValueError(
            f"histogram_bits_per_dim: smoothing must be positive (a level unseen in "
            f"training would get probability 0), got {smoothing}"
        )
    if train.shape[1:] != test.shape[1:]:
        raise ValueError(
            f"histogram_bits_per_dim: train and test images differ in shape: "
            f"{tuple(train.shape[1:])} and {tuple(test.shape[1:])}"
        )
    k_train = intensity_indices(train, levels, "train").flatten(1)  # [N, D]
    k_test = intensity_indices(test, levels, "test").flatten(1)
    D = k_train.shape[1]
    counts = torch.zeros(D, levels, dtype=torch.float64)
    counts.scatter_add_(1, k_train.T.cpu(), torch.ones(k_train.T.shape, dtype=torch.float64))
    log_p = torch.log(counts + smoothing) - math.log(k_train.shape[0] + smoothing * levels)
    nll = -log_p.gather(1, k_test.T.cpu())  # [D, M] nats
    return nll.mean().item() / math.log(2.0)


def likelihood_baselines(
    train: torch.Tensor, test: torch.Tensor, levels: int, smoothing: float = 1.0
) -> dict:
    """The held-out baselines recorded next to a likelihood model's bits/dim."""
    return {
        "uniform_bits_per_dim": uniform_bits_per_dim(levels),
        "histogram_bits_per_dim": histogram_bits_per_dim(train, test, levels, smoothing),
        "histogram_smoothing": smoothing,
    }
