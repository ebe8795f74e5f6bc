"""Reference concat-ELU with dropout (PixelCNN++'s nonlinearity, and the dropout its gated
residual blocks apply to it).

out = dropout(cat(elu(x), elu(-x), dim=1)): [B, C, *spatial] -> [B, 2C, *spatial]. Dropout
multiplies output element i (row-major over the output) by 1 / (1 - p) where the top 32 bits of
the i-th output of splitmix64 started at `seed` reach ceil(p * 2^32), and by 0 elsewhere, as
torch's dropout multiplies by its mask (a NaN stays NaN). The fused kernels draw this stream.
With pad = (left, right, top, bottom) the result is F.pad of that (a zero border; the stream
still counts the unpadded output's elements).
"""

import math

import torch
import torch.nn.functional as F

from .gaussian import _shift_right, _splitmix64


def dropout_factors(shape, p: float, seed: int, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """The factor (0 or 1 / (1 - p)) of every element of a tensor of `shape`."""
    index = torch.arange(math.prod(shape), dtype=torch.int64, device=device)
    draw = _shift_right(_splitmix64(seed, index), 32)
    keep = draw >= math.ceil(p * 2.0**32)
    return (keep.to(dtype) * (1.0 / (1.0 - p))).view(shape)


def concat_elu(x: torch.Tensor, p: float = 0.0, seed: int = 0, pad=()) -> torch.Tensor:
    """x [B, C, *spatial] -> [B, 2C, *spatial]; no dropout at p = 0."""
    out = F.elu(torch.cat([x, -x], dim=1))
    if p != 0:
        out = out * dropout_factors(out.shape, p, seed, out.dtype, out.device)
    return F.pad(out, tuple(pad)) if pad else out
