"""Masked causal convolution (PixelCNN masks A and B, with or without the colour-group mask):
the public function and its torch.library registrations (fake kernels, autograd with double
backward).

The kernels never read or multiply a masked tap: they run an implicit GEMM over the kept taps
only (CPU: csrc/cpu/masked_conv_kernel_impl.h; GPU: kernels/masked_conv.py in Triton, registered
for CUDA here and tested on CPU tensors under TRITON_INTERPRET=1). Reference:
gen_ext/reference/masked_conv.py.
"""

import functools

import torch

from gen_ext import _extension
from gen_ext import reference as ref

from .arg_checks import check_arg, check_conv2d_bias, check_conv2d_operands, check_like_output
from .backend import get_backend
from .second_order import backward_of_backward, register_autograd_pair
from .tap_plans import plan_from_offsets, taps_backward, taps_forward

OP = "gen_ext::masked_conv2d"
BACKWARD_OP = "gen_ext::masked_conv2d_backward"


def check_inputs(x, weight, bias, mask_type, color_channels, op="masked_conv2d"):
    """The conditions and messages of csrc/masked_conv_checks.h."""
    check_conv2d_operands(x, weight, op)
    kh, kw = weight.shape[2], weight.shape[3]
    check_arg(
        kh % 2 == 1 and kw % 2 == 1,
        op,
        f"weight's kernel size must be odd in both dimensions, got {kh}x{kw}",
    )
    check_arg(mask_type in ("A", "B"), op, f"mask_type must be 'A' or 'B', got {mask_type!r}")
    check_arg(color_channels in (1, 3), op, f"color_channels must be 1 or 3, got {color_channels}")
    if color_channels == 3:
        check_arg(
            weight.shape[0] % 3 == 0 and weight.shape[1] % 3 == 0,
            op,
            "with color_channels=3 the input and output channel counts must be divisible "
            f"by 3, got {weight.shape[1]} and {weight.shape[0]}",
        )
    check_conv2d_bias(bias, weight, x, op)


def check_backward_inputs(grad, x, weight, mask_type, color_channels):
    """The backward op's conditions and messages (csrc/masked_conv_checks.h)."""
    op = "masked_conv2d_backward"
    check_inputs(x, weight, None, mask_type, color_channels, op)
    want = (x.shape[0], weight.shape[0], x.shape[2], x.shape[3])
    check_like_output(grad, want, x, op, "grad")


def masked_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    mask_type: str = "B",
    color_channels: int = 1,
) -> torch.Tensor:
    """conv2d(x, weight * pixelcnn_mask, bias) with stride 1 and 'same' padding, computed
    without touching the masked taps: [B, Cin, H, W] -> [B, Cout, H, W].

    weight is a full [Cout, Cin, kh, kw] kernel (kh, kw odd); its masked entries are never read
    and get zero gradient. mask_type 'A' excludes the centre pixel (first layer), 'B' includes
    it. color_channels=3 adds the R -> G -> B channel-group mask at the centre tap."""
    if get_backend() == "reference":
        check_inputs(x, weight, bias, mask_type, color_channels)
        return ref.masked_conv2d(x, weight, bias, mask_type, color_channels)
    _extension.require()
    return torch.ops.gen_ext.masked_conv2d(x, weight, bias, mask_type, color_channels)


# ---- the GPU kernels (Triton) ----


def tap_plan(weight_shape, mask_type: str, color_channels: int, input_grad: bool, device):
    """The plan for these arguments, built once (a Python loop over the mask, too slow to repeat
    on every GPU call) and shared read-only afterwards. See _build_tap_plan."""
    return _build_tap_plan(
        tuple(weight_shape), mask_type, color_channels, input_grad, torch.device(device)
    )


@functools.lru_cache(maxsize=256)
def _build_tap_plan(weight_shape, mask_type, color_channels, input_grad, device):
    """The tap plan (gen_ext/ops/tap_plans.py) of the mask, from the reference mask: the kept
    taps, their offsets from the centre, and the range of k each colour group reads at each (the
    colour mask's range at the centre). Forward: k = input channel, n = output channel. Input
    gradient: k = output channel, n = input channel, the taps mirrored."""
    cout, cin, kh, kw = weight_shape
    mask = ref.pixelcnn_mask(cout, cin, (kh, kw), mask_type, color_channels).bool()
    index = mask.flatten(0, 1).any(0).flatten().nonzero().flatten()
    dy, dx = index // kw, index % kw
    sign = -1 if input_grad else 1
    offsets = torch.stack([sign * (dy - kh // 2), sign * (dx - kw // 2)], 1)
    per_tap = mask.flatten(2)[:, :, index]  # [cout, cin, T]
    if input_grad:
        per_tap = per_tap.transpose(0, 1)  # [cin, cout, T]: n first, then k
    n_size = per_tap.shape[0] // color_channels
    ranges = torch.zeros(color_channels, len(index), 2, dtype=torch.int64)
    for g in range(color_channels):
        if n_size == 0:
            break
        for t in range(len(index)):
            ks = per_tap[g * n_size, :, t].nonzero().flatten()
            if len(ks):
                # the colour mask keeps one contiguous range of k per group and tap
                assert ks[-1] - ks[0] + 1 == len(ks), "non-contiguous channel range in the mask"
                ranges[g, t] = torch.stack([ks[0], ks[-1] + 1])
    return plan_from_offsets(index, offsets, ranges, device)


def masked_conv2d_triton(x, weight, bias, mask_type, color_channels):
    """The GPU forward (registered for CUDA; the tests run it on CPU tensors under
    TRITON_INTERPRET=1)."""
    check_inputs(x, weight, bias, mask_type, color_channels)
    plan = tap_plan(weight.shape, mask_type, color_channels, False, x.device)
    return taps_forward(x, weight, bias, plan)


def masked_conv2d_backward_triton(grad, x, weight, mask_type, color_channels):
    """The GPU backward: (grad_x, grad_weight), zero at the masked taps."""
    check_backward_inputs(grad, x, weight, mask_type, color_channels)
    forward = tap_plan(weight.shape, mask_type, color_channels, False, x.device)
    input_grad = tap_plan(weight.shape, mask_type, color_channels, True, x.device)
    return taps_backward(grad, x, weight, forward, input_grad)


# ---- registrations (run by gen_ext.ops once gen_ext._C is loaded) ----


def _fake(x, weight, bias, mask_type, color_channels):
    check_inputs(x, weight, bias, mask_type, color_channels)
    return x.new_empty((x.shape[0], weight.shape[0], x.shape[2], x.shape[3]))


def _backward_fake(grad, x, weight, mask_type, color_channels):
    check_backward_inputs(grad, x, weight, mask_type, color_channels)
    return (
        torch.empty_like(x, memory_format=torch.contiguous_format),
        torch.empty_like(weight, memory_format=torch.contiguous_format),
    )


def _setup_context(ctx, inputs, output):
    x, weight, bias, mask_type, color_channels = inputs
    ctx.save_for_backward(x, weight)
    ctx.mask = (mask_type, color_channels)
    ctx.has_bias = bias is not None


def _backward(ctx, grad):
    x, weight = ctx.saved_tensors
    grad_x, grad_weight = torch.ops.gen_ext.masked_conv2d_backward(grad, x, weight, *ctx.mask)
    grad_bias = grad.sum((0, 2, 3)) if ctx.has_bias else None
    return grad_x, grad_weight, grad_bias, None, None


def _backward_setup_context(ctx, inputs, output):
    grad, x, weight, mask_type, color_channels = inputs
    ctx.save_for_backward(grad, x, weight)
    ctx.mask = (mask_type, color_channels)


def _backward_backward(ctx, gg_x, gg_weight):
    grad, x, weight = ctx.saved_tensors
    reference = lambda x_, w_: ref.masked_conv2d(x_, w_, None, *ctx.mask)  # noqa: E731
    return (*backward_of_backward(reference, (x, weight), (grad,), (gg_x, gg_weight)), None, None)


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
    torch.library.register_kernel(OP, "cuda", masked_conv2d_triton)
    torch.library.register_kernel(BACKWARD_OP, "cuda", masked_conv2d_backward_triton)
