"""gated_resnet_block: the fused PixelCNN++ block against its reference (the spec)."""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from gen_ext import ops, reference
from gen_ext.nn import GatedResidualBlock

OP = torch.ops.gen_ext.gated_resnet_block
BACKWARD_OP = torch.ops.gen_ext.gated_resnet_block_backward
NAMES = ("x", "aux", "w_in", "b_in", "w_aux", "b_aux", "w_gate", "b_gate")
KERNELS = {"down": [(2, 3), (1, 1), (3, 3), (1, 5)], "down_right": [(2, 2), (1, 2), (2, 1), (3, 3)]}


def block_inputs(
    stream="down",
    B=2,
    C=3,
    H=5,
    W=6,
    Cm=4,
    Ca=5,
    kernel=None,
    aux=True,
    bias=True,
    dtype=torch.float64,
    layout=torch.contiguous_format,
    seed=0,
):
    """The op's tensor inputs (NAMES order; None where absent), scaled so the concat-ELUs and the
    gate see values on both sides of their bends."""
    kh, kw = kernel or KERNELS[stream][0]
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return torch.randn(shape, generator=g, dtype=torch.float64).mul(scale).to(dtype)

    x = randn(B, C, H, W, scale=2).contiguous(memory_format=layout)
    a = randn(B, Ca, H, W, scale=2).contiguous(memory_format=layout) if aux else None
    return [
        x,
        a,
        randn(Cm, 2 * C, kh, kw, scale=0.5),
        randn(Cm) if bias else None,
        randn(Cm, 2 * Ca, 1, 1, scale=0.5) if aux else None,
        randn(Cm) if aux and bias else None,
        randn(2 * C, 2 * Cm, kh, kw, scale=0.5),
        randn(2 * C) if bias else None,
    ]


def value_and_grads(fn, tensors, seed=9):
    """fn's output and the gradients of every given input of a randomly weighted sum of it."""
    leaves = [None if t is None else t.detach().clone().requires_grad_() for t in tensors]
    out = fn(*leaves)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    present = [t for t in leaves if t is not None]
    return (out, *torch.autograd.grad((out * weights).sum(), present))


def fused(stream, p, seed):
    return lambda *t: OP(*t, stream, p, seed)[0]


def ref_block(stream, p, seed):
    return lambda *t: reference.gated_resnet_block(*t, stream, p, seed)


def assert_close_all(got, want, **tol):
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        torch.testing.assert_close(g, w, **tol, msg=lambda m, i=i: f"result {i}: {m}")


@pytest.mark.parametrize("stream", ["down", "down_right"])
@pytest.mark.parametrize("aux", [False, True])
@pytest.mark.parametrize("p", [0.0, 0.4])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_matches_reference_float64(cpu_isa, stream, aux, p, layout):
    tensors = block_inputs(stream, aux=aux, layout=layout, seed=int(aux) + 2 * int(p > 0))
    got = value_and_grads(fused(stream, p, 77), tensors)
    want = value_and_grads(ref_block(stream, p, 77), tensors)
    assert_close_all(got, want, rtol=1e-11, atol=1e-11)
    # the output keeps the layout it was given (channels last on a CPU model)
    assert got[0].is_contiguous(memory_format=layout)


@pytest.mark.parametrize("stream", ["down", "down_right"])
@pytest.mark.parametrize("kernel_index", [1, 2, 3])
@pytest.mark.parametrize(
    "shape",
    [
        dict(B=1, C=1, H=1, W=1, Cm=1, Ca=1),
        dict(B=3, C=2, H=1, W=7, Cm=5, Ca=1),
        dict(B=1, C=5, H=6, W=1, Cm=2, Ca=3),
        dict(B=2, C=17, H=4, W=3, Cm=9, Ca=2),
    ],
)
def test_odd_shapes_and_kernels(stream, kernel_index, shape):
    kernel = KERNELS[stream][kernel_index]
    tensors = block_inputs(stream, kernel=kernel, **shape, seed=kernel_index)
    got = value_and_grads(fused(stream, 0.3, 5), tensors)
    want = value_and_grads(ref_block(stream, 0.3, 5), tensors)
    assert_close_all(got, want, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("stream", ["down", "down_right"])
def test_without_biases(stream):
    tensors = block_inputs(stream, bias=False)
    got = value_and_grads(fused(stream, 0.2, 3), tensors)
    want = value_and_grads(ref_block(stream, 0.2, 3), tensors)
    assert_close_all(got, want, rtol=1e-11, atol=1e-11)


def test_empty_batch():
    tensors = block_inputs("down", B=0)
    got = value_and_grads(fused("down", 0.2, 3), tensors)
    want = value_and_grads(ref_block("down", 0.2, 3), tensors)
    assert got[0].shape == (0, 3, 5, 6)
    assert_close_all(got, want)


def test_intermediates_are_the_references():
    """h and g, which the backward reads instead of recomputing the convolutions."""
    tensors = block_inputs("down_right", layout=torch.channels_last)
    got = OP(*tensors, "down_right", 0.5, 11)
    want = reference.gated_resnet_block_parts(*tensors, "down_right", 0.5, 11)
    assert_close_all(got, want, rtol=1e-12, atol=1e-12)
    assert all(t.is_contiguous(memory_format=torch.channels_last) for t in got)


def test_noncontiguous_inputs_and_expanded_gradient():
    tensors = block_inputs("down", W=12)
    tensors[0] = tensors[0][..., ::2]  # a strided view
    tensors[1] = tensors[1][..., ::2]
    leaves = [None if t is None else t.detach().clone().requires_grad_() for t in tensors]
    OP(*leaves, "down", 0.1, 2)[0].sum().backward()  # sum's gradient is an expanded view
    ref_leaves = [None if t is None else t.detach().clone().requires_grad_() for t in tensors]
    reference.gated_resnet_block(*ref_leaves, "down", 0.1, 2).sum().backward()
    for a, b in zip(leaves, ref_leaves, strict=True):
        if a is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("stream", ["down", "down_right"])
@pytest.mark.parametrize("aux", [False, True])
def test_gradcheck_and_gradgradcheck(stream, aux):
    tensors = block_inputs(stream, B=1, C=2, H=3, W=3, Cm=2, Ca=1, aux=aux)
    leaves = [None if t is None else t.requires_grad_() for t in tensors]
    fn = fused(stream, 0.3, 4)
    assert torch.autograd.gradcheck(fn, leaves)
    assert torch.autograd.gradgradcheck(fn, leaves)


def test_second_derivative_matches_reference():
    tensors = block_inputs("down", B=1, C=2, H=3, W=4, Cm=3, Ca=2)

    def hessian_vector(fn):
        leaves = [t.detach().clone().requires_grad_() for t in tensors if t is not None]
        it = iter(leaves)
        args = [None if t is None else next(it) for t in tensors]
        out = fn(*args)
        first = torch.autograd.grad(out.pow(2).sum(), leaves, create_graph=True)
        total = sum((f * f).sum() for f in first)
        return torch.autograd.grad(total, leaves)

    assert_close_all(
        hessian_vector(fused("down", 0.25, 8)),
        hessian_vector(ref_block("down", 0.25, 8)),
        rtol=1e-10,
        atol=1e-10,
    )


@pytest.mark.parametrize("aux", [False, True])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_opcheck(aux, layout):
    kw = dict(aux=aux, layout=layout)
    tensors = block_inputs("down_right", B=2, C=2, H=3, W=4, Cm=3, Ca=2, **kw)
    args = (*[None if t is None else t.requires_grad_() for t in tensors], "down_right", 0.3, 6)
    torch.library.opcheck(OP, args)
    tensors = block_inputs("down", B=1, C=2, H=3, W=3, Cm=2, Ca=1, **kw)
    out, h, g = OP(*tensors, "down", 0.3, 6)
    torch.library.opcheck(BACKWARD_OP, (torch.randn_like(out), *tensors, h, g, "down", 0.3, 6))


def test_float32_within_the_float32_references_error():
    """float32 against the float64 reference, within a few times the float32 reference's own
    error (the same operations, rounded in a different order)."""
    tensors = block_inputs("down", B=2, C=16, H=8, W=8, Cm=16, Ca=8)
    exact = value_and_grads(ref_block("down", 0.3, 1), tensors)
    as32 = [None if t is None else t.float() for t in tensors]
    got = value_and_grads(fused("down", 0.3, 1), as32)
    ref32 = value_and_grads(ref_block("down", 0.3, 1), as32)
    for i, (g, r, e) in enumerate(zip(got, ref32, exact, strict=True)):
        budget = (r.double() - e).abs().max().item()
        err = (g.double() - e).abs().max().item()
        assert err <= 4 * budget + 1e-6 * e.abs().max().item(), (i, err, budget)


def test_non_finite_values_match_the_reference():
    """The convolutions are dense over the bordered maps, as the reference's: an inf weight meets
    the border's zeros (NaN) where the reference's does, a NaN input spreads as it does there."""
    tensors = block_inputs("down", H=8, W=9)
    tensors[6][0, 0, 0, 0] = float("inf")  # conv_gate's top-left tap: the border on the top row
    tensors[0][1, 2, 6, 7] = float("nan")
    got = OP(*tensors, "down", 0.0, 0)[0]
    want = reference.gated_resnet_block(*tensors, "down", 0.0, 0)
    assert got.isnan().any() and not got.isnan().all()
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_dropout_follows_the_generator():
    tensors = block_inputs("down_right")
    run = lambda seed: ops.gated_resnet_block(  # noqa: E731
        *tensors, "down_right", 0.5, torch.Generator().manual_seed(seed)
    )
    torch.testing.assert_close(run(3), run(3), rtol=0, atol=0)
    assert not torch.allclose(run(3), run(4))
    no_dropout = ops.gated_resnet_block(*tensors, "down_right", 0.0)
    assert not torch.allclose(run(3), no_dropout)


@pytest.mark.parametrize("stream", ["down", "down_right"])
@pytest.mark.parametrize("aux_channels", [0, 6])
def test_layer_fused_unfused_and_reference_backend_agree(stream, aux_channels):
    """GatedResidualBlock: the fused op, the block from its separate ops, and the reference
    backend, with dropout drawn from the same generator state."""
    torch.manual_seed(0)
    block = GatedResidualBlock(4, stream, aux_channels, dropout=0.5).double()
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    aux = torch.randn(2, aux_channels, 5, 6, dtype=torch.float64) if aux_channels else None

    def run(forward, backend="kernels"):
        torch.manual_seed(42)  # the seed of the dropout stream
        block.zero_grad()
        with ops.use_backend(backend):
            out = forward(x, aux)
        out.pow(2).sum().backward()
        return [out.detach()] + [p.grad.clone() for p in block.parameters()]

    fused_results = run(block.forward)
    assert_close_all(fused_results, run(block.forward_unfused), rtol=1e-11, atol=1e-11)
    assert_close_all(fused_results, run(block.forward, "reference"), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("stream", ["down", "down_right"])
def test_layer_in_eval_mode_drops_nothing(stream):
    """In eval mode the block draws no dropout: the op with p = 0, whatever the seed, and the
    reference backend's eval-mode block."""
    torch.manual_seed(0)
    block = GatedResidualBlock(4, stream, 3, dropout=0.5).double().eval()
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    aux = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    outs = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        outs.append(block(x, aux))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    with ops.use_backend("reference"):
        torch.testing.assert_close(block(x, aux), outs[0], rtol=1e-12, atol=1e-12)
    torch.manual_seed(1)
    trained = block.train()(x, aux)
    assert not torch.allclose(trained, outs[0])


def test_whole_block_pickles_load_old_and_new():
    """The stream is read from the convolutions: a block pickled whole round-trips, and one
    pickled before the fused op (no stream of its own in its state, or a stale entry) runs."""
    import pickle

    for stream in ("down", "down_right"):
        block = GatedResidualBlock(3, stream).double()
        x = torch.randn(1, 3, 4, 5, dtype=torch.float64)
        loaded = pickle.loads(pickle.dumps(block))
        assert loaded.stream == stream
        torch.testing.assert_close(loaded(x), block(x), rtol=0, atol=0)
        state = block.__dict__.copy()
        state["stream"] = "stale"
        old = GatedResidualBlock.__new__(GatedResidualBlock)
        old.__setstate__(state)
        assert old.stream == stream


BAD = [
    (dict(stream="up"), "stream must be 'down' or 'down_right', got 'up'"),
    (dict(p=1.5), "p must lie in [0, 1), got 1.5"),
    (dict(w_in=torch.zeros(4, 5, 2, 3)), "w_in must have shape [4, 6, 2, 3], got [4, 5, 2, 3]"),
    (dict(w_in=torch.zeros(4, 6, 2, 2)), "the 'down' stream's kernel width must be odd"),
    (dict(w_gate=torch.zeros(6, 6, 2, 3)), "w_gate must have shape [6, 8, 2, 3], got [6, 6, 2, 3]"),
    (dict(b_in=torch.zeros(3)), "b_in must have shape [4], got [3]"),
    (dict(b_gate=torch.zeros(6, dtype=torch.float64)), "b_gate must match x in dtype and device"),
    (dict(aux=None), "pass aux exactly when w_aux is given, got aux None and w_aux given"),
    (dict(aux=None, w_aux=None), "b_aux needs w_aux"),
    (dict(aux=torch.zeros(2, 5, 5, 5)), "aux must have shape [2, 5, 5, 6], got [2, 5, 5, 5]"),
    (
        dict(w_aux=torch.zeros(4, 10, 3, 3)),
        "w_aux must have shape [4, 10, 1, 1], got [4, 10, 3, 3]",
    ),
    (dict(x=torch.zeros(2, 3, 5)), "x must be 4-D [B, C, H, W], got 3-D"),
    (dict(x=torch.zeros(2, 3, 0, 6)), "x must have at least one channel, row and column"),
    (dict(x=torch.zeros(2, 3, 5, 6, dtype=torch.int32)), "x must be float32 or float64"),
]


@pytest.mark.parametrize("change,message", BAD)
def test_bad_input_names_the_argument(change, message):
    tensors = dict(zip(NAMES, block_inputs("down", dtype=torch.float32), strict=True))
    args = {**tensors, "stream": "down", "p": 0.2}
    args.update(change)
    call = [args[n] for n in NAMES] + [args["stream"], args["p"]]
    with pytest.raises(RuntimeError, match="gated_resnet_block: " + _escaped(message)):
        OP(*call, 0)
    with pytest.raises(RuntimeError, match="gated_resnet_block: " + _escaped(message)):
        ops.gated_resnet_block(*call)
    with FakeTensorMode() as mode:  # the fake kernel raises the same
        fakes = [None if t is None else mode.from_tensor(t) for t in call[:8]]
        with pytest.raises(RuntimeError, match=_escaped(message)):
            OP(*fakes, *call[8:], 0)


@pytest.mark.parametrize("p", [2.0, -0.25, float("nan"), 1.0])
def test_kernel_and_fake_kernel_print_p_alike(p):
    """The C++ checks print a double as 2, not 2.0: the Python checks (fake kernels) must print
    the same message, for this op and for the concat-ELU whose check it shares."""
    from gen_ext.ops.concat_elu import check_inputs as check_concat_elu

    tensors = block_inputs("down", dtype=torch.float32)

    def message(call):
        with pytest.raises(RuntimeError) as caught:
            call()
        return str(caught.value).splitlines()[0]

    with FakeTensorMode() as mode:
        fakes = [None if t is None else mode.from_tensor(t) for t in tensors]
        fake = message(lambda: OP(*fakes, "down", p, 0))
    assert message(lambda: OP(*tensors, "down", p, 0)) == fake
    assert fake.endswith(f"p must lie in [0, 1), got {p:g}")
    x = tensors[0]
    assert message(lambda: torch.ops.gen_ext.concat_elu(x, p, 0, [])) == message(
        lambda: check_concat_elu(x, p)
    )


def test_backward_checks_its_saved_maps():
    tensors = block_inputs("down", dtype=torch.float32)
    out, h, g = OP(*tensors, "down", 0.0, 0)
    with pytest.raises(RuntimeError, match=r"gated_resnet_block_backward: h must have shape"):
        BACKWARD_OP(torch.ones_like(out), *tensors, g, g, "down", 0.0, 0)
    with pytest.raises(RuntimeError, match=r"gated_resnet_block_backward: grad must have shape"):
        BACKWARD_OP(h, *tensors, h, g, "down", 0.0, 0)


def _escaped(message: str) -> str:
    import re

    return re.escape(message)
