"""concat_elu (with dropout): the fused kernels against the reference (the spec)."""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from gen_ext import ops, reference
from gen_ext.ops.concat_elu import output_shape

OP = torch.ops.gen_ext.concat_elu
BACKWARD_OP = torch.ops.gen_ext.concat_elu_backward
EXACT = dict(rtol=1e-12, atol=1e-12)
SEED = 123456789012345


def value_and_grad(fn, x):
    """fn(x) and the gradient of a randomly weighted sum of it."""
    leaf = x.detach().clone().requires_grad_()
    out = fn(leaf)
    g = torch.Generator().manual_seed(9)
    weights = torch.randn(out.shape, generator=g, dtype=torch.float64).to(out.dtype)
    return out, torch.autograd.grad((out * weights).sum(), leaf)[0]


def data(shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * 2).to(dtype)


SHAPES = [(3, 4), (1, 1), (2, 6, 5), (3, 10, 37), (2, 4, 3, 7), (1, 2, 1, 1), (2, 8, 16, 16)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("p", [0.0, 0.5, 0.1])
def test_matches_reference_float64(cpu_isa, shape, p):
    x = data(shape, seed=len(shape))
    got = value_and_grad(lambda t: OP(t, p, SEED), x)
    want = value_and_grad(lambda t: reference.concat_elu(t, p, SEED), x)
    for name, g, w in zip(("out", "grad x"), got, want, strict=True):
        torch.testing.assert_close(g, w, **EXACT, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_float32_close_to_reference(cpu_isa, p):
    """expm1 (about 1 ulp), one multiply by the dropout factor and a few in the backward: a few
    float32 ulps (6e-8) relative to max(1, |value|); a wrong branch or factor is off by far
    more."""
    x = data((16, 40, 37), torch.float32, seed=2)
    got = value_and_grad(lambda t: OP(t, p, SEED), x)
    want = value_and_grad(lambda t: reference.concat_elu(t, p, SEED), x.double())
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g.double(), w, rtol=1e-6, atol=1e-6)


def test_float32_expm1_within_two_units_everywhere(cpu_isa):
    """The float kernels' own expm1 (gen_ext/expm1_float.h: a polynomial below ln 2, exp - 1
    above) over a dense sweep of [-30, 30] and tiny to large magnitudes of both signs, both
    halves: relative error at most 2 * 2^-23 (measured: 1.22 near -0.85, where exp - 1 takes
    over; torch's own float32 elu: 0.53). A missing polynomial term or the wrong branch at the
    bound is off by far more."""
    mags = torch.logspace(-30, 1.5, 20001, dtype=torch.float64)
    x = torch.cat([torch.linspace(-30, 30, 200001, dtype=torch.float64), mags, -mags])
    x = x.float().reshape(1, 1, -1)
    got = OP(x, 0.0, 0).double()
    want = reference.concat_elu(x.double(), 0.0, 0)
    rel = (got - want).abs() / want.abs().clamp_min(1e-300)
    rel[want == 0] = (got - want).abs()[want == 0]
    worst = rel.max().item()
    assert worst <= 2 * 2**-23, f"relative error {worst / 2**-23:.2f} x 2^-23"


def test_small_values_keep_their_digits():
    """elu of a tiny negative value is the value itself to first order: expm1, not exp - 1."""
    x = torch.tensor([[-1e-10, 1e-10, -3e-7]], dtype=torch.float32)
    out = OP(x, 0.0, 0)
    want = torch.nn.functional.elu(torch.cat([x, -x], 1).double())
    torch.testing.assert_close(out.double(), want, rtol=1e-6, atol=0)


def test_dropout_rate_and_scale():
    x = torch.ones(64, 32, 32)
    out = OP(x, 0.3, SEED)
    kept = out[:, :32] != 0
    assert abs(kept.double().mean().item() - 0.7) < 0.005
    torch.testing.assert_close(out[:, :32][kept], torch.full_like(out[:, :32][kept], 1 / 0.7))
    # the halves and the images draw different elements: not one mask repeated
    assert not torch.equal(out[:, :32] != 0, (out[:, 32:] != 0))
    assert not torch.equal(kept[0], kept[1])


def test_seed_and_generator_decide_the_mask():
    x = data((4, 8, 9))
    a, b = OP(x, 0.5, 1), OP(x, 0.5, 2)
    assert torch.equal(OP(x, 0.5, 1), a) and not torch.equal(a, b)
    g = torch.Generator().manual_seed(7)
    first = ops.concat_elu(x, 0.5, generator=g)
    g.manual_seed(7)
    assert torch.equal(ops.concat_elu(x, 0.5, generator=g), first)
    g.manual_seed(7)
    with ops.use_backend("reference"):
        torch.testing.assert_close(ops.concat_elu(x, 0.5, generator=g), first, **EXACT)


@pytest.mark.parametrize("p", [0.0, 0.4])
def test_gradcheck_and_gradgradcheck(p):
    x = data((2, 3, 5), seed=3).requires_grad_()
    fn = lambda t: OP(t, p, SEED)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("p", [0.0, 0.25])
def test_opcheck(requires_grad, p):
    x = data((3, 4, 5), seed=4).requires_grad_(requires_grad)
    torch.library.opcheck(OP, (x, p, SEED))
    grad = torch.rand(output_shape(x), dtype=x.dtype)
    torch.library.opcheck(BACKWARD_OP, (grad, x.detach(), p, SEED))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("p", [0.0, 0.5])
def test_nonfinite_values_match_the_reference(cpu_isa, value, dtype, p):
    """The value at every position of a row longer than two vectors (vector lanes and tails),
    and a NaN incoming gradient: NaN stays NaN (through a dropped element too), ±inf gives what
    the reference gives."""
    n = 37
    x = data((1, 1, n), dtype).expand(n, 1, n).clone()
    x[torch.arange(n), 0, torch.arange(n)] = value
    got = value_and_grad(lambda t: OP(t, p, SEED), x)
    want = value_and_grad(lambda t: reference.concat_elu(t, p, SEED), x)
    for g, w in zip(got, want, strict=True):
        assert torch.equal(torch.isnan(g), torch.isnan(w))
        assert torch.equal(torch.isposinf(g), torch.isposinf(w))
        assert torch.equal(torch.isneginf(g), torch.isneginf(w))
        finite = torch.isfinite(w)
        torch.testing.assert_close(g[finite], w[finite], rtol=1e-6, atol=1e-6)
    grad = torch.ones(output_shape(x), dtype=dtype)
    grad[0, 0, 0] = float("nan")
    assert torch.isnan(BACKWARD_OP(grad, x, p, SEED)[0, 0, 0])


def test_non_contiguous_inputs():
    x = data((6, 4, 10), seed=8)
    want = value_and_grad(lambda t: OP(t, 0.5, SEED), x)
    view = x.transpose(0, 2).contiguous().transpose(0, 2)
    assert not view.is_contiguous()
    got = value_and_grad(lambda t: OP(t, 0.5, SEED), view)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, **EXACT)


@pytest.mark.parametrize("shape", [(0, 4), (3, 0, 5), (2, 4, 0)])
def test_empty(shape):
    x = torch.empty(shape, dtype=torch.float64, requires_grad=True)
    out = ops.concat_elu(x, 0.5)
    assert list(out.shape) == output_shape(x)
    out.sum().backward()
    assert x.grad.shape == x.shape


def test_bad_input_names_the_argument():
    with pytest.raises(RuntimeError, match="p must lie in"):
        OP(torch.ones(2, 3), 1.0, 0)
    with pytest.raises(RuntimeError, match="x must be float32 or float64"):
        OP(torch.ones(2, 3, dtype=torch.int32), 0.0, 0)
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        OP(torch.ones(3), 0.0, 0)
    with pytest.raises(RuntimeError, match="grad must have the output's shape"):
        BACKWARD_OP(torch.ones(2, 3), torch.ones(2, 3), 0.0, 0)
    with FakeTensorMode(), pytest.raises(RuntimeError, match="p must lie in"):
        OP(torch.ones(2, 3), -0.1, 0)


def test_bit_identical_across_threads():
    x = data((8, 64, 333), torch.float32, seed=6)
    grad = torch.randn(output_shape(x))
    first = (OP(x, 0.5, SEED), BACKWARD_OP(grad, x, 0.5, SEED))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = (OP(x, 0.5, SEED), BACKWARD_OP(grad, x, 0.5, SEED))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(first, single, strict=True):
        assert torch.equal(a, b)


# ---- the zero border (pad = (left, right, top, bottom)) that shifted convolutions read ----

PADS = [(1, 1, 1, 0), (1, 0, 1, 0), (0, 0, 0, 0), (2, 3, 1, 2), (0, 5, 0, 0), (0, 0, 3, 0)]
PADDED_SHAPES = [(2, 3, 5, 7), (1, 2, 1, 1), (2, 4, 8, 37), (1, 1, 3, 16)]


@pytest.mark.parametrize("shape", PADDED_SHAPES)
@pytest.mark.parametrize("pad", PADS)
@pytest.mark.parametrize("p", [0.0, 0.5])
def test_padded_matches_reference_float64(cpu_isa, shape, pad, p):
    """Rows shorter than, equal to and longer than a vector (partial last vectors), borders on
    any side; the dropout stream counts the unpadded elements, so the interior equals the
    unpadded output (checked against the reference, which pads after)."""
    x = data(shape, seed=sum(pad))
    got = value_and_grad(lambda t: OP(t, p, SEED, list(pad)), x)
    want = value_and_grad(lambda t: reference.concat_elu(t, p, SEED, pad), x)
    for name, g, w in zip(("out", "grad x"), got, want, strict=True):
        torch.testing.assert_close(g, w, **EXACT, msg=lambda m, name=name: f"{name}: {m}")
    left, right, top, bottom = pad
    H, W = shape[2:]
    interior = got[0][:, :, top : top + H, left : left + W]
    torch.testing.assert_close(interior, OP(x, p, SEED), **EXACT)
    border = got[0].clone()
    border[:, :, top : top + H, left : left + W] = 0
    assert torch.equal(border, torch.zeros_like(border))


def test_padded_border_is_written_over_garbage():
    """The border is written by the kernel, not left from the allocation: a fresh output over
    memory just freed from a tensor of NaNs still has exact zeros there."""
    x = data((2, 3, 6, 9), torch.float32, seed=11)
    for _ in range(3):
        torch.full((2, 6, 7, 11), float("nan")).sum()
        out = OP(x, 0.0, 0, [1, 1, 1, 0])
        assert torch.equal(out[:, :, 0], torch.zeros_like(out[:, :, 0]))
        assert torch.equal(out[..., 0], torch.zeros_like(out[..., 0]))
        assert torch.equal(out[..., -1], torch.zeros_like(out[..., -1]))


@pytest.mark.parametrize("p", [0.0, 0.4])
def test_padded_gradcheck_and_gradgradcheck(p):
    x = data((2, 2, 3, 4), seed=3).requires_grad_()
    fn = lambda t: OP(t, p, SEED, [1, 1, 1, 0])  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("requires_grad", [False, True])
def test_padded_opcheck(requires_grad):
    x = data((2, 3, 4, 5), seed=4).requires_grad_(requires_grad)
    pad = [1, 0, 1, 0]
    torch.library.opcheck(OP, (x, 0.25, SEED, pad))
    grad = torch.rand(output_shape(x, pad), dtype=x.dtype)
    torch.library.opcheck(BACKWARD_OP, (grad, x.detach(), 0.25, SEED, pad))


def test_padded_empty_input_is_all_border():
    x = torch.empty((2, 3, 0, 4), dtype=torch.float64, requires_grad=True)
    out = ops.concat_elu(x, 0.5, pad=(1, 1, 2, 0))
    assert list(out.shape) == [2, 6, 2, 6] and torch.equal(out, torch.zeros_like(out))
    out.sum().backward()
    assert x.grad.shape == x.shape


def test_bad_pad_names_the_argument():
    x = torch.ones(2, 3, 4, 5)
    with pytest.raises(RuntimeError, match=r"pad must be empty or \(left, right, top, bottom\)"):
        OP(x, 0.0, 0, [1, 1, 1])
    with pytest.raises(RuntimeError, match="pad must be non-negative"):
        OP(x, 0.0, 0, [1, -1, 1, 0])
    with pytest.raises(RuntimeError, match=r"pad needs x of shape \[B, C, H, W\], got 3-D"):
        OP(torch.ones(2, 3, 4), 0.0, 0, [1, 1, 1, 0])
    with pytest.raises(RuntimeError, match="grad must have the output's shape"):
        BACKWARD_OP(torch.ones(2, 6, 4, 5), x, 0.0, 0, [1, 1, 1, 0])
    with pytest.raises(TypeError, match="pad must hold ints"):
        ops.concat_elu(x, pad=(1.0, 1, 1, 0))
    with FakeTensorMode(), pytest.raises(RuntimeError, match="pad must be non-negative"):
        OP(torch.ones(2, 3, 4, 5), 0.0, 0, [0, 0, -2, 0])


# ---- channels last: the layout a channels-last model hands over, kept with no copy ----

CL = torch.channels_last


def channels_last(t):
    return t.contiguous(memory_format=CL)


@pytest.mark.parametrize("shape", PADDED_SHAPES + [(2, 80, 4, 5), (3, 17, 2, 3)])
@pytest.mark.parametrize("pad", [None, (1, 1, 1, 0), (1, 0, 1, 0), (2, 3, 1, 2)])
@pytest.mark.parametrize("p", [0.0, 0.5])
def test_channels_last_matches_reference_float64(cpu_isa, shape, pad, p):
    """Channel runs shorter and longer than a vector, every border; the dropout stream still
    counts the NCHW output's elements (a pixel's channels are H * W apart in it), so the values
    equal the NCHW kernels' and the reference's; output and gradient stay channels last."""
    x = channels_last(data(shape, seed=len(shape) + (sum(pad) if pad else 0)))
    pad = list(pad) if pad else []
    got = value_and_grad(lambda t: OP(t, p, SEED, pad), x)
    want = value_and_grad(lambda t: reference.concat_elu(t, p, SEED, pad), x.contiguous())
    for name, g, w in zip(("out", "grad x"), got, want, strict=True):
        torch.testing.assert_close(g, w, **EXACT, msg=lambda m, name=name: f"{name}: {m}")
    if not x.is_contiguous():  # one channel or a 1x1 map is both layouts at once: NCHW then
        assert got[0].is_contiguous(memory_format=CL) and got[1].is_contiguous(memory_format=CL)


def test_channels_last_border_is_written_over_garbage():
    x = channels_last(data((2, 3, 6, 9), torch.float32, seed=11))
    for _ in range(3):
        torch.full((2, 6, 7, 11), float("nan")).sum()
        out = OP(x, 0.0, 0, [1, 1, 1, 0])
        border = out.clone()
        border[:, :, 1:, 1:-1] = 0
        assert torch.equal(border, torch.zeros_like(border))


def test_channels_last_gradient_in_another_layout():
    """An incoming gradient in NCHW (a reduction's, say) is read in the kernels' layout."""
    x = channels_last(data((2, 5, 3, 4), seed=12))
    grad = data(output_shape(x, [1, 1, 1, 0]), seed=13)
    got = BACKWARD_OP(grad, x, 0.5, SEED, [1, 1, 1, 0])
    want = BACKWARD_OP(grad, x.contiguous(), 0.5, SEED, [1, 1, 1, 0])
    torch.testing.assert_close(got, want, **EXACT)
    assert got.is_contiguous(memory_format=CL)


@pytest.mark.parametrize("p", [0.0, 0.4])
def test_channels_last_gradcheck_and_gradgradcheck(p):
    x = channels_last(data((2, 3, 3, 4), seed=3)).requires_grad_()
    fn = lambda t: OP(t, p, SEED, [1, 1, 1, 0])  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("pad", [[], [1, 0, 1, 0]])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_channels_last_opcheck(pad, requires_grad):
    """opcheck compares the fake kernel's strides with the real one's: both channels last."""
    x = channels_last(data((2, 3, 4, 5), seed=4)).requires_grad_(requires_grad)
    torch.library.opcheck(OP, (x, 0.25, SEED, pad))
    grad = channels_last(torch.rand(output_shape(x, pad), dtype=x.dtype))
    torch.library.opcheck(BACKWARD_OP, (grad, x.detach(), 0.25, SEED, pad))
