"""Non-finite inputs: a NaN reaches every output (and gradient) that depends on it and is never
turned into a finite number; +-inf give what the reference gives; a logit of -inf (a mixture
component switched off) is legal.

Each value is placed at every position of a row 2*16 + 5 long, so that under every instruction
set (16 float32 / 8 float64 lanes at most) vector lanes and the scalar tail both meet it. The
positions are checked in one call: batch row b holds the value at position b only."""

import pytest
import torch

from gen_ext import ops, reference
from gen_ext.ops.dlm import _sample_triton
from gen_ext.ops.masked_conv import masked_conv2d_backward_triton, masked_conv2d_triton
from gen_ext.testing import make_dlm_inputs

# numpy, under the Triton interpreter, warns on the very values these tests feed it
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

ROW = 2 * 16 + 5
VALUES = {"nan": float("nan"), "+inf": float("inf"), "-inf": float("-inf")}
DTYPES = [torch.float64, torch.float32]
# Finite results next to non-finite ones are compared as any other result would be.
TOL = {torch.float64: {"rtol": 1e-7, "atol": 1e-8}, torch.float32: {"rtol": 2e-4, "atol": 2e-4}}


def assert_same(got, want, name):
    """Same NaNs, same infinities (with sign), finite values close."""
    assert got.shape == want.shape and got.dtype == want.dtype, name
    for what, test in (("NaN", torch.isnan), ("+inf", torch.isposinf), ("-inf", torch.isneginf)):
        g, w = test(got), test(want)
        wrong = (g != w).nonzero().tolist()
        assert not wrong, (
            f"{name}: {what} where the reference has none, or the other way round, "
            f"at {wrong[:8]} ({len(wrong)} in all); got {got[g != w][:8].tolist()}, "
            f"reference {want[g != w][:8].tolist()}"
        )
    finite = torch.isfinite(want)
    torch.testing.assert_close(
        got[finite], want[finite], **TOL[want.dtype], msg=lambda m: f"{name}: {m}"
    )


def assert_all_same(got, want, names):
    for g, w, name in zip(got, want, names, strict=True):
        assert_same(g, w, name)


def one_per_row(t, value, first_dim=0):
    """t with `value` at position b of row b along the flattened dims after `first_dim`: a copy
    whose dim 0 has one row per position of the first row's elements (t's dim 0 is 1)."""
    rows = t.expand(t[0].numel(), *t.shape[1:]).clone()
    flat = rows.view(rows.shape[0], -1)
    idx = torch.arange(flat.shape[0])
    flat[idx, idx] = value
    return rows


def weights_like(t, seed=0):
    """Incoming gradient weights, so no two outputs share a gradient."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(t.shape, generator=g, dtype=torch.float64) + 0.5).to(t.dtype)


def value_and_grads(fn, inputs, grad_of):
    """fn's outputs and the gradients of sum(out * weights) over every output, in the inputs
    named by grad_of (indices into inputs)."""
    leaves = [
        t.detach().clone().requires_grad_(i in grad_of) if t is not None else None
        for i, t in enumerate(inputs)
    ]
    outs = fn(*leaves)
    outs = outs if isinstance(outs, tuple) else (outs,)
    loss = sum((o * weights_like(o, seed=k)).sum() for k, o in enumerate(outs))
    grads = torch.autograd.grad(loss, [leaves[i] for i in grad_of])
    return tuple(o.detach() for o in outs) + tuple(grads)


# ---- gaussian_reparameterize_kl ----


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("where", ["mu", "logvar", "eps"])
@pytest.mark.parametrize("value", sorted(VALUES))
def test_gaussian(cpu_isa, dtype, where, value):
    g = torch.Generator().manual_seed(0)
    row = {k: torch.randn(1, ROW, generator=g, dtype=dtype) for k in ("mu", "logvar", "eps")}
    inputs = {
        k: one_per_row(t, VALUES[value]) if k == where else t.expand(ROW, ROW).clone()
        for k, t in row.items()
    }
    args = (inputs["mu"], inputs["logvar"], inputs["eps"])
    got = value_and_grads(ops.gaussian_reparameterize_kl, args, (0, 1, 2))
    want = value_and_grads(reference.gaussian_reparameterize_kl, args, (0, 1, 2))
    assert_all_same(got, want, ("z", "kl", "grad mu", "grad logvar", "grad eps"))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("where", ["mu", "logvar"])
@pytest.mark.parametrize("value", sorted(VALUES))
def test_gaussian_noise_drawn_in_the_kernel(cpu_isa, dtype, where, value):
    g = torch.Generator().manual_seed(1)
    row = {k: torch.randn(1, ROW, generator=g, dtype=dtype) for k in ("mu", "logvar")}
    inputs = {
        k: one_per_row(t, VALUES[value]) if k == where else t.expand(ROW, ROW).clone()
        for k, t in row.items()
    }
    seed = 1234
    eps = reference.gaussian_noise((ROW, ROW), seed, dtype)

    def seeded(mu, lv):
        return torch.ops.gen_ext.gaussian_reparameterize_kl_seeded(mu, lv, seed)

    def ref(mu, lv):
        return reference.gaussian_reparameterize_kl(mu, lv, eps)

    args = (inputs["mu"], inputs["logvar"])
    got = value_and_grads(seeded, args, (0, 1))
    want = value_and_grads(ref, args, (0, 1))
    assert_all_same(got, want, ("z", "kl", "grad mu", "grad logvar"))


def test_gaussian_nan_logvar_of_a_short_latent():
    """Every element of an 8-dimensional latent (shorter than a vector: the scalar path only)."""
    mu = torch.zeros(8, 8, dtype=torch.float64)
    logvar = one_per_row(torch.zeros(1, 8, dtype=torch.float64), float("nan"))
    _, kl = ops.gaussian_reparameterize_kl(mu, logvar, torch.ones_like(mu))
    assert kl.isnan().all(), kl


# ---- gated_activation ----


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("where", ["a", "b", "residual"])
@pytest.mark.parametrize("value", sorted(VALUES))
def test_gated_activation(cpu_isa, dtype, where, value):
    g = torch.Generator().manual_seed(2)
    a, b, residual = (torch.randn(1, 1, ROW, generator=g, dtype=dtype) * 3 for _ in range(3))
    a, b, residual = (
        one_per_row(t, VALUES[value]) if name == where else t.expand(ROW, 1, ROW)
        for name, t in (("a", a), ("b", b), ("residual", residual))
    )
    x = torch.cat([a, b], 1)
    args = (x, residual.contiguous())
    got = value_and_grads(ops.gated_activation, args, (0, 1))
    want = value_and_grads(reference.gated_activation, args, (0, 1))
    assert_all_same(got, want, ("out", "grad x", "grad residual"))


# ---- masked_conv2d ----

MASKS = [("A", 1), ("B", 3)]
KERNEL = (3, 3)
CIN = 6  # 6 * 3 * 3 = 54 weights per output channel: vectors and a tail of output channels


def masked_conv_kernels():
    cpu = (ops.masked_conv2d, torch.ops.gen_ext.masked_conv2d_backward)
    triton = (masked_conv2d_triton, masked_conv2d_backward_triton)
    return {"cpu": cpu, "triton": triton}


def masked_conv_results(kernel, x, weight, bias, mask_type, colors):
    """(out, grad x, grad weight) of the kernel's forward and backward ops."""
    forward, backward = masked_conv_kernels()[kernel]
    out = forward(x, weight, bias, mask_type, colors)
    grad_x, grad_weight = backward(weights_like(out), x, weight, mask_type, colors)
    return out, grad_x, grad_weight


def masked_conv_reference(x, weight, bias, mask_type, colors):
    got = value_and_grads(
        lambda a, w, c: reference.masked_conv2d(a, w, c, mask_type, colors),
        (x, weight, bias),
        (0, 1),
    )
    return got


def masked_conv_inputs(where, value, dtype):
    """x [B, CIN, 3, 7], weight [54, CIN, 3, 3] and bias with `value` placed at every position of
    `where`, each position seen by outputs of its own."""
    g = torch.Generator().manual_seed(3)
    cout = CIN * KERNEL[0] * KERNEL[1]
    x = torch.randn(1, CIN, 3, 7, generator=g, dtype=dtype)
    weight = torch.randn(cout, CIN, *KERNEL, generator=g, dtype=dtype)
    bias = torch.randn(cout, generator=g, dtype=dtype)
    if where == "x":  # image b holds the value at its pixel-channel b
        x = one_per_row(x, value)
    elif where == "weight":  # output channel o holds it at weight o of its own kernel
        flat = weight.view(cout, -1)
        flat[torch.arange(cout), torch.arange(cout)] = value
    else:  # each output channel depends on its own bias only: all at once
        bias = torch.full_like(bias, value)
    return x.expand(max(x.shape[0], 2), *x.shape[1:]).contiguous(), weight, bias


def masked_conv_kernels_to_run(cpu_isa, dtype, where):
    """The Triton kernels run through the interpreter once (default ISA, float64), and not on the
    hundred-odd images of the x case, which take minutes there."""
    once = cpu_isa == "default" and dtype == torch.float64 and where != "x"
    return ["cpu", "triton"] if once else ["cpu"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask_type,colors", MASKS)
@pytest.mark.parametrize("value", sorted(VALUES))
@pytest.mark.parametrize("where", ["x", "weight", "bias"])
def test_masked_conv2d(cpu_isa, dtype, mask_type, colors, value, where):
    x, weight, bias = masked_conv_inputs(where, VALUES[value], dtype)
    want = masked_conv_reference(x, weight, bias, mask_type, colors)
    for kernel in masked_conv_kernels_to_run(cpu_isa, dtype, where):
        got = masked_conv_results(kernel, x, weight, bias, mask_type, colors)
        names = [f"{kernel} {n}" for n in ("out", "grad x", "grad weight")]
        assert_all_same(got, want, names)


@pytest.mark.parametrize("kernel", ["cpu", "triton"])
@pytest.mark.parametrize("value", ["nan", "+inf"])
@pytest.mark.parametrize("mask_type,colors", MASKS)
def test_masked_conv2d_leaves_a_nonfinite_weight_out_of_the_padding(
    kernel, value, mask_type, colors
):
    """Outputs whose taps reach past the image's left or right edge, and the input gradients of
    edge pixels, leave those taps out as the reference does: a NaN or inf weight times the zero
    padding would be NaN there. The reference is finite at some of these positions, so the
    comparison fails if the kernel multiplies the padding."""
    x, weight, bias = masked_conv_inputs("weight", VALUES[value], torch.float64)
    want = masked_conv_reference(x, weight, bias, mask_type, colors)
    got = masked_conv_results(kernel, x, weight, bias, mask_type, colors)
    edges = torch.zeros(want[0].shape[-2:], dtype=torch.bool)
    edges[:, 0] = edges[:, -1] = True
    assert torch.isfinite(want[0][..., edges]).any(), "the case must have finite edge outputs"
    if mask_type == "A":  # with mask B's colour groups every input gradient meets a NaN weight
        assert torch.isfinite(want[1][..., edges]).any(), "and finite edge input gradients"
    assert_all_same(got, want, [f"{kernel} {n}" for n in ("out", "grad x", "grad weight")])


@pytest.mark.parametrize(
    "kernel_size,width",
    [((5, 5), 9), ((7, 7), 2), ((7, 7), 1), ((7, 7), 300), ((1, 3), 4), ((3, 1), 3)],
    ids=["5x5-w9", "7x7-w2", "7x7-w1", "7x7-w300", "1x3", "3x1"],
)
@pytest.mark.parametrize("mask_type,colors", MASKS)
def test_masked_conv2d_edge_widths_with_a_nonfinite_weight(
    cpu_isa, kernel_size, width, mask_type, colors
):
    """Edges several pixels wide, images narrower than the kernel (every pixel an edge), rows
    longer than one of the kernel's pieces of a row, kernels one column wide: each output channel
    has a NaN at a random tap, and only the taps inside the image may carry it."""
    g = torch.Generator().manual_seed(width)
    cout = 6
    x = torch.randn(2, 3, 4, width, generator=g, dtype=torch.float64)
    weight = torch.randn(cout, 3, *kernel_size, generator=g, dtype=torch.float64)
    bias = torch.randn(cout, generator=g, dtype=torch.float64)
    flat = weight.view(cout, -1)
    flat[torch.arange(cout), torch.randint(flat.shape[1], (cout,), generator=g)] = float("nan")
    want = masked_conv_reference(x, weight, bias, mask_type, colors)
    got = masked_conv_results("cpu", x, weight, bias, mask_type, colors)
    assert_all_same(got, want, ["out", "grad x", "grad weight"])


@pytest.mark.parametrize("kernel", ["cpu", "triton"])
@pytest.mark.parametrize("value", sorted(VALUES))
@pytest.mark.parametrize("mask_type,colors", MASKS)
def test_masked_conv2d_nonfinite_incoming_gradient(cpu_isa, kernel, value, mask_type, colors):
    """A NaN or inf in the output gradient at the corners and the middle of the image: the input
    gradient and the weight gradient get it through the taps that read the image, never through
    a tap's product with the zero padding (which the reference does not form)."""
    if kernel == "triton" and cpu_isa != "default":
        pytest.skip("the Triton kernel does not depend on the CPU instruction set")
    x, weight, bias = masked_conv_inputs("bias", 1.0, torch.float64)
    H, W = x.shape[-2:]
    grad = weights_like(torch.empty(x.shape[0], weight.shape[0], H, W, dtype=torch.float64))
    for b, (y, i) in enumerate([(0, 0), (H - 1, W - 1)]):
        grad[b, b, y, i] = VALUES[value]
    grad[0, -1, H // 2, W // 2] = VALUES[value]
    leaves = [t.detach().clone().requires_grad_() for t in (x, weight)]
    out = reference.masked_conv2d(*leaves, bias, mask_type, colors)
    want = torch.autograd.grad(out, leaves, grad)
    _, backward = masked_conv_kernels()[kernel]
    got = backward(grad, x, weight, mask_type, colors)
    assert_all_same(got, want, [f"{kernel} grad x", f"{kernel} grad weight"])


# ---- discretized_logistic_mixture_nll ----

M = 2
NUM_BINS = 256


def dlm_rows(C, value, dtype):
    """x and params [P * ROW, P, ROW]: row p * ROW + s holds `value` at plane p, position s."""
    x, params = make_dlm_inputs(1, C, M, (ROW,), NUM_BINS, dtype=dtype, seed=C)
    P = params.shape[1]
    rows = params.expand(P * ROW, P, ROW).clone()
    r = torch.arange(P * ROW)
    rows[r, r // ROW, r % ROW] = value
    return x.expand(P * ROW, C, ROW).contiguous(), rows


def nll_with_grad_path(x, params):
    return ops.discretized_logistic_mixture_nll(x, params, NUM_BINS)


def nll_backward_op(x, params):
    nll = torch.ops.gen_ext.discretized_logistic_mixture_nll(x, params, NUM_BINS)
    grad_x, grad_params = torch.ops.gen_ext.discretized_logistic_mixture_nll_backward(
        weights_like(nll), x, params, NUM_BINS
    )
    return nll, grad_x, grad_params


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("value", sorted(VALUES))
def test_dlm_nll(cpu_isa, dtype, C, value):
    x, params = dlm_rows(C, VALUES[value], dtype)
    want = value_and_grads(
        lambda a, p: reference.discretized_logistic_mixture_nll(a, p, NUM_BINS), (x, params), (0, 1)
    )
    names = ("nll", "grad x", "grad params")
    # the forward-with-gradients op (autograd's path) and the separate backward op
    got = value_and_grads(nll_with_grad_path, (x, params), (0, 1))
    assert_all_same(got, want, [f"with_grad {n}" for n in names])
    assert_all_same(nll_backward_op(x, params), want, [f"backward op {n}" for n in names])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 3])
def test_dlm_nll_switched_off_component(cpu_isa, dtype, C):
    """A logit of -inf gives what a very negative one gives, and no gradient to that logit."""
    x, params = make_dlm_inputs(ROW, C, M, (ROW,), NUM_BINS, dtype=dtype, seed=4)
    off, very_negative = params.clone(), params.clone()
    off[:, 1] = float("-inf")
    very_negative[:, 1] = -1e4
    for fn in (
        nll_with_grad_path,
        lambda a, p: reference.discretized_logistic_mixture_nll(a, p, NUM_BINS),
    ):
        got = value_and_grads(fn, (x, off), (0, 1))
        want = value_and_grads(fn, (x, very_negative), (0, 1))
        assert_all_same(got, want, ("nll", "grad x", "grad params"))
        assert torch.equal(got[2][:, 1], torch.zeros_like(got[2][:, 1]))
    assert_all_same(
        nll_backward_op(x, off),
        value_and_grads(nll_with_grad_path, (x, off), (0, 1)),
        ("nll", "grad x", "grad params"),
    )


# ---- sample_discretized_logistic_mixture ----

SAMPLERS = {
    "cpu": torch.ops.gen_ext.discretized_logistic_mixture_sample,
    "triton": _sample_triton,  # the GPU kernel, through the interpreter
}


def sample_noise(rows, C, M, dtype, seed=6):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand((rows, M, ROW), generator=g, dtype=dtype),
        torch.rand((rows, C, ROW), generator=g, dtype=dtype),
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("value", sorted(VALUES))
@pytest.mark.parametrize("where", ["params", "noise_mixture", "noise_logistic"])
def test_dlm_sample(cpu_isa, dtype, C, value, where):
    _, params = dlm_rows(C, 0.0, dtype)
    params = params[:1].expand_as(params).contiguous()
    noise_mixture, noise_logistic = sample_noise(params.shape[0], C, M, dtype)
    v = VALUES[value]
    r = torch.arange(params.shape[0])
    if where == "params":
        _, params = dlm_rows(C, v, dtype)
    elif where == "noise_mixture":
        r = r[: M * ROW]
        noise_mixture[r, r // ROW, r % ROW] = v
    else:
        r = r[: C * ROW]
        noise_logistic[r, r // ROW, r % ROW] = v
    want = reference.discretized_logistic_mixture_sample(
        params, noise_mixture, noise_logistic, C, NUM_BINS
    )
    kernels = sorted(SAMPLERS) if cpu_isa == "default" else ["cpu"]
    for kernel in kernels:
        got = SAMPLERS[kernel](params, noise_mixture, noise_logistic, C, NUM_BINS)
        # float32 may put a draw on a bin boundary into the neighbouring bin
        assert_same(
            got, want, f"{kernel} sample"
        ) if dtype == torch.float64 else assert_same_nonfinite_sample(got, want, kernel)


def assert_same_nonfinite_sample(got, want, kernel):
    for test in (torch.isnan, torch.isposinf, torch.isneginf):
        assert torch.equal(test(got), test(want)), f"{kernel} sample: {test.__name__}"
    finite = torch.isfinite(want)
    assert ((got[finite] - want[finite]).abs() <= 2.0 / (NUM_BINS - 1) * 1.0001).all()


@pytest.mark.parametrize("C", [1, 3])
def test_dlm_sample_never_picks_a_switched_off_component(cpu_isa, C):
    _, params = make_dlm_inputs(4, C, 3, (ROW,), NUM_BINS, seed=8)
    params[:, 1] = float("-inf")
    noise_mixture, noise_logistic = sample_noise(4, C, 3, params.dtype)
    noise_mixture[:, 1] = 1 - 1e-16  # component 1's Gumbel noise at its largest
    want = reference.discretized_logistic_mixture_sample(
        params, noise_mixture, noise_logistic, C, NUM_BINS
    )
    very_negative = params.clone()
    very_negative[:, 1] = -1e300
    same = reference.discretized_logistic_mixture_sample(
        very_negative, noise_mixture, noise_logistic, C, NUM_BINS
    )
    assert torch.equal(want, same)
    kernels = sorted(SAMPLERS) if cpu_isa == "default" else ["cpu"]
    for kernel in kernels:
        got = SAMPLERS[kernel](params, noise_mixture, noise_logistic, C, NUM_BINS)
        assert torch.equal(got, want), kernel


# ---- concat_elu (with dropout, with and without the zero border) ----


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pad", [(), (1, 1, 1, 0)])
@pytest.mark.parametrize("value", sorted(VALUES))
def test_concat_elu(cpu_isa, dtype, pad, value):
    g = torch.Generator().manual_seed(3)
    x = one_per_row(torch.randn(1, 1, 1, ROW, generator=g, dtype=dtype) * 3, VALUES[value])
    seed = 1234
    got = value_and_grads(
        lambda t: torch.ops.gen_ext.concat_elu(t, 0.5, seed, list(pad)), (x,), (0,)
    )
    want = value_and_grads(lambda t: reference.concat_elu(t, 0.5, seed, pad), (x,), (0,))
    assert_all_same(got, want, ("out", "grad x"))


# ---- diagonal_lstm_scan ----

HIDDEN = ROW  # the cell update's vectors run along the hidden units: full vectors and a tail


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", sorted(VALUES))
def test_diagonal_lstm_scan_i2s(cpu_isa, dtype, value):
    """The value at each of the 4 * HIDDEN gate channels of image pixel (1, 0) (skewed column
    1), one image per channel: it reaches that pixel and the pixels after it that read its state,
    as in the reference; NaN stays NaN, and the positions before it stay as they were."""
    g = torch.Generator().manual_seed(4)
    i2s = torch.randn(1, 4 * HIDDEN, 2, 3, generator=g, dtype=dtype)
    weight = torch.randn(4 * HIDDEN, HIDDEN, 2, generator=g, dtype=dtype) / HIDDEN
    poisoned = i2s.expand(4 * HIDDEN, -1, -1, -1).clone()
    poisoned[torch.arange(4 * HIDDEN), torch.arange(4 * HIDDEN), 1, 1] = VALUES[value]
    args = (poisoned, weight)
    got = value_and_grads(ops.diagonal_lstm_scan, args, (0, 1))
    want = value_and_grads(reference.diagonal_lstm_scan, args, (0, 1))
    assert_all_same(got, want, ("h", "c", "grad i2s", "grad weight"))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", sorted(VALUES))
@pytest.mark.parametrize(
    "entry", [(0, 0, 0), (4 * HIDDEN - 1, HIDDEN - 1, 1), (3 * HIDDEN + 5, 17, 0)]
)
def test_diagonal_lstm_scan_weight(cpu_isa, dtype, value, entry):
    """A non-finite state-to-state weight reaches the positions whose neighbour it multiplies,
    and only those: never through the zero state above the first row or outside the image (the
    reference sums the taps apart, each where its neighbour lies inside)."""
    g = torch.Generator().manual_seed(5)
    i2s = torch.randn(2, 4 * HIDDEN, 3, 4, generator=g, dtype=dtype)
    weight = torch.randn(4 * HIDDEN, HIDDEN, 2, generator=g, dtype=dtype) / HIDDEN
    weight[entry] = VALUES[value]
    args = (i2s, weight)
    got = value_and_grads(ops.diagonal_lstm_scan, args, (0, 1))
    want = value_and_grads(reference.diagonal_lstm_scan, args, (0, 1))
    assert_all_same(got, want, ("h", "c", "grad i2s", "grad weight"))


# ---- causal_conv1d ----


def causal_conv1d_inputs(where, value, dtype):
    """x [rows, 2, ROW], weight [3, 2, 3], bias [3], with `value` once per batch row at every
    position of x (row b at position b), or in the weight or bias (every row alike: the weight's
    and bias's positions are looped over by the test)."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn((1, 2, ROW), generator=g, dtype=torch.float64)
    weight = torch.randn((3, 2, 3), generator=g, dtype=torch.float64)
    bias = torch.randn((3,), generator=g, dtype=torch.float64)
    if where == "x":
        x = one_per_row(x, value)
    return x.to(dtype), weight.to(dtype), bias.to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", sorted(VALUES))
@pytest.mark.parametrize("where", ["x", "weight", "bias"])
def test_causal_conv1d(dtype, value, where):
    """A non-finite value reaches the outputs (and gradients) that read it, and no others: the
    taps before the sequence's start are absent, not zeros multiplied by it."""
    x, weight, bias = causal_conv1d_inputs(where, VALUES[value], dtype)
    names = ("out", "grad x", "grad weight", "grad bias")
    targets = {"x": [None], "weight": range(weight.numel()), "bias": range(bias.numel())}[where]
    for position in targets:
        w, b = weight.clone(), bias.clone()
        if where != "x":
            (w if where == "weight" else b).view(-1)[position] = VALUES[value]
        for dilation in (1, 5):
            results = [
                value_and_grads(lambda *t, fn=fn, d=dilation: fn(*t, d), (x, w, b), (0, 1, 2))
                for fn in (ops.causal_conv1d, reference.causal_conv1d)
            ]
            assert_all_same(*results, [f"{where} {position} d={dilation} {n}" for n in names])
