"""Tap plans of the Triton implicit-GEMM convolutions (kernels/masked_conv.py), shared by the
masked and the shifted convolution: which taps of the weight run, where each reads the source, and
which range of k each group of n reads at each tap.

A plan is built on the host once per weight shape and argument set (the ops cache it), then the
GPU forward and backward here run the kernels over it. Forward: k = input channel, n = output
channel. Input gradient: k = output channel, n = input channel, the taps' offsets mirrored.
"""

from typing import NamedTuple

import torch


class TapPlan(NamedTuple):
    index: torch.Tensor  # [T] int64: the taps' positions in the flattened kh*kw kernel
    offsets: torch.Tensor  # [T, 2] int32: (row, column) offsets into the unpadded source
    ranges: torch.Tensor  # [G, T, 2] int32: the k range [begin, end) group g reads at tap t


def plan_from_offsets(index, offsets, ranges, device) -> TapPlan:
    """A plan on `device` from explicit tap positions [T], per-tap offsets [T, 2] and per-group k
    ranges [G, T, 2] (integer tensors)."""
    as_int32 = lambda t: t.to(device=device, dtype=torch.int32).contiguous()  # noqa: E731
    return TapPlan(index.to(device=device, dtype=torch.int64), as_int32(offsets), as_int32(ranges))


def packed_taps(weight, index, input_grad: bool):
    """The plan's taps of weight as [T, K, N]: [T, in, out] (forward) or [T, out, in]."""
    cout, cin, kh, kw = weight.shape
    taps = weight.reshape(cout, cin, kh * kw)[:, :, index]  # (not -1: ambiguous with no channels)
    return (taps.permute(2, 0, 1) if input_grad else taps.permute(2, 1, 0)).contiguous()


def taps_forward(x, weight, bias, plan: TapPlan):
    """The convolution's forward over `plan` (the forward plan) with the Triton kernel."""
    from gen_ext.kernels.masked_conv import taps_gemm

    groups = plan.ranges.shape[0]
    return taps_gemm(
        x,
        packed_taps(weight, plan.index, False),
        plan.offsets,
        plan.ranges,
        None if bias is None else bias.contiguous(),
        weight.shape[0] // groups,
    )


def taps_backward(grad, x, weight, forward: TapPlan, input_grad: TapPlan):
    """(grad_x, grad_weight) with the Triton kernels: the input gradient over the mirrored plan,
    the weight gradient of the forward plan's taps (zero at the taps it leaves out)."""
    from gen_ext.kernels.masked_conv import taps_gemm, taps_weight_grad

    cout, cin, kh, kw = weight.shape
    groups = forward.ranges.shape[0]
    grad_x = taps_gemm(
        grad,
        packed_taps(weight, input_grad.index, True),
        input_grad.offsets,
        input_grad.ranges,
        None,
        cin // groups,
    )
    packed = taps_weight_grad(x, grad, forward.offsets, forward.ranges, cout // groups)
    grad_weight = weight.new_zeros((cout, cin, kh * kw))
    grad_weight[:, :, forward.index] = packed.permute(2, 1, 0)
    return grad_x, grad_weight.view(weight.shape)
