"""PixelRNN (van den Oord et al., 2016, "Pixel Recurrent Neural Networks") with diagonal BiLSTM
layers: a 7x7 mask-A convolution, residual diagonal BiLSTM layers, and mask-B 1x1 layers to a
softmax over the intensity levels for every sub-pixel."""

import torch
from torch import nn

from gen_ext.nn import DiagonalBiLSTM, MaskedConv2d

from .softmax_pixel import StackedSoftmaxPixelModel, softmax_head


class DiagonalBiLSTMResidual(nn.Module):
    """x + 1x1 mask B (h -> 2h) of a diagonal BiLSTM (2h -> h) of x: the paper's residual
    connection around each recurrent layer."""

    def __init__(self, hidden: int, color_channels: int):
        super().__init__()
        self.lstm = DiagonalBiLSTM(2 * hidden, hidden, color_channels)
        self.out = MaskedConv2d(hidden, 2 * hidden, 1, "B", color_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out(self.lstm(x))


class PixelRNN(StackedSoftmaxPixelModel):
    """A 7x7 mask-A convolution (the only layer that hides the current sub-pixel), `layers`
    residual diagonal BiLSTM layers of `hidden` units per direction, and two 1x1 mask-B layers
    to `levels` logits per channel. Each BiLSTM sees every pixel above and to the left, so
    unlike PixelCNN there is no blind spot. With 3 channels every layer keeps the R -> G -> B
    colour groups (hidden and head must then be multiples of 3)."""

    cli_name = "pixelrnn"
    default_epochs = 60  # held-out still falling slowly at 60 on the digits (1.818; README)

    def __init__(
        self,
        input_shape=(1, 8, 8),
        levels: int = 17,
        hidden: int = 12,
        layers: int = 7,
        head: int = 96,
    ):
        super().__init__(input_shape, levels, hidden=hidden, layers=layers, head=head)
        C = self.input_shape[0]
        self.check_sizes(dict(hidden=hidden, head=head), dict(layers=layers), ("hidden", "head"))
        self.net = nn.Sequential(
            MaskedConv2d(C, 2 * hidden, 7, "A", C),
            *[DiagonalBiLSTMResidual(hidden, C) for _ in range(layers)],
            *softmax_head(2 * hidden, head, C, levels),
        )
