"""Dilated causal 1-D convolution (WaveNet): the public function and its torch.library
registrations (fake kernels, autograd with double backward).

Kernel: csrc/causal_conv1d.cpp, device-generic ATen registered for CPU and CUDA: one GEMM per tap
between that tap's weight and the shifted view of x, accumulated into the shifted view of the
output (no padded copy of x). Checks: csrc/causal_conv1d_checks.h. Reference:
gen_ext/reference/causal_conv1d.py.
"""

import torch

from gen_ext import _extension
from gen_ext import reference as ref

from .arg_checks import FLOAT_DTYPES, check_arg, check_like_output, check_like_x
from .backend import get_backend
from .second_order import backward_of_backward, register_autograd_pair

OP = "gen_ext::causal_conv1d"
BACKWARD_OP = "gen_ext::causal_conv1d_backward"


def check_inputs(x, weight, bias, dilation, op="causal_conv1d"):
    """The conditions and messages of csrc/causal_conv1d_checks.h, in its order."""
    check_arg(x.dim() == 3, op, f"x must be 3-D [B, C_in, T], got {x.dim()}-D")
    check_arg(x.dtype in FLOAT_DTYPES, op, f"x must be float32 or float64, got {x.dtype}")
    check_arg(weight.dim() == 3, op, f"weight must be 3-D [C_out, C_in, K], got {weight.dim()}-D")
    check_like_x(weight, x, op, "weight")
    check_arg(
        weight.shape[1] == x.shape[1],
        op,
        f"weight must have x's {x.shape[1]} input channels (dim 1), got {weight.shape[1]}",
    )
    check_arg(
        weight.shape[2] >= 1,
        op,
        f"weight's kernel size (dim 2) must be at least 1, got {weight.shape[2]}",
    )
    check_arg(dilation >= 1, op, f"dilation must be at least 1, got {dilation}")
    if bias is not None:
        check_arg(
            bias.dim() == 1 and bias.shape[0] == weight.shape[0],
            op,
            f"bias must have shape [{weight.shape[0]}], got {list(bias.shape)}",
        )
        check_like_x(bias, x, op, "bias")


def output_shape(x, weight) -> list:
    return [x.shape[0], weight.shape[0], x.shape[2]]


def check_backward_inputs(grad, x, weight, dilation):
    op = "causal_conv1d_backward"
    check_inputs(x, weight, None, dilation, op)
    check_like_output(grad, output_shape(x, weight), x, op, "grad")


def causal_conv1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    dilation: int = 1,
) -> torch.Tensor:
    """Dilated causal convolution: x [B, C_in, T], weight [C_out, C_in, K] (conv1d's layout),
    bias [C_out] or None -> [B, C_out, T], where output t reads x at t, t - d, ..., t - (K-1)d
    only (d = dilation):

        out[b, o, t] = bias[o] + sum_{i, k} weight[o, i, k] * x[b, i, t - (K-1-k) d]

    Terms before the sequence's start are absent (not multiplied by zero), so a non-finite weight
    reaches only the outputs that read it. The same as conv1d of x padded by (K-1)d on the left,
    without the padded copy; gradients in x, weight and bias, double backward."""
    if get_backend() == "reference":
        check_inputs(x, weight, bias, dilation)
        return ref.causal_conv1d(x, weight, bias, dilation)
    _extension.require()
    return torch.ops.gen_ext.causal_conv1d(x, weight, bias, dilation)


# ---- registrations (run by gen_ext.ops once gen_ext._C is loaded) ----


def _fake(x, weight, bias, dilation):
    check_inputs(x, weight, bias, dilation)
    return x.new_empty(output_shape(x, weight))


def _backward_fake(grad, x, weight, dilation, output_mask):
    check_backward_inputs(grad, x, weight, dilation)
    want_x, want_weight, want_bias = output_mask
    return (
        x.new_empty(x.shape) if want_x else x.new_empty((0,)),
        x.new_empty(weight.shape) if want_weight else x.new_empty((0,)),
        x.new_empty((weight.shape[0],)) if want_bias else x.new_empty((0,)),
    )


def _setup_context(ctx, inputs, output):
    x, weight, bias, dilation = inputs
    ctx.save_for_backward(x, weight)
    ctx.has_bias = bias is not None
    ctx.dilation = dilation


def _backward(ctx, grad):
    x, weight = ctx.saved_tensors
    mask = [
        ctx.needs_input_grad[0],
        ctx.needs_input_grad[1],
        ctx.has_bias and ctx.needs_input_grad[2],
    ]
    if not any(mask):
        return None, None, None, None
    grads = torch.ops.gen_ext.causal_conv1d_backward(grad, x, weight, ctx.dilation, mask)
    return (*(g if wanted else None for g, wanted in zip(grads, mask, strict=True)), None)


def _backward_setup_context(ctx, inputs, output):
    grad, x, weight, dilation, output_mask = inputs
    ctx.save_for_backward(grad, x, weight)
    ctx.dilation = dilation
    ctx.output_mask = list(output_mask)


def _backward_backward(ctx, gg_x, gg_weight, gg_bias):
    grad, x, weight = ctx.saved_tensors
    # a masked-off output is an empty placeholder: it has no second derivative
    grads_of_first = [
        gg if wanted else None
        for gg, wanted in zip((gg_x, gg_weight, gg_bias), ctx.output_mask, strict=True)
    ]
    # the bias enters linearly: a zero bias stands in for it, so that its first derivative (the
    # gradient summed over batch and time) is part of the product
    bias = weight.new_zeros(weight.shape[:1])
    g_grad, g_x, g_weight, _ = backward_of_backward(
        lambda x_, w_, b_: ref.causal_conv1d(x_, w_, b_, ctx.dilation),
        (x, weight, bias),
        (grad,),
        grads_of_first,
    )
    return g_grad, g_x, g_weight, None, None


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
