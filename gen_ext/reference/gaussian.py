"""Reference Gaussian reparameterization and KL (the VAE's latent layer).

z = mu + exp(lv / 2) * eps and kl = KL(N(mu, exp(lv)) || N(0, I)) = 1/2 sum(exp(lv) + mu^2 - 1 - lv)
over every dimension but the first, with lv = clamp(logvar, -30, 20) so that both stay finite in
float32 for any finite logvar.
"""

import torch

MIN_LOGVAR = -30.0
MAX_LOGVAR = 20.0


def gaussian_reparameterize_kl(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor):
    """(z like mu, kl [B]) for the given noise eps."""
    lv = logvar.clamp(MIN_LOGVAR, MAX_LOGVAR)
    z = mu + torch.exp(0.5 * lv) * eps
    kl = 0.5 * (torch.exp(lv) + mu * mu - 1.0 - lv).flatten(1).sum(1)
    return z, kl
