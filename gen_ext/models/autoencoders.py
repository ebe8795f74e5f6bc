"""The autoencoder family: plain, convolutional, denoising, and the VAE.

Every model takes images in [0, 1] shaped like its `input_shape` and constructs with no arguments
into a small configuration that trains on the bundled digits (1x8x8).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from gen_ext import ops
from gen_ext.nn import DiscretizedLogisticMixture, GaussianLatent

from .base import GenerativeModel


def _numel(shape) -> int:
    return math.prod(shape)


def _mlp(sizes, final=None) -> nn.Sequential:
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if final is not None:
        layers.append(final)
    return nn.Sequential(*layers)


class Autoencoder(GenerativeModel):
    """Fully connected encoder to a bottleneck narrower than the input, and back."""

    cli_name = "autoencoder"
    main_metric = "mse"
    unit = "MSE, pixel values in [0, 1]"
    narrow = True  # the bottleneck must be narrower than the input

    def __init__(self, input_shape=(1, 8, 8), hidden: int = 128, bottleneck: int = 16, **extra):
        super().__init__(
            input_shape=list(input_shape), hidden=hidden, bottleneck=bottleneck, **extra
        )
        D = _numel(input_shape)
        if bottleneck < 1 or hidden < 1:
            raise ValueError(f"{type(self).__name__}: hidden and bottleneck must be at least 1")
        if self.narrow and bottleneck >= D:
            raise ValueError(
                f"{type(self).__name__}: bottleneck must be narrower than the input "
                f"({D} values), got {bottleneck}"
            )
        self.input_shape = tuple(input_shape)
        self.encoder = nn.Sequential(nn.Flatten(), _mlp([D, hidden, bottleneck]))
        self.decoder = nn.Sequential(
            _mlp([bottleneck, hidden, D], nn.Sigmoid()), nn.Unflatten(1, self.input_shape)
        )

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def loss(self, x: torch.Tensor):
        mse = F.mse_loss(self.reconstruct(x), x)
        return mse, {"mse": mse.detach()}


class ConvAutoencoder(Autoencoder):
    """Strided convolutions down to a bottleneck; upsampling and convolutions back up."""

    cli_name = "conv-autoencoder"

    def __init__(self, input_shape=(1, 8, 8), channels: int = 32, bottleneck: int = 16):
        GenerativeModel.__init__(
            self, input_shape=list(input_shape), channels=channels, bottleneck=bottleneck
        )
        C, H, W = input_shape
        if H % 4 or W % 4:
            raise ValueError(
                f"ConvAutoencoder: height and width must be multiples of 4, got {H}x{W}"
            )
        if bottleneck >= C * H * W:
            raise ValueError(
                f"ConvAutoencoder: bottleneck must be narrower than the input "
                f"({C * H * W} values), got {bottleneck}"
            )
        self.input_shape = tuple(input_shape)
        inner = (2 * channels, H // 4, W // 4)
        self.encoder = nn.Sequential(
            nn.Conv2d(C, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(_numel(inner), bottleneck),
        )
        self.decoder = nn.Sequential(
            nn.Linear(bottleneck, _numel(inner)),
            nn.ReLU(),
            nn.Unflatten(1, inner),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(2 * channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, C, 3, padding=1),
            nn.Sigmoid(),
        )


NOISES = ("gaussian", "masking", "salt_pepper")


def corrupt(x: torch.Tensor, noise: str, level: float, generator=None) -> torch.Tensor:
    """Gaussian noise of std `level` (clipped to [0, 1]), masking of a `level` fraction of values
    to 0, or salt-and-pepper: a `level` fraction set to 0 or 1 at random."""
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if noise == "gaussian":
        n = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (x + level * n).clamp(0, 1)
    if noise == "masking":
        return torch.where(u < level, torch.zeros_like(x), x)
    if noise == "salt_pepper":
        salt = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) < 0.5
        return torch.where(u < level, salt.to(x.dtype), x)
    raise ValueError(f"corrupt: noise must be one of {NOISES}, got {noise!r}")


class DenoisingAutoencoder(Autoencoder):
    """Reconstructs the clean input from a corrupted one. Corruption, not a narrow bottleneck, is
    what keeps it from learning the identity, so the bottleneck may be as wide as the input or
    wider (the default, 128 for 64 pixels, is over-complete)."""

    cli_name = "denoising-autoencoder"
    narrow = False

    def __init__(
        self,
        input_shape=(1, 8, 8),
        hidden: int = 256,
        bottleneck: int = 128,
        noise: str = "masking",
        noise_level: float = 0.3,
    ):
        if noise not in NOISES:
            raise ValueError(f"DenoisingAutoencoder: noise must be one of {NOISES}, got {noise!r}")
        if not 0 <= noise_level <= 1 and noise != "gaussian":
            raise ValueError(
                f"DenoisingAutoencoder: noise_level must lie in [0, 1], got {noise_level}"
            )
        super().__init__(input_shape, hidden, bottleneck, noise=noise, noise_level=noise_level)
        self.noise, self.noise_level = noise, noise_level

    def corrupt(self, x, generator=None):
        return corrupt(x, self.noise, self.noise_level, generator)

    def loss(self, x: torch.Tensor):
        mse = F.mse_loss(self.reconstruct(self.corrupt(x)), x)
        return mse, {"mse": mse.detach()}

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor) -> dict:
        noisy = self.corrupt(x, torch.Generator(device=x.device).manual_seed(0))
        return {
            "mse": F.mse_loss(self.reconstruct(noisy), x).item(),
            "corrupted_mse": F.mse_loss(noisy, x).item(),
        }


LIKELIHOODS = ("mse", "bernoulli", "logistic")


class VAE(GenerativeModel):
    """Variational autoencoder: encoder to (mu, logvar), the fused reparameterization+KL op, and a
    decoder whose likelihood is one of
    - "mse": Gaussian with variance 1/2, so the loss is the summed squared error plus the KL (a
      density on [0, 1]^D, in nats);
    - "bernoulli": binary cross-entropy with logits (a likelihood for binary data);
    - "logistic": a discretized logistic over the dataset's `levels` intensity levels (the fused
      op), a probability of the discrete data, comparable with bits/dim.
    The loss is the negative ELBO in nats per image."""

    cli_name = "vae"
    main_metric = "neg_elbo"
    unit = "nats per image"

    def __init__(
        self,
        input_shape=(1, 8, 8),
        hidden: int = 256,
        latent_dim: int = 8,
        likelihood: str = "mse",
        levels: int = 17,
        iw_samples: int = 64,
    ):
        super().__init__(
            input_shape=list(input_shape),
            hidden=hidden,
            latent_dim=latent_dim,
            likelihood=likelihood,
            levels=levels,
            iw_samples=iw_samples,
        )
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"VAE: likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        if latent_dim < 1 or hidden < 1 or iw_samples < 1:
            raise ValueError("VAE: hidden, latent_dim and iw_samples must be at least 1")
        self.input_shape = tuple(input_shape)
        C = self.input_shape[0]
        self.likelihood = likelihood
        self.head = DiscretizedLogisticMixture(C, 1, levels) if likelihood == "logistic" else None
        self.out_channels = self.head.num_params if self.head is not None else C
        D = _numel(self.input_shape)
        self.encoder = nn.Sequential(nn.Flatten(), _mlp([D, hidden, hidden]), nn.ReLU())
        self.latent = GaussianLatent(hidden, latent_dim)
        self.decoder = _mlp(
            [latent_dim, hidden, hidden, self.out_channels * _numel(self.input_shape[1:])]
        )

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output: means/logits [B, C, H, W], or logistic params [B, P, H, W]."""
        return self.decoder(z).view(z.shape[0], self.out_channels, *self.input_shape[1:])

    def reconstruction_nll(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x | z) in nats per image, [B]."""
        if self.likelihood == "mse":
            D = _numel(self.input_shape)
            return ((torch.sigmoid(out) - x) ** 2).flatten(1).sum(1) + 0.5 * D * math.log(math.pi)
        if self.likelihood == "bernoulli":
            return F.binary_cross_entropy_with_logits(out, x, reduction="none").flatten(1).sum(1)
        return self.head.nll(out, x * 2 - 1).flatten(1).sum(1)

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None):
        h = self.encoder(x)
        mu, logvar = self.latent.distribution(h)
        z, kl = ops.gaussian_reparameterize_kl(mu, logvar, generator=generator)
        rec = self.reconstruction_nll(self.decode(z), x)
        neg_elbo = (rec + kl).mean()
        return neg_elbo, {
            "neg_elbo": neg_elbo.detach(),
            "reconstruction": rec.mean().detach(),
            "kl": kl.mean().detach(),
        }

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor) -> dict:
        g = torch.Generator(device=x.device).manual_seed(0)
        _, logs = self.loss(x, generator=g)
        metrics = {k: float(v) for k, v in logs.items()}
        metrics["neg_iw_bound"] = (
            -self.importance_weighted_log_likelihood(x, self.config["iw_samples"], g).mean().item()
        )
        metrics["iw_samples"] = self.config["iw_samples"]
        return metrics

    @torch.no_grad()
    def importance_weighted_log_likelihood(
        self, x: torch.Tensor, k: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q(z | x): a lower bound on log p(x) that
        tightens with k (k = 1 is the ELBO), in nats per image, [B]."""
        mu, logvar = self.latent.distribution(self.encoder(x))
        logvar = logvar.clamp(-30, 20)  # as the fused op clamps it
        log_w = []
        for _ in range(k):
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            z = mu + torch.exp(0.5 * logvar) * eps
            log_q = (-0.5 * (eps**2 + logvar + math.log(2 * math.pi))).sum(1)
            log_p_z = (-0.5 * (z**2 + math.log(2 * math.pi))).sum(1)
            log_w.append(-self.reconstruction_nll(self.decode(z), x) + log_p_z - log_q)
        return torch.logsumexp(torch.stack(log_w), 0) - math.log(k)

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, progress: bool = False
    ) -> torch.Tensor:
        """n images from the prior through the decoder: one pass, so `progress` (taken for the
        samplers' common signature) has nothing to show."""
        device = next(self.parameters()).device
        z = torch.randn((n, self.config["latent_dim"]), generator=generator, device=device)
        out = self.decode(z)
        if self.likelihood == "logistic":
            return (self.head.sample(out, generator) + 1) / 2
        return torch.sigmoid(out)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        mu, _ = self.latent.distribution(self.encoder(x))
        out = self.decode(mu)
        if self.likelihood == "logistic":
            # one component: channel c's mean is parameter 1 + 3c (after the logit); shown
            # without the colour coefficients' shift
            means = out[:, [1 + 3 * c for c in range(self.input_shape[0])]]
            return (means.clamp(-1, 1) + 1) / 2
        return torch.sigmoid(out)
