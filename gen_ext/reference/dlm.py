"""Reference discretized logistic mixture (PixelCNN++'s likelihood and sampler).

Follows the semantics of the PixelCNN++ paper's public code, generalised from 256 to `num_bins`
levels on [-1, 1]:
- params [B, P, *spatial]: M mixture logits, then for each colour channel M means, M log-scales
  and (three channels only) M raw coefficients; P = 10*M for C = 3 and 3*M for C = 1.
- green's mean moves by tanh(coeff_0) * red, blue's by tanh(coeff_1) * red + tanh(coeff_2) * green,
  using the true (data) values of the preceding sub-pixels.
- log-scales are clamped from below at -7; a bin is 2 / (num_bins - 1) wide; the first and last
  bins are open-ended (x below/above the midpoint between the two outermost grid values); an
  interior bin whose mass is at most 1e-5 uses the density at x times the bin width instead.
"""

import math

import torch
import torch.nn.functional as F

from .numerics import clamp_keeping_nan

MIN_LOG_SCALE = -7.0
MIN_BIN_MASS = 1e-5
MAX_SAMPLE_LOG_SCALE = 80.0
TINY_UNIFORM = 1e-30


def params_per_component(num_channels: int) -> int:
    """Channels of `params` per mixture component: its logit, and per colour channel a mean and a
    log-scale, plus three colour coefficients for RGB. So P = 10*M for RGB, 3*M for one channel;
    the one definition in Python (csrc/include/gen_ext/dlm_math.h holds C++'s)."""
    return 10 if num_channels == 3 else 3


def split_params(params: torch.Tensor, num_channels: int):
    """(logits [B, M, *S], means, raw log-scales, raw coeffs or None; each [B, C, M, *S])."""
    B, P = params.shape[:2]
    spatial = params.shape[2:]
    M = P // params_per_component(num_channels)
    logits = params[:, :M]
    per_channel = 3 if num_channels == 3 else 2
    rest = params[:, M:].reshape(B, num_channels, per_channel, M, *spatial)
    coeffs = rest[:, :, 2] if num_channels == 3 else None
    return logits, rest[:, :, 0], rest[:, :, 1], coeffs


def colour_conditioned_means(
    means: torch.Tensor, coeffs: torch.Tensor, xk: torch.Tensor
) -> torch.Tensor:
    """The components' means [B, C, M, *S], for RGB (C = 3) shifted by the earlier channels'
    values xk [B, C, 1, *S] times tanh of the coefficients: green by red, blue by red and green."""
    if means.shape[1] != 3:
        return means
    t = torch.tanh(coeffs)
    x0, x1 = xk[:, 0], xk[:, 1]
    return torch.stack(
        [means[:, 0], means[:, 1] + t[:, 0] * x0, means[:, 2] + (t[:, 1] * x0 + t[:, 2] * x1)],
        dim=1,
    )


def discretized_logistic_mixture_nll(
    x: torch.Tensor, params: torch.Tensor, num_bins: int = 256
) -> torch.Tensor:
    """Negative log-likelihood in nats per position, [B, *spatial], summed over channels."""
    C = x.shape[1]
    logits, means, raw_log_scales, coeffs = split_params(params, C)
    log_scales = clamp_keeping_nan(raw_log_scales, min=MIN_LOG_SCALE)
    xk = x.unsqueeze(2)  # [B, C, 1, *S] against components [B, C, M, *S]
    means = colour_conditioned_means(means, coeffs, xk)
    half_bin = 1.0 / (num_bins - 1)
    centred = xk - means
    inv_scale = torch.exp(-log_scales)
    plus_in = inv_scale * (centred + half_bin)
    min_in = inv_scale * (centred - half_bin)
    log_cdf_plus = F.logsigmoid(plus_in)  # first bin: log sigmoid(plus_in)
    log_one_minus_cdf_min = F.logsigmoid(-min_in)  # last bin: log(1 - sigmoid(min_in))
    # the bin's mass; where both sigmoids exceed 1/2 it is taken from their complements, which
    # do not cancel as both approach 1
    mass = torch.where(
        min_in >= 0,
        torch.sigmoid(-min_in) - torch.sigmoid(-plus_in),
        torch.sigmoid(plus_in) - torch.sigmoid(min_in),
    )
    mid_in = inv_scale * centred
    # softplus(z) = -logsigmoid(-z): F.softplus turns linear above z = 20 and drops ~e^-20
    log_pdf_mid = mid_in - log_scales + 2.0 * F.logsigmoid(-mid_in)
    interior = torch.where(
        mass > MIN_BIN_MASS,
        torch.log(mass.clamp(min=1e-12)),
        log_pdf_mid - math.log((num_bins - 1) / 2.0),
    )
    log_probs = torch.where(
        xk < -1.0 + half_bin,
        log_cdf_plus,
        torch.where(xk > 1.0 - half_bin, log_one_minus_cdf_min, interior),
    )
    component = log_probs.sum(dim=1) + torch.log_softmax(logits, dim=1)
    return -torch.logsumexp(component, dim=1)


def _quantize(y: torch.Tensor, num_bins: int) -> torch.Tensor:
    steps = num_bins - 1
    j = torch.floor((y + 1.0) * (steps / 2.0) + 0.5).clamp(0, steps)
    return (2.0 * j - steps) / steps  # exact numerator: one rounding, the same everywhere


def discretized_logistic_mixture_sample(
    params: torch.Tensor,
    noise_mixture: torch.Tensor,
    noise_logistic: torch.Tensor,
    num_channels: int,
    num_bins: int = 256,
) -> torch.Tensor:
    """One sample per position from given uniforms: noise_mixture [B, M, *S] picks the component
    by Gumbel-max, noise_logistic [B, C, *S] draws each channel's logistic by inversion, in
    channel order, conditioned on the preceding channels' quantized values. Returns
    [B, C, *S] on the bin grid."""
    logits, means, raw_log_scales, coeffs = split_params(params, num_channels)
    gumbel = -torch.log(-torch.log(noise_mixture.clamp(min=TINY_UNIFORM)))
    scores = logits + gumbel
    k = torch.argmax(scores, dim=1, keepdim=True)  # [B, 1, *S]
    # a NaN score (NaN logit or noise) leaves the component undefined: the draw is NaN (argmax
    # alone would pick that component and draw a finite value from it)
    undefined = scores.isnan().any(dim=1)

    def pick(t, c):  # component k of channel c, [B, *S]
        return torch.gather(t[:, c], 1, k).squeeze(1)

    out = []
    for c in range(num_channels):
        mean = pick(means, c)
        if c == 1:
            mean = mean + torch.tanh(pick(coeffs, 0)) * out[0]
        elif c == 2:
            mean = mean + (
                torch.tanh(pick(coeffs, 1)) * out[0] + torch.tanh(pick(coeffs, 2)) * out[1]
            )
        if c == 0:
            mean = torch.where(undefined, torch.nan, mean)  # later channels see x0
        log_scale = pick(raw_log_scales, c).clamp(MIN_LOG_SCALE, MAX_SAMPLE_LOG_SCALE)
        v = noise_logistic[:, c].clamp(min=TINY_UNIFORM)
        y = mean + torch.exp(log_scale) * (torch.log(v) - torch.log(1.0 - v))
        out.append(_quantize(y, num_bins))
    return torch.stack(out, dim=1)


def sample_discretized_logistic_mixture(
    params: torch.Tensor,
    num_channels: int,
    num_bins: int = 256,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draws the uniforms from `generator` and samples (see discretized_logistic_mixture_sample)."""
    B, P = params.shape[:2]
    M = P // params_per_component(num_channels)
    opts = dict(dtype=params.dtype, device=params.device, generator=generator)
    noise_mixture = torch.rand((B, M, *params.shape[2:]), **opts)
    noise_logistic = torch.rand((B, num_channels, *params.shape[2:]), **opts)
    return discretized_logistic_mixture_sample(
        params, noise_mixture, noise_logistic, num_channels, num_bins
    )
