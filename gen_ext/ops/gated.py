"""Fused gated activation tanh(a) * sigmoid(b) (+ residual): the public function and its
torch.library registrations (fake kernels, autograd with double backward).

Kernels: csrc/cpu/gated_kernel_impl.h and csrc/cuda/gated_cuda.cu over the shared per-element
math csrc/include/gen_ext/gated_math.h. Reference: gen_ext/reference/gated.py.
"""

import torch

from gen_ext import _extension
from gen_ext import reference as ref

from .arg_checks import FLOAT_DTYPES, check_arg, check_like_output
from .backend import get_backend
from .memory_layout import empty_in_layout_of
from .second_order import backward_of_backward, register_autograd_pair

OP = "gen_ext::gated_activation"
BACKWARD_OP = "gen_ext::gated_activation_backward"


def output_shape(x) -> list:
    """[B, C, *spatial] for x of shape [B, 2C, *spatial]."""
    return [x.shape[0], x.shape[1] // 2, *x.shape[2:]]


def check_x(x, op="gated_activation"):
    """The conditions and messages of csrc/gated_checks.h for x."""
    check_arg(x.dtype in FLOAT_DTYPES, op, f"x must be float32 or float64, got {x.dtype}")
    check_arg(
        x.dim() >= 2, op, f"x must have at least 2 dimensions [B, 2C, *spatial], got {x.dim()}-D"
    )
    check_arg(
        x.shape[1] % 2 == 0, op, f"x must have an even number of channels (dim 1), got {x.shape[1]}"
    )


def check_inputs(x, residual, op="gated_activation"):
    check_x(x, op)
    if residual is not None:
        check_like_output(residual, output_shape(x), x, op, "residual")


def gated_activation(x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
    """tanh(a) * sigmoid(b) for the two channel halves a, b of x, plus `residual` when given, in
    one pass (one pass backward; double backward works): [B, 2C, *spatial] -> [B, C, *spatial].

    The gated unit of Gated PixelCNN, PixelCNN++ and WaveNet. Values and gradients are finite for
    any finite input (tanh and sigmoid are taken from exp(-|.|), which cannot overflow)."""
    if get_backend() == "reference":
        check_inputs(x, residual)
        return ref.gated_activation(x, residual)
    _extension.require()
    return torch.ops.gen_ext.gated_activation(x, residual)


# ---- registrations (run by gen_ext.ops once gen_ext._C is loaded) ----


def _fake(x, residual):
    check_inputs(x, residual)
    return empty_in_layout_of(x, output_shape(x))


def _backward_fake(grad, x):
    op = "gated_activation_backward"
    check_x(x, op)
    check_like_output(grad, output_shape(x), x, op, "grad")
    return empty_in_layout_of(x, x.shape)


def _setup_context(ctx, inputs, output):
    x, residual = inputs
    ctx.save_for_backward(x)
    ctx.has_residual = residual is not None


def _backward(ctx, grad):
    (x,) = ctx.saved_tensors
    grad_x = None
    if ctx.needs_input_grad[0]:
        grad_x = torch.ops.gen_ext.gated_activation_backward(grad, x)
    # out = gate + residual: the residual's gradient is the incoming one, unchanged
    grad_residual = grad if ctx.has_residual and ctx.needs_input_grad[1] else None
    return grad_x, grad_residual


def _backward_setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _backward_backward(ctx, gg_x):
    grad, x = ctx.saved_tensors
    # the residual adds nothing to the second derivative: its path is the identity
    return tuple(backward_of_backward(ref.gated_activation, (x,), (grad,), (gg_x,)))


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
