"""Metrics shared by models, baselines and the training loop."""

from .likelihood import (
    bits_per_dim,
    histogram_bits_per_dim,
    intensity_indices,
    likelihood_baselines,
    uniform_bits_per_dim,
)

__all__ = [
    "bits_per_dim",
    "histogram_bits_per_dim",
    "intensity_indices",
    "likelihood_baselines",
    "uniform_bits_per_dim",
]
