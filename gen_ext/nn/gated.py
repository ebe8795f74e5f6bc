"""The gated activation unit of Gated PixelCNN, PixelCNN++ and WaveNet as a drop-in layer over
the fused gated_activation op."""

import torch
from torch import nn

from gen_ext import ops


class GatedActivation(nn.Module):
    """tanh(a) * sigmoid(b), where a and b are the first and second halves of the channels
    (dim 1) of x, plus `residual` when given. No parameters: the convolution producing x's 2C
    channels is the model's.

    >>> gate = GatedActivation()
    >>> y = gate(x)                                  # [B, 2C, *spatial] -> [B, C, *spatial]
    >>> y = gate(x, residual=h)                      # h: [B, C, *spatial]
    """

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        return ops.gated_activation(x, residual)
