"""WaveNet's dilated causal convolution as a drop-in layer over the causal_conv1d op."""

import torch
from torch import nn

from gen_ext import ops


def _positive_int(layer: str, name: str, value) -> int:
    """value as an int >= 1 (an int or a 1-tuple of one, as nn.Conv1d takes); a ValueError naming
    the layer and the argument otherwise."""
    single = value[0] if isinstance(value, tuple | list) and len(value) == 1 else value
    if isinstance(single, bool) or not isinstance(single, int) or single < 1:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return single


class CausalConv1d(nn.Conv1d):
    """A dilated causal convolution: output t reads the input at t, t - d, ..., t - (K-1)d only,
    so the output keeps the input's length T and never sees the future. The same as nn.Conv1d on
    the input padded by (K-1)d on the left, without the padded copy.

    A subclass of nn.Conv1d (stride 1, padding 0): its weight [out, in, K], bias, initialisation
    and state dict are nn.Conv1d's.

    >>> conv = CausalConv1d(64, 128, kernel_size=2, dilation=64)
    >>> y = conv(x)                                  # [B, 64, T] -> [B, 128, T]
    >>> conv.receptive_field                         # 65 steps
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        dilation: int = 1,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        layer = "CausalConv1d"
        in_channels = _positive_int(layer, "in_channels", in_channels)
        out_channels = _positive_int(layer, "out_channels", out_channels)
        kernel_size = _positive_int(layer, "kernel_size", kernel_size)
        dilation = _positive_int(layer, "dilation", dilation)
        if not isinstance(bias, bool):
            raise ValueError(f"{layer}: bias must be True or False, got {bias!r}")
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            dilation=dilation,
            bias=bias,
            device=device,
            dtype=dtype,
        )

    @property
    def receptive_field(self) -> int:
        """How many steps of the input each output reads: (K-1)d + 1."""
        return (self.kernel_size[0] - 1) * self.dilation[0] + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.causal_conv1d(x, self.weight, self.bias, self.dilation[0])
