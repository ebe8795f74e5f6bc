"""shifted_conv2d: the implicit-GEMM kernels (and the dense path the CPU may choose per shape)
against the tap-by-tap reference, which equals F.pad + conv2d on finite inputs."""

import pytest
import torch
import torch.nn.functional as F
from torch._subclasses.fake_tensor import FakeTensorMode

from gen_ext import ops, reference
from gen_ext.check import float32_reference_budget
from gen_ext.nn import DownRightShiftedConv2d, DownShiftedConv2d
from gen_ext.ops.memory_layout import kernel_layout
from gen_ext.ops.shifted_conv import (
    check_backward_inputs,
    check_inputs,
    shifted_conv2d_backward_triton,
    shifted_conv2d_triton,
)

OP = torch.ops.gen_ext.shifted_conv2d
BACKWARD_OP = torch.ops.gen_ext.shifted_conv2d_backward
SHIFTS = ["down", "down_right"]
EXACT = dict(rtol=1e-12, atol=1e-12)


def inputs(batch, cin, cout, h, w, kernel, dtype=torch.float64, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cin, h, w, generator=g, dtype=dtype)
    weight = torch.randn(cout, cin, *kernel, generator=g, dtype=dtype)
    b = torch.randn(cout, generator=g, dtype=dtype) if bias else None
    return x, weight, b


def value_and_grads(fn, x, weight, bias, shift, cotangent=None):
    """fn's output and the gradients of x, weight (and bias) for a fixed random cotangent."""
    leaves = [None if t is None else t.detach().clone().requires_grad_() for t in (x, weight, bias)]
    out = fn(*leaves, shift)
    if cotangent is None:
        g = torch.Generator().manual_seed(7)
        cotangent = torch.randn(out.shape, generator=g, dtype=torch.float64).to(out.dtype)
    used = [t for t in leaves if t is not None]
    return (out, *torch.autograd.grad(out, used, cotangent))


def assert_all_close(got, want, **tol):
    assert len(got) == len(want)
    for name, g, w in zip(("out", "grad x", "grad weight", "grad bias"), got, want, strict=False):
        torch.testing.assert_close(g, w, **(tol or EXACT), msg=lambda m, name=name: f"{name}: {m}")


def skip_even_centred(shift, kernel):
    if shift == "down" and kernel[1] % 2 == 0:
        pytest.skip("a down shift centres its columns: its kernel width is odd")


@pytest.fixture(params=["kernel", "dense"])
def conv_path(request):
    """The CPU op's two paths, forced: its implicit GEMM and oneDNN's convolution of a padded copy,
    which it may choose per shape (gen_ext.ops.conv_path); each is tested whatever is faster."""
    with ops.use_conv_path(request.param):
        yield request.param


# (batch, in, out, H, W): odd channel counts (partial vectors), one-pixel rows and columns, 70
# channels (several column tiles and a tail), a row longer than one of the kernel's pieces
SHAPES = [
    (2, 3, 5, 5, 7),
    (1, 1, 1, 1, 1),
    (2, 5, 17, 6, 1),
    (1, 17, 5, 1, 9),
    (1, 70, 70, 4, 6),
    (1, 5, 3, 2, 301),
]
KERNELS = [(1, 1), (2, 3), (3, 3), (2, 2), (3, 2), (1, 3), (2, 1), (4, 5)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("shift", SHIFTS)
def test_matches_reference_float64(cpu_isa, conv_path, shape, kernel, shift):
    skip_even_centred(shift, kernel)
    batch, cin, cout, h, w = shape
    x, weight, bias = inputs(batch, cin, cout, h, w, kernel, seed=h * w, bias=w % 2 == 1)
    got = value_and_grads(ops.shifted_conv2d, x, weight, bias, shift)
    want = value_and_grads(reference.shifted_conv2d, x, weight, bias, shift)
    assert_all_close(got, want)


@pytest.mark.parametrize("kernel", [(2, 3), (3, 3), (2, 2), (4, 5), (2, 1)])
@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("bias", [False, True])
def test_reference_equals_padded_conv2d_on_finite_inputs(kernel, shift, bias):
    """Both references (tap by tap, and F.pad + conv2d) against a convolution of x placed by hand
    inside its border, the border written from the definition (kh - 1 rows on top; (kw - 1) / 2
    columns at each side for "down", kw - 1 on the left for "down_right"), not from
    shifted_padding, which both references use."""
    skip_even_centred(shift, kernel)
    x, weight, b = inputs(2, 4, 6, 5, 6, kernel, seed=12, bias=bias)
    kh, kw = kernel
    top, left = kh - 1, (kw - 1) // 2 if shift == "down" else kw - 1
    right = left if shift == "down" else 0

    def by_hand(x_, w_, *rest):
        B, C, H, W = x_.shape
        placed = x_.new_zeros(B, C, top + H, left + W + right)
        placed[:, :, top:, left : left + W] = x_
        return F.conv2d(placed, w_, rest[0] if bias else None)

    want = value_and_grads(lambda *t: by_hand(*t[:-1]), x, weight, b, shift)
    assert_all_close(value_and_grads(reference.shifted_conv2d, x, weight, b, shift), want)
    assert_all_close(value_and_grads(reference.shifted_conv2d_dense, x, weight, b, shift), want)


# the GPU kernels (Triton), here on CPU tensors through the interpreter: small shapes, as every
# program instance costs milliseconds there
TRITON_SHAPES = [(2, 3, 5, 5, 7), (1, 33, 35, 3, 4), (1, 2, 3, 1, 1)]


@pytest.mark.parametrize("shape", TRITON_SHAPES)
@pytest.mark.parametrize("kernel", [(2, 3), (2, 2), (1, 1), (3, 2)])
@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_triton_kernels_match_reference(shape, kernel, shift, dtype):
    skip_even_centred(shift, kernel)
    batch, cin, cout, h, w = shape
    x, weight, bias = inputs(batch, cin, cout, h, w, kernel, dtype, seed=cin + cout)
    grad = torch.randn(batch, cout, h, w, dtype=dtype, generator=torch.Generator().manual_seed(1))
    got = (
        shifted_conv2d_triton(x, weight, bias, shift),
        *shifted_conv2d_backward_triton(grad, x, weight, shift),
    )
    leaves = [t.clone().requires_grad_() for t in (x, weight)]
    out = reference.shifted_conv2d(*leaves, bias, shift)
    want = (out, *torch.autograd.grad(out, leaves, grad))
    tol = EXACT if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-4)
    assert_all_close(got, want, **tol)


def test_triton_kernels_check_their_arguments():
    x, weight, bias = inputs(2, 3, 6, 4, 4, (2, 3))
    with pytest.raises(RuntimeError, match="shift must be 'down' or 'down_right'"):
        shifted_conv2d_triton(x, weight, bias, "up")
    with pytest.raises(RuntimeError, match="grad must have the output's shape"):
        shifted_conv2d_backward_triton(
            torch.zeros(2, 6, 4, 3, dtype=torch.float64), x, weight, "down"
        )


@pytest.mark.parametrize("shift,kernel", [("down", (2, 3)), ("down_right", (2, 2))])
def test_float32_within_the_eager_reference_error(cpu_isa, conv_path, shift, kernel):
    x, weight, bias = inputs(4, 64, 64, 12, 12, kernel, torch.float32, seed=3)
    got = value_and_grads(ops.shifted_conv2d, x, weight, bias, shift)
    # float32 yardstick: the dense form users run (the tap-by-tap reference rounds differently)
    eager = value_and_grads(reference.shifted_conv2d_dense, x, weight, bias, shift)
    exact = value_and_grads(
        reference.shifted_conv2d, x.double(), weight.double(), bias.double(), shift
    )
    kernel_error, allowed = float32_reference_budget(got, eager, exact)
    assert kernel_error <= allowed


@pytest.mark.parametrize("shift", SHIFTS)
def test_gradcheck_and_gradgradcheck(shift):
    x, weight, bias = (t.requires_grad_() for t in inputs(2, 3, 4, 4, 5, (2, 3), seed=5))
    fn = lambda a, b, c: OP(a, b, c, shift)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, weight, bias))
    assert torch.autograd.gradgradcheck(fn, (x, weight, bias))


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("shift", SHIFTS)
def test_opcheck(requires_grad, bias, shift):
    x, weight, b = inputs(2, 3, 6, 4, 5, (2, 3), seed=6, bias=bias)
    leaves = [t if t is None else t.requires_grad_(requires_grad) for t in (x, weight, b)]
    torch.library.opcheck(OP, (*leaves, shift))
    grad = torch.randn(2, 6, 4, 5, dtype=torch.float64)
    torch.library.opcheck(BACKWARD_OP, (grad, x.detach(), weight.detach(), shift))


@pytest.mark.parametrize("shift", SHIFTS)
def test_non_contiguous_inputs_and_broadcast_gradient(conv_path, shift):
    x, weight, bias = inputs(3, 6, 9, 7, 5, (2, 3), seed=8)
    views = (
        x.transpose(2, 3).contiguous().transpose(2, 3),
        x.contiguous(memory_format=torch.channels_last),
        torch.stack([x, x], 2)[:, :, 0],  # channel planes two apart
    )
    want = reference.shifted_conv2d(x, weight, bias, shift)
    for view in views:
        strided_weight = weight.transpose(0, 1).contiguous().transpose(0, 1)
        torch.testing.assert_close(ops.shifted_conv2d(view, strided_weight, bias, shift), want)
    # out.sum() hands the backward a stride-0 expanded gradient
    leaves = [t.clone().requires_grad_() for t in (x, weight)]
    ops.shifted_conv2d(leaves[0], leaves[1], None, shift).sum().backward()
    ref_leaves = [t.clone().requires_grad_() for t in (x, weight)]
    reference.shifted_conv2d(ref_leaves[0], ref_leaves[1], None, shift).sum().backward()
    for got, wnt in zip(leaves, ref_leaves, strict=True):
        torch.testing.assert_close(got.grad, wnt.grad, **EXACT)


@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("shape", [(2, 5, 6, 4, 7), (0, 5, 6, 4, 7), (2, 0, 6, 4, 7)])
def test_output_keeps_a_channels_last_layout(conv_path, shift, shape):
    """A channels-last model stays channels last through the op (and its fake kernel agrees). An
    empty or channel-less x has no layout of its own (torch's suggest_memory_format calls it
    contiguous): the output is contiguous then."""
    batch, cin, cout, h, w = shape
    x, weight, bias = inputs(batch, cin, cout, h, w, (2, 3), seed=14)
    x = x.contiguous(memory_format=torch.channels_last)
    layout = torch.channels_last if batch * cin else torch.contiguous_format
    assert kernel_layout(x) == layout
    want = reference.shifted_conv2d(x, weight, bias, shift)
    for fn in (ops.shifted_conv2d, shifted_conv2d_triton):
        out = fn(x, weight, bias, shift)
        assert out.is_contiguous(memory_format=layout), fn
        torch.testing.assert_close(out, want, **EXACT)
    assert ops.shifted_conv2d(x.contiguous(), weight, bias, shift).is_contiguous()
    torch.library.opcheck(OP, (x, weight, bias, shift))


# (batch, in, out, H, W)
EMPTY = [(0, 3, 4, 4, 4), (2, 3, 4, 0, 4), (2, 3, 4, 4, 0), (2, 0, 4, 3, 4), (2, 3, 0, 3, 4)]


@pytest.mark.parametrize("shape", EMPTY)
@pytest.mark.parametrize("shift", SHIFTS)
def test_empty_inputs(conv_path, shape, shift):
    batch, cin, cout, h, w = shape
    x, weight, bias = inputs(batch, cin, cout, h, w, (2, 3), seed=9)
    got = value_and_grads(ops.shifted_conv2d, x, weight, bias, shift)
    want = value_and_grads(reference.shifted_conv2d, x, weight, bias, shift)
    assert got[0].shape == (batch, cout, h, w)
    assert_all_close(got, want)


# ---- non-finite values: the kernels skip the taps outside the image, as the reference does ----


def results(kernel, x, weight, bias, shift, grad):
    """(out, grad x, grad weight) of the CPU op (the path in force) or of the Triton kernels."""
    if kernel == "triton":
        return (
            shifted_conv2d_triton(x, weight, bias, shift),
            *shifted_conv2d_backward_triton(grad, x, weight, shift),
        )
    return (OP(x, weight, bias, shift), *BACKWARD_OP(grad, x, weight, shift))


def reference_results(x, weight, bias, shift, grad):
    leaves = [t.detach().clone().requires_grad_() for t in (x, weight)]
    out = reference.shifted_conv2d(*leaves, bias, shift)
    return (out, *torch.autograd.grad(out, leaves, grad))


def assert_same(got, want):
    """NaN and inf where the reference has them; the values elsewhere to float64 rounding, or in
    float32 (oneDNN's path when dense) to float32 rounding."""
    tol = EXACT if want[0].dtype == torch.float64 else dict(rtol=1e-5, atol=1e-4)
    for name, g, w in zip(("out", "grad x", "grad weight"), got, want, strict=True):
        torch.testing.assert_close(
            g, w, **tol, equal_nan=True, msg=lambda m, name=name: f"{name}: {m}"
        )


NONFINITE_DTYPES = [torch.float64, torch.float32]


@pytest.mark.parametrize("kernel", ["cpu", "triton"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("shift,size", [("down", (2, 3)), ("down_right", (2, 2)), ("down", (3, 5))])
@pytest.mark.parametrize("dtype", NONFINITE_DTYPES)
def test_a_nonfinite_weight_stays_out_of_the_padding(
    cpu_isa, conv_path, kernel, value, shift, size, dtype
):
    """Each output channel holds the value at a tap of its own; outputs (and input gradients)
    whose that tap reads the border are finite in the reference but NaN in F.pad + conv2d
    (0 * inf). The dense path must hand such a call to the kernel."""
    if kernel == "triton" and (cpu_isa != "default" or conv_path != "kernel"):
        pytest.skip("the Triton kernel depends on neither the instruction set nor the CPU path")
    kh, kw = size
    x, weight, bias = inputs(2, 3, kh * kw, 4, 6, size, dtype, seed=4)
    weight.view(kh * kw, -1)[torch.arange(kh * kw), torch.arange(kh * kw)] = value
    grad = torch.randn(2, kh * kw, 4, 6, dtype=dtype)
    want = reference_results(x, weight, bias, shift, grad)
    padded = reference.shifted_conv2d_dense(x, weight, bias, shift)
    assert (torch.isfinite(want[0]) & ~torch.isfinite(padded)).any(), (
        "the case must tell them apart"
    )
    assert_same(results(kernel, x, weight, bias, shift, grad), want)


@pytest.mark.parametrize("kernel", ["cpu", "triton"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("where", ["x", "grad"])
@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("dtype", NONFINITE_DTYPES)
def test_nonfinite_inputs_and_incoming_gradients(
    cpu_isa, conv_path, kernel, value, where, shift, dtype
):
    """A NaN or inf in x, or in the output gradient, at the corners and the middle: it reaches
    the results through the taps that read the image, never through a product with the border."""
    if kernel == "triton" and (cpu_isa != "default" or conv_path != "kernel"):
        pytest.skip("the Triton kernel depends on neither the instruction set nor the CPU path")
    x, weight, bias = inputs(3, 4, 5, 4, 6, (2, 3), dtype, seed=10)
    grad = torch.randn(3, 5, 4, 6, dtype=dtype)
    target = x if where == "x" else grad
    H, W = target.shape[-2:]
    for b, (y, i) in enumerate([(0, 0), (H - 1, W - 1), (H // 2, W // 2)]):
        target[b, b, y, i] = value
    want = reference_results(x, weight, bias, shift, grad)
    assert_same(results(kernel, x, weight, bias, shift, grad), want)


# ---- paths, backends, errors, layers ----


def test_auto_chooses_a_path_per_shape_and_records_it():
    x, weight, bias = inputs(2, 5, 6, 7, 9, (2, 3), seed=13)
    with ops.use_conv_path("auto"):
        want = reference.shifted_conv2d(x, weight, bias, "down")
        torch.testing.assert_close(ops.shifted_conv2d(x, weight, bias, "down"), want, **EXACT)
    keys = [k for k in ops.conv_path_choices() if k.startswith("shifted_conv2d ")]
    assert any("x[2,5,7,9]" in k and "2x3 shift down " in k and "bias" in k for k in keys), keys


def test_reference_backend_runs_the_reference():
    x, weight, bias = inputs(1, 3, 3, 4, 4, (2, 2))
    with ops.use_backend("reference"):
        got = ops.shifted_conv2d(x, weight, bias, "down_right")
    torch.testing.assert_close(got, F.conv2d(F.pad(x, (1, 0, 1, 0)), weight, bias), **EXACT)


BAD = [
    (lambda x, w, b: (x[0], w, b, "down"), "x must be 4-D"),
    (lambda x, w, b: (x.long(), w, b, "down"), "x must be float32 or float64"),
    (lambda x, w, b: (x, w[..., 0], b, "down"), "weight must be 4-D"),
    (lambda x, w, b: (x, w.float(), b, "down"), "weight must match x in dtype and device"),
    (lambda x, w, b: (x, w[:, :2], b, "down"), "weight has 2 input channels but x has 3"),
    (lambda x, w, b: (x, w[:, :, :0], b, "down"), "kernel size must be at least 1x1, got 0x3"),
    (lambda x, w, b: (x, w, b, "up"), "shift must be 'down' or 'down_right', got 'up'"),
    (lambda x, w, b: (x, w[..., :2], b, "down"), "kernel width must be odd .* got 2x2"),
    (lambda x, w, b: (x, w, b[:2], "down"), r"bias must have shape \[6\]"),
    (lambda x, w, b: (x, w, b.float(), "down"), "bias must match x in dtype and device"),
]


@pytest.mark.parametrize("change,message", BAD)
def test_bad_input_names_the_argument(change, message):
    args = change(*inputs(2, 3, 6, 4, 4, (2, 3)))
    with pytest.raises(RuntimeError, match=message):
        OP(*args)
    with pytest.raises(RuntimeError, match=message):
        check_inputs(*args)
    with pytest.raises(RuntimeError, match=message), ops.use_backend("reference"):
        ops.shifted_conv2d(*args)
    with FakeTensorMode() as mode:
        fake = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
        with pytest.raises(RuntimeError, match=message):
            OP(*fake)


def test_backward_checks_its_arguments():
    x, weight, _ = inputs(2, 3, 6, 4, 4, (2, 3))
    bad_grad = torch.zeros(2, 6, 4, 3, dtype=torch.float64)
    message = r"shifted_conv2d_backward: grad must have the output's shape \[2, 6, 4, 4\]"
    for check in (BACKWARD_OP, check_backward_inputs):
        with pytest.raises(RuntimeError, match=message):
            check(bad_grad, x, weight, "down")
        with pytest.raises(RuntimeError, match="shifted_conv2d_backward: shift must be"):
            check(torch.zeros(2, 6, 4, 4, dtype=torch.float64), x, weight, "left")


@pytest.mark.parametrize(
    "layer,kernel", [(DownShiftedConv2d, (2, 3)), (DownRightShiftedConv2d, (2, 2))]
)
@pytest.mark.parametrize("stride", [1, 2])
def test_layers_run_the_op_at_stride_1_and_match_padded_conv2d(layer, kernel, stride):
    conv = layer(4, 6, kernel, stride=stride).double()
    plain = torch.nn.Conv2d(4, 6, kernel, stride=stride).double()
    plain.load_state_dict(conv.state_dict())  # same parameter names and shapes
    x = torch.randn(2, 4, 5, 7, dtype=torch.float64)
    want = plain(F.pad(x, conv.causal_padding))
    torch.testing.assert_close(conv(x), want, **EXACT)
    torch.testing.assert_close(conv.forward_padded(F.pad(x, conv.causal_padding)), want, **EXACT)
    if stride == 1:  # the op ran: a NaN weight at a tap reading only the border stays out
        with torch.no_grad():
            conv.weight[:, :, 0] = float("nan")  # the top row reads the border at output row 0
        assert torch.isfinite(conv(x)[:, :, 0]).all()
