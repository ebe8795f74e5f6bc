"""Fused concat-ELU with dropout, PixelCNN++'s nonlinearity: the public function and its
torch.library registrations (fake kernels, autograd with double backward).

One pass writes both halves and applies dropout, with no `neg`, `cat`, mask tensor or separate
multiply; one pass backward, which draws the dropout factors again from the seed instead of
reading a stored mask. Kernels: csrc/cpu/concat_elu_kernel_impl.h and
csrc/cuda/concat_elu_cuda.cu over the shared per-element math
csrc/include/gen_ext/concat_elu_math.h. Reference: gen_ext/reference/concat_elu.py.
"""

import torch

from gen_ext import _extension
from gen_ext import reference as ref

from .arg_checks import FLOAT_DTYPES, check_arg, check_dropout_p, check_like_output
from .backend import get_backend
from .gaussian import draw_seed, draw_seed_tensor
from .memory_layout import empty_in_layout_of
from .second_order import backward_of_backward, register_autograd_pair

OP = "gen_ext::concat_elu"
BACKWARD_OP = "gen_ext::concat_elu_backward"


def output_shape(x, pad=()) -> list:
    """[B, 2C, *spatial] for x of shape [B, C, *spatial], the border added when pad (left,
    right, top, bottom) is given."""
    shape = [x.shape[0], 2 * x.shape[1], *x.shape[2:]]
    if pad:
        left, right, top, bottom = pad
        shape[2] += top + bottom
        shape[3] += left + right
    return shape


def check_inputs(x, p, pad=(), op="concat_elu"):
    """The conditions and messages of csrc/concat_elu_checks.h."""
    check_arg(x.dtype in FLOAT_DTYPES, op, f"x must be float32 or float64, got {x.dtype}")
    check_arg(
        x.dim() >= 2, op, f"x must have at least 2 dimensions [B, C, *spatial], got {x.dim()}-D"
    )
    check_dropout_p(p, op)
    if pad:
        check_arg(
            len(pad) == 4,
            op,
            f"pad must be empty or (left, right, top, bottom), got {len(pad)} values",
        )
        check_arg(x.dim() == 4, op, f"pad needs x of shape [B, C, H, W], got {x.dim()}-D")
        check_arg(all(v >= 0 for v in pad), op, f"pad must be non-negative, got {list(pad)}")


def _pad_list(pad) -> list:
    if pad is None:
        return []
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in pad):
        raise TypeError(f"concat_elu: pad must hold ints (left, right, top, bottom), got {pad!r}")
    return list(pad)


def concat_elu(
    x: torch.Tensor,
    p: float = 0.0,
    generator: torch.Generator | None = None,
    pad: tuple[int, int, int, int] | None = None,
) -> torch.Tensor:
    """dropout(cat(elu(x), elu(-x))) along the channels: [B, C, *spatial] -> [B, 2C, *spatial].

    ELU of both signs passes information on both (unlike a ReLU). With p > 0 each output element
    is zeroed with probability p and the rest scaled by 1 / (1 - p), from a counter-based stream
    seeded from `generator` (or the default generator of x's device), so the generator's state
    decides the mask as it would for torch's dropout. Double backward works.

    pad = (left, right, top, bottom), for [B, C, H, W] input, returns the same values inside a
    zero border, as F.pad would, written in the same pass: a shifted convolution then reads it
    with no padded copy (gen_ext.nn.DownShiftedConv2d.forward_padded)."""
    p = float(p)
    pad = _pad_list(pad)
    if get_backend() == "reference":
        check_inputs(x, p, pad)
        return ref.concat_elu(x, p, draw_seed_tensor(generator, x.device) if p > 0 else 0, pad)
    _extension.require()
    seed = draw_seed(generator, x.device) if p > 0 else 0
    return torch.ops.gen_ext.concat_elu(x, p, seed, pad)


# ---- registrations (run by gen_ext.ops once gen_ext._C is loaded) ----


def _fake(x, p, seed, pad=()):
    check_inputs(x, p, pad)
    return empty_in_layout_of(x, output_shape(x, pad))


def _backward_fake(grad, x, p, seed, pad=()):
    op = "concat_elu_backward"
    check_inputs(x, p, pad, op)
    check_like_output(grad, output_shape(x, pad), x, op, "grad")
    return empty_in_layout_of(x, x.shape)


def _setup_context(ctx, inputs, output):
    x, p, seed, pad = inputs
    ctx.save_for_backward(x)
    ctx.p, ctx.seed, ctx.pad = p, seed, pad


def _backward(ctx, grad):
    (x,) = ctx.saved_tensors
    grad_x = torch.ops.gen_ext.concat_elu_backward(grad, x, ctx.p, ctx.seed, ctx.pad)
    return grad_x, None, None, None


def _backward_setup_context(ctx, inputs, output):
    grad, x, p, seed, pad = inputs
    ctx.save_for_backward(grad, x)
    ctx.p, ctx.seed, ctx.pad = p, seed, pad


def _backward_backward(ctx, gg_x):
    grad, x = ctx.saved_tensors
    grads = backward_of_backward(
        lambda x_: ref.concat_elu(x_, ctx.p, ctx.seed, ctx.pad), (x,), (grad,), (gg_x,)
    )
    return (*grads, None, None, None)


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
