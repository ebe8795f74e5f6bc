"""PixelRNN's diagonal LSTM layers: skew and unskew, exactly which inputs each output sees
(float64 gradients compared with zero), and the fused layer against the reference backend."""

import pytest
import torch

from gen_ext import ops
from gen_ext.nn import DiagonalBiLSTM, DiagonalLSTM, skew, unskew
from gen_ext.testing import input_dependence, raster_order_allowed

H, W = 4, 5


def test_skew_moves_row_r_right_by_r():
    x = torch.arange(2 * 3 * H * W, dtype=torch.float64).view(2, 3, H, W)
    s = skew(x)
    assert s.shape == (2, 3, H, W + H - 1)
    for r in range(H):
        assert torch.equal(s[:, :, r, r : r + W], x[:, :, r])
        assert not s[:, :, r, :r].any() and not s[:, :, r, r + W :].any()
    assert torch.equal(unskew(s, W), x)


def test_unskew_names_a_bad_width():
    with pytest.raises(ValueError, match="has 8 columns, got 7"):
        unskew(torch.zeros(1, 2, H, 7), W)


def rectangle(channels, out_groups=1):
    """Input (k, l) with k <= i and l <= j: what one left-to-right direction sees."""
    i = torch.arange(H)[:, None, None, None]
    j = torch.arange(W)[None, :, None, None]
    k = torch.arange(H)[None, None, :, None]
    l = torch.arange(W)[None, None, None, :]
    inside = (k <= i) & (l <= j)
    return inside[None, :, :, None].expand(out_groups, H, W, channels, H, W)


def test_one_direction_sees_the_rectangle_above_left():
    torch.manual_seed(0)
    layer = DiagonalLSTM(2, 3).double()
    seen = input_dependence(layer, torch.randn(1, 2, H, W, dtype=torch.float64))
    assert torch.equal(seen, rectangle(2))


@pytest.mark.parametrize("color_channels", [1, 3])
def test_bilstm_sees_exactly_the_causal_past(color_channels):
    """Every pixel before (i, j) in raster order and, at (i, j), its colour's input thirds up to
    its own (mask B): the right-to-left direction shifted down covers the rows above on the
    right, which one direction alone misses."""
    torch.manual_seed(1)
    C = 3 * color_channels
    layer = DiagonalBiLSTM(C, 3 * color_channels, color_channels).double()
    seen = input_dependence(
        layer, torch.randn(1, C, H, W, dtype=torch.float64), out_groups=color_channels
    )
    want = raster_order_allowed(H, W, C, color_channels, same_pixel="up_to")
    assert torch.equal(seen, want)


def test_fused_layer_matches_the_reference_backend():
    torch.manual_seed(2)
    layer = DiagonalBiLSTM(6, 5).double()
    x = torch.randn(3, 6, 7, 6, dtype=torch.float64)

    def run():
        leaf = x.clone().requires_grad_()
        out = layer(leaf)
        grads = torch.autograd.grad(
            (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(),
            [leaf, *layer.parameters()],
        )
        return out, *grads

    fused = run()
    with ops.use_backend("reference"):
        want = run()
    for got, exp in zip(fused, want, strict=True):
        torch.testing.assert_close(got, exp, rtol=1e-11, atol=1e-12)


def test_bad_channel_counts_are_named():
    with pytest.raises(ValueError, match="divisible by 3"):
        DiagonalBiLSTM(4, 3, color_channels=3)
    with pytest.raises(ValueError, match="color_channels must be 1 or 3"):
        DiagonalLSTM(3, 3, color_channels=2)
    with pytest.raises(ValueError, match="must be positive"):
        DiagonalLSTM(3, 0)
