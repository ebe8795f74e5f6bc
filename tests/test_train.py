"""gen-ext train / sample: outputs, atomic checkpoints, resume after an interruption."""

import json

import pytest
import torch

from gen_ext import train as train_module
from gen_ext.cli import main
from gen_ext.errors import CheckpointError
from gen_ext.train import TrainConfig, pca_reconstruction_mse, train


def cfg(tmp_path, model="autoencoder", epochs=2, **kw):
    return TrainConfig(model=model, epochs=epochs, out=str(tmp_path / model), **kw)


def test_outputs_and_pca_baseline(tmp_path):
    metrics = train(cfg(tmp_path), progress=False)
    out = tmp_path / "autoencoder"
    for name in ("checkpoint.pt", "metrics.json", "loss_curve.png", "reconstructions.png"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test"]["mse"] == metrics["test"]["mse"] and len(saved["history"]) == 2
    assert saved["baseline"]["pca_components"] == 16
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_pca_baseline_is_exact_at_full_rank():
    x = torch.rand(50, 1, 2, 3)
    assert pca_reconstruction_mse(x, x, 6) < 1e-20
    assert pca_reconstruction_mse(x, x, 1) > pca_reconstruction_mse(x, x, 3) > 0


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    straight = train(cfg(tmp_path / "a", epochs=3), progress=False)
    # interrupt the second run in its second epoch: the first epoch's checkpoint survives
    real_epoch, calls = train_module._epoch, {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train_module, "_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(cfg(tmp_path / "b", epochs=3), progress=False)
    saved = torch.load(tmp_path / "b" / "autoencoder" / "checkpoint.pt", weights_only=True)
    assert saved["epoch"] == 1
    monkeypatch.setattr(train_module, "_epoch", real_epoch)
    resumed = train(cfg(tmp_path / "b", epochs=3), resume=True, progress=False)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    assert resumed["test"]["mse"] == pytest.approx(straight["test"]["mse"], rel=1e-6)


def test_resume_checks(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train(cfg(tmp_path), resume=True, progress=False)
    train(cfg(tmp_path, epochs=1), progress=False)
    other = TrainConfig(
        model="autoencoder", epochs=2, out=str(tmp_path / "autoencoder"), model_args={"hidden": 64}
    )
    with pytest.raises(ValueError, match="trained with model_args"):
        train(other, resume=True, progress=False)


def test_cli_train_and_sample(tmp_path, capsys):
    out = tmp_path / "vae"
    assert (
        main(
            [
                "train",
                "vae",
                "--epochs",
                "1",
                "--out",
                str(out),
                "--set",
                "likelihood=logistic",
                "--set",
                "iw_samples=4",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "neg_elbo" in printed and "neg_iw_bound" in printed
    assert (out / "samples.png").is_file()
    assert (
        main(["sample", str(out / "checkpoint.pt"), "-n", "9", "--out", str(tmp_path / "s.png")])
        == 0
    )
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    main(["train", "autoencoder", "--epochs", "1", "--out", str(tmp_path / "ae")])
    capsys.readouterr()
    # the command's errors are one line on stderr (tests/test_cli_errors.py has the rest)
    assert main(["sample", str(tmp_path / "ae" / "checkpoint.pt")]) == 1
    assert "no prior to sample from" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["train", "vae", "--set", "latent_dim"])
    assert exit_.value.code == 2 and "--set expects KEY=VALUE" in capsys.readouterr().err


def test_default_epochs_come_from_the_model():
    from gen_ext.models import MODELS

    assert TrainConfig(model="autoencoder").epochs == 100
    assert TrainConfig(model="pixelcnn++").epochs == MODELS["pixelcnn++"].default_epochs
    assert TrainConfig(model="pixelcnn++", epochs=3).epochs == 3
