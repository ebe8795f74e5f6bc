"""Reference dilated causal 1-D convolution (WaveNet's building block): output t reads x at
t, t - d, ..., t - (K-1)d only. The terms that would read before the sequence's start are absent,
not multiplied by zero, so a non-finite weight reaches only the outputs that read it."""

import torch


def causal_conv1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    dilation: int = 1,
) -> torch.Tensor:
    """x [B, C_in, T], weight [C_out, C_in, K] (conv1d's layout), bias [C_out] or None ->
    [B, C_out, T]: out[b, o, t] = bias[o] + sum_{i, k} weight[o, i, k] x[b, i, t - (K-1-k) d],
    tap by tap."""
    T = x.shape[2]
    C_out, _, K = weight.shape
    # the last tap reads x at t itself: every output has it
    out = torch.einsum("oi,bit->bot", weight[:, :, K - 1], x)
    for k in range(K - 1):
        shift = (K - 1 - k) * dilation
        if shift >= T:
            continue
        out[:, :, shift:] += torch.einsum("oi,bit->bot", weight[:, :, k], x[:, :, : T - shift])
    return out if bias is None else out + bias.view(1, C_out, 1)
