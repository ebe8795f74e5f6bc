"""causal_conv1d: the kernel (device-generic ATen, both of its CPU schedules) against the
reference (the spec), its registrations, and the CausalConv1d layer."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from gen_ext import ops, reference
from gen_ext.check import float32_reference_budget
from gen_ext.nn import CausalConv1d

OP = torch.ops.gen_ext.causal_conv1d
BACKWARD_OP = torch.ops.gen_ext.causal_conv1d_backward
EXACT = dict(rtol=1e-12, atol=1e-12)


def inputs(B, Cin, Cout, T, K, dtype=torch.float64, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((B, Cin, T), generator=g, dtype=dtype)
    weight = torch.randn((Cout, Cin, K), generator=g, dtype=dtype)
    b = torch.randn((Cout,), generator=g, dtype=dtype) if bias else None
    return x, weight, b


def value_and_grads(fn, x, weight, bias, dilation, cotangent=None):
    """fn's output and the gradients of x, weight (and bias) of a randomly weighted sum of it (or
    of its sum weighted by `cotangent`)."""
    leaves = [t.detach().clone().requires_grad_() for t in (x, weight, bias) if t is not None]
    out = fn(*leaves[:2], leaves[2] if bias is not None else None, dilation)
    if cotangent is None:
        g = torch.Generator().manual_seed(9)
        cotangent = torch.randn(out.shape, generator=g, dtype=torch.float64).to(out.dtype)
    grads = torch.autograd.grad(out, leaves, cotangent, allow_unused=True)
    # (the reference reads no x where T = 0)
    return (
        out,
        *(torch.zeros_like(t) if g is None else g for g, t in zip(grads, leaves, strict=True)),
    )


def assert_all_close(got, want, **tol):
    assert len(got) == len(want)
    for name, g, w in zip(("out", "grad x", "grad weight", "grad bias"), got, want, strict=False):
        torch.testing.assert_close(g, w, **tol, msg=lambda m, name=name: f"{name}: {m}")


@pytest.fixture(params=["per-sample", "batched", "dense"])
def schedule(request):
    """The kernel's two schedules on the CPU: one task per sample when there are at least as many
    samples as threads (1 thread here), the batched GEMMs otherwise (more threads than any test's
    batch); and the dense path (conv1d over a left-padded copy), which the op may choose per shape
    instead (gen_ext.ops.conv_path). Each is forced, so every one is tested whatever is faster
    here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if request.param == "per-sample" else 16)
    with ops.use_conv_path("dense" if request.param == "dense" else "kernel"):
        yield request.param
    torch.set_num_threads(threads)


# (B, C_in, C_out, T, K, dilation)
SHAPES = [
    (2, 3, 5, 17, 2, 1),
    (3, 4, 2, 33, 3, 4),
    (4, 7, 9, 64, 2, 16),
    (2, 3, 4, 10, 4, 3),  # the last tap reads t - 9: only t = 9 has every tap
    (2, 5, 3, 7, 3, 5),  # T = 7 shorter than the receptive field (11): the oldest tap never reads
    (3, 6, 4, 1, 3, 2),  # T = 1
    (2, 4, 3, 12, 1, 7),  # K = 1: a 1x1 convolution, the dilation unused
    (1, 1, 1, 1, 1, 1),
    (2, 1, 6, 20, 2, 8),  # C_in = 1
    (1, 3, 2, 9, 2, 1 << 62),  # a dilation whose shifts would overflow
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_matches_reference_float64(schedule, shape, bias):
    B, Cin, Cout, T, K, d = shape
    x, weight, b = inputs(B, Cin, Cout, T, K, seed=T + K, bias=bias)
    got = value_and_grads(ops.causal_conv1d, x, weight, b, d)
    want = value_and_grads(reference.causal_conv1d, x, weight, b, d)
    assert_all_close(got, want, **EXACT)


@pytest.mark.parametrize("d", [1, 8])
def test_float32_within_the_float32_reference_error(schedule, d):
    """float32 against the float64 reference on the same float32 inputs, the error held to that
    of the float32 reference itself (99th percentile 2x, maximum 4x)."""
    x, weight, b = inputs(4, 48, 40, 97, 3, torch.float32, seed=3)
    exact = value_and_grads(reference.causal_conv1d, x.double(), weight.double(), b.double(), d)
    ref32 = value_and_grads(reference.causal_conv1d, x, weight, b, d)
    got = value_and_grads(ops.causal_conv1d, x, weight, b, d)
    assert all(t.dtype == torch.float32 for t in got)
    error, allowed = float32_reference_budget(got, ref32, exact)
    assert error <= allowed


def test_matches_padded_conv1d():
    """The reference is conv1d of the input padded by (K-1)d on the left (finite inputs)."""
    x, weight, b = inputs(3, 5, 4, 40, 3, seed=1)
    padded = F.conv1d(F.pad(x, (2 * 6, 0)), weight, b, dilation=6)
    torch.testing.assert_close(reference.causal_conv1d(x, weight, b, 6), padded, **EXACT)
    torch.testing.assert_close(ops.causal_conv1d(x, weight, b, 6), padded, **EXACT)


@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck_and_gradgradcheck(bias):
    x, weight, b = inputs(2, 3, 2, 7, 3, seed=4, bias=bias)
    args = [t.requires_grad_() for t in (x, weight, b) if t is not None]
    fn = (lambda x_, w_, b_: OP(x_, w_, b_, 2)) if bias else (lambda x_, w_: OP(x_, w_, None, 2))
    assert torch.autograd.gradcheck(fn, args)
    assert torch.autograd.gradgradcheck(fn, args)


def test_gradgradcheck_of_some_inputs():
    """Second derivatives when only some inputs need gradients (the backward op's output_mask)."""
    x, weight, b = inputs(2, 2, 3, 6, 2, seed=5)
    weight.requires_grad_()
    assert torch.autograd.gradgradcheck(lambda w_: OP(x, w_, b, 3), (weight,))
    x.requires_grad_()
    assert torch.autograd.gradgradcheck(lambda x_: OP(x_, weight.detach(), None, 1), (x,))


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_opcheck(requires_grad, bias):
    x, weight, b = inputs(3, 4, 5, 11, 3, seed=6, bias=bias)
    for t in (x, weight, b):
        if t is not None:
            t.requires_grad_(requires_grad)
    torch.library.opcheck(OP, (x, weight, b, 2))
    grad = torch.randn(3, 5, 11, dtype=torch.float64)
    for mask in ([True, True, True], [True, False, True], [False, True, False]):
        torch.library.opcheck(BACKWARD_OP, (grad, x.detach(), weight.detach(), 2, mask))


def test_backward_output_mask():
    x, weight, _ = inputs(2, 3, 4, 9, 2, seed=7)
    grad = torch.randn(2, 4, 9, dtype=torch.float64)
    full = BACKWARD_OP(grad, x, weight, 3, [True, True, True])
    assert [list(t.shape) for t in full] == [[2, 3, 9], [4, 3, 2], [4]]
    some = BACKWARD_OP(grad, x, weight, 3, [False, True, False])
    assert some[0].numel() == 0 and some[2].numel() == 0
    torch.testing.assert_close(some[1], full[1], rtol=0, atol=0)


def test_causality():
    """A change of x at t' reaches exactly the outputs t' + j d (j < K), none before t'."""
    B, Cin, Cout, T, K, d = 2, 3, 4, 40, 3, 5
    x, weight, b = inputs(B, Cin, Cout, T, K, seed=8)
    before = ops.causal_conv1d(x, weight, b, d)
    for t0 in (0, 7, 31, 39):
        changed_x = x.clone()
        changed_x[1, 2, t0] += 1.0
        after = ops.causal_conv1d(changed_x, weight, b, d)
        changed = (after != before).any(1)  # [B, T]
        want = torch.zeros(B, T, dtype=torch.bool)
        want[1, [t for t in range(t0, t0 + K * d, d) if t < T]] = True
        assert torch.equal(changed, want), t0


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weight_reaches_only_its_outputs(schedule, value):
    """A non-finite weight of tap k (read back (K-1-k)d steps) reaches output channel o only at
    t >= (K-1-k)d, and the input gradient only at t < T - (K-1-k)d: absent terms, not zeros
    multiplied by it."""
    B, Cin, Cout, T, K, d = 2, 3, 4, 20, 3, 4
    x, weight, b = inputs(B, Cin, Cout, T, K, seed=9)
    weight[2, 1, 0] = value  # tap 0: shift 8
    got = value_and_grads(ops.causal_conv1d, x, weight, b, d)
    want = value_and_grads(reference.causal_conv1d, x, weight, b, d)
    out = got[0]
    assert torch.isfinite(out[:, :, :8]).all() and torch.isfinite(out[:, [0, 1, 3]]).all()
    assert not torch.isfinite(out[:, 2, 8:]).any()
    assert torch.isfinite(got[1][:, :, T - 8 :]).all()
    for name, g, w in zip(("out", "grad x", "grad weight", "grad bias"), got, want, strict=True):
        torch.testing.assert_close(g, w, **EXACT, equal_nan=True, msg=lambda m, n=name: f"{n}: {m}")


def test_non_contiguous_inputs(schedule):
    x, weight, b = inputs(3, 4, 5, 21, 3, seed=10)
    want = value_and_grads(reference.causal_conv1d, x, weight, b, 2)
    xs = {
        "x transposed": x.transpose(0, 2).contiguous().transpose(0, 2),
        "x strided": torch.stack([x, -x], dim=-1)[..., 0],
    }
    ws = {
        "weight taps first": weight.permute(2, 0, 1).contiguous().permute(1, 2, 0),
        "weight strided": torch.stack([weight, -weight], dim=1)[:, 0],
    }
    b_strided = torch.stack([b, -b], dim=1)[:, 0]
    for name, view in [*xs.items(), *ws.items()]:
        assert not view.is_contiguous(), name
    for xv, wv in zip(xs.values(), ws.values(), strict=True):
        got = value_and_grads(ops.causal_conv1d, xv, wv, b_strided, 2)
        assert_all_close(got, want, **EXACT)


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_broadcast_incoming_gradient(reduce):
    """out.sum() hands the backward a stride-0 gradient."""
    x, weight, b = inputs(3, 4, 5, 13, 2, seed=11)
    grads = []
    for fn in (ops.causal_conv1d, reference.causal_conv1d):
        leaves = [t.clone().requires_grad_() for t in (x, weight, b)]
        getattr(fn(*leaves, 3), reduce)().backward()
        grads.append([t.grad for t in leaves])
    assert_all_close([None, *grads[0]], [None, *grads[1]], **EXACT)
    grad = torch.tensor(0.5, dtype=torch.float64).expand(3, 5, 13)
    mask = [True, True, True]
    for a, c in zip(
        BACKWARD_OP(grad, x, weight, 3, mask),
        BACKWARD_OP(grad.contiguous(), x, weight, 3, mask),
        strict=True,
    ):
        torch.testing.assert_close(a, c, **EXACT)


@pytest.mark.parametrize(
    "shape", [(0, 3, 4, 10, 2), (2, 3, 4, 0, 2), (2, 3, 0, 10, 2), (2, 0, 4, 10, 3)]
)
@pytest.mark.parametrize("bias", [True, False])
def test_empty(schedule, shape, bias):
    x, weight, b = inputs(*shape, seed=12, bias=bias)
    got = value_and_grads(ops.causal_conv1d, x, weight, b, 2)
    want = value_and_grads(reference.causal_conv1d, x, weight, b, 2)
    assert [t.shape for t in got] == [t.shape for t in want]
    assert_all_close(got, want, **EXACT)


def test_reference_backend():
    x, weight, b = inputs(2, 3, 4, 15, 2, seed=13)
    with ops.use_backend("reference"):
        got = ops.causal_conv1d(x, weight, b, 4)
    torch.testing.assert_close(got, reference.causal_conv1d(x, weight, b, 4), rtol=0, atol=0)


def _bad(x, w, b):
    return [
        ((x[0], w, b, 1), "x must be 3-D \\[B, C_in, T\\], got 2-D"),
        ((x.long(), w.long(), None, 1), "x must be float32 or float64, got"),
        ((x.half(), w.half(), None, 1), "x must be float32 or float64, got"),
        ((x, w[:, :, 0], b, 1), "weight must be 3-D \\[C_out, C_in, K\\], got 2-D"),
        ((x, w.float(), b, 1), "weight must match x in dtype and device"),
        ((x, w.to("meta"), b, 1), "weight must match x in dtype and device"),
        ((x, w[:, :3], b, 1), "weight must have x's 4 input channels \\(dim 1\\), got 3"),
        ((x, w[:, :, :0], b, 1), "weight's kernel size \\(dim 2\\) must be at least 1, got 0"),
        ((x, w, b, 0), "dilation must be at least 1, got 0"),
        ((x, w, b, -3), "dilation must be at least 1, got -3"),
        ((x, w, b[:4], 1), "bias must have shape \\[5\\], got \\[4\\]"),
        ((x, w, b.view(5, 1), 1), "bias must have shape \\[5\\], got \\[5, 1\\]"),
        ((x, w, b.float(), 1), "bias must match x in dtype and device"),
    ]


BAD = _bad(*inputs(2, 4, 5, 6, 3))
# The CPU kernel itself: a call with a meta tensor among its arguments would otherwise dispatch to
# the fake (meta) kernel.
CPU_KEYS = torch._C.DispatchKeySet(torch._C.DispatchKey.CPU)


def raises_everywhere(op, args, message):
    """The CPU kernel, the fake kernel and plain dispatch all refuse args with message."""
    with pytest.raises(RuntimeError, match=message):
        op.default.redispatch(CPU_KEYS, *args)
    with FakeTensorMode() as mode:
        fakes = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
        with pytest.raises(RuntimeError, match=message):
            op(*fakes)
    with pytest.raises(RuntimeError, match=message):
        op(*args)


@pytest.mark.parametrize("args,message", BAD, ids=[m[:30] for _, m in BAD])
def test_bad_input_names_the_argument(args, message):
    raises_everywhere(OP, args, f"causal_conv1d: {message}")
    with pytest.raises(RuntimeError, match=f"causal_conv1d: {message}"):
        ops.causal_conv1d(*args)
    with ops.use_backend("reference"):
        with pytest.raises(RuntimeError, match=f"causal_conv1d: {message}"):
            ops.causal_conv1d(*args)


def _bad_backward(x, w):
    g = torch.ones(2, 5, 6, dtype=torch.float64)
    return [
        ((g, x[0], w, 1), "x must be 3-D"),
        ((g, x, w[:, :3], 1), "weight must have x's 4 input channels"),
        ((g, x, w, 0), "dilation must be at least 1, got 0"),
        ((g[:, :4], x, w, 1), "grad must have the output's shape \\[2, 5, 6\\], got \\[2, 4, 6\\]"),
        ((g.float(), x, w, 1), "grad must match x in dtype and device"),
        ((g.to("meta"), x, w, 1), "grad must match x in dtype and device"),
    ]


BAD_BACKWARD = _bad_backward(*inputs(2, 4, 5, 6, 3)[:2])


@pytest.mark.parametrize("args,message", BAD_BACKWARD, ids=[m[:30] for _, m in BAD_BACKWARD])
def test_bad_backward_input_names_the_argument(args, message):
    raises_everywhere(
        BACKWARD_OP, (*args, [True, True, True]), f"causal_conv1d_backward: {message}"
    )


# ---- the layer ----


@pytest.mark.parametrize("kernel_size,dilation,bias", [(2, 1, True), (3, 4, False), (1, 2, True)])
def test_layer_matches_left_padded_conv1d(kernel_size, dilation, bias):
    torch.manual_seed(14)
    layer = CausalConv1d(6, 8, kernel_size, dilation=dilation, bias=bias).double()
    plain = nn.Conv1d(6, 8, kernel_size, dilation=dilation, bias=bias).double()
    plain.load_state_dict(layer.state_dict())
    assert isinstance(layer, nn.Conv1d)
    assert layer.receptive_field == (kernel_size - 1) * dilation + 1
    x = torch.randn(3, 6, 25, dtype=torch.float64)
    pad = layer.receptive_field - 1
    results = []
    for fn in (layer, lambda x_: plain(F.pad(x_, (pad, 0)))):
        leaf = x.clone().requires_grad_()
        out = fn(leaf)
        out.backward(torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out))
        module = layer if fn is layer else plain
        results.append((out, leaf.grad, *(p.grad for p in module.parameters())))
    assert results[0][0].shape == (3, 8, 25)
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want, **EXACT)
    with ops.use_backend("reference"):
        torch.testing.assert_close(layer(x), results[1][0], **EXACT)


def test_layer_is_a_conv1d_in_its_state():
    layer = CausalConv1d(4, 6, 2, dilation=8)
    plain = nn.Conv1d(4, 6, 2, dilation=8)
    assert layer.state_dict().keys() == plain.state_dict().keys()
    assert layer.weight.shape == (6, 4, 2) and layer.bias.shape == (6,)
    assert layer.padding == (0,) and layer.dilation == (8,)
    assert CausalConv1d(4, 6, 2, bias=False).bias is None


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(in_channels=0), "in_channels"),
        (dict(out_channels=-1), "out_channels"),
        (dict(kernel_size=0), "kernel_size"),
        (dict(kernel_size=2.5), "kernel_size"),
        (dict(dilation=0), "dilation"),
        (dict(dilation=True), "dilation"),
        (dict(bias=None), "bias"),
    ],
)
def test_layer_bad_arguments(kwargs, name):
    args = dict(in_channels=4, out_channels=6, kernel_size=2) | kwargs
    with pytest.raises(ValueError, match=f"CausalConv1d: {name} must be"):
        CausalConv1d(**args)


def test_layer_compiles():
    torch.manual_seed(15)
    layer = CausalConv1d(3, 4, 2, dilation=2)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 3, 11, requires_grad=True)
    out = compiled(x)
    torch.testing.assert_close(out, layer(x))
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


def test_auto_chooses_a_path_per_shape_and_records_it():
    """Under "auto" the first call of a shape times both paths and keeps the faster; the choice is
    listed (and stored in training checkpoints) under the shape's key."""
    x, weight, b = inputs(3, 5, 7, 61, 3, seed=21)
    with ops.use_conv_path("auto"):
        got = value_and_grads(ops.causal_conv1d, x, weight, b, 2)
    choices = {k: v for k, v in ops.conv_path_choices().items() if k.startswith("causal_conv1d")}
    assert any("x[3,5,61] out 7 K 3 d 2" in k for k in choices), choices
    assert set(choices.values()) <= {"kernel", "dense"}
    assert_all_close(got, value_and_grads(reference.causal_conv1d, x, weight, b, 2), **EXACT)


def test_dense_path_not_offered_where_a_tap_reads_nothing():
    """(K-1)d >= T: the padded copy would outgrow the sequence, so the kernel runs even when the
    dense path is asked for (no choice is recorded for the shape)."""
    x, weight, b = inputs(2, 3, 4, 9, 3, seed=22)
    with ops.use_conv_path("auto"):
        got = value_and_grads(ops.causal_conv1d, x, weight, b, 5)  # reads back 10 >= 9
    assert not any("x[2,3,9]" in k for k in ops.conv_path_choices())
    assert_all_close(got, value_and_grads(reference.causal_conv1d, x, weight, b, 5), **EXACT)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_dense_path_falls_back_for_a_non_finite_gradient(value):
    """An infinite or NaN output gradient times the padding's zeros would put NaN into the weight
    gradient where the reference has none: the dense backward refuses it and the kernel runs."""
    x, weight, b = inputs(2, 3, 4, 20, 3, seed=23)
    grad = torch.randn(2, 4, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    grad[0, 1, 2] = value  # t = 2: taps 0 and 1 (shifts 8, 4) read the padding there
    with ops.use_conv_path("dense"):
        got = value_and_grads(ops.causal_conv1d, x, weight, b, 4, grad)
    want = value_and_grads(reference.causal_conv1d, x, weight, b, 4, grad)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, **EXACT, equal_nan=True)
