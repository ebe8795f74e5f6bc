"""Reference gated activation (Gated PixelCNN, PixelCNN++, WaveNet): the channels of x split in
two halves a and b, and out = tanh(a) * sigmoid(b), plus a residual when one is given."""

import torch


def gated_activation(x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
    """x: [B, 2C, *spatial] -> [B, C, *spatial]; residual, when given, has the output's shape."""
    a, b = x.chunk(2, dim=1)
    out = torch.tanh(a) * torch.sigmoid(b)
    return out if residual is None else out + residual
