"""Building blocks of the tap-by-tap convolution references (masked_conv, shifted_conv): a tap as
a 1x1 convolution of the part of the image it reads, and the convolution of empty shapes."""

import torch
import torch.nn.functional as F


def tap(x: torch.Tensor, w: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Output (i, j) += w @ x[:, :, i + dy, j + dx] where that pixel lies in the image, else 0
    (added as padding, never multiplied). w: [Cout, Cin]."""
    H, W = x.shape[2:]
    i0, i1 = max(0, -dy), min(H, H - dy)  # outputs whose input row lies in the image
    j0, j1 = max(0, -dx), min(W, W - dx)
    if i1 <= i0 or j1 <= j0:
        return x.new_zeros((x.shape[0], w.shape[0], H, W))
    part = torch.einsum("oi,bihw->bohw", w, x[:, :, i0 + dy : i1 + dy, j0 + dx : j1 + dx])
    return F.pad(part, (j0, W - j1, i0, H - i1))


def conv2d_of_empty(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """The convolution for the shapes F.conv2d rejects: an empty batch or image, no input channels
    or no output channels. Either there is no output, or it sums over no input channel and is its
    bias; the taps then play no part, so a 1x1 convolution by the summed taps says the same, and
    autograd gives zero gradients of the right shapes."""
    out = torch.einsum("bchw,oc->bohw", x, weight.sum((2, 3)))
    return out if bias is None else out + bias.view(1, -1, 1, 1)
