"""Metrics shared by models, baselines and the training loop."""

from .likelihood import (
    bits_per_dim,
    histogram_bits_per_dim,
    intensity_indices,
    likelihood_baselines,
    uniform_bits_per_dim,
)
from .quality import (
    COVERAGE_THRESHOLD,
    ENTROPY_THRESHOLD,
    DigitClassifier,
    digit_classifier,
    frechet_distance,
    mode_coverage,
    precision_recall,
    real_baseline,
    sample_quality,
    score_samples,
)

__all__ = [
    "COVERAGE_THRESHOLD",
    "ENTROPY_THRESHOLD",
    "DigitClassifier",
    "digit_classifier",
    "frechet_distance",
    "mode_coverage",
    "precision_recall",
    "real_baseline",
    "sample_quality",
    "score_samples",
    "bits_per_dim",
    "histogram_bits_per_dim",
    "intensity_indices",
    "likelihood_baselines",
    "uniform_bits_per_dim",
]
