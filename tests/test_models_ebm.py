"""The energy-based model: its Langevin sampler against the step's formula, the replay buffer,
the contrastive loss, gradient clipping, divergence detection, and its metrics."""

import pytest
import torch
from torch import nn
from train_helpers import TINY, tiny_config

from gen_ext.errors import TrainingError
from gen_ext.models import EnergyBasedModel
from gen_ext.models.ebm import DivergenceError
from gen_ext.train import _Updater, train


def tiny(**extra):
    torch.manual_seed(0)
    return EnergyBasedModel(**{**TINY["ebm"], **extra}).double()


class Quadratic(nn.Module):
    """E(x) = 1/2 sum (x - centre)^2 per image: its gradient is x - centre."""

    def __init__(self, centre):
        super().__init__()
        self.centre = centre

    def forward(self, x):
        return 0.5 * (x - self.centre).pow(2).flatten(1).sum(1)


def test_langevin_follows_the_step_formula_without_noise():
    model = tiny(step_size=0.25, noise_scale=0.0)
    model.energy = Quadratic(0.3)
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    want = x.clone()
    for _ in range(4):
        want = want - 0.25 * (want - 0.3)
    got = model.langevin(x.clone(), 4)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_langevin_noise_and_clamp_come_from_the_fused_step():
    model = tiny(step_size=1.0, noise_scale=0.5)
    model.energy = Quadratic(2.0)  # pulls every pixel above 1: the clamp holds it at 1
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    a = model.langevin(x.clone(), 3, torch.Generator().manual_seed(1))
    b = model.langevin(x.clone(), 3, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
    assert (a == 1).float().mean() > 0.5


def test_sampling_leaves_no_gradients_and_restores_requires_grad():
    model = tiny()
    model.energy.net[0].bias.requires_grad_(False)
    samples = model.sample(4, torch.Generator().manual_seed(0))
    assert samples.shape == (4, 1, 8, 8) and samples.min() >= 0 and samples.max() <= 1
    assert all(p.grad is None for p in model.parameters())
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    assert flags["energy.net.0.bias"] is False and all(
        v for n, v in flags.items() if n != "energy.net.0.bias"
    )


def test_sampling_from_noise_or_the_buffer():
    model = tiny(sample_steps=1, step_size=0.0, noise_scale=0.0)  # the start itself
    model.replay.fill_(0.25)
    from_buffer = model.sample(3, torch.Generator().manual_seed(0), source="buffer")
    assert torch.equal(from_buffer, torch.full((3, 1, 8, 8), 0.25, dtype=torch.float64))
    from_noise = model.sample(3, torch.Generator().manual_seed(0), source="noise")
    assert not torch.equal(from_noise, from_buffer)
    # the default source is the sample_from setting
    assert torch.equal(model.sample(3, torch.Generator().manual_seed(0)), from_buffer)
    model.config["sample_from"] = "noise"
    assert torch.equal(model.sample(3, torch.Generator().manual_seed(0)), from_noise)
    with pytest.raises(ValueError, match="source must be 'noise' or 'buffer'"):
        model.sample(3, source="data")


def test_buffer_chains_continue_for_one_training_steps_length_and_noise_for_sample_steps():
    model = tiny(langevin_steps=2, sample_steps=5, step_size=0.25, noise_scale=0.0)
    model.energy = Quadratic(0.3)  # each step moves x a quarter of the way to 0.3
    model.replay.fill_(1.0)
    from_buffer = model.sample(2, torch.Generator().manual_seed(0), source="buffer")
    torch.testing.assert_close(from_buffer, torch.full_like(from_buffer, 0.3 + 0.7 * 0.75**2))
    start = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)).double()
    from_noise = model.sample(2, torch.Generator().manual_seed(0), source="noise")
    torch.testing.assert_close(from_noise, 0.3 + (start - 0.3) * 0.75**5)


def test_a_training_step_writes_its_negatives_back_and_restarts_a_share_from_noise():
    model = tiny(buffer_size=64, restart=0.0, step_size=0.0, noise_scale=0.0)
    model.replay.fill_(0.5)
    optimizers = model.make_optimizers(1e-3)
    x = torch.rand(16, 1, 8, 8, dtype=torch.float64)
    logs = model.training_step(x, _Updater(model, optimizers, 1, 1), 1)
    assert torch.equal(model.replay, torch.full_like(model.replay, 0.5))  # chains of zero steps
    restarted = tiny(buffer_size=64, restart=1.0, step_size=0.0, noise_scale=0.0)
    restarted.replay.fill_(0.5)
    restarted.training_step(x, _Updater(restarted, restarted.make_optimizers(1e-3), 1, 1), 1)
    assert (restarted.replay != 0.5).any()  # every negative started from fresh noise
    assert set(logs) == {"loss", "energy_data", "energy_negative"}


def test_the_loss_is_the_contrast_plus_the_energy_penalty():
    model = tiny(energy_penalty=0.7, langevin_steps=1, step_size=0.0, noise_scale=0.0, restart=0.0)
    x = torch.rand(8, 1, 8, 8, dtype=torch.float64)
    seen = {}

    def update(loss, name, max_norm=None):
        seen["loss"], seen["max_norm"] = loss.item(), max_norm
        return loss.item()

    torch.manual_seed(3)
    model.training_step(x, update, 1)
    torch.manual_seed(3)
    pick = torch.randint(model.replay.shape[0], (8,))
    negative = model.replay[pick]
    ed, en = model.energy(x), model.energy(negative)
    want = ed.mean() - en.mean() + 0.7 * (ed.pow(2).mean() + en.pow(2).mean())
    assert seen["loss"] == pytest.approx(want.item(), rel=1e-12)
    assert seen["max_norm"] == model.config["max_grad_norm"]


def test_update_clips_the_gradient_norm():
    layer = nn.Linear(3, 1).double()
    model = nn.Module()
    model.layer = layer
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    before = [p.detach().clone() for p in layer.parameters()]
    loss = 1e6 * layer(torch.ones(1, 3, dtype=torch.float64)).sum()
    _Updater(model, {"model": optimizer}, 1, 1)(loss, "model", max_norm=1e-3)
    moved = torch.cat([(p - b).flatten() for p, b in zip(layer.parameters(), before, strict=True)])
    assert moved.norm().item() == pytest.approx(1e-3, rel=1e-6)


def test_exploding_energies_raise_a_divergence_error():
    model = tiny(divergence_energy=1e-12)
    optimizers = model.make_optimizers(1e-3)
    with pytest.raises(DivergenceError, match="diverged"):
        model.training_step(
            torch.rand(4, 1, 8, 8, dtype=torch.float64), _Updater(model, optimizers, 1, 1), 1
        )


def test_a_diverging_run_stops_without_writing_a_checkpoint(tmp_path):
    cfg = tiny_config(tmp_path, "ebm", epochs=2)
    cfg.model_args["divergence_energy"] = 1e-12
    with pytest.raises(TrainingError, match=r"epoch 1, step 1 of \d+: .*diverged.*no checkpoint"):
        train(cfg, progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_the_replay_buffer_is_saved_with_the_weights(tmp_path):
    model = tiny()
    model.replay.fill_(0.125)
    model.save(tmp_path / "ebm.pt")
    loaded = EnergyBasedModel.load(tmp_path / "ebm.pt")
    assert torch.equal(loaded.replay, model.replay.float())


def test_evaluation_reports_energies_and_sample_quality():
    model = tiny().float()
    metrics = model.evaluate(torch.rand(20, 1, 8, 8))
    assert {"energy_data", "energy_noise", "energy_gap", "frechet_distance", "coverage"} <= set(
        metrics
    )
    assert metrics["energy_gap"] == pytest.approx(metrics["energy_noise"] - metrics["energy_data"])
    # samples from the buffer are scored, and those from noise beside them
    assert metrics["frechet_distance_from_noise"] != metrics["frechet_distance"]
    from_noise = tiny(sample_from="noise").float().evaluate(torch.rand(20, 1, 8, 8))
    assert "frechet_distance_from_noise" not in from_noise
    assert from_noise["frechet_distance"] == pytest.approx(metrics["frechet_distance_from_noise"])
    # and the curves draw both
    drawn = {k for panel in model.curve_panels() for k in panel.lines}
    assert {"test_frechet_distance", "test_frechet_distance_from_noise"} <= drawn
    other = EnergyBasedModel(input_shape=(3, 4, 4), **TINY["ebm"])
    assert other.main_metric == "held_out_energy_gap"
    assert set(other.evaluate(torch.rand(5, 3, 4, 4))) == {
        "energy_data",
        "energy_noise",
        "energy_gap",
        "held_out_energy_gap",
    }


@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"langevin_steps": 0}, "langevin_steps"),
        ({"restart": 1.5}, "restart"),
        ({"noise_scale": -1.0}, "noise_scale"),
        ({"max_grad_norm": 0.0}, "max_grad_norm"),
        ({"input_shape": (1, 6, 6)}, "power of two"),
        ({"buffer_size": True}, "buffer_size"),
        ({"sample_from": "data"}, "sample_from"),
    ],
)
def test_bad_settings_are_refused_naming_the_argument(kwargs, words):
    with pytest.raises(ValueError, match=words):
        EnergyBasedModel(**kwargs)
