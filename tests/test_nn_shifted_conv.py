"""gen_ext.nn shifted convolutions: shapes, errors, and exactly which inputs each output sees."""

import pytest
import torch

from gen_ext import ops
from gen_ext.nn import (
    DownRightShiftedConv2d,
    DownRightShiftedConvTranspose2d,
    DownShiftedConv2d,
    DownShiftedConvTranspose2d,
    shift_down,
    shift_right,
)
from gen_ext.testing import input_dependence


def expected(out_hw, in_hw, channels, sees) -> torch.Tensor:
    """input_dependence's layout [1, H', W', C, H, W] from sees(i, j, k, l) -> bool."""
    (Ho, Wo), (H, W) = out_hw, in_hw
    pattern = torch.tensor(
        [
            [[[sees(i, j, k, l) for l in range(W)] for k in range(H)] for j in range(Wo)]
            for i in range(Ho)
        ]
    )
    return pattern[None, :, :, None].expand(1, Ho, Wo, channels, H, W)


def seen_by(layer, H, W, C=2):
    torch.manual_seed(0)
    layer = layer.double()
    x = torch.randn(1, C, H, W, dtype=torch.float64)
    return input_dependence(layer, x), layer(x).shape[-2:]


@pytest.mark.parametrize("kernel,stride", [((2, 3), 1), ((3, 5), 1), ((1, 3), 1), ((2, 3), 2)])
def test_down_shifted_conv_sees_its_row_and_above_within_the_kernel(kernel, stride):
    kh, kw = kernel
    seen, out_hw = seen_by(DownShiftedConv2d(2, 3, kernel, stride), 6, 7)
    assert tuple(out_hw) == (-(-6 // stride), -(-7 // stride))
    want = expected(
        out_hw,
        (6, 7),
        2,
        lambda i, j, k, l: stride * i - kh < k <= stride * i and abs(l - stride * j) <= kw // 2,
    )
    assert torch.equal(seen, want)


@pytest.mark.parametrize("kernel,stride", [((2, 2), 1), ((2, 1), 1), ((3, 2), 1), ((2, 2), 2)])
def test_down_right_shifted_conv_sees_above_and_left_within_the_kernel(kernel, stride):
    kh, kw = kernel
    seen, out_hw = seen_by(DownRightShiftedConv2d(2, 3, kernel, stride), 6, 7)
    assert tuple(out_hw) == (-(-6 // stride), -(-7 // stride))
    want = expected(
        out_hw,
        (6, 7),
        2,
        lambda i, j, k, l: stride * i - kh < k <= stride * i and stride * j - kw < l <= stride * j,
    )
    assert torch.equal(seen, want)


@pytest.mark.parametrize("kernel,stride", [((2, 3), 2), ((3, 3), 2), ((1, 1), 1)])
def test_down_shifted_transpose_output_row_reads_input_rows_at_or_above_its_own(kernel, stride):
    kh, kw = kernel
    left = (kw - 1) // 2
    seen, out_hw = seen_by(DownShiftedConvTranspose2d(2, 3, kernel, stride), 3, 4)
    assert tuple(out_hw) == (3 * stride, 4 * stride)
    # output (r, c) receives input (k, l) through tap (r - s*k, c - s*l + left)
    want = expected(
        out_hw,
        (3, 4),
        2,
        lambda r, c, k, l: 0 <= r - stride * k < kh and 0 <= c - stride * l + left < kw,
    )
    assert torch.equal(seen, want)
    for r in range(out_hw[0]):  # the property the models rely on
        assert not seen[0, r, :, :, r // stride + 1 :].any()


@pytest.mark.parametrize("kernel,stride", [((2, 2), 2), ((3, 2), 2), ((1, 1), 1)])
def test_down_right_shifted_transpose_reads_inputs_above_and_left(kernel, stride):
    kh, kw = kernel
    seen, out_hw = seen_by(DownRightShiftedConvTranspose2d(2, 3, kernel, stride), 3, 4)
    assert tuple(out_hw) == (3 * stride, 4 * stride)
    want = expected(
        out_hw, (3, 4), 2, lambda r, c, k, l: 0 <= r - stride * k < kh and 0 <= c - stride * l < kw
    )
    assert torch.equal(seen, want)


def test_shifts():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    assert torch.equal(shift_down(x)[0, 0], torch.tensor([[0.0] * 4, [0, 1, 2, 3], [4, 5, 6, 7]]))
    assert torch.equal(shift_right(x, 2)[0, 0, 0], torch.tensor([0.0, 0, 0, 1]))


def test_same_weights_as_a_plain_conv_on_the_padded_input():
    torch.manual_seed(0)
    conv = DownRightShiftedConv2d(2, 3, (2, 2))
    x = torch.randn(2, 2, 5, 5)
    padded = torch.nn.functional.pad(x, (1, 0, 1, 0))
    torch.testing.assert_close(conv(x), torch.nn.functional.conv2d(padded, conv.weight, conv.bias))
    assert set(conv.state_dict()) == {"weight", "bias"}


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="kernel width must be odd"):
        DownShiftedConv2d(1, 1, (2, 2))
    with pytest.raises(ValueError, match="kernel_size must be a positive int"):
        DownRightShiftedConv2d(1, 1, (0, 2))
    with pytest.raises(ValueError, match="stride must be a positive int"):
        DownShiftedConv2d(1, 1, (2, 3), stride=0)
    with pytest.raises(ValueError, match="at least the stride"):
        DownRightShiftedConvTranspose2d(1, 1, (1, 2), stride=2)
    with pytest.raises(ValueError, match="kernel_size must have an odd width"):
        DownShiftedConvTranspose2d(1, 1, (2, 1), stride=2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_is_refused_with_the_ops_message(dtype):
    """The layers run gen_ext's op, which computes in float32 and float64 only (README, Known
    limits): a half-precision input gets the op's message naming the argument, not a wrong or
    silently slower result."""
    for layer in (DownShiftedConv2d(3, 4, (2, 3)), DownRightShiftedConv2d(3, 4, (2, 2))):
        layer = layer.to(dtype)
        with pytest.raises(RuntimeError, match="x must be float32 or float64"):
            layer(torch.zeros(1, 3, 4, 4, dtype=dtype))


def test_forward_padded_reads_a_bordered_input():
    """forward_padded of the input inside its causal border is forward: the layers that receive
    the border from concat-ELU compute the same convolution. forward_padded is nn.Conv2d's
    (bit for bit); at stride 1 forward is gen_ext.ops.shifted_conv2d, whose implicit GEMM sums
    the taps in another order than oneDNN, so the two agree to float64 rounding."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    for layer in (DownShiftedConv2d(3, 4, (2, 3)), DownRightShiftedConv2d(3, 4, (2, 2))):
        layer = layer.double()
        padded = torch.nn.functional.pad(x, layer.causal_padding)
        conv2d = torch.nn.functional.conv2d(padded, layer.weight, layer.bias)
        torch.testing.assert_close(layer.forward_padded(padded), conv2d, rtol=0, atol=0)
        torch.testing.assert_close(layer.forward_padded(padded), layer(x), rtol=1e-12, atol=1e-12)


def test_stride_one_runs_the_op_and_the_reference_backend_the_plain_layer(monkeypatch):
    """At stride 1 the layers run gen_ext.ops.shifted_conv2d; on the reference backend they are
    the plain layer (F.pad + conv2d, bit for bit), the baseline of the model benchmarks."""
    import gen_ext.nn.shifted_conv as shifted

    calls = []
    real = shifted.ops.shifted_conv2d
    monkeypatch.setattr(shifted.ops, "shifted_conv2d", lambda *a: calls.append(a[-1]) or real(*a))
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    for layer in (DownShiftedConv2d(3, 4, (2, 3)), DownRightShiftedConv2d(3, 4, (2, 2))):
        layer = layer.double()
        plain = torch.nn.functional.conv2d(
            torch.nn.functional.pad(x, layer.causal_padding), layer.weight, layer.bias
        )
        with ops.use_backend("reference"):
            torch.testing.assert_close(layer(x), plain, rtol=0, atol=0)
        assert calls == [] if layer.shift == "down" else calls == ["down"]
        torch.testing.assert_close(layer(x), plain, rtol=1e-12, atol=1e-12)
    assert calls == ["down", "down_right"]
