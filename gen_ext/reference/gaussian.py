"""Reference Gaussian reparameterization and KL (the VAE's latent layer).

z = mu + exp(lv / 2) * eps and kl = KL(N(mu, exp(lv)) || N(0, I)) = 1/2 sum(exp(lv) + mu^2 - 1 - lv)
over every dimension but the first, with lv = clamp(logvar, -30, 20) so that both stay finite in
float32 for any finite logvar.
"""

import math

import torch

from .numerics import clamp_keeping_nan

MIN_LOGVAR = -30.0
MAX_LOGVAR = 20.0


def gaussian_reparameterize_kl(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor):
    """(z like mu, kl [B]) for the given noise eps."""
    lv = clamp_keeping_nan(logvar, MIN_LOGVAR, MAX_LOGVAR)
    z = mu + torch.exp(0.5 * lv) * eps
    per_element = 0.5 * (torch.exp(lv) + mu * mu - 1.0 - lv)
    # one row per batch entry: [B, rest] (1-D mu: rows of one element; reshape(B, -1) would reject
    # an empty batch)
    kl = per_element.reshape(mu.shape[0], math.prod(mu.shape[1:])).sum(1)
    return z, kl


def _as_int64(value: int) -> int:
    """An unsigned 64-bit constant as the int64 with the same bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _shift_right(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 tensors holding unsigned 64-bit values."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def _splitmix64(seed, j: torch.Tensor) -> torch.Tensor:
    """The j-th output of splitmix64 started at `seed`; int64 arithmetic wraps as uint64's does."""
    # a tensor seed (0-d int64, what torch.compile can trace without a constant per seed) holds
    # the uint64 bits already
    start = seed if isinstance(seed, torch.Tensor) else _as_int64(seed % (1 << 64))
    z = start + (j + 1) * _as_int64(0x9E3779B97F4A7C15)
    z = (z ^ _shift_right(z, 30)) * _as_int64(0xBF58476D1CE4E5B9)
    z = (z ^ _shift_right(z, 27)) * _as_int64(0x94D049BB133111EB)
    return z ^ _shift_right(z, 31)


def gaussian_noise(shape, seed: int, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """Standard normal noise from the counter-based stream `seed`: element i (row-major) is the
    cos (i even) or sin (i odd) half of the Box-Muller pair drawn from the (i // 2)-th output of
    splitmix64 started at `seed`, with 32 bits each for u1 in (0, 1] and u2 in [0, 1) in float64
    and 24 in float32. The fused kernels draw exactly this stream."""
    n = math.prod(shape)
    index = torch.arange(n, dtype=torch.int64, device=device)
    h = _splitmix64(seed, index >> 1)
    bits = 24 if dtype == torch.float32 else 32
    mask = (1 << bits) - 1
    scale = 1.0 / (1 << bits)
    u1 = (_shift_right(h, 32) & mask).to(dtype) * scale + scale
    u2 = (h & mask).to(dtype) * scale
    r = torch.sqrt(-2.0 * torch.log(u1))
    theta = 6.283185307179586 * u2
    return torch.where(index % 2 == 1, r * torch.sin(theta), r * torch.cos(theta)).view(shape)
