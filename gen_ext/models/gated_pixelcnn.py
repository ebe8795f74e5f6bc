"""Gated PixelCNN (van den Oord et al., 2016, "Conditional Image Generation with PixelCNN
Decoders"): vertical and horizontal stacks with gated activations and no blind spot, optionally
class-conditional, with a softmax over the intensity levels for every sub-pixel."""

import torch
from torch import nn

from gen_ext import ops
from gen_ext.nn import GatedStackLayer, MaskedConv2d, shift_down
from gen_ext.nn.gated_stack import colour_thirds_to_gate_halves

from .cached_sampling import (
    CachedMaskedConv,
    PaddedCache,
    PointwiseConv,
    WindowConv,
    gated_activation,
    position_program,
)
from .softmax_pixel import SoftmaxPixelModel


class GatedPixelCNN(SoftmaxPixelModel):
    """`layers` GatedStackLayers (the first hides the current sub-pixel), then ReLU, 1x1, ReLU,
    1x1 to `levels` logits per channel, the 1x1 layers colour-masked (mask B) for RGB.

    num_classes > 0 adds a class embedding inside every gate; `loss`, `log_prob` and `logits` then
    take `labels` [B] (int64), and `sample` takes them too (default: the classes in turn).
    Channel counts must be multiples of 3 for colour images.
    """

    cli_name = "gated-pixelcnn"
    # beyond this the held-out bits/dim of the digits rises again: 1,438 images are few
    default_epochs = 30

    def __init__(
        self,
        input_shape=(1, 8, 8),
        levels: int = 17,
        channels: int = 48,
        layers: int = 5,
        kernel_size: int = 5,
        head: int = 96,
        num_classes: int = 0,
    ):
        super().__init__(
            input_shape,
            levels,
            channels=channels,
            layers=layers,
            kernel_size=kernel_size,
            head=head,
            num_classes=num_classes,
        )
        C = self.input_shape[0]
        self.check_sizes(
            dict(layers=layers, channels=channels, head=head), per_colour=("channels", "head")
        )
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"GatedPixelCNN: num_classes must be an int >= 0, got {num_classes!r}")
        self.num_classes = num_classes
        self.stack = nn.ModuleList(
            GatedStackLayer(
                C if i == 0 else channels, channels, kernel_size, C, num_classes, first=i == 0
            )
            for i in range(layers)
        )
        self.head = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(channels, head, 1, "B", C),
            nn.ReLU(),
            MaskedConv2d(head, C * levels, 1, "B", C),
        )

    def logits(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        labels = self.check_labels(labels, x.shape[0])
        x = x * 2 - 1
        v, h = shift_down(x), x  # the vertical stack starts from the rows above
        for layer in self.stack:
            v, h = layer(v, h, labels)
        out = self.head(h)
        return out.view(x.shape[0], self.input_shape[0], self.levels, *x.shape[2:])

    def _fast_steps(self, x: torch.Tensor, labels):
        """The vertical stack a row at a time, the horizontal stack a pixel at a time.

        The vertical stack's row i sees only the image rows above i, but its convolution at
        (i, j) reads the row to the right of j too, so its whole row i (every layer, and each
        layer's link into the horizontal stack) is computed when image row i starts, from the
        finished rows above. The horizontal stack at (i, j) sees the pixels to the left and the
        earlier colours of (i, j): it is computed at (i, j) once per colour, from caches of each
        layer's input; the first layer's input, the image, is written again once the pixel is
        complete (its last colour is drawn after the last pass)."""
        labels = self.check_labels(labels, x.shape[0])
        n, (C, H, W) = x.shape[0], self.input_shape
        vertical = [WindowConv.of(layer.vertical) for layer in self.stack]
        v_maps = [
            PaddedCache(x, n, layer.vertical.in_channels, H, W, layer.vertical.causal_padding)
            for layer in self.stack
        ]
        links = [PointwiseConv(layer.link) for layer in self.stack]
        horizontal = [CachedMaskedConv(layer.horizontal, n, (H, W)) for layer in self.stack]
        h_out = [CachedMaskedConv(layer.h_out, n, (H, W)) for layer in self.stack]
        head = position_program(self.head, n, (H, W))
        conds = [
            (None, None) if layer.condition is None else layer.condition(labels).chunk(2, dim=1)
            for layer in self.stack
        ]
        for i in range(H):
            linked = []  # each layer's link(v_pre) along row i, [n, W, 2F]
            # shift_down: the vertical stack's input at row i is image row i - 1
            v = x[:, :, i - 1].transpose(1, 2) * 2 - 1 if i else x.new_zeros((n, W, C))
            for k, (cond_v, _) in enumerate(conds):
                v_maps[k].put(i, None, v)
                v_pre = vertical[k](v_maps[k], i)
                linked.append(links[k](v_pre))
                v = gated_activation(v_pre if cond_v is None else v_pre + cond_v[:, None])
            for j in range(W):
                if j:  # the previous pixel, now complete, into the first layer's input
                    horizontal[0].map.put(i, j - 1, x[:, None, :, i, j - 1] * 2 - 1)
                for c in range(C):
                    h = x[:, :, i, j] * 2 - 1
                    for k, layer in enumerate(self.stack):
                        h_pre = colour_thirds_to_gate_halves(
                            horizontal[k](i, j, h), layer.color_channels
                        )
                        h_pre = h_pre + linked[k][:, j]
                        if conds[k][1] is not None:
                            h_pre = h_pre + conds[k][1]
                        out = h_out[k](i, j, ops.gated_activation(h_pre))
                        h = out if layer.first else out + h
                    yield head(i, j, h).view(n, C, self.levels)[:, c]
