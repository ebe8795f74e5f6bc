"""One WaveNet layer's sampling step from its ring-buffer cache (the fast sampler's op): the
public function and its fake kernel. Sampling needs no gradients, so the op has no autograd; it
refuses inputs that would want one.

Kernels: csrc/cpu/wavenet_step_cpu.cpp (CPU), csrc/wavenet_step.cpp (CUDA).
Reference: gen_ext/reference/wavenet_step.py.
"""

import torch

from gen_ext import _extension
from gen_ext import reference as ref

from .arg_checks import FLOAT_DTYPES, check_arg, check_shaped
from .backend import get_backend

OP = "gen_ext::wavenet_layer_step"
NAME = "wavenet_layer_step"


def check_inputs(x, cache, step, weight_taps, bias, cond, out_weight, out_bias) -> None:
    """The conditions and messages of csrc/wavenet_step_checks.h."""
    check_arg(x.dtype in FLOAT_DTYPES, NAME, f"x must be float32 or float64, got {x.dtype}")
    check_arg(x.dim() == 2, NAME, f"x must be [B, R] (one time step), got {x.dim()}-D")
    w = weight_taps
    check_arg(
        w.dim() == 3 and w.shape[0] >= 1 and w.shape[2] >= 2 and w.shape[2] % 2 == 0,
        NAME,
        f"weight_taps must be [K, R, 2D] with K >= 1 and an even 2D >= 2, got {list(w.shape)}",
    )
    (B, R), K, D2 = x.shape, w.shape[0], w.shape[2]
    check_shaped(w, x, [K, R, D2], NAME, "weight_taps")
    check_arg(cache.dim() == 3, NAME, f"cache must be [L, B, R], got {cache.dim()}-D")
    L = cache.shape[0]
    check_arg(
        L >= K - 1 and L % (K - 1) == 0 if K > 1 else L == 0,
        NAME,
        f"cache must hold (K - 1) * dilation time steps for K = {K} taps, got a length of {L}",
    )
    check_shaped(cache, x, [L, B, R], NAME, "cache")
    check_arg(step >= 0, NAME, f"step must be >= 0, got {step}")
    ow = out_weight
    check_arg(
        ow.dim() == 2 and ow.shape[0] == D2 // 2 and ow.shape[1] > R,
        NAME,
        f"out_weight must be [D, R + S] = [{D2 // 2}, {R} + S] with S >= 1, got {list(ow.shape)}",
    )
    check_shaped(ow, x, ow.shape, NAME, "out_weight")
    if bias is not None:
        check_shaped(bias, x, [D2], NAME, "bias")
    if cond is not None:
        check_shaped(cond, x, [B, D2], NAME, "cond")
    if out_bias is not None:
        check_shaped(out_bias, x, [ow.shape[1]], NAME, "out_bias")


def wavenet_layer_step(
    x: torch.Tensor,
    cache: torch.Tensor,
    step: int,
    weight_taps: torch.Tensor,
    bias: torch.Tensor | None,
    cond: torch.Tensor | None,
    out_weight: torch.Tensor,
    out_bias: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One WaveNet layer at time `step` for x [B, R], its input then: reads the older taps from
    `cache` [L, B, R] (the layer's last L = (K - 1) * dilation inputs, time s in slot s mod L),
    writes x into the slot of time step - L, and returns (x + residual [B, R], skip [B, S]).
    weight_taps [K, R, 2D] is the causal convolution's weight [2D, R, K] permuted (tap K - 1 reads
    x itself); out_weight [D, R + S] the residual and skip 1x1 convolutions stacked and
    transposed (so both products read their weights row by row); cond [B, 2D]
    the global conditioning's contribution. For sampling: no gradients (call it under
    torch.no_grad()). See gen_ext.nn.WaveNetLayer.step, which keeps the layouts."""
    tensors = (x, cache, weight_taps, bias, cond, out_weight, out_bias)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        raise ValueError(
            "wavenet_layer_step: the sampling step has no gradients; call it under "
            "torch.no_grad() (or pass tensors that do not require grad)"
        )
    if get_backend() == "reference":
        check_inputs(x, cache, step, weight_taps, bias, cond, out_weight, out_bias)
        return ref.wavenet_layer_step(x, cache, step, weight_taps, bias, cond, out_weight, out_bias)
    _extension.require()
    return torch.ops.gen_ext.wavenet_layer_step(
        x, cache, step, weight_taps, bias, cond, out_weight, out_bias
    )


# ---- registrations (run by gen_ext.ops once gen_ext._C is loaded) ----


def _fake(x, cache, step, weight_taps, bias, cond, out_weight, out_bias):
    check_inputs(x, cache, step, weight_taps, bias, cond, out_weight, out_bias)
    R = x.shape[1]
    return x.new_empty(x.shape), x.new_empty((x.shape[0], out_weight.shape[1] - R))


def register() -> None:
    torch.library.register_fake(OP, _fake)
