"""Numerical helpers of the references."""

import torch


def clamp_keeping_nan(
    t: torch.Tensor, min: float | None = None, max: float | None = None
) -> torch.Tensor:
    """torch.clamp (no gradient on or beyond a bound), except that a NaN element also keeps its
    gradient: torch.clamp's forward keeps NaN but its backward gives a NaN input a gradient of
    zero, which would turn a NaN input into a finite gradient."""
    return torch.where(torch.isnan(t), t, t.clamp(min, max))
