"""The fused PixelCNN++ gated residual block: the public function and its torch.library
registrations (fake kernels, autograd with double backward).

One C++ implementation (csrc/gated_resnet_block.cpp) serves the CPU and the GPU: the device's
convolutions between gen_ext's concat-ELU and gated-activation kernels, each concat-ELU writing its
convolution's causal border in the same pass, the auxiliary 1x1 convolution accumulated in place,
and a backward that keeps x, aux and the two convolutions' outputs instead of every intermediate.
Reference: gen_ext/reference/gated_resnet_block.py.
"""

import torch

from gen_ext import _extension
from gen_ext import reference as ref

from .arg_checks import FLOAT_DTYPES, check_arg, check_dropout_p, check_shaped
from .backend import get_backend
from .gaussian import draw_seed, draw_seed_tensor
from .memory_layout import empty_in_layout_of
from .second_order import backward_of_backward, register_autograd_pair

OP = "gen_ext::gated_resnet_block"
BACKWARD_OP = "gen_ext::gated_resnet_block_backward"


def check_inputs(
    x, aux, w_in, b_in, w_aux, b_aux, w_gate, b_gate, stream, p, op="gated_resnet_block"
):
    """The conditions and messages of csrc/gated_resnet_block_checks.h."""
    check_arg(x.dtype in FLOAT_DTYPES, op, f"x must be float32 or float64, got {x.dtype}")
    check_arg(x.dim() == 4, op, f"x must be 4-D [B, C, H, W], got {x.dim()}-D")
    check_arg(
        x.shape[1] >= 1 and x.shape[2] >= 1 and x.shape[3] >= 1,
        op,
        f"x must have at least one channel, row and column, got {list(x.shape)}",
    )
    check_arg(
        stream in ("down", "down_right"),
        op,
        f"stream must be 'down' or 'down_right', got '{stream}'",
    )
    check_dropout_p(p, op)
    check_arg(
        w_in.dim() == 4 and w_in.shape[0] >= 1,
        op,
        f"w_in must be 4-D [Cm, 2C, kh, kw] with Cm >= 1, got {list(w_in.shape)}",
    )
    B, C, H, W = x.shape
    Cm, _, kh, kw = w_in.shape
    check_arg(kh >= 1 and kw >= 1, op, f"w_in's kernel must be at least 1x1, got {kh}x{kw}")
    check_arg(
        stream != "down" or kw % 2 == 1,
        op,
        f"the 'down' stream's kernel width must be odd (it is centred), got {kw}",
    )
    check_shaped(w_in, x, (Cm, 2 * C, kh, kw), op, "w_in")
    if b_in is not None:
        check_shaped(b_in, x, (Cm,), op, "b_in")
    check_shaped(w_gate, x, (2 * C, 2 * Cm, kh, kw), op, "w_gate")
    if b_gate is not None:
        check_shaped(b_gate, x, (2 * C,), op, "b_gate")
    check_arg(
        (aux is None) == (w_aux is None),
        op,
        f"pass aux exactly when w_aux is given, got aux {'None' if aux is None else 'given'} "
        f"and w_aux {'None' if w_aux is None else 'given'}",
    )
    check_arg(w_aux is not None or b_aux is None, op, "b_aux needs w_aux")
    if aux is not None:
        check_arg(
            aux.dim() == 4 and aux.shape[1] >= 1,
            op,
            f"aux must be 4-D [B, Ca, H, W] with Ca >= 1, got {list(aux.shape)}",
        )
        Ca = aux.shape[1]
        check_shaped(aux, x, (B, Ca, H, W), op, "aux")
        check_shaped(w_aux, x, (Cm, 2 * Ca, 1, 1), op, "w_aux")
        if b_aux is not None:
            check_shaped(b_aux, x, (Cm,), op, "b_aux")


def check_saved(grad, x, w_in, h, g, op):
    """The backward's incoming gradient and saved maps (check_gated_resnet_block_saved)."""
    B, C, H, W = x.shape
    check_shaped(grad, x, (B, C, H, W), op, "grad")
    check_shaped(h, x, (B, w_in.shape[0], H, W), op, "h")
    check_shaped(g, x, (B, 2 * C, H, W), op, "g")


def gated_resnet_block(
    x: torch.Tensor,
    aux: torch.Tensor | None,
    w_in: torch.Tensor,
    b_in: torch.Tensor | None,
    w_aux: torch.Tensor | None,
    b_aux: torch.Tensor | None,
    w_gate: torch.Tensor,
    b_gate: torch.Tensor | None,
    stream: str,
    p: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """PixelCNN++'s gated residual block in one op: [B, C, H, W] -> [B, C, H, W],

        h   = conv_in(concat_elu(x)) [+ nin(concat_elu(aux))]
        out = x + gate(conv_gate(dropout(concat_elu(h))))

    with both convolutions causal for `stream` ("down": kw odd, a pixel sees its row and the
    rows above; "down_right": also only the columns up to its own), gate(a, b) = tanh(a) *
    sigmoid(b) over the channel halves. Weights: w_in [Cm, 2C, kh, kw], w_aux [Cm, 2Ca, 1, 1]
    (exactly when aux [B, Ca, H, W] is given), w_gate [2C, 2Cm, kh, kw], biases optional.
    Dropout (rate p) draws its seed from `generator` (or the default generator of x's device).
    Double backward works. gen_ext.nn.GatedResidualBlock is the layer."""
    p = float(p)
    if get_backend() == "reference":
        check_inputs(x, aux, w_in, b_in, w_aux, b_aux, w_gate, b_gate, stream, p)
        seed = draw_seed_tensor(generator, x.device) if p > 0 else 0
        return ref.gated_resnet_block(
            x, aux, w_in, b_in, w_aux, b_aux, w_gate, b_gate, stream, p, seed
        )
    _extension.require()
    seed = draw_seed(generator, x.device) if p > 0 else 0
    return torch.ops.gen_ext.gated_resnet_block(
        x, aux, w_in, b_in, w_aux, b_aux, w_gate, b_gate, stream, p, seed
    )[0]


# ---- registrations (run by gen_ext.ops once gen_ext._C is loaded) ----


def _fake(x, aux, w_in, b_in, w_aux, b_aux, w_gate, b_gate, stream, p, seed):
    check_inputs(x, aux, w_in, b_in, w_aux, b_aux, w_gate, b_gate, stream, p)
    B, C, H, W = x.shape
    return (
        empty_in_layout_of(x, (B, C, H, W)),
        empty_in_layout_of(x, (B, w_in.shape[0], H, W)),
        empty_in_layout_of(x, (B, 2 * C, H, W)),
    )


def _backward_fake(grad, x, aux, w_in, b_in, w_aux, b_aux, w_gate, b_gate, h, g, stream, p, seed):
    op = "gated_resnet_block_backward"
    check_inputs(x, aux, w_in, b_in, w_aux, b_aux, w_gate, b_gate, stream, p, op)
    check_saved(grad, x, w_in, h, g, op)
    none = lambda: x.new_empty((0,))  # noqa: E731  (distinct: outputs must not alias)
    return (
        empty_in_layout_of(x, x.shape),
        none() if aux is None else empty_in_layout_of(aux, aux.shape),
        torch.empty_like(w_in, memory_format=torch.contiguous_format),
        x.new_empty(w_in.shape[:1]),
        none() if aux is None else torch.empty_like(w_aux, memory_format=torch.contiguous_format),
        none() if aux is None else x.new_empty(w_in.shape[:1]),
        torch.empty_like(w_gate, memory_format=torch.contiguous_format),
        x.new_empty(w_gate.shape[:1]),
    )


# the tensor inputs of the forward op, by position, whose gradients the backward op returns
_TENSORS = ("x", "aux", "w_in", "b_in", "w_aux", "b_aux", "w_gate", "b_gate")


def _setup_context(ctx, inputs, output):
    *tensors, stream, p, seed = inputs
    _, h, g = output
    ctx.mark_non_differentiable(h, g)
    # h and g get no gradient: leave theirs undefined rather than have autograd fill two maps of
    # zeros per block (measured: 1.5% of a PixelCNN++ training step)
    ctx.set_materialize_grads(False)
    ctx.present = [t is not None for t in tensors]
    ctx.save_for_backward(*tensors, h, g)
    ctx.args = (stream, p, seed)


def _backward(ctx, grad, _grad_h, _grad_g):
    if grad is None:  # the output got no gradient (grads are not materialized, above)
        return (None,) * (len(_TENSORS) + 3)
    *tensors, h, g = ctx.saved_tensors
    grads = torch.ops.gen_ext.gated_resnet_block_backward(
        grad,
        *tensors,
        h,
        g,
        *ctx.args,
    )
    return (
        *(gr if present else None for gr, present in zip(grads, ctx.present, strict=True)),
        None,
        None,
        None,
    )


def _backward_setup_context(ctx, inputs, output):
    grad, *tensors, h, g, stream, p, seed = inputs
    ctx.present = [t is not None for t in tensors]
    ctx.save_for_backward(grad, *tensors)
    ctx.args = (stream, p, seed)


def _backward_backward(ctx, *gg):
    grad, *tensors = ctx.saved_tensors
    present = [i for i, is_there in enumerate(ctx.present) if is_there]

    def reference(*given):
        full = [None] * len(_TENSORS)
        for i, t in zip(present, given, strict=True):
            full[i] = t
        return ref.gated_resnet_block(*full, *ctx.args)

    primals = [tensors[i] for i in present]
    firsts = [gg[i] if gg[i] is not None and gg[i].numel() else None for i in present]
    grad_grad, *second = backward_of_backward(reference, primals, (grad,), firsts)
    out = [None] * len(_TENSORS)
    for i, s in zip(present, second, strict=True):
        out[i] = s
    return (grad_grad, *out, None, None, None, None, None)


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
