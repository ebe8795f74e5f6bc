"""Reference of one WaveNet layer's sampling step from its ring-buffer cache: the specification of
gen_ext.ops.wavenet_layer_step.

A layer with kernel size K and dilation d reads its input at times t, t - d, ..., t - (K-1) d.
Its cache holds the last L = (K-1) d inputs, input time s in slot s mod L, so the slot of the
oldest tap, t - L, is slot t mod L: the step reads it, then writes the new input there. Nothing is
shifted. Taps at negative times are absent (as in the causal convolution), so a cache's initial
contents are never read.

Shapes: x [B, R] (the layer's input at time t), cache [L, B, R], weight_taps [K, R, 2D] (tap k
reads time t - (K-1-k) d; the causal convolution's weight [2D, R, K] permuted), bias [2D], cond
[B, 2D] (the global conditioning's contribution), out_weight [D, R + S] (the residual and skip
1x1 convolutions stacked, transposed), out_bias [R + S]. Returns (x + residual, skip): [B, R],
[B, S].
"""

import torch

from .gated import gated_activation


def tap_times(step: int, taps: int, dilation: int) -> list[int]:
    """The input time each tap reads at `step`, tap 0 (the oldest) first."""
    return [step - (taps - 1 - k) * dilation for k in range(taps)]


def wavenet_layer_step(
    x: torch.Tensor,
    cache: torch.Tensor,
    step: int,
    weight_taps: torch.Tensor,
    bias: torch.Tensor | None,
    cond: torch.Tensor | None,
    out_weight: torch.Tensor,
    out_bias: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    K, R = weight_taps.shape[:2]
    L = cache.shape[0]
    dilation = L // (K - 1) if K > 1 else 0
    z = x @ weight_taps[K - 1]
    for k, time in enumerate(tap_times(step, K, dilation)[:-1]):
        if time >= 0:  # absent before the start, never multiplied by zero
            z = z + cache[time % L] @ weight_taps[k]
    if bias is not None:
        z = z + bias
    if cond is not None:
        z = z + cond
    out = gated_activation(z) @ out_weight
    if out_bias is not None:
        out = out + out_bias
    if L:
        cache[step % L] = x
    return x + out[:, :R], out[:, R:]
