"""Discretized logistic mixture output head as a drop-in module (PixelCNN++'s likelihood)."""

import math

import torch
from torch import nn

from gen_ext import ops
from gen_ext.reference.dlm import params_per_component


class DiscretizedLogisticMixture(nn.Module):
    """Likelihood and sampler of a discretized logistic mixture over `num_bins` levels in [-1, 1].

    A network predicts `params` [B, num_params, *spatial] (num_params = 10*M for RGB, 3*M for one
    channel); this module scores data against them and samples from them.

    >>> head = DiscretizedLogisticMixture(num_channels=3, num_mixtures=10)
    >>> loss = head(params, x)              # mean NLL in nats per image
    >>> bpd = head.bits_per_dim(params, x)  # mean bits per sub-pixel
    >>> x_new = head.sample(params, generator=torch.Generator().manual_seed(0))
    """

    def __init__(self, num_channels: int = 3, num_mixtures: int = 10, num_bins: int = 256):
        super().__init__()
        if num_channels not in (1, 3):
            raise ValueError(
                f"DiscretizedLogisticMixture: num_channels must be 1 or 3, got {num_channels}"
            )
        if num_mixtures < 1:
            raise ValueError(
                f"DiscretizedLogisticMixture: num_mixtures must be at least 1, got {num_mixtures}"
            )
        if num_bins < 2:
            raise ValueError(
                f"DiscretizedLogisticMixture: num_bins must be at least 2, got {num_bins}"
            )
        self.num_channels = num_channels
        self.num_mixtures = num_mixtures
        self.num_bins = num_bins

    @property
    def num_params(self) -> int:
        """Channels of `params` a network must predict."""
        return params_per_component(self.num_channels) * self.num_mixtures

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood in nats per position, [B, *spatial]."""
        if params.shape[1] != self.num_params:
            raise ValueError(
                f"DiscretizedLogisticMixture: params must have {self.num_params} channels "
                f"({self.num_mixtures} mixtures, {self.num_channels} colour channels), "
                f"got {params.shape[1]}"
            )
        return ops.discretized_logistic_mixture_nll(x, params, self.num_bins)

    def forward(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of the NLL in nats per image (the training loss)."""
        return self.nll(params, x).flatten(1).sum(1).mean()

    def bits_per_dim(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Mean NLL in bits per sub-pixel (per channel and position)."""
        return self.nll(params, x).mean() / (self.num_channels * math.log(2.0))

    @torch.no_grad()
    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One draw per position, [B, num_channels, *spatial], on the grid in [-1, 1]."""
        return ops.sample_discretized_logistic_mixture(
            params, self.num_channels, self.num_bins, generator
        )

    def extra_repr(self) -> str:
        return (
            f"num_channels={self.num_channels}, num_mixtures={self.num_mixtures}, "
            f"num_bins={self.num_bins}"
        )
