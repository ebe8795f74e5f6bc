"""InfoGAN (Chen et al., 2016): part of the generator's input is a code (one categorical
variable, a few continuous ones) that an auxiliary head Q must recover from the generated image;
maximising that variational lower bound on the mutual information between code and image makes
the code mean something (on the digits, the categorical code tends to pick the digit)."""

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gen_ext.metrics.quality import IMAGE_SHAPE, digit_classifier

from .adversarial import (
    ConvDiscriminator,
    ConvGenerator,
    check_image_side,
    check_positive,
    check_weight,
    to_unit,
)
from .gans import NonSaturatingGAN

AGREEMENT_SAMPLES_PER_CODE = 100  # generated images per categorical value for the agreement


def best_matching_agreement(codes: torch.Tensor, labels: torch.Tensor, classes: int) -> float:
    """The share of samples whose label is the one matched to their code, under the one-to-one
    matching of codes to labels that makes that share largest (Hungarian algorithm)."""
    from scipy.optimize import linear_sum_assignment

    counts = torch.zeros(classes, classes, dtype=torch.long)
    counts.index_put_((codes.long(), labels.long()), torch.ones_like(codes.long()), accumulate=True)
    rows, cols = linear_sum_assignment(counts.numpy(), maximize=True)
    return counts[rows, cols].sum().item() / codes.numel()


class InfoGAN(NonSaturatingGAN):
    """DCGAN's networks with the generator's input [noise, one-hot categorical code of
    `categories` values, `continuous` codes uniform in [-1, 1]] and a head Q on the
    discriminator's last hidden map that predicts the code: logits of the category and the mean
    of each continuous code (a unit-variance Gaussian). Both networks add `info_weight` times
    Q's negative log-likelihood of the code (the categorical part is H(c) minus the mutual
    information lower bound). The bound is logged as "mutual_information" (nats, at most
    log(categories)); on the digits, the evaluation reports "code_agreement": how often the digit
    classifier's label of a generated image is the digit matched one-to-one to its code."""

    cli_name = "infogan"
    default_epochs = 100
    progress_logs = ("d_loss", "g_loss", "mutual_information")

    def __init__(
        self,
        input_shape=IMAGE_SHAPE,
        latent_dim: int = 32,
        width: int = 64,
        categories: int = 10,
        continuous: int = 2,
        info_weight: float = 1.0,
    ):
        check_positive("InfoGAN", "width", width)
        check_positive("InfoGAN", "categories", categories)
        if not isinstance(continuous, int) or continuous < 0:
            raise ValueError(f"InfoGAN: continuous must be an integer >= 0, got {continuous!r}")
        check_weight("InfoGAN", "info_weight", info_weight)
        c, side, _ = check_image_side("InfoGAN", input_shape)
        super().__init__(
            input_shape,
            latent_dim,
            width=width,
            categories=categories,
            continuous=continuous,
            info_weight=info_weight,
        )
        self.categories, self.continuous = categories, continuous
        self.generator = ConvGenerator(latent_dim + categories + continuous, c, side, width)
        self.discriminator = ConvDiscriminator(c, side, width)
        hidden = self.discriminator.hidden_channels
        self.q_head = nn.Sequential(
            nn.Conv2d(hidden, hidden, 2),
            nn.Flatten(),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, categories + continuous),
        )

    def discriminator_side(self) -> nn.Module:
        return nn.ModuleList([self.discriminator, self.q_head])

    def noise(
        self, n: int, generator: torch.Generator | None = None, category: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[noise, one-hot category, continuous codes]; `category` [n] fixes the categories."""
        z = super().noise(n, generator)
        if category is None:
            category = torch.randint(self.categories, (n,), generator=generator, device=z.device)
        onehot = F.one_hot(category.to(z.device), self.categories).to(z.dtype)
        codes = torch.rand(n, self.continuous, generator=generator, device=z.device, dtype=z.dtype)
        codes = codes * 2 - 1
        return torch.cat([z, onehot, codes], dim=1)

    def auxiliary_loss(self, fake: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, dict]:
        k = self.latent_dim
        category = z[:, k : k + self.categories].argmax(1)
        codes = z[:, k + self.categories :]
        predicted = self.q_head(self.discriminator.features(fake))
        cross_entropy = F.cross_entropy(predicted[:, : self.categories], category)
        gaussian = 0.5 * (predicted[:, self.categories :] - codes).pow(2).sum(1).mean()
        logs = {"mutual_information": math.log(self.categories) - cross_entropy.item()}
        return self.config["info_weight"] * (cross_entropy + gaussian), logs

    @torch.no_grad()
    def code_agreement(self, seed: int = 0) -> float:
        """Agreement of the categorical code with the digit classifier's labels of the images
        it generates, under the best one-to-one matching of codes to digits."""
        classifier, _ = digit_classifier()
        device = next(self.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        category = torch.arange(self.categories, device=device)
        category = category.repeat_interleave(AGREEMENT_SAMPLES_PER_CODE)
        images = self.sample_codes(category, generator)
        labels = classifier.to("cpu").eval()(images.float().cpu()).argmax(1)
        classes = max(self.categories, 10)
        return best_matching_agreement(category.cpu(), labels, classes)

    @torch.no_grad()
    def sample_codes(self, category: torch.Tensor, generator=None) -> torch.Tensor:
        """Images in [0, 1], one for each categorical value in `category`."""
        return to_unit(self.generate(self.noise(category.numel(), generator, category)))

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor) -> dict:
        metrics = super().evaluate(x)
        if self.scores_digits:
            metrics["code_agreement"] = self.code_agreement()
        return metrics

    def extra_pictures(self, out) -> dict:
        """codes.png: one row per value of the categorical code, the other inputs drawn once
        and shared by the rows, so a row shows what its code value means."""
        from gen_ext.viz import save_grid

        columns = 8
        device = next(self.parameters()).device
        generator = torch.Generator(device=device).manual_seed(0)
        shared = self.noise(columns, generator).repeat(self.categories, 1)
        k = self.latent_dim
        shared[:, k : k + self.categories] = F.one_hot(
            torch.arange(self.categories, device=device).repeat_interleave(columns),
            self.categories,
        ).to(shared.dtype)
        with torch.no_grad():
            images = to_unit(self.generate(shared)).cpu()
        labels = [f"code {c}" for c in range(self.categories)]
        return {"codes": save_grid(images, Path(out) / "codes.png", columns, row_labels=labels)}

    def extra_panels(self) -> list:
        from gen_ext.viz import CurvePanel

        lines = {"train_mutual_information": "mutual information lower bound (nats)"}
        if self.scores_digits:
            lines["test_code_agreement"] = "categorical code vs digit class (share)"
        return [CurvePanel("value", lines, title="what the code means")]
