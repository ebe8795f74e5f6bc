"""What the GAN family shares: a generator of images from Gaussian noise, a discriminator (or
critic) trained against it with its own optimizer, sampling, and held-out sample quality as the
metric `gen-ext train` reports every epoch and early-stops on.

Images are in [0, 1] outside and in [-1, 1] inside (the generator ends in tanh, the
discriminator sees 2x - 1)."""

import math
from contextlib import contextmanager

import torch
from torch import nn

from gen_ext.metrics.quality import IMAGE_SHAPE, real_baseline, score_samples

from .base import GenerativeModel, adam

# the sample-quality figures a GAN's held-out evaluation reports every epoch
QUALITY_KEYS = ("frechet_distance", "precision", "recall", "coverage", "class_entropy", "collapsed")


def to_signed(x: torch.Tensor) -> torch.Tensor:
    return 2 * x - 1


def to_unit(y: torch.Tensor) -> torch.Tensor:
    return ((y + 1) / 2).clamp(0, 1)


@contextmanager
def frozen(module: nn.Module):
    """`module`'s weights leave the autograd graph for the duration (their requires_grad flags
    restored after): gradients still flow through it to its input, but its own weight gradients
    are not computed. A GAN's generator step (the discriminator's weight gradients would be
    thrown away) and an EBM's Langevin chains (only the gradient in x is wanted) use it. Batch
    norm running statistics still update (as in the usual DCGAN training, where the
    discriminator stays in training mode); only the discriminator's held-out loss on non-digit
    data reads them."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def check_weight(model: str, name: str, value: float) -> float:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and value >= 0):
        raise ValueError(f"{model}: {name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_positive(model: str, name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{model}: {name} must be a positive integer, got {value!r}")
    return value


def check_shape(model: str, input_shape) -> tuple[int, int, int]:
    """input_shape as (C, H, W) of positive integers."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if (
        shape is None
        or len(shape) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
    ):
        raise ValueError(
            f"{model}: input_shape must be (channels, height, width) of positive integers, "
            f"got {input_shape!r}"
        )
    return shape


def check_image_side(model: str, input_shape, smallest: int = 4) -> tuple[int, int, int]:
    """(C, H, W) of square images whose side is a power of two of at least `smallest` (the
    convolutional generators grow a 4x4 map by factors of two)."""
    c, h, w = check_shape(model, input_shape)
    if h != w or h < smallest or h & (h - 1):
        raise ValueError(
            f"{model}: input_shape must be square with a side that is a power of two of at "
            f"least {smallest}, got {tuple(input_shape)}"
        )
    return c, h, w


def upsampling_stages(side: int) -> int:
    """How many factor-two upsamplings take a 4x4 map to side x side."""
    return int(math.log2(side)) - 2


class AdversarialModel(GenerativeModel):
    """Subclasses build `self.generator` (noise [N, latent_dim] -> images in [-1, 1]) and
    implement `training_step`; `discriminator_parameters` and `generator_parameters` say what
    each optimizer updates.

    On 1x8x8 images (the digits) the held-out metric is the Fréchet distance of 1,000 samples in
    the digit classifier's features (gen_ext.metrics.score_samples), with precision, recall and
    mode coverage beside it. The classifier knows only digits, so on other images the held-out
    metric is the discriminator's loss on the held-out images (`held_out_metric`)."""

    main_metric = "frechet_distance"
    unit = "nats"  # the logistic losses; Wasserstein critics override it
    default_epochs = 100
    default_lr = 2e-4
    default_batch_size = 64
    picture_samples = 64
    pictures_every_epoch = True
    progress_logs = ("d_loss", "g_loss")
    adam_betas = (0.5, 0.999)
    held_out_metric = "d_loss"
    # whether a lower held-out discriminator metric means a better generator (the logistic
    # discriminator's loss is lowest when it wins, the Wasserstein estimate when the
    # distributions are close)
    held_out_lower_is_better = False

    def __init__(self, input_shape=IMAGE_SHAPE, latent_dim: int = 32, **config):
        super().__init__(input_shape=tuple(input_shape), latent_dim=latent_dim, **config)
        self.input_shape = check_shape(type(self).__name__, input_shape)
        self.latent_dim = check_positive(type(self).__name__, "latent_dim", latent_dim)
        self.set_digit_scoring(self.input_shape == IMAGE_SHAPE)

    def set_digit_scoring(self, enabled: bool) -> None:
        """Whether evaluate scores samples with the digit classifier (the default for 1x8x8
        images; `gen-ext train` enables it for the digits only) or reports the discriminator's
        held-out loss."""
        if enabled and self.input_shape != IMAGE_SHAPE:
            raise ValueError(
                f"{type(self).__name__}: digit scoring needs 1x8x8 images, the model makes "
                f"{self.input_shape}"
            )
        self.scores_digits = enabled
        self.main_metric = "frechet_distance" if enabled else f"held_out_{self.held_out_metric}"

    @property
    def lower_is_better(self) -> bool:
        return self.scores_digits or self.held_out_lower_is_better

    # --- sampling -------------------------------------------------------------------------
    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        weight = next(self.generator.parameters())
        return torch.randn(
            n, self.latent_dim, generator=generator, device=weight.device, dtype=weight.dtype
        )

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] from the generator's input z."""
        return self.generator(z)

    def sample(
        self, n: int, generator: torch.Generator | None = None, progress: bool = False
    ) -> torch.Tensor:
        with torch.no_grad():
            return to_unit(self.generate(self.noise(n, generator)))

    # --- training -------------------------------------------------------------------------
    def generator_parameters(self) -> list:
        return list(self.generator.parameters())

    def discriminator_side(self) -> nn.Module:
        """What the discriminator's optimizer updates, as one module (frozen in the generator's
        step)."""
        return self.discriminator

    def discriminator_parameters(self) -> list:
        return list(self.discriminator_side().parameters())

    def make_optimizers(self, lr: float) -> dict:
        return {
            "discriminator": adam(self.discriminator_parameters(), lr, self.adam_betas),
            "generator": adam(self.generator_parameters(), lr, self.adam_betas),
        }

    def held_out_losses(self, x: torch.Tensor) -> dict:
        """The discriminator's loss on held-out images against as many samples."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor) -> dict:
        if not self.scores_digits:
            losses = self.held_out_losses(x)
            return {f"held_out_{k}": v for k, v in losses.items()}
        scores = score_samples(self, x)
        return {k: float(scores[k]) for k in QUALITY_KEYS}

    def curve_panels(self) -> list:
        from gen_ext.viz import CurvePanel

        panels = [
            CurvePanel(
                f"loss ({self.unit})",
                {"train_d_loss": "discriminator", "train_g_loss": "generator"},
                title="training losses",
            )
        ]
        if self.scores_digits:
            panels += quality_panels()
        else:
            metric = f"test_{self.main_metric}"
            panels.append(CurvePanel(f"loss ({self.unit})", {metric: "held-out"}))
        return panels + self.extra_panels()

    def extra_panels(self) -> list:
        """Panels of what a family logs besides its losses (the Wasserstein estimate, M_global)."""
        return []


def quality_panels(distances: dict | None = None) -> list:
    """The curves of a model scored by score_samples every epoch: the Fréchet distance (log
    scale, beside the real digits' distance and 3x it; `distances`, metric key -> label, names
    the curves where a model samples more than one way), and precision, recall and mode
    coverage."""
    from gen_ext.viz import CurvePanel

    real_fd = real_baseline()["frechet_distance"]
    return [
        CurvePanel(
            "Fréchet distance (log scale)",
            distances or {"test_frechet_distance": "1,000 samples vs held-out digits"},
            title="sample quality (lower is better)",
            log=True,
            references={
                "real training digits vs held-out": real_fd,
                "3x the real digits' distance": 3 * real_fd,
            },
        ),
        CurvePanel(
            "share",
            {
                "test_precision": "precision",
                "test_recall": "recall",
                "test_coverage": "class coverage",
                "test_class_entropy": "class entropy",
            },
            title="precision, recall and mode coverage",
        ),
    ]


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, generator=None):
    """WGAN-GP's penalty: (||grad_x critic(x)|| - 1)^2 at random points between real and fake
    images, with create_graph so the critic's update differentiates through it (double
    backward through every layer of the critic)."""
    eps = torch.rand(
        real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype, generator=generator
    )
    between = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(between).sum(), between, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


class ConvGenerator(nn.Module):
    """DCGAN's generator for side x side images: the noise as a 1x1 map, a transposed 4x4
    convolution to a 4x4 map, factor-two transposed convolutions (batch norm, ReLU) to the full
    side, and a 3x3 convolution to the colours with tanh. No fully connected layer."""

    def __init__(self, latent_dim: int, channels: int, side: int, width: int, batch_norm=True):
        super().__init__()
        stages = upsampling_stages(side)
        widths = [width * 2 ** (stages - i) for i in range(stages + 1)]
        norm = (lambda c: nn.BatchNorm2d(c)) if batch_norm else (lambda c: nn.Identity())
        layers = [
            nn.ConvTranspose2d(latent_dim, widths[0], 4, bias=False),
            norm(widths[0]),
            nn.ReLU(),
        ]
        for a, b in zip(widths, widths[1:], strict=False):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), norm(b), nn.ReLU()]
        layers += [nn.Conv2d(widths[-1], channels, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class ConvDiscriminator(nn.Module):
    """DCGAN's discriminator: strided 4x4 convolutions halving the side down to 2x2 (batch norm
    after all but the first, where `norm` says so), then a 2x2 convolution to one logit.
    `activation` builds the nonlinearity for a layer of c channels and says how many channels
    it puts out (LeakyReLU: c; gen_ext's concat ELU: 2c). `features` gives the last hidden map."""

    def __init__(
        self, channels: int, side: int, width: int, norm: str = "batch", activation="leaky_relu"
    ):
        super().__init__()
        halvings = int(math.log2(side)) - 1  # side -> 2
        layers, c = [], channels
        for i in range(halvings):
            out = width * 2**i
            layers.append(nn.Conv2d(c, out, 4, 2, 1, bias=norm != "batch" or i == 0))
            if i > 0 and norm == "batch":
                layers.append(nn.BatchNorm2d(out))
            act, c = make_activation(activation, out)
            layers.append(act)
        self.trunk = nn.Sequential(*layers)
        self.hidden_channels = c
        self.head = nn.Conv2d(c, 1, 2)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)).flatten()


def make_activation(name: str, channels: int) -> tuple[nn.Module, int]:
    """The discriminators' nonlinearity and the channels it puts out."""
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2), channels
    if name == "concat_elu":
        from gen_ext.nn import ConcatELU

        return ConcatELU(), 2 * channels
    raise ValueError(f"activation must be 'leaky_relu' or 'concat_elu', got {name!r}")
