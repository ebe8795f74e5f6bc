"""masked_conv2d: the implicit-GEMM kernels against the reference (weight * mask, then conv2d)."""

import os

import pytest
import torch
import torch.nn.functional as F
from torch._subclasses.fake_tensor import FakeTensorMode

from gen_ext import ops, reference
from gen_ext.check import float32_reference_budget
from gen_ext.nn import MaskedConv2d
from gen_ext.ops.masked_conv import masked_conv2d_backward_triton, masked_conv2d_triton

OP = torch.ops.gen_ext.masked_conv2d
BACKWARD_OP = torch.ops.gen_ext.masked_conv2d_backward


def inputs(batch, cin, cout, h, w, kernel, dtype=torch.float64, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    kh, kw = kernel
    x = torch.randn(batch, cin, h, w, generator=g, dtype=dtype)
    weight = torch.randn(cout, cin, kh, kw, generator=g, dtype=dtype)
    b = torch.randn(cout, generator=g, dtype=dtype) if bias else None
    return x, weight, b


def value_and_grads(fn, x, weight, bias, mask_type, colors):
    leaves = [None if t is None else t.detach().clone().requires_grad_() for t in (x, weight, bias)]
    out = fn(*leaves, mask_type, colors)
    g = torch.Generator().manual_seed(7)
    cotangent = torch.randn(out.shape, generator=g, dtype=torch.float64).to(out.dtype)
    used = [t for t in leaves if t is not None]
    return (out, *torch.autograd.grad(out, used, cotangent))


# (batch, in, out, H, W, kernel): odd channel counts and widths exercise the partial vectors and
# the partial row tiles, 1x1 and rectangular kernels the edges of the mask
SHAPES = [
    (2, 3, 6, 5, 7, (3, 3)),
    (1, 6, 9, 6, 5, (5, 5)),
    (3, 9, 21, 4, 13, (7, 7)),
    (2, 33, 18, 3, 8, (3, 5)),
    (1, 63, 48, 6, 14, (7, 7)),
    (2, 3, 3, 1, 1, (3, 3)),
    (2, 6, 3, 4, 4, (1, 1)),
    (1, 3, 36, 9, 1, (5, 3)),
    (1, 6, 9, 3, 601, (5, 5)),  # rows wider than one gathered piece, split into uneven pieces
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize("colors", [1, 3])
def test_matches_reference_float64(cpu_isa, shape, mask_type, colors):
    batch, cin, cout, h, w, kernel = shape
    x, weight, bias = inputs(batch, cin, cout, h, w, kernel, seed=h * w)
    got = value_and_grads(ops.masked_conv2d, x, weight, bias, mask_type, colors)
    want = value_and_grads(reference.masked_conv2d, x, weight, bias, mask_type, colors)
    for name, g, wnt in zip(("out", "grad x", "grad weight", "grad bias"), got, want, strict=True):
        torch.testing.assert_close(
            g, wnt, rtol=1e-12, atol=1e-12, msg=lambda m, name=name: f"{name}: {m}"
        )


# the GPU kernels (Triton), here on CPU tensors through the interpreter: small shapes, as every
# program instance costs milliseconds there
TRITON_SHAPES = [
    (2, 3, 6, 5, 7, (3, 3)),
    (1, 6, 9, 4, 5, (5, 5)),
    (1, 33, 35, 3, 6, (3, 5)),
    (2, 2, 3, 3, 4, (1, 1)),
]


@pytest.mark.parametrize("shape", TRITON_SHAPES)
@pytest.mark.parametrize("mask_type,colors", [("A", 1), ("B", 1), ("A", 3), ("B", 3)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_triton_kernels_match_reference(shape, mask_type, colors, dtype):
    batch, cin, cout, h, w, kernel = shape
    if colors == 3 and (cin % 3 or cout % 3):
        cin, cout = 3 * max(1, cin // 3), 3 * max(1, cout // 3)
    x, weight, bias = inputs(batch, cin, cout, h, w, kernel, dtype, seed=cin + cout)
    mask = reference.pixelcnn_mask(cout, cin, kernel, mask_type, colors, dtype).bool()
    poisoned = torch.where(mask, weight, torch.full_like(weight, float("nan")))
    grad = torch.randn(batch, cout, h, w, dtype=dtype, generator=torch.Generator().manual_seed(1))
    got = (
        masked_conv2d_triton(x, poisoned, bias, mask_type, colors),
        *masked_conv2d_backward_triton(grad, x, poisoned, mask_type, colors),
    )
    leaves = [t.clone().requires_grad_() for t in (x, weight)]
    out = reference.masked_conv2d(*leaves, bias, mask_type, colors)
    want = (out, *torch.autograd.grad(out, leaves, grad))
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-4)
    for name, g, wnt in zip(("out", "grad x", "grad weight"), got, want, strict=True):
        torch.testing.assert_close(g, wnt, **tol, msg=lambda m, name=name: f"{name}: {m}")


def test_triton_kernels_check_their_arguments():
    x, weight, bias = inputs(2, 3, 6, 4, 4, (3, 3))
    with pytest.raises(RuntimeError, match="mask_type must be 'A' or 'B'"):
        masked_conv2d_triton(x, weight, bias, "C", 1)
    with pytest.raises(RuntimeError, match="grad must have the output's shape"):
        masked_conv2d_backward_triton(
            torch.zeros(2, 6, 4, 3, dtype=torch.float64), x, weight, "A", 1
        )


@pytest.mark.parametrize("mask_type,kernel", [("A", (7, 7)), ("B", (3, 3))])
def test_float32_within_the_eager_reference_error(cpu_isa, mask_type, kernel):
    x, weight, bias = inputs(4, 64, 64, 12, 12, kernel, torch.float32, seed=3)
    got = value_and_grads(ops.masked_conv2d, x, weight, bias, mask_type, 1)
    # float32 yardstick: the dense form users run (the tap-by-tap reference rounds differently)
    eager = value_and_grads(reference.masked_conv2d_dense, x, weight, bias, mask_type, 1)
    exact = value_and_grads(
        reference.masked_conv2d, x.double(), weight.double(), bias.double(), mask_type, 1
    )
    kernel_error, allowed = float32_reference_budget(got, eager, exact)
    assert kernel_error <= allowed


@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize("colors", [1, 3])
def test_masked_weights_are_never_used_and_get_zero_gradient(mask_type, colors):
    x, weight, bias = inputs(2, 6, 6, 5, 5, (5, 5), seed=11)
    mask = reference.pixelcnn_mask(6, 6, (5, 5), mask_type, colors, torch.float64)
    poisoned = torch.where(mask.bool(), weight, torch.full_like(weight, float("nan")))
    out = ops.masked_conv2d(x, poisoned, bias, mask_type, colors)
    assert torch.equal(out, ops.masked_conv2d(x, weight * mask, bias, mask_type, colors))
    _, _, grad_weight, _ = value_and_grads(ops.masked_conv2d, x, weight, bias, mask_type, colors)
    assert torch.equal(grad_weight[~mask.bool()], torch.zeros_like(grad_weight[~mask.bool()]))
    assert (grad_weight[mask.bool()] != 0).all()


@pytest.mark.parametrize("mask_type,colors", [("A", 1), ("B", 1), ("A", 3), ("B", 3)])
def test_tap_by_tap_reference_equals_the_dense_form_on_finite_inputs(mask_type, colors):
    x, weight, bias = inputs(3, 6, 9, 7, 6, (5, 3), seed=12)
    want = value_and_grads(reference.masked_conv2d_dense, x, weight, bias, mask_type, colors)
    got = value_and_grads(reference.masked_conv2d, x, weight, bias, mask_type, colors)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mask_type,colors", [("A", 3), ("B", 1)])
def test_gradcheck_and_gradgradcheck(mask_type, colors):
    x, weight, bias = (t.requires_grad_() for t in inputs(2, 3, 3, 4, 5, (3, 3), seed=5))
    assert torch.autograd.gradcheck(
        lambda a, b, c: OP(a, b, c, mask_type, colors), (x, weight, bias)
    )
    assert torch.autograd.gradgradcheck(
        lambda a, b, c: OP(a, b, c, mask_type, colors), (x, weight, bias)
    )


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_opcheck(requires_grad, bias):
    x, weight, b = inputs(2, 3, 6, 4, 5, (3, 3), seed=6, bias=bias)
    leaves = [t if t is None else t.requires_grad_(requires_grad) for t in (x, weight, b)]
    torch.library.opcheck(OP, (*leaves, "A", 3))
    grad = torch.randn(2, 6, 4, 5, dtype=torch.float64)
    torch.library.opcheck(BACKWARD_OP, (grad, x.detach(), weight.detach(), "B", 3))


def test_non_contiguous_inputs_and_broadcast_gradient():
    x, weight, bias = inputs(3, 6, 9, 7, 5, (3, 3), seed=8)
    views = (
        x.transpose(2, 3).contiguous().transpose(2, 3),
        x.contiguous(memory_format=torch.channels_last),
        x[:, :, :, :],
    )
    want = reference.masked_conv2d(x, weight, bias, "B", 3)
    for view in views:
        got = ops.masked_conv2d(
            view, weight.transpose(0, 1).contiguous().transpose(0, 1), bias, "B", 3
        )
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # out.sum() hands the backward a stride-0 expanded gradient
    leaves = [t.clone().requires_grad_() for t in (x, weight)]
    ops.masked_conv2d(leaves[0], leaves[1], None, "A", 1).sum().backward()
    ref_leaves = [t.clone().requires_grad_() for t in (x, weight)]
    reference.masked_conv2d(ref_leaves[0], ref_leaves[1], None, "A", 1).sum().backward()
    for got, wnt in zip(leaves, ref_leaves, strict=True):
        torch.testing.assert_close(got.grad, wnt.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (2, 3, 0, 4), (2, 3, 4, 0)])
def test_empty_inputs(shape):
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(6, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    out = ops.masked_conv2d(x, weight, None, "B", 3)
    assert out.shape == (shape[0], 6, shape[2], shape[3])
    out.sum().backward()
    assert torch.equal(weight.grad, torch.zeros_like(weight))


def _resident_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def peak_resident_increase(fn) -> int:
    """How far the process's resident memory rose above its level before fn() at fn's peak
    (Linux: writing 5 to /proc/self/clear_refs resets the high-water mark VmHWM). This sees every
    allocation the kernels touch, through ATen's allocator or not."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _resident_bytes("VmRSS")
    fn()
    return _resident_bytes("VmHWM") - before


@pytest.mark.skipif(
    not os.access("/proc/self/clear_refs", os.W_OK),
    reason="needs Linux's resettable peak resident memory",
)
@pytest.mark.parametrize("mask_type,kernel", [("A", (7, 7)), ("B", (3, 3))])
def test_scratch_memory_stays_within_a_multiple_of_the_input_on_wide_images(
    cpu_isa, mask_type, kernel
):
    # one row of 2^20 pixels (4 MiB): a per-thread buffer that grows with the width (once 64
    # floats per pixel, 256 MiB) or rows of zero padding around a single row would show
    width = 1 << 20
    x = torch.randn(1, 1, 1, width)
    weight = torch.randn(1, 1, *kernel)
    grad = torch.randn(1, 1, 1, width)
    OP(x[..., :64], weight, None, mask_type, 1)  # threads and lazy setup before measuring
    BACKWARD_OP(grad[..., :64], x[..., :64], weight, mask_type, 1)
    results = []
    forward = peak_resident_increase(lambda: results.append(OP(x, weight, None, mask_type, 1)))
    backward = peak_resident_increase(
        lambda: results.append(BACKWARD_OP(grad, x, weight, mask_type, 1))
    )
    input_bytes = x.numel() * x.element_size()
    allowance = 1 << 20  # per-thread tiles and plans, independent of the width
    # beyond its result the forward holds one side-padded copy of x; the backward one of the
    # gradient, one of x and the gradient in channels-last order
    assert forward - input_bytes <= input_bytes + allowance, forward
    assert backward - input_bytes <= 3 * input_bytes + allowance, backward
    head = 4096 - kernel[1] // 2  # the columns a 4096-pixel start of the row decides alone
    want = reference.masked_conv2d(x[..., :4096], weight, None, mask_type, 1)[..., :head]
    torch.testing.assert_close(results[0][..., :head], want)


def test_no_input_channels_gives_the_bias():
    x = torch.randn(2, 0, 3, 4, dtype=torch.float64)
    weight = torch.randn(5, 0, 3, 3, dtype=torch.float64)
    bias = torch.randn(5, dtype=torch.float64)
    torch.testing.assert_close(
        ops.masked_conv2d(x, weight, bias, "A", 1), bias.view(1, 5, 1, 1).expand(2, 5, 3, 4)
    )


def test_reference_backend_runs_the_reference():
    x, weight, bias = inputs(1, 3, 3, 4, 4, (3, 3))
    with ops.use_backend("reference"):
        got = ops.masked_conv2d(x, weight, bias, "A", 3)
    torch.testing.assert_close(
        got,
        F.conv2d(
            x,
            weight * reference.pixelcnn_mask(3, 3, (3, 3), "A", 3, torch.float64),
            bias,
            padding=1,
        ),
    )


BAD = [
    (lambda x, w, b: (x[0], w, b, "A", 1), "x must be 4-D"),
    (lambda x, w, b: (x.long(), w, b, "A", 1), "x must be float32 or float64"),
    (lambda x, w, b: (x, w[..., 0], b, "A", 1), "weight must be 4-D"),
    (lambda x, w, b: (x, w.float(), b, "A", 1), "weight must match x in dtype and device"),
    (lambda x, w, b: (x, w[:, :2], b, "A", 1), "weight has 2 input channels but x has 3"),
    (lambda x, w, b: (x, w[:, :, :2], b, "A", 1), "kernel size must be odd"),
    (lambda x, w, b: (x, w, b, "C", 1), "mask_type must be 'A' or 'B'"),
    (lambda x, w, b: (x, w, b, "A", 2), "color_channels must be 1 or 3"),
    (lambda x, w, b: (x, w[:4], b[:4], "A", 3), "must be divisible by 3"),
    (lambda x, w, b: (x, w, b[:2], "A", 1), r"bias must have shape \[6\]"),
    (lambda x, w, b: (x, w, b.float(), "A", 1), "bias must match x in dtype and device"),
]


@pytest.mark.parametrize("change,message", BAD)
def test_bad_input_names_the_argument(change, message):
    args = change(*inputs(2, 3, 6, 4, 4, (3, 3)))
    with pytest.raises(RuntimeError, match=message):
        OP(*args)
    with FakeTensorMode() as mode:
        fake = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
        with pytest.raises(RuntimeError, match=message):
            OP(*fake)


def test_backward_checks_the_gradient_shape():
    x, weight, _ = inputs(2, 3, 6, 4, 4, (3, 3))
    with pytest.raises(RuntimeError, match=r"grad must have the output's shape \[2, 6, 4, 4\]"):
        BACKWARD_OP(torch.zeros(2, 6, 4, 3, dtype=torch.float64), x, weight, "A", 1)


def test_layer_is_a_drop_in_conv():
    layer = MaskedConv2d(3, 12, 5, mask_type="A", color_channels=3).double()
    conv = torch.nn.Conv2d(3, 12, 5, padding=2).double()
    conv.load_state_dict(layer.state_dict())  # same parameter names and shapes
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        conv.weight.mul_(layer.mask())
    torch.testing.assert_close(layer(x), conv(x), rtol=1e-12, atol=1e-12)
    assert "mask_type='A'" in repr(layer)
    # the initial scale follows the kept fan-in (27 + 2 = ... kept taps of the last group)
    bound = 1 / layer.mask()[-1].sum().sqrt()
    assert layer.weight.abs().max() <= bound


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(mask_type="C"), "mask_type must be 'A' or 'B'"),
        (dict(color_channels=2), "color_channels must be 1 or 3"),
        (dict(kernel_size=4), "kernel_size must be an odd positive int"),
        (dict(color_channels=3, out_channels=4), "divisible by 3"),
    ],
)
def test_layer_rejects_bad_arguments(kwargs, message):
    args = dict(in_channels=3, out_channels=6, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        MaskedConv2d(**args)
