"""The training loop with two optimizers: per-epoch sample quality, grids and per-step logs of
the GAN family, the curves picture, early stopping on the held-out metric (any model), and
checkpoints of one or several optimizers."""

import json

import pytest
import torch
from PIL import Image
from train_helpers import tiny_config

from gen_ext.errors import CheckpointError, TrainingError
from gen_ext.models import MODELS, GenerativeModel
from gen_ext.train import BEST, CHECKPOINT, EPOCH_SAMPLES, METRICS, EarlyStop, TrainConfig, train
from gen_ext.viz import save_grid


def test_each_model_brings_its_learning_rate():
    assert TrainConfig("dcgan").lr == MODELS["dcgan"].default_lr == 2e-4
    assert TrainConfig("wgan").lr == 5e-5
    assert TrainConfig("vae").lr == 1e-3
    assert TrainConfig("dcgan", lr=0.01).lr == 0.01


def digits_config(folder, model, **kw) -> TrainConfig:
    cfg = tiny_config(folder, model, **kw)
    cfg.data = "digits"
    cfg.batch_size = 128
    return cfg


def test_a_gan_run_scores_every_epoch_and_draws_a_grid_per_epoch(tmp_path):
    metrics = train(digits_config(tmp_path, "dcgan", epochs=2), progress=False)
    out = tmp_path / "run"
    for entry in metrics["history"]:
        assert {"train_d_loss", "train_g_loss", "test_frechet_distance", "test_precision"} <= set(
            entry
        )
        assert entry["test_frechet_distance"] > 0 and 0 <= entry["test_coverage"] <= 1
    grids = sorted(p.name for p in (out / EPOCH_SAMPLES).iterdir())
    assert grids == ["samples_epoch_001.png", "samples_epoch_002.png"]
    # training losses, Fréchet distance, precision/recall/coverage: three panels, two to a row
    width, height = Image.open(out / "loss_curve.png").size
    assert width > 1400 and height > 900
    assert json.loads((out / METRICS).read_text())["test"]["frechet_distance"] > 0


def test_wasserstein_estimate_and_began_convergence_are_logged_every_step(tmp_path):
    steps_per_epoch = 4  # 40 images, 32 of them training images, in batches of 8
    for model, keys in (("wgan", ["wasserstein"]), ("began", ["m_global", "k"])):
        metrics = train(tiny_config(tmp_path, model, epochs=2, out=model), progress=False)
        for entry in metrics["history"]:
            for key in keys:
                values = entry["steps"][key]
                assert len(values) == steps_per_epoch and all(v is not None for v in values)
                assert entry[f"train_{key}"] == pytest.approx(sum(values) / len(values))


def test_a_resumed_gan_run_repeats_an_uninterrupted_one(tmp_path):
    whole = train(tiny_config(tmp_path, "wgan-gp", epochs=2, out="whole"), progress=False)
    train(tiny_config(tmp_path, "wgan-gp", epochs=1, out="parts"), progress=False)
    parts = train(
        tiny_config(tmp_path, "wgan-gp", epochs=2, out="parts"), resume=True, progress=False
    )
    assert parts["history"] == whole["history"]
    a = torch.load(tmp_path / "whole" / CHECKPOINT, weights_only=True)
    b = torch.load(tmp_path / "parts" / CHECKPOINT, weights_only=True)
    assert set(a["optimizer"]) == {"discriminator", "generator"}
    for key, value in a["model"]["state_dict"].items():
        assert torch.equal(value, b["model"]["state_dict"][key]), key


def test_a_checkpoint_with_one_unnamed_optimizer_still_resumes(tmp_path):
    """Checkpoints written before models had several optimizers hold one optimizer state."""
    train(tiny_config(tmp_path, "autoencoder", epochs=1), progress=False)
    path = tmp_path / "run" / CHECKPOINT
    ckpt = torch.load(path, weights_only=True)
    ckpt["optimizer"] = ckpt["optimizer"]["model"]
    torch.save(ckpt, path)
    metrics = train(tiny_config(tmp_path, "autoencoder", epochs=2), resume=True, progress=False)
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]


def test_optimizer_states_that_do_not_fit_the_model_are_named(tmp_path):
    train(tiny_config(tmp_path, "dcgan", epochs=1), progress=False)
    path = tmp_path / "run" / CHECKPOINT
    ckpt = torch.load(path, weights_only=True)
    del ckpt["optimizer"]["generator"]
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="optimizer state does not fit.*generator"):
        train(tiny_config(tmp_path, "dcgan", epochs=2), resume=True, progress=False)


def test_early_stop_counts_epochs_without_improvement():
    history = [{"epoch": i + 1, "test_fd": v} for i, v in enumerate([5.0, 3.0, 4.0, 3.5])]
    stop = EarlyStop(2, "fd", history)
    assert stop.best_epoch == 2 and stop.best == 3.0 and stop.done
    assert not EarlyStop(3, "fd", history).done
    assert not EarlyStop(None, "fd", history).done and EarlyStop(None, "fd", []).summary() is None
    nan = EarlyStop(1, "fd", [{"epoch": 1, "test_fd": float("nan")}])
    assert nan.best_epoch is None and nan.done  # a non-finite value is never the best


def scripted_metric(monkeypatch, values):
    """The autoencoder's held-out loss replaced by `values`, one per epoch."""
    calls = iter(values)
    real = MODELS["autoencoder"].evaluate

    def evaluate(self, x):
        result = real(self, x)
        if self.training is False and len(x) > 0:
            result[self.main_metric] = next(calls, 99.0)
        return result

    monkeypatch.setattr(MODELS["autoencoder"], "evaluate", evaluate)


def test_early_stop_ends_the_run_and_keeps_the_best_epochs_model(tmp_path, monkeypatch):
    train(tiny_config(tmp_path, "autoencoder", epochs=2, out="two"), progress=False)
    scripted_metric(monkeypatch, [5.0, 3.0, 4.0, 3.5, 1.0])
    cfg = tiny_config(tmp_path, "autoencoder", epochs=9, early_stop=2)
    metrics = train(cfg, progress=False)
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3, 4]  # 3 and 4 not better
    assert metrics["early_stop"] == {
        "patience": 2,
        "stopped_early": True,
        "best_epoch": 2,
        f"best_test_{MODELS['autoencoder'].main_metric}": 3.0,
        "selected_on": "held-out split",
    }
    assert metrics["epochs_run"] == 4 and metrics["epochs"] == 9
    best = GenerativeModel.load(tmp_path / "run" / BEST)
    after_two = GenerativeModel.load(tmp_path / "two" / CHECKPOINT)
    for key, value in after_two.state_dict().items():
        assert torch.equal(value, best.state_dict()[key]), key


def test_without_early_stop_every_epoch_runs_and_no_best_model_is_written(tmp_path, monkeypatch):
    scripted_metric(monkeypatch, [5.0, 6.0, 7.0])
    metrics = train(tiny_config(tmp_path, "autoencoder", epochs=3), progress=False)
    assert len(metrics["history"]) == 3 and metrics["early_stop"] is None
    assert not (tmp_path / "run" / BEST).exists()


def test_overwrite_removes_the_earlier_runs_grids_and_best_model(tmp_path):
    train(tiny_config(tmp_path, "wgan", epochs=2, early_stop=5), progress=False)
    out = tmp_path / "run"
    assert (out / BEST).exists() and len(list((out / EPOCH_SAMPLES).iterdir())) == 2
    train(tiny_config(tmp_path, "wgan", epochs=1), overwrite=True, progress=False)
    assert not (out / BEST).exists()
    assert [p.name for p in (out / EPOCH_SAMPLES).iterdir()] == ["samples_epoch_001.png"]


def test_digit_runs_of_any_sampling_model_report_sample_quality(tmp_path, monkeypatch):
    """On the bundled digits every model that samples is scored with the same metrics."""
    cfg = tiny_config(tmp_path, "vae", epochs=1)
    cfg.data = "digits"
    metrics = train(cfg, progress=False)
    q = metrics["sample_quality"]
    assert q["samples"] == 1000 and q["frechet_distance"] > 0 and len(q["class_histogram"]) == 10
    auto = tiny_config(tmp_path, "autoencoder", epochs=1, out="auto")
    auto.data = "digits"
    assert "sample_quality" not in train(auto, progress=False)  # no sampler: nothing to score


def test_each_epochs_grid_is_that_epochs_model_on_the_same_latents(tmp_path):
    train(tiny_config(tmp_path, "gan", epochs=1), progress=False)
    model = GenerativeModel.load(tmp_path / "run" / CHECKPOINT).eval()
    samples = model.sample(model.picture_samples, torch.Generator().manual_seed(0))
    expected = save_grid(samples, tmp_path / "expected.png")
    grid = tmp_path / "run" / EPOCH_SAMPLES / "samples_epoch_001.png"
    assert grid.read_bytes() == expected.read_bytes()
    train(tiny_config(tmp_path, "gan", epochs=2), resume=True, progress=False)
    assert (grid.parent / "samples_epoch_002.png").read_bytes() != grid.read_bytes()


def test_early_stop_is_refused_where_the_held_out_metric_is_a_discriminators_loss(tmp_path):
    """On images the digit classifier does not know, a logistic discriminator's held-out loss
    is the GAN's metric, and it is lowest when the discriminator wins: no early stop on it."""
    with pytest.raises(TrainingError, match="early-stop.*held_out_d_loss"):
        train(tiny_config(tmp_path, "dcgan", epochs=2, early_stop=1), progress=False)
    metrics = train(tiny_config(tmp_path, "wgan", epochs=1, early_stop=1, out="w"), progress=False)
    assert "held_out_wasserstein" in metrics["test"]  # the critic's estimate: lower is closer


@pytest.mark.parametrize("patience", [0, -1, True, 1.5])
def test_early_stop_must_be_a_positive_number_of_epochs(patience):
    with pytest.raises(TrainingError, match="early_stop must be a positive"):
        TrainConfig("autoencoder", early_stop=patience)


def test_resumed_early_stop_restarts_when_best_pt_is_not_the_best_epoch(tmp_path, monkeypatch):
    """A run resumed without --early-stop can improve past the kept model; resumed with it
    again, the count starts afresh instead of reporting best.pt's older weights as newer."""
    scripted_metric(monkeypatch, [5.0, 4.0, 1.0, 2.0, 3.0])
    train(tiny_config(tmp_path, "autoencoder", epochs=2, early_stop=3), progress=False)
    train(tiny_config(tmp_path, "autoencoder", epochs=3), resume=True, progress=False)
    assert torch.load(tmp_path / "run" / BEST, weights_only=True)["epoch"] == 2
    metrics = train(
        tiny_config(tmp_path, "autoencoder", epochs=5, early_stop=3), resume=True, progress=False
    )
    assert metrics["early_stop"]["best_epoch"] == 4  # counted afresh from epoch 4
    assert torch.load(tmp_path / "run" / BEST, weights_only=True)["epoch"] == 4


def test_gans_score_only_the_digits_not_any_small_grey_images(tmp_path):
    metrics = train(tiny_config(tmp_path, "dcgan", epochs=1), progress=False)
    assert set(metrics["test"]) == {"held_out_d_loss"} and "sample_quality" not in metrics
