"""GAN (Goodfellow et al., 2014) with fully connected networks, DCGAN (Radford et al., 2016),
WGAN (Arjovsky et al., 2017) and WGAN-GP (Gulrajani et al., 2017)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from gen_ext.metrics.quality import IMAGE_SHAPE

from .adversarial import (
    AdversarialModel,
    ConvDiscriminator,
    ConvGenerator,
    check_image_side,
    check_positive,
    check_weight,
    frozen,
    gradient_penalty,
    to_signed,
)


class MLPDiscriminator(nn.Module):
    """Two hidden LeakyReLU layers over the flattened image, then one logit; `features` gives
    the last hidden layer (what feature matching compares)."""

    def __init__(self, size: int, hidden: int):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Flatten(),
            nn.Linear(size, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2),
        )
        self.head = nn.Linear(hidden, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)).flatten()


class NonSaturatingGAN(AdversarialModel):
    """The standard GAN objective: the discriminator's cross-entropy of real against generated
    images, the generator's non-saturating -log D(G(z)), plus, with feature_matching > 0, that
    weight times the squared L2 distance between the discriminator's mean last-hidden features
    of the real and the generated batch (Salimans et al., 2016): a term that pulls the
    generated distribution's statistics towards the data's."""

    def feature_matching_weight(self) -> float:
        return float(self.config.get("feature_matching", 0.0))

    def auxiliary_loss(self, fake: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """A loss both networks add to theirs, from generated images and the generator's input
        (InfoGAN's mutual-information term); none here."""
        return fake.new_zeros(()), {}

    def training_step(self, x: torch.Tensor, update, step: int) -> dict:
        real = to_signed(x)
        z = self.noise(x.shape[0])
        fake = self.generate(z)
        d = self.discriminator
        d_loss = F.softplus(-d(real)).mean() + F.softplus(d(fake.detach())).mean()
        aux, logs = self.auxiliary_loss(fake.detach(), z)
        logs["d_loss"] = update(d_loss + aux, "discriminator")
        with frozen(self.discriminator_side()):
            g_loss = F.softplus(-d(fake)).mean()
            weight = self.feature_matching_weight()
            if weight > 0:
                gap = d.features(real).mean(0) - d.features(fake).mean(0)
                matching = gap.pow(2).sum()
                logs["feature_matching"] = matching.item()
                g_loss = g_loss + weight * matching
            aux, _ = self.auxiliary_loss(fake, z)
            logs["g_loss"] = update(g_loss + aux, "generator")
        return logs

    @torch.no_grad()
    def held_out_losses(self, x: torch.Tensor) -> dict:
        fake = self.generate(self.noise(x.shape[0]))
        d = self.discriminator
        loss = F.softplus(-d(to_signed(x))).mean() + F.softplus(d(fake)).mean()
        return {"d_loss": loss.item()}


class GAN(NonSaturatingGAN):
    """Fully connected generator (two hidden layers with batch norm and ReLU, tanh output) and
    discriminator (two hidden LeakyReLU layers). `feature_matching` weights the optional L2
    term. Without the generator's batch norm, runs on the digits ended with a Fréchet distance of
    about 400 (recall near 0); with it, 37."""

    cli_name = "gan"
    default_epochs = 150

    def __init__(
        self,
        input_shape=IMAGE_SHAPE,
        latent_dim: int = 32,
        hidden: int = 256,
        feature_matching: float = 0.0,
        batch_norm: bool = True,
    ):
        check_positive("GAN", "hidden", hidden)
        check_weight("GAN", "feature_matching", feature_matching)
        super().__init__(
            input_shape,
            latent_dim,
            hidden=hidden,
            feature_matching=feature_matching,
            batch_norm=bool(batch_norm),
        )
        size = math.prod(self.input_shape)
        norm = nn.BatchNorm1d if batch_norm else (lambda _: nn.Identity())
        self.generator = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            norm(hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            norm(hidden),
            nn.ReLU(),
            nn.Linear(hidden, size),
            nn.Tanh(),
            nn.Unflatten(1, self.input_shape),
        )
        self.discriminator = MLPDiscriminator(size, hidden)


class DCGAN(NonSaturatingGAN):
    """Convolutional generator and discriminator (gen_ext.models.adversarial.ConvGenerator and
    ConvDiscriminator): strided (transposed) convolutions, batch norm, ReLU in the generator and
    LeakyReLU in the discriminator, no fully connected hidden layer."""

    cli_name = "dcgan"
    default_epochs = 100

    def __init__(
        self,
        input_shape=IMAGE_SHAPE,
        latent_dim: int = 32,
        width: int = 64,
        feature_matching: float = 0.0,
    ):
        check_positive("DCGAN", "width", width)
        check_weight("DCGAN", "feature_matching", feature_matching)
        c, side, _ = check_image_side("DCGAN", input_shape)
        super().__init__(input_shape, latent_dim, width=width, feature_matching=feature_matching)
        self.generator = ConvGenerator(latent_dim, c, side, width)
        self.discriminator = ConvDiscriminator(c, side, width)


class WassersteinGAN(AdversarialModel):
    """A critic trained to estimate the Wasserstein-1 distance, E[critic(real)] -
    E[critic(fake)], with the convolutional generator; the generator steps once every
    `critic_steps` critic steps. The estimate is logged every step. Subclasses keep the critic
    Lipschitz (`make_critic`, `critic_loss`, `after_critic_step`)."""

    unit = "critic units"
    progress_logs = ("wasserstein", "g_loss")
    step_logs = ("wasserstein",)
    held_out_metric = "wasserstein"
    held_out_lower_is_better = True

    def __init__(self, input_shape, latent_dim: int, width: int, critic_steps: int, **config):
        name = type(self).__name__
        check_positive(name, "width", width)
        check_positive(name, "critic_steps", critic_steps)
        c, side, _ = check_image_side(name, input_shape)
        super().__init__(input_shape, latent_dim, width=width, critic_steps=critic_steps, **config)
        self.critic_steps = critic_steps
        self.generator = ConvGenerator(latent_dim, c, side, width)
        self.discriminator = self.make_critic(c, side, width)

    def make_critic(self, channels: int, side: int, width: int) -> nn.Module:
        raise NotImplementedError

    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The critic's loss (the negative Wasserstein estimate) and what to log about it."""
        estimate = self.discriminator(real).mean() - self.discriminator(fake).mean()
        return -estimate, {"wasserstein": estimate.item()}

    def after_critic_step(self) -> None:
        pass

    def training_step(self, x: torch.Tensor, update, step: int) -> dict:
        real = to_signed(x)
        with torch.no_grad():
            fake = self.generate(self.noise(x.shape[0]))
        loss, logs = self.critic_loss(real, fake)
        logs["d_loss"] = update(loss, "discriminator")
        self.after_critic_step()
        if step % self.critic_steps == 0:
            with frozen(self.discriminator):
                g_loss = -self.discriminator(self.generate(self.noise(x.shape[0]))).mean()
                logs["g_loss"] = update(g_loss, "generator")
        return logs

    @torch.no_grad()
    def held_out_losses(self, x: torch.Tensor) -> dict:
        fake = self.generate(self.noise(x.shape[0]))
        estimate = self.discriminator(to_signed(x)).mean() - self.discriminator(fake).mean()
        return {"wasserstein": estimate.item()}

    def extra_panels(self) -> list:
        from gen_ext.viz import CurvePanel

        return [
            CurvePanel(
                "critic units",
                {"train_wasserstein": "Wasserstein estimate (every step)"},
                title="the critic's Wasserstein estimate",
                step_keys=("train_wasserstein",),
            )
        ]


class WGAN(WassersteinGAN):
    """The critic is DCGAN's discriminator with its weights clipped to [-clip, clip] after
    every step; RMSprop for both networks."""

    cli_name = "wgan"
    default_epochs = 200
    default_lr = 5e-5

    def __init__(
        self,
        input_shape=IMAGE_SHAPE,
        latent_dim: int = 32,
        width: int = 64,
        critic_steps: int = 5,
        clip: float = 0.01,
    ):
        if not (isinstance(clip, (int, float)) and clip > 0 and math.isfinite(clip)):
            raise ValueError(f"WGAN: clip must be a finite number > 0, got {clip!r}")
        super().__init__(input_shape, latent_dim, width, critic_steps, clip=clip)

    def make_critic(self, channels: int, side: int, width: int) -> nn.Module:
        return ConvDiscriminator(channels, side, width)

    def make_optimizers(self, lr: float) -> dict:
        return {
            "discriminator": torch.optim.RMSprop(self.discriminator_parameters(), lr=lr),
            "generator": torch.optim.RMSprop(self.generator_parameters(), lr=lr),
        }

    def after_critic_step(self) -> None:
        clip = self.config["clip"]
        with torch.no_grad():
            for p in self.discriminator.parameters():
                p.clamp_(-clip, clip)


class WGANGP(WassersteinGAN):
    """The weight clipping replaced by a gradient penalty: `penalty` times
    (||grad critic(x)|| - 1)^2 at random points between real and generated images. The critic
    has no batch norm (the penalty is per image) and by default uses gen_ext's fused concat ELU,
    so the penalty's double backward runs through a gen_ext op; Adam with betas (0.5, 0.9)."""

    cli_name = "wgan-gp"
    # with 5 critic steps per generator step and the penalty's double backward, the generator
    # takes fewer, costlier steps than DCGAN's: the Fréchet distance on the digits fell from 63 at
    # epoch 40 to 44 at 90 and 24-32 from 190 on in a default run (2026-12-03)
    default_epochs = 300
    default_lr = 1e-4
    adam_betas = (0.5, 0.9)

    def __init__(
        self,
        input_shape=IMAGE_SHAPE,
        latent_dim: int = 32,
        width: int = 64,
        critic_steps: int = 5,
        penalty: float = 10.0,
        activation: str = "concat_elu",
    ):
        check_weight("WGANGP", "penalty", penalty)
        if activation not in ("concat_elu", "leaky_relu"):
            raise ValueError(
                f"WGANGP: activation must be 'concat_elu' or 'leaky_relu', got {activation!r}"
            )
        super().__init__(
            input_shape, latent_dim, width, critic_steps, penalty=penalty, activation=activation
        )

    def make_critic(self, channels: int, side: int, width: int) -> nn.Module:
        activation = self.config["activation"]
        return ConvDiscriminator(channels, side, width, norm="none", activation=activation)

    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
        loss, logs = super().critic_loss(real, fake)
        penalty = gradient_penalty(self.discriminator, real, fake)
        logs["gradient_penalty"] = penalty.item()
        return loss + self.config["penalty"] * penalty, logs
