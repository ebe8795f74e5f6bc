"""Sampling from a discretized logistic mixture (PixelCNN++ output head) in Triton.

Parameter layout along dim 1 of ``params`` ([B, P, S]) follows the public
PixelCNN++ code: M mixture logits first, then one block per colour channel.
For three channels each block is 3*M long (M means, M log-scales, M raw
autoregressive coefficients); for one channel there is a single block of
M means followed by M log-scales.
"""

import torch
import triton
import triton.language as tl

from gen_ext.reference.dlm import params_per_component

__all__ = ["discretized_logistic_mixture_sample_triton"]

# Beyond this the interpreter gains nothing and a GPU program just gets more
# registers per thread; below it, a single program covers the whole input.
_MAX_BLOCK = 1024


@triton.jit
def _tanh(z):
    # tl core has no tanh. The 2*sigmoid(2z) - 1 form loses relative accuracy
    # near zero, so use the symmetric exp(-2|z|) form, which also never
    # overflows.
    e = tl.exp(-2.0 * tl.abs(z))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(z < 0, -t, t)


@triton.jit
def _max(a, b):
    # NaN in either argument gives NaN, as torch.clamp does (plain tl.maximum leaves NaN to the
    # hardware, which may return the other argument)
    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _min(a, b):
    return tl.minimum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _sample_channel(
    params_ptr,
    noise_log_ptr,
    out_ptr,
    base_p,
    base_c,
    chan_off,
    k_off,
    mean_shift,
    tiny,
    nbm1,
    mask,
    S,
    M,
):
    # base_p / base_c point at (b, 0, s) of params / of the per-channel tensors;
    # chan_off is the index along P where this channel's block starts.
    dtype = params_ptr.dtype.element_ty
    mean = tl.load(params_ptr + base_p + (chan_off + k_off) * S, mask=mask, other=0.0).to(dtype)
    mean = mean + mean_shift
    log_scale = tl.load(params_ptr + base_p + (chan_off + M + k_off) * S, mask=mask, other=0.0).to(
        dtype
    )
    log_scale = _min(_max(log_scale, -7.0), 80.0)

    # other=0.5 keeps the logit of masked-off lanes finite.
    v = tl.load(noise_log_ptr + base_c, mask=mask, other=0.5).to(dtype)
    v = _max(v, tiny)
    y = mean + tl.exp(log_scale) * (tl.log(v) - tl.log(1.0 - v))

    # Stay in floating point for the bin index: y may be huge or infinite when
    # log_scale sits at its upper clamp, and a float->int cast of that is UB.
    j = tl.floor((y + 1.0) * (nbm1 / 2.0) + 0.5)
    j = _min(_max(j, 0.0), nbm1)
    x = (2.0 * j - nbm1) / nbm1  # exact numerator: the same grid value as the reference's
    tl.store(out_ptr + base_c, x, mask=mask)
    return x


@triton.jit
def _dlm_sample_kernel(
    params_ptr,
    noise_mix_ptr,
    noise_log_ptr,
    out_ptr,
    N,
    S,
    P,
    M,
    num_bins,
    C: tl.constexpr,
    BLOCK: tl.constexpr,
):
    tl.static_assert((C == 1) or (C == 3), "num_channels must be 1 or 3")
    dtype = params_ptr.dtype.element_ty

    pid = tl.program_id(0)
    # int64 so that B*P*S beyond 2**31 elements does not wrap.
    pos = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = pos < N
    b = pos // S
    s = pos - b * S
    base_p = b * P * S + s
    base_m = b * M * S + s
    base_c = b * C * S + s

    # A python-float literal fed to tl.maximum is materialised as fp32 first,
    # which would turn 1e-30 into 1.0000000031710769e-30 for float64 inputs;
    # tl.full builds the constant directly in the input dtype.
    tiny = tl.full([BLOCK], 1e-30, dtype)
    nbm1 = tl.full([BLOCK], num_bins - 1, dtype)

    # Gumbel-max over the M components. Seeding with k = 0 and replacing only
    # on a strict '>' gives the first index on ties, as torch.argmax does.
    u = tl.load(noise_mix_ptr + base_m, mask=mask, other=0.5).to(dtype)
    logit = tl.load(params_ptr + base_p, mask=mask, other=0.0).to(dtype)
    best = logit + (-tl.log(-tl.log(_max(u, tiny))))
    k_best = tl.zeros([BLOCK], dtype=tl.int32)
    for k in range(1, M):
        u = tl.load(noise_mix_ptr + base_m + k * S, mask=mask, other=0.5).to(dtype)
        logit = tl.load(params_ptr + base_p + k * S, mask=mask, other=0.0).to(dtype)
        cand = logit + (-tl.log(-tl.log(_max(u, tiny))))
        better = cand > best
        # a NaN score is kept as the best, and no score beats it
        best = tl.where(cand != cand, cand, tl.where(better, cand, best))  # noqa: PLR0124
        k_best = tl.where(better, k, k_best)
    k_off = k_best.to(tl.int64)

    # A NaN score (a NaN logit or noise) leaves the choice undefined: the draw is NaN, through the
    # first channel's mean (the later channels see it through the conditioning).
    zero = tl.zeros([BLOCK], dtype=dtype)
    nan_shift = tl.where(best != best, best, zero)  # noqa: PLR0124
    x0 = _sample_channel(
        params_ptr,
        noise_log_ptr,
        out_ptr,
        base_p,
        base_c,
        M,
        k_off,
        nan_shift,
        tiny,
        nbm1,
        mask,
        S,
        M,
    )
    if C != 1:
        blk = 3 * M
        # Each channel's coefficients live in the third slot of its own block:
        # coef[0] (block 0) couples channel 1 to x0, coef[1] (block 1) and
        # coef[2] (block 2) couple channel 2 to x0 and x1.
        coef0 = tl.load(params_ptr + base_p + (M + 2 * M + k_off) * S, mask=mask, other=0.0).to(
            dtype
        )
        x1 = _sample_channel(
            params_ptr,
            noise_log_ptr,
            out_ptr,
            base_p,
            base_c + S,
            M + blk,
            k_off,
            _tanh(coef0) * x0,
            tiny,
            nbm1,
            mask,
            S,
            M,
        )
        coef1 = tl.load(
            params_ptr + base_p + (M + blk + 2 * M + k_off) * S, mask=mask, other=0.0
        ).to(dtype)
        coef2 = tl.load(
            params_ptr + base_p + (M + 2 * blk + 2 * M + k_off) * S, mask=mask, other=0.0
        ).to(dtype)
        # The shift is summed before it is added to the mean: the reference
        # does `mean += a * x0 + b * x1`.
        shift2 = _tanh(coef1) * x0 + _tanh(coef2) * x1
        _sample_channel(
            params_ptr,
            noise_log_ptr,
            out_ptr,
            base_p,
            base_c + 2 * S,
            M + 2 * blk,
            k_off,
            shift2,
            tiny,
            nbm1,
            mask,
            S,
            M,
        )


def discretized_logistic_mixture_sample_triton(
    params, noise_mixture, noise_logistic, num_channels: int, num_bins: int
) -> torch.Tensor:
    """Draw one sample per position from a discretized logistic mixture.

    params: [B, P, S] with P = 10*M (num_channels == 3) or 3*M (num_channels == 1).
    noise_mixture: [B, M, S] and noise_logistic: [B, C, S], uniforms in [0, 1)
    with the dtype and device of params. Returns [B, C, S] values on the grid
    -1 + 2*j/(num_bins - 1), j = 0..num_bins-1, in the dtype of params.
    Same per-position formula as gen_ext/reference/dlm.py and csrc/include/gen_ext/dlm_math.h.
    """
    # Arguments are checked by gen_ext.ops before they get here.
    B, P, S = params.shape
    C = int(num_channels)
    M = P // params_per_component(C)
    out = torch.empty((B, C, S), dtype=params.dtype, device=params.device)
    N = B * S
    if N == 0:
        return out

    params = params.contiguous()
    noise_mixture = noise_mixture.contiguous()
    noise_logistic = noise_logistic.contiguous()

    BLOCK = min(_MAX_BLOCK, triton.next_power_of_2(N))
    grid = (triton.cdiv(N, BLOCK),)
    _dlm_sample_kernel[grid](
        params, noise_mixture, noise_logistic, out, N, S, P, M, num_bins, C=C, BLOCK=BLOCK
    )
    return out
