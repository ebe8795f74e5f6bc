"""BEGAN (Berthelot et al., 2017): the discriminator is an autoencoder, and the two networks are
balanced by matching the autoencoder's reconstruction losses of real and generated images."""

import torch
from torch import nn

from gen_ext.metrics.quality import IMAGE_SHAPE

from .adversarial import (
    AdversarialModel,
    check_image_side,
    check_positive,
    check_weight,
    frozen,
    to_signed,
    upsampling_stages,
)


class Decoder(nn.Module):
    """A code of `code` numbers -> a 4x4 map of `width` channels -> (3x3 convolution, ELU,
    nearest-neighbour upsampling by two) up to side x side -> a 3x3 convolution to the colours.
    Both the generator and the discriminator's decoder."""

    def __init__(self, code: int, channels: int, side: int, width: int, tanh: bool):
        super().__init__()
        self.width = width
        self.project = nn.Linear(code, width * 16)
        layers = []
        for _ in range(upsampling_stages(side)):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ELU(), nn.Upsample(scale_factor=2)]
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ELU()]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        if tanh:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(h).view(-1, self.width, 4, 4))


class Encoder(nn.Module):
    """side x side images -> (3x3 convolution, ELU, a stride-2 convolution) down to 4x4 -> a
    code of `code` numbers."""

    def __init__(self, code: int, channels: int, side: int, width: int):
        super().__init__()
        layers, c = [nn.Conv2d(channels, width, 3, padding=1), nn.ELU()], width
        for i in range(upsampling_stages(side)):
            out = width * (i + 2)
            layers += [
                nn.Conv2d(c, c, 3, padding=1),
                nn.ELU(),
                nn.Conv2d(c, out, 3, 2, 1),
                nn.ELU(),
            ]
            c = out
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.code = nn.Linear(c * 16, code)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.code(self.net(x))


class AutoencoderDiscriminator(nn.Module):
    def __init__(self, code: int, channels: int, side: int, width: int):
        super().__init__()
        self.encoder = Encoder(code, channels, side, width)
        self.decoder = Decoder(code, channels, side, width, tanh=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The mean absolute reconstruction error per pixel, of the batch."""
        return (self(x) - x).abs().mean()


class BEGAN(AdversarialModel):
    """The discriminator D is an autoencoder with loss L(v) = mean |D(v) - v|. It minimises
    L(real) - k_t L(G(z)); the generator minimises L(G(z)). The controller keeps
    L(G(z)) = gamma L(real): k_{t+1} = clip(k_t + lambda_k (gamma L(real) - L(G(z))), 0, 1).
    M_global = L(real) + |gamma L(real) - L(G(z))| measures convergence; it and k_t are logged
    every step. Lower gamma trades diversity for quality. `code`: the autoencoder's bottleneck,
    narrow enough that it reconstructs digits better than other images."""

    cli_name = "began"
    unit = "L1 per pixel"
    # Tuning runs on the digits (2026-12-03, 60-100 epochs): gamma 0.5 with the paper's k_rate
    # 0.001 collapsed onto one digit (k_t stayed near 0.02, Fréchet distance 1723); k_rate 0.01
    # with gamma 0.75 reached 360, with gamma 1.0 73 at epoch 60 before collapsing again (357 at
    # epoch 100, while M_global kept falling); an autoencoder code of 32 numbers for 64 pixels
    # reconstructed anything and gave the generator no signal, 8 works, 4 is worse.
    default_epochs = 100
    default_lr = 1e-4
    progress_logs = ("m_global", "k")
    step_logs = ("m_global", "k")
    held_out_metric = "m_global"
    held_out_lower_is_better = True

    def __init__(
        self,
        input_shape=IMAGE_SHAPE,
        latent_dim: int = 32,
        width: int = 32,
        code: int = 8,
        gamma: float = 1.0,
        k_rate: float = 0.01,
    ):
        check_positive("BEGAN", "width", width)
        check_positive("BEGAN", "code", code)
        check_weight("BEGAN", "k_rate", k_rate)
        if not (isinstance(gamma, (int, float)) and 0 < gamma <= 1):
            raise ValueError(f"BEGAN: gamma must lie in (0, 1], got {gamma!r}")
        c, side, _ = check_image_side("BEGAN", input_shape)
        super().__init__(
            input_shape, latent_dim, width=width, code=code, gamma=gamma, k_rate=k_rate
        )
        self.generator = Decoder(latent_dim, c, side, width, tanh=True)
        self.discriminator = AutoencoderDiscriminator(code, c, side, width)
        # the controller's state: saved with the weights, so a resumed run continues it
        self.register_buffer("k", torch.zeros((), dtype=torch.float64))

    def training_step(self, x: torch.Tensor, update, step: int) -> dict:
        gamma, rate = self.config["gamma"], self.config["k_rate"]
        fake = self.generate(self.noise(x.shape[0]))
        d = self.discriminator
        real_loss = d.loss(to_signed(x))
        fake_loss = d.loss(fake.detach())
        logs = {"d_loss": update(real_loss - float(self.k) * fake_loss, "discriminator")}
        with frozen(d):
            logs["g_loss"] = update(d.loss(fake), "generator")
        balance = gamma * real_loss.item() - fake_loss.item()
        self.k.copy_((self.k + rate * balance).clamp(0, 1))
        logs["m_global"] = real_loss.item() + abs(balance)
        logs["k"] = float(self.k)
        return logs

    @torch.no_grad()
    def held_out_losses(self, x: torch.Tensor) -> dict:
        d = self.discriminator
        real_loss = d.loss(to_signed(x)).item()
        fake_loss = d.loss(self.generate(self.noise(x.shape[0]))).item()
        return {"m_global": real_loss + abs(self.config["gamma"] * real_loss - fake_loss)}

    def extra_panels(self) -> list:
        from gen_ext.viz import CurvePanel

        return [
            CurvePanel(
                "value",
                {"train_m_global": "M_global (L1 per pixel)", "train_k": "k_t"},
                title="convergence M_global and the controller k_t (every step)",
                step_keys=("train_m_global", "train_k"),
            )
        ]
