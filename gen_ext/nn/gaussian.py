"""Gaussian latent layer of a VAE over the fused reparameterization+KL op."""

import torch
from torch import nn

from gen_ext import ops


class GaussianLatent(nn.Module):
    """Maps features [B, in_features] to a diagonal Gaussian (mu, logvar) over `latent_dim`
    dimensions and returns (z, kl): a reparameterized sample and KL(q || N(0, I)) per row.

    >>> latent = GaussianLatent(256, 16)
    >>> z, kl = latent(features)                     # z: [B, 16], kl: [B]
    >>> z, kl = latent(features, sample=False)       # z = mu (evaluation)
    """

    def __init__(self, in_features: int, latent_dim: int):
        super().__init__()
        if in_features < 1 or latent_dim < 1:
            raise ValueError(
                f"GaussianLatent: in_features and latent_dim must be at least 1, got "
                f"{in_features} and {latent_dim}"
            )
        self.latent_dim = latent_dim
        self.to_params = nn.Linear(in_features, 2 * latent_dim)

    def distribution(self, features: torch.Tensor):
        """(mu, logvar), each [B, latent_dim]."""
        mu, logvar = self.to_params(features).chunk(2, dim=-1)
        return mu, logvar

    def forward(
        self, features: torch.Tensor, sample: bool = True, generator: torch.Generator | None = None
    ):
        mu, logvar = self.distribution(features)
        eps = None if sample else torch.zeros_like(mu)
        return ops.gaussian_reparameterize_kl(
            mu, logvar, eps=eps, generator=generator if sample else None
        )
