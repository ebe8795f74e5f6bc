"""Gated PixelCNN (van den Oord et al., 2016, "Conditional Image Generation with PixelCNN
Decoders"): vertical and horizontal stacks with gated activations and no blind spot, optionally
class-conditional, with a softmax over the intensity levels for every sub-pixel."""

import torch
from torch import nn

from gen_ext.nn import GatedStackLayer, MaskedConv2d, shift_down

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
