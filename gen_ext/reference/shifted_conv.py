"""Reference shifted convolutions (PixelCNN++'s down-shifted and down-right-shifted convolutions),
stride 1: a convolution of the input bordered by zeros on top and at the sides only, so that an
output pixel never sees the rows below it ("down") nor, in addition, the pixels to its right
("down_right").

A [Cout, Cin, kh, kw] kernel reads, at output (i, j) and tap (di, dj), input
(i + di - top, j + dj - left) with top = kh - 1 and left = (kw - 1) // 2 ("down", kw odd, the
columns centred) or left = kw - 1 ("down_right").
"""

import torch
import torch.nn.functional as F

from .conv_taps import conv2d_of_empty, tap

SHIFTS = ("down", "down_right")


def shifted_padding(shift: str, kh: int, kw: int) -> tuple[int, int, int, int]:
    """The zero border (left, right, top, bottom), as F.pad orders it, the shift reads inside."""
    if shift == "down":
        return ((kw - 1) // 2, (kw - 1) // 2, kh - 1, 0)
    if shift == "down_right":
        return (kw - 1, 0, kh - 1, 0)
    raise ValueError(f"shifted_padding: shift must be 'down' or 'down_right', got {shift!r}")


def shifted_conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, shift: str
) -> torch.Tensor:
    """The shifted convolution [B, Cin, H, W] -> [B, Cout, H, W], computed tap by tap, each tap a
    1x1 convolution of the part of the image it reads. A tap that falls outside the image (the
    zero border) is never multiplied, so a NaN or inf weight reaches only the outputs whose tap
    reads the image (0 * inf would be NaN); the kernels skip the same products."""
    out_channels, in_channels, kh, kw = weight.shape
    left, _, top, _ = shifted_padding(shift, kh, kw)
    if x.numel() == 0 or out_channels == 0 or in_channels == 0:
        # nothing is multiplied: the dense form's handling of these shapes is the same
        return shifted_conv2d_dense(x, weight, bias, shift)
    taps = [(di, dj) for di in range(kh) for dj in range(kw)]
    out = sum(tap(x, weight[:, :, di, dj], di - top, dj - left) for di, dj in taps)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def shifted_conv2d_dense(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, shift: str
) -> torch.Tensor:
    """The same convolution as a plain user writes it: F.pad, then F.conv2d. Equal to
    shifted_conv2d for finite inputs (only NaN/inf meeting the border differ: 0 * inf is NaN
    here). The benchmark's baseline and the float32 accuracy yardstick."""
    padding = shifted_padding(shift, *weight.shape[2:])
    if x.numel() == 0 or weight.shape[0] == 0 or weight.shape[1] == 0:
        return conv2d_of_empty(x, weight, bias)
    return F.conv2d(F.pad(x, padding), weight, bias)
