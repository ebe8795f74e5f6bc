"""gen_ext.nn.DiscretizedLogisticMixture: a thin module over the ops."""

import math

import pytest
import torch

from gen_ext import ops
from gen_ext.nn import DiscretizedLogisticMixture
from gen_ext.testing import make_dlm_inputs


@pytest.mark.parametrize("C", [1, 3])
def test_loss_bits_and_sample(C):
    head = DiscretizedLogisticMixture(num_channels=C, num_mixtures=4, num_bins=256)
    x, params = make_dlm_inputs(3, C, 4, (5, 6), 256, seed=1)
    assert params.shape[1] == head.num_params
    nll = ops.discretized_logistic_mixture_nll(x, params)
    torch.testing.assert_close(head(params, x), nll.flatten(1).sum(1).mean())
    torch.testing.assert_close(head.bits_per_dim(params, x), nll.mean() / (C * math.log(2)))
    draw = head.sample(params, generator=torch.Generator().manual_seed(0))
    again = head.sample(params, generator=torch.Generator().manual_seed(0))
    assert draw.shape == x.shape and torch.equal(draw, again)


def test_trains_towards_the_data():
    """A few optimiser steps on free parameters lower the loss: gradients flow through the op."""
    x, _ = make_dlm_inputs(2, 3, 2, (4, 4), 256, seed=2, dtype=torch.float32)
    head = DiscretizedLogisticMixture(3, 2)
    params = torch.zeros(2, head.num_params, 4, 4, requires_grad=True)
    opt = torch.optim.Adam([params], lr=0.1)
    first = head(params, x).item()
    for _ in range(30):
        opt.zero_grad()
        loss = head(params, x)
        loss.backward()
        opt.step()
    assert loss.item() < first - 10


def test_bad_configuration_and_params():
    with pytest.raises(ValueError, match="num_channels must be 1 or 3"):
        DiscretizedLogisticMixture(num_channels=2)
    with pytest.raises(ValueError, match="num_mixtures must be at least 1"):
        DiscretizedLogisticMixture(num_mixtures=0)
    with pytest.raises(ValueError, match="num_bins must be at least 2"):
        DiscretizedLogisticMixture(num_bins=1)
    head = DiscretizedLogisticMixture(3, 4)
    x, params = make_dlm_inputs(1, 3, 5, (2, 2), 256)
    with pytest.raises(ValueError, match="params must have 40 channels"):
        head(params, x)
    assert "num_mixtures=4" in repr(head)
