"""gated_activation: the fused kernels against the reference (the spec)."""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from gen_ext import ops, reference
from gen_ext.nn import GatedActivation
from gen_ext.ops.gated import output_shape

OP = torch.ops.gen_ext.gated_activation
BACKWARD_OP = torch.ops.gen_ext.gated_activation_backward
EXACT = dict(rtol=1e-12, atol=1e-12)


def inputs(shape, dtype=torch.float64, seed=0, spread=3.0):
    """x of `shape` (spread wide enough to reach both tails of tanh and sigmoid) and a residual
    shaped like the output."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype) * spread
    residual = torch.randn(output_shape(x), generator=g, dtype=dtype)
    return x, residual


def value_and_grads(fn, x, residual=None):
    """fn's output and the gradients of x (and of the residual, when given) of a randomly
    weighted sum of it, so every output element's gradient differs."""
    leaves = [x.detach().clone().requires_grad_()]
    if residual is not None:
        leaves.append(residual.detach().clone().requires_grad_())
    out = fn(*leaves)
    g = torch.Generator().manual_seed(9)
    weights = torch.randn(out.shape, generator=g, dtype=torch.float64).to(out.dtype)
    return (out, *torch.autograd.grad((out * weights).sum(), leaves))


def assert_all_close(got, want, names, **tol):
    assert len(got) == len(want)
    # names includes the residual's gradient, which a call without a residual does not return
    for name, g, w in zip(names, got, want, strict=False):
        torch.testing.assert_close(g, w, **tol, msg=lambda m, name=name: f"{name}: {m}")


SHAPES = [
    (3, 4),
    (1, 2),
    (2, 6, 5),
    (3, 10, 37),
    (2, 4, 3, 7),
    (1, 2, 1, 1),
    (2, 8, 16, 16),
    (2, 2, 3, 2, 3),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_residual", [False, True])
def test_matches_reference_float64(cpu_isa, shape, with_residual):
    x, residual = inputs(shape, seed=len(shape))
    residual = residual if with_residual else None
    got = value_and_grads(ops.gated_activation, x, residual)
    want = value_and_grads(reference.gated_activation, x, residual)
    assert_all_close(got, want, ("out", "grad x", "grad residual"), **EXACT)


def test_float32_close_to_reference(cpu_isa):
    """float32 kernels against the float64 reference on the same (float32) inputs. Each output
    is a product of a few factors (two exponentials, one division, tanh and sigmoid and their
    derivatives), each carrying a few float32 ulps (6e-8) of relative error; measured: under
    1e-6 relative to max(1, |value|) on every instruction set, so 2e-6 bounds it with headroom
    while any error in the formula (>= 1e-3 here) fails."""
    x, residual = inputs((16, 200, 37), torch.float32, seed=2)
    got = value_and_grads(ops.gated_activation, x, residual)
    want = value_and_grads(reference.gated_activation, x.double(), residual.double())
    assert_all_close(
        [g.double() for g in got], want, ("out", "grad x", "grad residual"), rtol=2e-6, atol=2e-6
    )


def test_gradcheck_and_gradgradcheck():
    x, residual = (t.requires_grad_() for t in inputs((2, 6, 3), seed=3, spread=1.0))
    assert torch.autograd.gradcheck(OP, (x, residual))
    assert torch.autograd.gradgradcheck(OP, (x, residual))
    assert torch.autograd.gradcheck(lambda x_: OP(x_, None), (x,))
    assert torch.autograd.gradgradcheck(lambda x_: OP(x_, None), (x,))


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("with_residual", [False, True])
def test_opcheck(requires_grad, with_residual):
    x, residual = inputs((3, 4, 5), seed=4)
    residual = residual.requires_grad_(requires_grad) if with_residual else None
    torch.library.opcheck(OP, (x.requires_grad_(requires_grad), residual))
    out = OP(x.detach(), None)
    torch.library.opcheck(BACKWARD_OP, (torch.rand_like(out), x.detach()))


@pytest.mark.parametrize("value", [-1e4, -88.0, 0.0, 88.0, 1e4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_values_are_finite_and_match_the_reference(cpu_isa, value, dtype):
    """Every pairing of an extreme a with an extreme or ordinary b, across full vectors and row
    tails: outputs and gradients finite and equal to the float64 reference's."""
    ordinary = torch.linspace(-3, 3, 7, dtype=torch.float64)
    extremes = torch.tensor([-1e4, -88.0, 0.0, 88.0, 1e4], dtype=torch.float64)
    partners = torch.cat([extremes, ordinary])
    n = partners.numel()
    # a = value everywhere in row 0 with b running over the partners; row 1 the other way round
    a = torch.stack([torch.full((n,), value, dtype=torch.float64), partners])
    b = torch.stack([partners, torch.full((n,), value, dtype=torch.float64)])
    x = torch.stack([a, b], dim=1).repeat(1, 1, 3)  # [2, 2, 3n]: vectors and tails alike
    got = value_and_grads(ops.gated_activation, x.to(dtype))
    want = value_and_grads(reference.gated_activation, x)
    # float32: the rounding of the ordinary partners' values (see test_float32_close_to_reference)
    tol = EXACT if dtype == torch.float64 else dict(rtol=2e-6, atol=2e-6)
    for name, g, w in zip(("out", "grad x"), got, want, strict=True):
        assert torch.isfinite(g).all(), name
        torch.testing.assert_close(g.double(), w, **tol, msg=lambda m, name=name: f"{name}: {m}")


def test_saturated_derivatives_do_not_cancel():
    """Where tanh(a) and sigmoid(b) round to 1, their derivatives are still resolved (the
    kernels do not form 1 - t^2 or 1 - s); float64 against the closed forms."""
    a = torch.tensor([20.0, -20.0, 30.0], dtype=torch.float64)
    b = torch.tensor([40.0, 40.0, 60.0], dtype=torch.float64)
    x = torch.stack([a, b]).view(1, 2, 3)
    grad_x = BACKWARD_OP(torch.ones(1, 1, 3, dtype=torch.float64), x)
    s, t = torch.sigmoid(b), torch.tanh(a)
    dtanh = 4 * torch.exp(-2 * a.abs()) / (1 + torch.exp(-2 * a.abs())) ** 2
    dsigmoid = torch.exp(-b.abs()) / (1 + torch.exp(-b.abs())) ** 2
    assert (dtanh > 0).all() and (dsigmoid > 0).all()
    torch.testing.assert_close(grad_x[0, 0], s * dtanh, rtol=1e-12, atol=0)
    torch.testing.assert_close(grad_x[0, 1], t * dsigmoid, rtol=1e-12, atol=0)


@pytest.mark.parametrize("with_residual", [False, True])
def test_non_contiguous_inputs(with_residual):
    x, residual = inputs((6, 4, 10), seed=8)
    views = {
        "transposed": x.transpose(0, 2).contiguous().transpose(0, 2),
        "strided": torch.stack([x, -x], dim=-1)[..., 0],
        "channel slice": torch.cat([-x, x], dim=1)[:, 4:],
    }
    r = residual.transpose(0, 2).contiguous().transpose(0, 2) if with_residual else None
    want = value_and_grads(reference.gated_activation, x, r)
    for name, view in views.items():
        assert not view.is_contiguous(), name
        assert torch.equal(view, x), name
        got = value_and_grads(ops.gated_activation, view, r)
        assert_all_close(
            got, want, (f"{name} out", f"{name} grad x", f"{name} grad residual"), **EXACT
        )


@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("with_residual", [False, True])
def test_broadcast_incoming_gradient(cpu_isa, reduce, with_residual):
    """out.sum() hands the backward a stride-0 gradient, which the CPU kernel reads in place."""
    x, residual = inputs((5, 6, 21), seed=10)
    grads = []
    for fn in (ops.gated_activation, reference.gated_activation):
        xx = x.clone().requires_grad_()
        rr = residual.clone().requires_grad_() if with_residual else None
        getattr(fn(xx, rr), reduce)().backward()
        grads.append((xx.grad,) + ((rr.grad,) if with_residual else ()))
    assert_all_close(grads[0], grads[1], ("grad x", "grad residual"), **EXACT)
    grad = torch.tensor(0.5, dtype=torch.float64).expand(5, 3, 21)
    assert grad.stride() == (0, 0, 0)
    torch.testing.assert_close(BACKWARD_OP(grad, x), BACKWARD_OP(grad.contiguous(), x), **EXACT)


@pytest.mark.parametrize("shape", [(0, 4), (0, 6, 5), (3, 0, 5), (2, 4, 0), (2, 4, 3, 0)])
def test_empty(shape):
    x, residual = inputs(shape)
    out = ops.gated_activation(x, residual)
    assert list(out.shape) == output_shape(x)
    leaf = x.clone().requires_grad_()
    ops.gated_activation(leaf, residual).sum().backward()
    assert leaf.grad.shape == x.shape
    assert BACKWARD_OP(torch.empty(output_shape(x), dtype=x.dtype), x).shape == x.shape


def test_bit_identical_across_threads():
    x, residual = inputs((8, 64, 333), torch.float32, seed=6)
    grad = torch.randn(output_shape(x))
    first = (OP(x, residual), BACKWARD_OP(grad, x))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = (OP(x, residual), BACKWARD_OP(grad, x))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(first, single, strict=True):
        assert torch.equal(a, b)


def test_reference_backend():
    x, residual = inputs((2, 6, 5), seed=11)
    with ops.use_backend("reference"):
        got = ops.gated_activation(x, residual)
    torch.testing.assert_close(got, reference.gated_activation(x, residual), rtol=0, atol=0)


BAD = [
    (lambda x, r: (x[:, :5], None), "x must have an even number of channels \\(dim 1\\), got 5"),
    (lambda x, r: (x.long(), None), "x must be float32 or float64, got"),
    (lambda x, r: (x.half(), None), "x must be float32 or float64, got"),
    (lambda x, r: (x[:, 0, 0], None), "x must have at least 2 dimensions"),
    (
        lambda x, r: (x, r[:, :, :3]),
        "residual must have the output's shape \\[3, 3, 4\\], got \\[3, 3, 3\\]",
    ),
    (lambda x, r: (x, r[:, :2]), "residual must have the output's shape"),
    (lambda x, r: (x, r.float()), "residual must match x in dtype and device"),
    (lambda x, r: (x, r.to("meta")), "residual must match x in dtype and device"),
]


# The CPU kernel itself: a call with a meta tensor among its arguments would otherwise dispatch to
# the fake (meta) kernel.
CPU_KEYS = torch._C.DispatchKeySet(torch._C.DispatchKey.CPU)


def raises_everywhere(op, args, message):
    """The CPU kernel, the fake kernel and plain dispatch all refuse args with message."""
    with pytest.raises(RuntimeError, match=message):
        op.default.redispatch(CPU_KEYS, *args)
    with FakeTensorMode() as mode:
        with pytest.raises(RuntimeError, match=message):
            op(*(None if a is None else mode.from_tensor(a) for a in args))
    with pytest.raises(RuntimeError, match=message):
        op(*args)


@pytest.mark.parametrize("change,message", BAD)
def test_bad_input_names_the_argument(change, message):
    args = change(*inputs((3, 6, 4)))
    raises_everywhere(OP, args, f"gated_activation: {message}")
    with pytest.raises(RuntimeError, match=f"gated_activation: {message}"):
        ops.gated_activation(*args)
    with ops.use_backend("reference"):
        with pytest.raises(RuntimeError, match=f"gated_activation: {message}"):
            ops.gated_activation(*args)


BAD_BACKWARD = [
    (lambda g, x: (g, x[:, :5]), "x must have an even number of channels \\(dim 1\\), got 5"),
    (lambda g, x: (g.long(), x.long()), "x must be float32 or float64"),
    (lambda g, x: (g[:, :2], x), "grad must have the output's shape"),
    (lambda g, x: (g.float(), x), "grad must match x in dtype and device"),
    (lambda g, x: (g.to("meta"), x), "grad must match x in dtype and device"),
]


@pytest.mark.parametrize("change,message", BAD_BACKWARD)
def test_bad_backward_input_names_the_argument(change, message):
    x, residual = inputs((3, 6, 4))
    args = change(torch.ones_like(residual), x)
    raises_everywhere(BACKWARD_OP, args, f"gated_activation_backward: {message}")


def test_gated_activation_layer():
    layer = GatedActivation()
    x, residual = inputs((2, 8, 5, 5), seed=12)
    torch.testing.assert_close(layer(x), reference.gated_activation(x), **EXACT)
    torch.testing.assert_close(layer(x, residual), reference.gated_activation(x, residual), **EXACT)
    leaf = x.clone().requires_grad_()
    layer(leaf, residual=residual).sum().backward()
    assert leaf.grad is not None and leaf.grad.shape == x.shape
    assert list(layer.parameters()) == []


def test_small_a_keeps_its_relative_accuracy(cpu_isa):
    """tanh of a small a from expm1, not 1 - exp(-2|a|): float32 outputs and gradients of the b
    half (which carry tanh(a)) within a few ulps relative, at a from 1e-7 to 1e-2."""
    a = torch.logspace(-7, -2, 64, dtype=torch.float64) * torch.tensor([1.0, -1.0]).repeat(32)
    b = torch.linspace(-3, 3, 64, dtype=torch.float64)
    x = torch.stack([a, b]).view(1, 2, 64).float()
    got = value_and_grads(ops.gated_activation, x)
    want = value_and_grads(reference.gated_activation, x.double())
    torch.testing.assert_close(got[0].double(), want[0], rtol=1e-6, atol=0)
    torch.testing.assert_close(got[1][:, 1].double(), want[1][:, 1], rtol=1e-6, atol=0)


# ---- channels last: rows of pixels instead of images, the layout kept with no copy ----

CL = torch.channels_last


@pytest.mark.parametrize("shape", [(2, 4, 3, 7), (2, 160, 5, 4), (1, 34, 3, 3)])
@pytest.mark.parametrize("with_residual", [False, True])
def test_channels_last_matches_reference_float64(cpu_isa, shape, with_residual):
    x, residual = (t.contiguous(memory_format=CL) for t in inputs(shape, seed=len(shape)))
    residual = residual if with_residual else None
    got = value_and_grads(ops.gated_activation, x, residual)
    want = value_and_grads(reference.gated_activation, x.contiguous(), residual)
    assert_all_close(got, want, ("out", "grad x", "grad residual"), **EXACT)
    assert got[0].is_contiguous(memory_format=CL) and got[1].is_contiguous(memory_format=CL)


def test_channels_last_with_an_nchw_residual():
    """Only x decides the layout; a residual stored otherwise is read in x's."""
    x, residual = inputs((2, 6, 4, 5), seed=5)
    got = ops.gated_activation(x.contiguous(memory_format=CL), residual)
    torch.testing.assert_close(got, reference.gated_activation(x, residual), **EXACT)
    assert got.is_contiguous(memory_format=CL)


def test_channels_last_gradcheck_and_gradgradcheck():
    x, residual = (
        t.contiguous(memory_format=CL).requires_grad_()
        for t in inputs((2, 4, 3, 2), seed=6, spread=1.0)
    )
    assert torch.autograd.gradcheck(ops.gated_activation, (x, residual))
    assert torch.autograd.gradgradcheck(ops.gated_activation, (x, residual))


@pytest.mark.parametrize("requires_grad", [False, True])
def test_channels_last_opcheck(requires_grad):
    x, residual = (t.contiguous(memory_format=CL) for t in inputs((2, 6, 3, 4), seed=7))
    torch.library.opcheck(OP, (x.requires_grad_(requires_grad), residual))
    grad = torch.rand(output_shape(x), dtype=x.dtype).contiguous(memory_format=CL)
    torch.library.opcheck(BACKWARD_OP, (grad, x.detach()))
