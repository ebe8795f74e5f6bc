"""Shifted convolutions (PixelCNN++'s down-shifted and down-right-shifted convolutions, stride 1):
the public function and its torch.library registrations (fake kernels, autograd with double
backward).

The kernels pad no rows of the input (the CPU kernel reads it widened by its side columns only,
the GPU kernel reads it as it is): they are the masked convolution's implicit GEMM over a plan of
every tap (CPU: csrc/cpu/shifted_conv_cpu.cpp; GPU: kernels/masked_conv.py in Triton, registered
for CUDA here and tested on CPU tensors under TRITON_INTERPRET=1), and a tap whose input pixel lies
outside the image is skipped, not multiplied by a zero. Reference:
gen_ext/reference/shifted_conv.py.
"""

import functools

import torch

from gen_ext import _extension
from gen_ext import reference as ref
from gen_ext.reference.shifted_conv import shifted_padding

from .arg_checks import check_arg, check_conv2d_bias, check_conv2d_operands, check_like_output
from .backend import get_backend
from .memory_layout import empty_in_layout_of, kernel_layout
from .second_order import backward_of_backward, register_autograd_pair
from .tap_plans import plan_from_offsets, taps_backward, taps_forward

OP = "gen_ext::shifted_conv2d"
BACKWARD_OP = "gen_ext::shifted_conv2d_backward"


def check_inputs(x, weight, bias, shift, op="shifted_conv2d"):
    """The conditions and messages of csrc/shifted_conv_checks.h."""
    check_conv2d_operands(x, weight, op)
    kh, kw = weight.shape[2], weight.shape[3]
    check_arg(kh >= 1 and kw >= 1, op, f"weight's kernel size must be at least 1x1, got {kh}x{kw}")
    check_arg(
        shift in ("down", "down_right"),
        op,
        f"shift must be 'down' or 'down_right', got {shift!r}",
    )
    if shift == "down":
        check_arg(
            kw % 2 == 1,
            op,
            f"with shift 'down' weight's kernel width must be odd (it is centred), got {kh}x{kw}",
        )
    check_conv2d_bias(bias, weight, x, op)


def check_backward_inputs(grad, x, weight, shift):
    """The backward op's conditions and messages (csrc/shifted_conv_checks.h)."""
    op = "shifted_conv2d_backward"
    check_inputs(x, weight, None, shift, op)
    want = (x.shape[0], weight.shape[0], x.shape[2], x.shape[3])
    check_like_output(grad, want, x, op, "grad")


def shifted_conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, shift: str
) -> torch.Tensor:
    """conv2d(F.pad(x, border), weight, bias) with stride 1, computed without the padded rows:
    [B, Cin, H, W] -> [B, Cout, H, W].

    shift "down": the border is kh - 1 rows on top and (kw - 1) / 2 columns at each side (kw
    odd), so output (i, j) sees rows i - kh + 1 .. i, centred columns. "down_right": kh - 1 rows
    on top and kw - 1 columns on the left, so it sees the pixels above and to the left. Taps
    outside the image are skipped (a non-finite weight reaches only the outputs that read the
    image through it). The output is stored like x: channels last for a channels-last x, else
    contiguous (gen_ext.ops.memory_layout)."""
    if get_backend() == "reference":
        check_inputs(x, weight, bias, shift)
        return ref.shifted_conv2d(x, weight, bias, shift)
    _extension.require()
    return torch.ops.gen_ext.shifted_conv2d(x, weight, bias, shift)


# ---- the GPU kernels (Triton) ----


@functools.lru_cache(maxsize=256)
def tap_plan(weight_shape, shift: str, input_grad: bool, device):
    """The tap plan (gen_ext/ops/tap_plans.py) of every tap, built once per shape: forward,
    output (i, j) reads input (i + dy - top, j + dx - left) at tap (dy, dx), all input channels;
    input gradient, input (i, j) gets output (i + top - dy, j + left - dx), all output channels."""
    cout, cin, kh, kw = weight_shape
    left, _, top, _ = shifted_padding(shift, kh, kw)
    index = torch.arange(kh * kw)
    dy, dx = index // kw, index % kw
    sign = -1 if input_grad else 1
    offsets = torch.stack([sign * (dy - top), sign * (dx - left)], 1)
    ranges = torch.zeros(1, kh * kw, 2, dtype=torch.int64)
    ranges[..., 1] = cout if input_grad else cin
    return plan_from_offsets(index, offsets, ranges, torch.device(device))


def shifted_conv2d_triton(x, weight, bias, shift):
    """The GPU forward (registered for CUDA; the tests run it on CPU tensors under
    TRITON_INTERPRET=1)."""
    check_inputs(x, weight, bias, shift)
    out = taps_forward(x, weight, bias, tap_plan(tuple(weight.shape), shift, False, x.device))
    return out.contiguous(memory_format=kernel_layout(x))


def shifted_conv2d_backward_triton(grad, x, weight, shift):
    """The GPU backward: (grad_x, grad_weight)."""
    check_backward_inputs(grad, x, weight, shift)
    forward = tap_plan(tuple(weight.shape), shift, False, x.device)
    input_grad = tap_plan(tuple(weight.shape), shift, True, x.device)
    return taps_backward(grad, x, weight, forward, input_grad)


# ---- registrations (run by gen_ext.ops once gen_ext._C is loaded) ----


def _fake(x, weight, bias, shift):
    check_inputs(x, weight, bias, shift)
    return empty_in_layout_of(x, (x.shape[0], weight.shape[0], x.shape[2], x.shape[3]))


def _backward_fake(grad, x, weight, shift):
    check_backward_inputs(grad, x, weight, shift)
    return (
        torch.empty_like(x, memory_format=torch.contiguous_format),
        torch.empty_like(weight, memory_format=torch.contiguous_format),
    )


def _setup_context(ctx, inputs, output):
    x, weight, bias, shift = inputs
    ctx.save_for_backward(x, weight)
    ctx.shift = shift
    ctx.has_bias = bias is not None


def _backward(ctx, grad):
    x, weight = ctx.saved_tensors
    grad_x, grad_weight = torch.ops.gen_ext.shifted_conv2d_backward(grad, x, weight, ctx.shift)
    grad_bias = grad.sum((0, 2, 3)) if ctx.has_bias else None
    return grad_x, grad_weight, grad_bias, None


def _backward_setup_context(ctx, inputs, output):
    grad, x, weight, shift = inputs
    ctx.save_for_backward(grad, x, weight)
    ctx.shift = shift


def _backward_backward(ctx, gg_x, gg_weight):
    grad, x, weight = ctx.saved_tensors
    reference = lambda x_, w_: ref.shifted_conv2d(x_, w_, None, ctx.shift)  # noqa: E731
    return (*backward_of_backward(reference, (x, weight), (grad,), (gg_x, gg_weight)), None)


def register() -> None:
    torch.library.register_fake(OP, _fake)
    torch.library.register_fake(BACKWARD_OP, _backward_fake)
    register_autograd_pair(
        OP,
        BACKWARD_OP,
        backward=_backward,
        setup_context=_setup_context,
        backward_backward=_backward_backward,
        backward_setup_context=_backward_setup_context,
    )
    torch.library.register_kernel(OP, "cuda", shifted_conv2d_triton)
    torch.library.register_kernel(BACKWARD_OP, "cuda", shifted_conv2d_backward_triton)
