"""PixelCNN++'s gated residual block (Salimans et al., 2017) over shifted convolutions."""

import torch
from torch import nn

from gen_ext import ops

from .shifted_conv import DownRightShiftedConv2d, DownShiftedConv2d


class ConcatELU(nn.Module):
    """dropout(cat(elu(x), elu(-x))) along the channels, fused (gen_ext.ops.concat_elu):
    [B, C, *spatial] -> [B, 2C, *spatial]. Dropout (rate p) applies in training mode only.
    pad (left, right, top, bottom) writes the result inside a zero border, for a shifted
    convolution's forward_padded."""

    def __init__(self, p: float = 0.0, pad: tuple[int, int, int, int] | None = None):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"ConcatELU: p must lie in [0, 1), got {p}")
        self.p = p
        self.pad = None if pad is None else tuple(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.concat_elu(x, self.p if self.training else 0.0, pad=self.pad)

    def extra_repr(self) -> str:
        return f"p={self.p}" + (f", pad={self.pad}" if self.pad else "")


def concat_elu(x: torch.Tensor, pad: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """ELU of x and of -x, concatenated along the channels: [B, C, ...] -> [B, 2C, ...]. Unlike a
    ReLU it passes information on both signs. (gen_ext.ops.concat_elu, without dropout.)"""
    return ops.concat_elu(x, pad=pad)


STREAMS = ("down", "down_right")


class GatedResidualBlock(nn.Module):
    """x + gate(conv(dropout(concat_elu(conv(concat_elu(x)) + nin(concat_elu(aux)))))), the gate
    being tanh(a) * sigmoid(b) (the paper gates with a * sigmoid(b)), computed by one fused op
    (gen_ext.ops.gated_resnet_block): each concat-ELU writes its shifted convolution's zero
    border in the same pass (no padded copy), dropout is drawn inside the concat-ELU, the 1x1
    auxiliary convolution accumulates in place, and the backward keeps the two convolutions'
    outputs instead of every intermediate map.

    stream "down" uses down-shifted 2x3 convolutions (the vertical stream: row i sees the rows
    above), "down_right" down-right-shifted 2x2 ones (the horizontal stream). `aux` is another
    map at the same positions (the vertical stream, skip connections), mixed in by a 1x1
    convolution, so it adds nothing a position may not see.

    >>> block = GatedResidualBlock(32, "down_right", aux_channels=64, dropout=0.1)
    >>> ul = block(ul, aux=torch.cat([u, skip], 1))
    """

    def __init__(self, channels: int, stream: str, aux_channels: int = 0, dropout: float = 0.0):
        super().__init__()
        if stream not in STREAMS:
            raise ValueError(f"GatedResidualBlock: stream must be one of {STREAMS}, got {stream!r}")
        if channels < 1 or aux_channels < 0:
            raise ValueError(
                f"GatedResidualBlock: channels must be positive and aux_channels "
                f"non-negative, got {channels} and {aux_channels}"
            )
        if not 0 <= dropout < 1:
            raise ValueError(f"GatedResidualBlock: dropout must lie in [0, 1), got {dropout}")
        conv, kernel = (
            (DownShiftedConv2d, (2, 3)) if stream == "down" else (DownRightShiftedConv2d, (2, 2))
        )
        self.conv_in = conv(2 * channels, channels, kernel)
        self.aux = nn.Conv2d(2 * aux_channels, channels, 1) if aux_channels else None
        self.conv_gate = conv(2 * channels, 2 * channels, kernel)
        # the nonlinearity before conv_gate, with dropout and conv_gate's border (its rate is the
        # block's dropout; the fused op applies it)
        self.dropout = ConcatELU(dropout, pad=self.conv_gate.causal_padding)

    @property
    def stream(self) -> str:
        """The stream, "down" or "down_right", read from the convolutions (not stored, so
        that blocks pickled whole before the fused op load unchanged)."""
        return self.conv_in.shift

    def forward(self, x: torch.Tensor, aux: torch.Tensor | None = None) -> torch.Tensor:
        if (aux is None) != (self.aux is None):
            raise ValueError(
                "GatedResidualBlock: pass aux exactly when the block was built with aux_channels"
            )
        return ops.gated_resnet_block(
            x,
            aux,
            self.conv_in.weight,
            self.conv_in.bias,
            None if self.aux is None else self.aux.weight,
            None if self.aux is None else self.aux.bias,
            self.conv_gate.weight,
            self.conv_gate.bias,
            self.stream,
            self.dropout.p if self.training else 0.0,
        )

    def forward_unfused(self, x: torch.Tensor, aux: torch.Tensor | None = None) -> torch.Tensor:
        """The same block from its separate fused ops (concat-ELU, convolution, gated activation),
        as it was computed before the block op: for benchmarks that ask what fusing the block
        adds (benchmarks/pixelcnnpp_step.py)."""
        if (aux is None) != (self.aux is None):
            raise ValueError(
                "GatedResidualBlock: pass aux exactly when the block was built with aux_channels"
            )
        h = self.conv_in.forward_padded(concat_elu(x, pad=self.conv_in.causal_padding))
        if aux is not None:
            h = h + self.aux(concat_elu(aux))
        h = self.conv_gate.forward_padded(self.dropout(h))
        return ops.gated_activation(h, residual=x)
