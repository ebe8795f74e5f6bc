"""PixelRNN's diagonal LSTM scan: the public function and its torch.library registrations (fake
kernels, autograd with double backward).

The forward runs the LSTM over the skewed image's columns with the state kept in cache; the
backward is one reverse scan that recomputes the gates from the saved states. Kernels:
csrc/cpu/diagonal_lstm_kernel_impl.h and csrc/cuda/diagonal_lstm_cuda.cu over the shared cell
math csrc/include/gen_ext/lstm_math.h. Reference: gen_ext/reference/diagonal_lstm.py.
"""

import torch

from gen_ext import _extension
from gen_ext import reference as ref

from .arg_checks import FLOAT_DTYPES, check_arg, check_like_output
from .backend import get_backend
from .second_order import backward_of_backward, register_autograd_pair

OP = "gen_ext::diagonal_lstm_scan"
BACKWARD_OP = "gen_ext::diagonal_lstm_scan_backward"


def state_shape(i2s) -> list:
    """[B, hidden, H, Ws] for i2s of shape [B, 4 * hidden, H, Ws]."""
    return [i2s.shape[0], i2s.shape[1] // 4, *i2s.shape[2:]]


def check_inputs(i2s, weight, op="diagonal_lstm_scan"):
    """The conditions and messages of csrc/diagonal_lstm_checks.h."""
    check_arg(i2s.dtype in FLOAT_DTYPES, op, f"i2s must be float32 or float64, got {i2s.dtype}")
    check_arg(i2s.dim() == 4, op, f"i2s must be [B, 4 * hidden, H, W + H - 1], got {i2s.dim()}-D")
    G = i2s.shape[1]
    check_arg(
        G > 0 and G % 4 == 0,
        op,
        f"i2s must have 4 * hidden channels (gates o, f, i, g), got {G}",
    )
    H, Ws = i2s.shape[2], i2s.shape[3]
    check_arg(
        Ws + 1 >= H,
        op,
        f"i2s must be a skewed image, at least H - 1 columns wide, got H = {H} and {Ws} columns",
    )
    hidden = G // 4
    want = [4 * hidden, hidden, 2]
    check_arg(
        list(weight.shape) == want,
        op,
        f"weight must be [4 * hidden, hidden, 2] = {want}, got {list(weight.shape)}",
    )
    check_arg(
        weight.dtype == i2s.dtype and weight.device == i2s.device,
        op,
        f"weight must match i2s in dtype and device ({i2s.dtype} on {i2s.device}), "
        f"got {weight.dtype} on {weight.device}",
    )


def diagonal_lstm_scan(
    i2s: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The diagonal LSTM over a skewed image: i2s [B, 4h, H, W + H - 1] (gate pre-activations
    o, f, i, g from the input, zero or anything outside the image: it is not read), weight
    [4h, h, 2] (the state-to-state 2x1 convolution; tap 0 reads the row above, tap 1 the same
    row, of the previous column) -> (h, c), each [B, h, H, W + H - 1], zero outside the image.
    Double backward works."""
    if get_backend() == "reference":
        check_inputs(i2s, weight)
        return ref.diagonal_lstm_scan(i2s, weight)
    _extension.require()
    return torch.ops.gen_ext.diagonal_lstm_scan(i2s, weight)


# ---- registrations (run by gen_ext.ops once gen_ext._C is loaded) ----


def _channels_last(like, shape):
    """An empty [B, C, H, W] tensor with the strides the kernels give their results: a
    [B, H, W, C] contiguous buffer seen as [B, C, H, W]."""
    B, C, H, W = shape
    return like.new_empty_strided(shape, (H * W * C, 1, W * C, C))


def _fake(i2s, weight):
    check_inputs(i2s, weight)
    return _channels_last(i2s, state_shape(i2s)), _channels_last(i2s, state_shape(i2s))


def _backward_fake(grad_h, grad_c, i2s, weight, h, c):
    op = "diagonal_lstm_scan_backward"
    check_inputs(i2s, weight, op)
    shape = state_shape(i2s)
    for name, t in (("grad_h", grad_h), ("grad_c", grad_c), ("h", h), ("c", c)):
        if t is not None:
            check_like_output(t, shape, i2s, op, name)
    return (
        _channels_last(i2s, list(i2s.shape)),
        torch.empty_like(weight, memory_format=torch.contiguous_format),
    )


def _setup_context(ctx, inputs, output):
    i2s, weight = inputs
    h, c = output
    ctx.save_for_backward(i2s, weight, h, c)


def _backward(ctx, grad_h, grad_c):
    i2s, weight, h, c = ctx.saved_tensors
    # autograd hands zeros, not None, for an output that got no gradient
    return torch.ops.gen_ext.diagonal_lstm_scan_backward(grad_h, grad_c, i2s, weight, h, c)


def _backward_setup_context(ctx, inputs, output):
    grad_h, grad_c, i2s, weight, h, c = inputs
    ctx.save_for_backward(grad_h, grad_c, i2s, weight)


def _backward_backward(ctx, gg_i2s, gg_weight):
    grad_h, grad_c, i2s, weight = ctx.saved_tensors
    # h and c are the forward's results, recomputed by the reference from i2s and weight: the
    # second derivative flows through those, so the saved copies get none
    grads = backward_of_backward(
        ref.diagonal_lstm_scan, (i2s, weight), (grad_h, grad_c), (gg_i2s, gg_weight)
    )
    return (*grads, None, None)


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
