"""PixelCNN (van den Oord et al., 2016, "Pixel Recurrent Neural Networks"): masked convolutions
and a softmax over the intensity levels for every sub-pixel."""

import itertools

import torch
from torch import nn

from gen_ext.nn import MaskedConv2d

from .cached_sampling import CachedMaskedConv, position_program, previous_pixel
from .softmax_pixel import StackedSoftmaxPixelModel, softmax_head


class MaskedResidualBlock(nn.Module):
    """ReLU, 1x1 (2h -> h), ReLU, k x k mask B (h -> h), ReLU, 1x1 (h -> 2h), plus the input. The
    1x1 convolutions are mask B too, so with colour groups a colour never sees a later one."""

    def __init__(self, hidden: int, kernel_size: int, color_channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(2 * hidden, hidden, 1, "B", color_channels),
            nn.ReLU(),
            MaskedConv2d(hidden, hidden, kernel_size, "B", color_channels),
            nn.ReLU(),
            MaskedConv2d(hidden, 2 * hidden, 1, "B", color_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)

    def position_program(self, batch: int, size):
        """The block at one position at a time (see cached_sampling.position_program)."""
        body = position_program(self.body, batch, size)
        return lambda i, j, x: x + body(i, j, x)


class PixelCNN(StackedSoftmaxPixelModel):
    """A 7x7 mask-A convolution (the only layer that hides the current sub-pixel), residual
    blocks of mask-B convolutions, and two 1x1 mask-B layers to `levels` logits per channel. With 3
    channels every layer uses the R -> G -> B colour mask, so channel c's distribution depends on
    the pixels before and on the earlier channels of its own pixel. Like the paper's model it has a
    blind spot: stacked masked kernels never reach some pixels above and to the right.

    Channel counts (2 * hidden, hidden, head) must be multiples of 3 for colour images.
    """

    cli_name = "pixelcnn"
    # the held-out bits/dim of the digits stops improving around here (measured; README)
    default_epochs = 60

    def __init__(
        self,
        input_shape=(1, 8, 8),
        levels: int = 17,
        hidden: int = 24,
        blocks: int = 4,
        kernel_size: int = 3,
        first_kernel_size: int = 7,
        head: int = 96,
    ):
        super().__init__(
            input_shape,
            levels,
            hidden=hidden,
            blocks=blocks,
            kernel_size=kernel_size,
            first_kernel_size=first_kernel_size,
            head=head,
        )
        C = self.input_shape[0]
        self.check_sizes(dict(hidden=hidden, head=head), dict(blocks=blocks), ("hidden", "head"))
        self.net = nn.Sequential(
            MaskedConv2d(C, 2 * hidden, first_kernel_size, "A", C),
            *[MaskedResidualBlock(hidden, kernel_size, C) for _ in range(blocks)],
            *softmax_head(2 * hidden, head, C, levels),
        )

    def _fast_steps(self, x: torch.Tensor, labels):
        """Every layer at the current pixel only, once per colour: a colour's features there
        depend on the earlier colours alone (the first layer's mask A, then mask B), so the pass
        of the last colour leaves every layer's cache final for the pixels after it, except the
        first layer's input, the image itself, whose last colour is drawn after that pass: it is
        written again, complete, before the next pixel's pass."""
        self.check_labels(labels, x.shape[0])
        C, H, W = self.input_shape
        first = CachedMaskedConv(self.net[0], x.shape[0], (H, W))
        rest = position_program(self.net[1:], x.shape[0], (H, W))
        for i, j in itertools.product(range(H), range(W)):
            if (i, j) != (0, 0):
                pi, pj = previous_pixel(i, j, W)
                first.map.put(pi, pj, x[:, None, :, pi, pj] * 2 - 1)
            for c in range(C):
                out = rest(i, j, first(i, j, x[:, :, i, j] * 2 - 1))
                yield out.view(x.shape[0], C, self.levels)[:, c]
