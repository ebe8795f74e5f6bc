"""An energy-based model of images trained by contrastive divergence with Langevin dynamics
(Du and Mordatch, 2019): the network gives each image an energy, low for data; negatives come
from stochastic gradient Langevin dynamics started from a replay buffer of earlier negatives
(a share restarted from uniform noise every step), run by the fused gen_ext.ops.langevin_step."""

import torch
from torch import nn

from gen_ext.errors import TrainingError
from gen_ext.metrics.quality import IMAGE_SHAPE, score_samples
from gen_ext.ops import langevin_step

from .adversarial import (
    QUALITY_KEYS,
    check_image_side,
    check_positive,
    check_weight,
    frozen,
    quality_panels,
)
from .base import GenerativeModel, adam

# where sampling chains start, and how the curves name it
SOURCES = {"noise": "uniform noise", "buffer": "the replay buffer"}


class DivergenceError(TrainingError):
    """The energies or their gradients exploded: training stops before a checkpoint holds
    them."""


class EnergyNet(nn.Module):
    """Images [B, C, H, W] in [0, 1] -> energies [B]: 3x3 convolution, then strided 4x4
    convolutions halving the side down to 2x2, SiLU between (smooth, so the Langevin gradients
    are too), and a 2x2 convolution to one number."""

    def __init__(self, channels: int, side: int, width: int):
        super().__init__()
        layers, c = [nn.Conv2d(channels, width, 3, padding=1), nn.SiLU()], width
        while side > 2:
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1), nn.SiLU()]
            c, side = 2 * c, side // 2
        layers.append(nn.Conv2d(c, 1, side))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(2 * x - 1).flatten()


class EnergyBasedModel(GenerativeModel):
    """E(x) for images in [0, 1]. A training step draws `batch` negatives: from the replay buffer
    (`buffer_size` images, uniform noise at first), a share `restart` of them from fresh uniform
    noise, and runs `langevin_steps` steps x <- clamp(x - step_size * dE/dx + noise_scale * N(0,
    1), 0, 1) on them; the loss is mean E(data) - mean E(negatives) plus `energy_penalty` times
    the mean squared energies (which keeps the energies from drifting), the gradient norm
    clipped to `max_grad_norm`; the negatives go back to the buffer. Energies beyond
    `divergence_energy` or a non-finite Langevin gradient stop training with a DivergenceError.

    `sample(n, generator, source="noise"|"buffer")`: Langevin dynamics for `sample_steps` steps
    from uniform noise, or for `langevin_steps` steps from random buffer entries (continuing the
    persistent chains training left there by one training step's length); `sample_from` is the
    default source. The held-out metrics: sample quality on the digits of samples from
    `sample_from` (and, when that is the buffer, the Fréchet distance of samples from noise too,
    `frechet_distance_from_noise`), and the mean energy of held-out images and of uniform
    noise."""

    cli_name = "ebm"
    unit = "energy"
    main_metric = "frechet_distance"
    # Tuning runs on the digits (2026-12-03, 15 epochs each): step_size 10 with noise 0.005 (the
    # values of Du and Mordatch's larger images) saturated the chains, Fréchet distance 585-2196 of
    # samples from noise; step 1 with noise 0.01 gave 146-475 by epoch 8-14, varying from epoch
    # to epoch; energy_penalty 0.01 or 0.1 (lr 3e-4) did no better in 6-7 epochs. (2026-12-04,
    # default run, Intel Xeon, 2 threads) On its final weights, samples from noise scored 828,
    # 482, 315 and 405 after 300, 150, 60 and 40 steps, while the persistent chains of the buffer
    # continued by 1, 10, 20, 40, 60 and 100 steps scored 87, 80, 76, 80, 98 and 153: the model
    # is a good sampler only near the chains it was trained on, hence sampling from the buffer
    # by default, for langevin_steps. Chains restarted from noise at every step (restart 1.0,
    # 60 steps in training and sampling) gave 97-229 over epochs 3-20 from noise, 110 at the end.
    default_epochs = 20
    default_lr = 1e-4
    default_batch_size = 64
    pictures_every_epoch = True
    progress_logs = ("energy_data", "energy_negative")
    step_logs = ("energy_data", "energy_negative")
    adam_betas = (0.0, 0.999)

    def __init__(
        self,
        input_shape=IMAGE_SHAPE,
        width: int = 32,
        langevin_steps: int = 40,
        sample_steps: int = 100,
        step_size: float = 1.0,
        noise_scale: float = 0.01,
        buffer_size: int = 10000,
        restart: float = 0.05,
        energy_penalty: float = 1.0,
        max_grad_norm: float = 1.0,
        divergence_energy: float = 1e4,
        sample_from: str = "buffer",
    ):
        name = "EnergyBasedModel"
        shape = check_image_side(name, input_shape, smallest=2)
        side = shape[1]
        for key, value in (
            ("width", width),
            ("langevin_steps", langevin_steps),
            ("sample_steps", sample_steps),
            ("buffer_size", buffer_size),
        ):
            check_positive(name, key, value)
        for key, value in (
            ("step_size", step_size),
            ("noise_scale", noise_scale),
            ("energy_penalty", energy_penalty),
        ):
            check_weight(name, key, value)
        for key, value in (
            ("max_grad_norm", max_grad_norm),
            ("divergence_energy", divergence_energy),
        ):
            if check_weight(name, key, value) <= 0:
                raise ValueError(f"{name}: {key} must be > 0, got {value!r}")
        if not (isinstance(restart, (int, float)) and 0 <= restart <= 1):
            raise ValueError(f"{name}: restart must lie in [0, 1], got {restart!r}")
        if sample_from not in SOURCES:
            raise ValueError(
                f"{name}: sample_from must be one of {tuple(SOURCES)}, got {sample_from!r}"
            )
        super().__init__(
            input_shape=shape,
            width=width,
            langevin_steps=langevin_steps,
            sample_steps=sample_steps,
            step_size=step_size,
            noise_scale=noise_scale,
            buffer_size=buffer_size,
            restart=restart,
            energy_penalty=energy_penalty,
            max_grad_norm=max_grad_norm,
            divergence_energy=divergence_energy,
            sample_from=sample_from,
        )
        self.input_shape = shape
        self.energy = EnergyNet(shape[0], side, width)
        # the replay buffer: saved with the weights, so a resumed run continues its chains
        self.register_buffer("replay", torch.rand(buffer_size, *shape))
        self.scores_digits = shape == IMAGE_SHAPE
        if not self.scores_digits:
            self.main_metric = "held_out_energy_gap"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.energy(x)

    # --- Langevin dynamics ---------------------------------------------------------------
    def langevin(
        self, x: torch.Tensor, steps: int, generator=None, progress: bool = False
    ) -> torch.Tensor:
        """`steps` Langevin steps from x (overwritten), the weights left without gradients."""
        from tqdm import tqdm

        limit = self.config["divergence_energy"]
        step_size, noise_scale = self.config["step_size"], self.config["noise_scale"]
        with frozen(self):
            for _ in tqdm(range(steps), desc="langevin", leave=False, disable=not progress):
                with torch.enable_grad():
                    x.requires_grad_(True)
                    energy = self.energy(x)
                    (grad,) = torch.autograd.grad(energy.sum(), x)
                x = x.detach()
                if not torch.isfinite(grad).all() or energy.abs().max() > limit:
                    raise DivergenceError(
                        f"the Langevin chains diverged: energies up to "
                        f"{energy.abs().max().item():.3g}, gradient "
                        f"{'not finite' if not torch.isfinite(grad).all() else 'finite'} "
                        f"(limit {limit:g}); lower the learning rate or step_size, or raise "
                        f"energy_penalty"
                    )
                langevin_step(x, grad, step_size, noise_scale, (0.0, 1.0), generator, inplace=True)
        return x

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        progress: bool = False,
        source: str | None = None,
    ) -> torch.Tensor:
        """n images by `sample_steps` Langevin steps from uniform noise (source="noise"), or by
        `langevin_steps` steps (one training step's chain) from random entries of the replay
        buffer (source="buffer"); by default from `sample_from`."""
        device = self.replay.device
        source = self.config["sample_from"] if source is None else source
        if source == "noise":
            start = torch.rand(n, *self.input_shape, generator=generator, device=device)
            steps = self.config["sample_steps"]
        elif source == "buffer":
            pick = torch.randint(self.replay.shape[0], (n,), generator=generator, device=device)
            start = self.replay[pick].clone()
            steps = self.config["langevin_steps"]
        else:
            raise ValueError(
                f"EnergyBasedModel.sample: source must be "
                f"{' or '.join(repr(s) for s in SOURCES)}, got {source!r}"
            )
        with torch.no_grad():
            return self.langevin(start.to(self.replay.dtype), steps, generator, progress)

    # --- training ------------------------------------------------------------------------
    def make_optimizers(self, lr: float) -> dict:
        return {"model": adam(self.energy.parameters(), lr, self.adam_betas)}

    def negatives(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(buffer indices, starting points): random buffer entries, a share `restart` of them
        replaced by uniform noise (from the global generator, so a resumed run repeats)."""
        device = self.replay.device
        pick = torch.randint(self.replay.shape[0], (n,), device=device)
        start = self.replay[pick].clone()
        fresh = torch.rand(n, device=device) < self.config["restart"]
        start[fresh] = torch.rand_like(start[fresh])
        return pick, start

    def training_step(self, x: torch.Tensor, update, step: int) -> dict:
        pick, start = self.negatives(x.shape[0])
        self.eval()
        negative = self.langevin(start, self.config["langevin_steps"])
        self.train()
        self.replay[pick] = negative.detach()
        energy_data = self.energy(x)
        energy_negative = self.energy(negative)
        limit = self.config["divergence_energy"]
        worst = max(energy_data.abs().max().item(), energy_negative.abs().max().item())
        if worst > limit:
            raise DivergenceError(
                f"the energies diverged: |E| reached {worst:.3g} (limit {limit:g}); lower the "
                f"learning rate or raise energy_penalty"
            )
        contrast = energy_data.mean() - energy_negative.mean()
        penalty = energy_data.pow(2).mean() + energy_negative.pow(2).mean()
        loss = contrast + self.config["energy_penalty"] * penalty
        logs = {"loss": update(loss, "model", max_norm=self.config["max_grad_norm"])}
        logs["energy_data"] = energy_data.mean().item()
        logs["energy_negative"] = energy_negative.mean().item()
        return logs

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor) -> dict:
        generator = torch.Generator(device=x.device).manual_seed(0)
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        data_energy = self.energy(x).mean().item()
        noise_energy = self.energy(noise).mean().item()
        metrics = {
            "energy_data": data_energy,
            "energy_noise": noise_energy,
            "energy_gap": noise_energy - data_energy,
        }
        if self.scores_digits:
            scores = score_samples(self, x)
            metrics.update({k: float(scores[k]) for k in QUALITY_KEYS})
            if self.config["sample_from"] != "noise":
                from_noise = score_samples(self, x, source="noise")
                metrics["frechet_distance_from_noise"] = float(from_noise["frechet_distance"])
        else:
            # lower is better, like the other main metrics: minus the gap
            metrics["held_out_energy_gap"] = -(noise_energy - data_energy)
        return metrics

    def curve_panels(self) -> list:
        from gen_ext.viz import CurvePanel

        energies = CurvePanel(
            "energy",
            {
                "train_energy_data": "training data (every step)",
                "train_energy_negative": "Langevin negatives (every step)",
                "test_energy_data": "held-out data",
                "test_energy_noise": "uniform noise",
            },
            title="energies (low for data)",
            step_keys=("train_energy_data", "train_energy_negative"),
        )
        if not self.scores_digits:
            return [energies]
        source = SOURCES[self.config["sample_from"]]
        distances = {"test_frechet_distance": f"1,000 samples from {source}"}
        if self.config["sample_from"] != "noise":
            distances["test_frechet_distance_from_noise"] = f"1,000 samples from {SOURCES['noise']}"
        return [energies] + quality_panels(distances)
