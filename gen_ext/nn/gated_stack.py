"""One layer of Gated PixelCNN's two stacks (van den Oord et al., 2016, "Conditional Image
Generation with PixelCNN Decoders"), with no blind spot.

- The vertical stack `v` holds, at row i, features of the rows strictly above i (any column within
  reach). Its convolution is down-shifted (rows at and above i of `v`), so it keeps that property;
  the model feeds the first layer the image shifted down by one row.
- The horizontal stack `h` holds, at (i, j), features of the pixels to the left on row i (and of
  (i, j) itself after the first layer, as mask B allows), plus the vertical stack's pre-activation
  at (i, j) through a 1x1 convolution. Rows above come only through that link, so nothing above
  and to the right is missed: the receptive field is every pixel before (i, j) within reach.
- Both pass through tanh(a) * sigmoid(b) (gen_ext.ops.gated_activation); an optional class
  embedding is added to both pre-activations, inside the gate. The horizontal stack ends in a 1x1
  convolution and, after the first layer, a residual connection.

With color_channels=3 the horizontal stack's channels are R, G, B thirds under the colour mask
(gen_ext.nn.MaskedConv2d with a 1 x k kernel), so a colour's features see the earlier colours of
the same pixel and never the later ones; the vertical stack sees only rows above and needs no mask.
"""

import torch
from torch import nn

from gen_ext import ops

from .masked_conv import MaskedConv2d
from .shifted_conv import DownShiftedConv2d


def colour_thirds_to_gate_halves(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[B, 2F, ...] laid out as `groups` contiguous groups, each (a_g, b_g),
    -> [a_1..a_G, b_1..b_G], the layout gated_activation splits in halves; the output then keeps
    the groups in order."""
    B, C = x.shape[:2]
    return x.view(B, groups, 2, C // (2 * groups), *x.shape[2:]).transpose(1, 2).reshape(x.shape)


class GatedStackLayer(nn.Module):
    """(v, h) -> (v', h'), all [B, channels, H, W] (the first layer takes [B, in_channels, H, W]:
    the image shifted down one row as v, the image itself as h).

    >>> first = GatedStackLayer(3, 48, kernel_size=5, color_channels=3, first=True)
    >>> v, h = first(shift_down(x), x)
    >>> v, h = GatedStackLayer(48, 48, 5, color_channels=3)(v, h)
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        kernel_size: int = 3,
        color_channels: int = 1,
        num_classes: int = 0,
        first: bool = False,
    ):
        super().__init__()
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"GatedStackLayer: kernel_size must be an odd positive int, got {kernel_size!r}"
            )
        if color_channels not in (1, 3):
            raise ValueError(
                f"GatedStackLayer: color_channels must be 1 or 3, got {color_channels}"
            )
        if channels < 1 or channels % color_channels:
            raise ValueError(
                f"GatedStackLayer: channels must be a positive multiple of "
                f"color_channels ({color_channels}), got {channels}"
            )
        if num_classes < 0:
            raise ValueError(
                f"GatedStackLayer: num_classes must be 0 (unconditional) or more, got {num_classes}"
            )
        self.channels, self.color_channels, self.first = channels, color_channels, first
        # k//2 + 1 rows: as many rows above as the horizontal kernel has pixels to the left
        self.vertical = DownShiftedConv2d(
            in_channels, 2 * channels, (kernel_size // 2 + 1, kernel_size)
        )
        self.horizontal = MaskedConv2d(
            in_channels, 2 * channels, (1, kernel_size), "A" if first else "B", color_channels
        )
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = MaskedConv2d(channels, channels, 1, "B", color_channels)
        self.condition = nn.Embedding(num_classes, 4 * channels) if num_classes else None

    def forward(self, v: torch.Tensor, h: torch.Tensor, labels: torch.Tensor | None = None):
        v_pre = self.vertical(v)
        h_pre = colour_thirds_to_gate_halves(self.horizontal(h), self.color_channels)
        h_pre = h_pre + self.link(v_pre)
        if self.condition is not None:
            if labels is None:
                raise ValueError("GatedStackLayer: this layer is class-conditional; pass labels")
            cond_v, cond_h = self.condition(labels)[:, :, None, None].chunk(2, dim=1)
            v_pre, h_pre = v_pre + cond_v, h_pre + cond_h
        elif labels is not None:
            raise ValueError("GatedStackLayer: labels given to a layer built with num_classes=0")
        v_out = ops.gated_activation(v_pre)
        h_out = self.h_out(ops.gated_activation(h_pre))
        return v_out, (h_out if self.first else h_out + h)
