"""The PixelCNN masked convolution as a drop-in layer over the masked_conv2d op."""

import math

import torch
from torch import nn

from gen_ext import ops
from gen_ext.reference.masked_conv import MASK_TYPES, pixelcnn_mask


def _pair(value, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(not isinstance(v, int) or v < 1 or v % 2 == 0 for v in pair):
        raise ValueError(
            f"MaskedConv2d: {name} must be an odd positive int or a pair of them, got {value!r}"
        )
    return pair


def check_channel_counts(layer: str, color_channels: int, **counts: int) -> None:
    """The channel checks of every layer with colour groups: color_channels 1 or 3, every count
    positive, and with 3 colours every count divisible by 3 (one third per colour). Raises a
    ValueError naming the layer and the counts."""
    if color_channels not in (1, 3):
        raise ValueError(f"{layer}: color_channels must be 1 or 3, got {color_channels}")
    given = ", ".join(f"{name}={value}" for name, value in counts.items())
    if any(value < 1 for value in counts.values()):
        raise ValueError(f"{layer}: channel counts must be positive, got {given}")
    if color_channels == 3 and any(value % 3 for value in counts.values()):
        raise ValueError(
            f"{layer}: with color_channels=3, {' and '.join(counts)} must be divisible by 3 "
            f"(one third per colour), got {given}"
        )


class MaskedConv2d(nn.Module):
    """A stride-1, 'same'-padded convolution whose output at a pixel depends only on the pixels
    above it and to its left (mask 'A', the first layer) or also on the pixel itself (mask 'B').
    With color_channels=3 the channels are R, G, B thirds and R sees only the context, G also
    sees R, B also sees R and G (and, with mask 'B', each group sees itself).

    The weight is a full [out, in, kh, kw] tensor, like nn.Conv2d's, so state dicts carry over;
    its masked entries are never used and get zero gradient.

    >>> conv = MaskedConv2d(3, 96, 7, mask_type="A", color_channels=3)
    >>> y = conv(x)                                  # [B, 3, H, W] -> [B, 96, H, W]
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size=3,
        mask_type: str = "B",
        color_channels: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        if mask_type not in MASK_TYPES:
            raise ValueError(f"MaskedConv2d: mask_type must be 'A' or 'B', got {mask_type!r}")
        check_channel_counts(
            "MaskedConv2d", color_channels, in_channels=in_channels, out_channels=out_channels
        )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.mask_type, self.color_channels = mask_type, color_channels
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def mask(self) -> torch.Tensor:
        return pixelcnn_mask(
            self.out_channels,
            self.in_channels,
            self.kernel_size,
            self.mask_type,
            self.color_channels,
            self.weight.dtype,
            self.weight.device,
        )

    def reset_parameters(self) -> None:
        # nn.Conv2d's initialisation (uniform within 1/sqrt(fan_in)) with the fan-in of the kept
        # taps only: a mask-A first layer keeps fewer than half of them
        fan_in = max(1, int(self.mask()[-1].sum().item()))
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.masked_conv2d(x, self.weight, self.bias, self.mask_type, self.color_channels)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"mask_type={self.mask_type!r}, color_channels={self.color_channels}, "
            f"bias={self.bias is not None}"
        )
