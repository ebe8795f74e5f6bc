"""Exactly which inputs the causal layers see (float64 gradients compared with zero, no tolerance):
MaskedConv2d (masks A and B, with and without colour groups), Gated PixelCNN's stack layer and
PixelCNN++'s gated residual block."""

import pytest
import torch
import torch.nn.functional as F

from gen_ext.nn import GatedResidualBlock, GatedStackLayer, MaskedConv2d
from gen_ext.nn.gated_stack import colour_thirds_to_gate_halves
from gen_ext.testing import input_dependence, raster_order_allowed

H, W = 5, 6


def window(rows, cols, channels, out_groups=1) -> torch.Tensor:
    """[out_groups, H, W, channels, H, W]: input (k, l) with k - i in rows and l - j in cols."""
    i = torch.arange(H)[:, None, None, None]
    j = torch.arange(W)[None, :, None, None]
    k = torch.arange(H)[None, None, :, None]
    l = torch.arange(W)[None, None, None, :]
    inside = (k - i >= rows[0]) & (k - i <= rows[1]) & (l - j >= cols[0]) & (l - j <= cols[1])
    return inside[None, :, :, None].expand(out_groups, H, W, channels, H, W)


def nothing(channels, out_groups=1):
    return torch.zeros((out_groups, H, W, channels, H, W), dtype=torch.bool)


@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize("color_channels", [1, 3])
@pytest.mark.parametrize("kernel", [3, (3, 5), (1, 5)])
def test_masked_conv_sees_exactly_its_mask(mask_type, color_channels, kernel):
    torch.manual_seed(0)
    conv = MaskedConv2d(6, 9, kernel, mask_type, color_channels).double()
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    seen = input_dependence(conv, torch.randn(1, 6, H, W, dtype=torch.float64), color_channels)
    same_pixel = (
        ("earlier" if mask_type == "A" else "up_to")
        if color_channels == 3
        else ("none" if mask_type == "A" else "up_to")
    )
    want = raster_order_allowed(H, W, 6, color_channels, same_pixel) & window(
        (-(kh // 2), 0), (-(kw // 2), kw // 2), 6, color_channels
    )
    assert torch.equal(seen, want)


def test_colour_thirds_to_gate_halves_pairs_each_colour():
    x = torch.arange(12.0).view(1, 12, 1, 1)  # R: a0 a1 b0 b1, G: ..., B: ...
    y = colour_thirds_to_gate_halves(x, 3).flatten().tolist()
    assert y == [0, 1, 4, 5, 8, 9, 2, 3, 6, 7, 10, 11]


@pytest.mark.parametrize("first", [True, False])
@pytest.mark.parametrize("color_channels", [1, 3])
@pytest.mark.parametrize("num_classes", [0, 4])
def test_gated_stack_layer_streams(first, color_channels, num_classes):
    """The vertical output sees the vertical input on its row and the k//2 rows above (which, by
    the stack's construction, hold only the image rows above); the horizontal output sees the
    horizontal input to its left on its row (and its own pixel's colour groups before or up to
    its own), and the vertical input where the vertical one does."""
    torch.manual_seed(0)
    F_, k = 6, 3
    C_in = color_channels if first else F_
    layer = GatedStackLayer(C_in, F_, k, color_channels, num_classes, first=first).double()
    labels = torch.tensor([1]) if num_classes else None
    z = torch.randn(1, 2 * C_in, H, W, dtype=torch.float64)

    def run(z):
        return layer(z[:, :C_in], z[:, C_in:], labels)

    seen_v = input_dependence(lambda z: run(z)[0], z)
    seen_h = input_dependence(lambda z: run(z)[1], z, color_channels)
    vertical = window((-(k // 2), 0), (-(k // 2), k // 2), C_in)
    assert torch.equal(seen_v[..., :C_in, :, :], vertical)
    assert torch.equal(seen_v[..., C_in:, :, :], nothing(C_in))
    assert torch.equal(
        seen_h[..., :C_in, :, :], vertical.expand(color_channels, *vertical.shape[1:])
    )
    same_pixel = "earlier" if first else "up_to"
    if color_channels == 1 and first:
        same_pixel = "none"
    left = raster_order_allowed(H, W, C_in, color_channels, same_pixel) & window(
        (0, 0), (-(k // 2), 0), C_in, color_channels
    )
    assert torch.equal(seen_h[..., C_in:, :, :], left)


def test_gated_stack_layer_label_errors():
    layer = GatedStackLayer(1, 3, 3, num_classes=2, first=True)
    x = torch.zeros(1, 1, 3, 3)
    with pytest.raises(ValueError, match="pass labels"):
        layer(x, x)
    with pytest.raises(ValueError, match="num_classes=0"):
        GatedStackLayer(1, 3, 3, first=True)(x, x, torch.tensor([0]))
    with pytest.raises(ValueError, match="positive multiple of color_channels"):
        GatedStackLayer(3, 4, 3, color_channels=3)


@pytest.mark.parametrize(
    "stream,cols,aux_cols", [("down", (-2, 2), (-1, 1)), ("down_right", (-2, 0), (-1, 0))]
)
def test_gated_residual_block_streams(stream, cols, aux_cols):
    """Two 2-row shifted convolutions reach two rows up; the auxiliary input enters before the
    second, so it reaches one."""
    torch.manual_seed(0)
    F_ = 3
    block = GatedResidualBlock(F_, stream, aux_channels=F_, dropout=0.5).double().eval()
    z = torch.randn(1, 2 * F_, H, W, dtype=torch.float64)
    seen = input_dependence(lambda z: block(z[:, :F_], aux=z[:, F_:]), z)
    assert torch.equal(seen[..., :F_, :, :], window((-2, 0), cols, F_))
    assert torch.equal(seen[..., F_:, :, :], window((-1, 0), aux_cols, F_))


@pytest.mark.parametrize("stream", ["down", "down_right"])
def test_gated_residual_block_equals_its_formula(stream):
    """The block with the padding written by concat-ELU equals the plain composition (F.pad
    then convolution), in float64: a border on the wrong side or a missing one changes it."""
    torch.manual_seed(1)
    block = GatedResidualBlock(4, stream, aux_channels=2).double().eval()
    x = torch.randn(2, 4, 5, 7, dtype=torch.float64)
    aux = torch.randn(2, 2, 5, 7, dtype=torch.float64)

    def celu(t):
        return F.elu(torch.cat([t, -t], 1))

    def conv(layer, t):
        return F.conv2d(F.pad(t, layer.causal_padding), layer.weight, layer.bias)

    h = conv(block.conv_in, celu(x)) + block.aux(celu(aux))
    a, b = conv(block.conv_gate, celu(h)).chunk(2, 1)
    want = x + torch.tanh(a) * torch.sigmoid(b)
    torch.testing.assert_close(block(x, aux=aux), want, rtol=1e-12, atol=1e-12)
