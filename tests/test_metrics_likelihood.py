"""gen_ext.metrics: level indices, bits/dim, and the uniform and per-pixel histogram baselines."""

import math

import pytest
import torch

from gen_ext.metrics import (
    bits_per_dim,
    histogram_bits_per_dim,
    intensity_indices,
    likelihood_baselines,
    uniform_bits_per_dim,
)


def test_histogram_baseline_by_hand():
    """Two sub-pixels, three levels, three training images:
    pixel 0 levels (0, 0, 1) -> add-one p = (3, 2, 1) / 6;
    pixel 1 levels (1, 2, 2) -> (1, 2, 3) / 6.
    Test images (0, 2) and (2, 0): p = 3/6 * 3/6 and 1/6 * 1/6, so
    bits/dim = (1 + 1 + log2 6 + log2 6) / 4 = (1 + log2 6) / 2."""
    train = torch.tensor([[0, 1], [0, 2], [1, 2]], dtype=torch.float32).view(3, 1, 1, 2) / 2
    test = torch.tensor([[0, 2], [2, 0]], dtype=torch.float32).view(2, 1, 1, 2) / 2
    assert histogram_bits_per_dim(train, test, 3) == pytest.approx(
        (1 + math.log2(6)) / 2, rel=1e-12
    )
    # smoothing 1/2: pixel 0 -> (2.5, 1.5, 0.5) / 4.5, pixel 1 -> (0.5, 1.5, 2.5) / 4.5
    want = -(2 * math.log2(2.5 / 4.5) + 2 * math.log2(0.5 / 4.5)) / 4
    assert histogram_bits_per_dim(train, test, 3, smoothing=0.5) == pytest.approx(want, rel=1e-12)


def test_histogram_of_the_training_set_itself_beats_uniform_and_needs_smoothing():
    g = torch.Generator().manual_seed(0)
    x = (torch.randint(0, 3, (200, 3, 2, 2), generator=g) * 4).float() / 16  # 3 of 17 levels used
    assert histogram_bits_per_dim(x, x, 17) < uniform_bits_per_dim(17)
    with pytest.raises(ValueError, match="smoothing must be positive"):
        histogram_bits_per_dim(x, x, 17, smoothing=0)
    with pytest.raises(ValueError, match="differ in shape"):
        histogram_bits_per_dim(x, x[:, :1], 17)


def test_baselines_record():
    x = torch.tensor([0.0, 1.0]).view(2, 1, 1, 1)
    b = likelihood_baselines(x, x, 256)
    assert b["uniform_bits_per_dim"] == 8.0
    assert b["histogram_bits_per_dim"] == pytest.approx(-math.log2(2 / 258))
    assert b["histogram_smoothing"] == 1.0


def test_intensity_indices_and_errors():
    x = torch.tensor([0.0, 1 / 255, 128 / 255, 1.0])
    assert intensity_indices(x, 256).tolist() == [0, 1, 128, 255]
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        intensity_indices(torch.tensor([1.5]), 17)
    with pytest.raises(ValueError, match="train must be quantized to 17 levels"):
        intensity_indices(torch.tensor([0.03]), 17, "train")
    with pytest.raises(ValueError, match="floating-point"):
        intensity_indices(torch.tensor([1]), 17)


def test_bits_per_dim_converts_nats_per_image():
    assert bits_per_dim(torch.tensor(64 * math.log(2.0)), 64).item() == pytest.approx(1.0)
