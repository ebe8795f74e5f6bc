"""Checkpoints: a bad file gives one clear CheckpointError (loading a model and resuming a run),
a model class refuses another's checkpoint, and resuming repeats an uninterrupted run exactly."""

import os

import pytest
import torch
from train_helpers import TINY, tiny_config

from gen_ext import train as train_module
from gen_ext.errors import CheckpointError
from gen_ext.models import MODELS, VAE, Autoencoder, DenoisingAutoencoder, GenerativeModel
from gen_ext.train import train


class NotATensor:
    pass


def write_bad(kind: str, path, good):
    """A checkpoint file at `path` that is bad in the way `kind` says; `good` is a real one."""
    if kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "random bytes":
        path.write_bytes(os.urandom(1000))
    elif kind == "python object":
        torch.save({"model": NotATensor()}, path)
    elif kind == "tensor":
        torch.save(torch.zeros(3), path)
    elif kind == "other dictionary":
        torch.save({"weights": torch.zeros(3), "step": 4}, path)
    elif kind == "bare state_dict":
        torch.save(Autoencoder(hidden=8, bottleneck=4).state_dict(), path)
    elif kind != "missing":
        raise ValueError(kind)


BAD = [
    "missing",
    "folder",
    "empty",
    "truncated",
    "random bytes",
    "python object",
    "tensor",
    "other dictionary",
    "bare state_dict",
]
WHY = {
    "missing": "no such file",
    "folder": "is a folder",
    "empty": "empty",
    "truncated": "truncated",
    "random bytes": "does not start like a torch file",
    "python object": "Python objects",
    "tensor": "holds a Tensor",
    "other dictionary": "keys ['step', 'weights']",
    "bare state_dict": "bare state_dict",
}


@pytest.fixture
def saved_model(tmp_path):
    path = tmp_path / "good.pt"
    Autoencoder(hidden=8, bottleneck=4).save(path)
    return path


def assert_one_clear_line(err, path, why):
    message = str(err.value)
    assert str(path) in message and why in message and "\n" not in message
    assert "expected" in message or "no checkpoint" in message


@pytest.mark.parametrize("kind", BAD)
def test_loading_a_bad_checkpoint_says_what_is_wrong(tmp_path, saved_model, kind):
    path = tmp_path / "bad.pt"
    write_bad(kind, path, saved_model)
    with pytest.raises(CheckpointError) as err:
        GenerativeModel.load(path)
    assert_one_clear_line(err, path, WHY[kind])


@pytest.mark.parametrize("kind", BAD)
def test_resuming_from_a_bad_checkpoint_says_what_is_wrong(tmp_path, saved_model, kind):
    cfg = tiny_config(tmp_path)
    path = tmp_path / "run" / "checkpoint.pt"
    path.parent.mkdir()
    write_bad(kind, path, saved_model)
    with pytest.raises(CheckpointError) as err:
        train(cfg, resume=True, progress=False)
    assert_one_clear_line(err, path, "no checkpoint" if kind == "missing" else WHY[kind])


def test_resuming_from_a_saved_model_asks_for_the_training_checkpoint(tmp_path, saved_model):
    cfg = tiny_config(tmp_path)
    path = tmp_path / "run" / "checkpoint.pt"
    path.parent.mkdir()
    path.write_bytes(saved_model.read_bytes())
    with pytest.raises(CheckpointError, match="saved by GenerativeModel.save"):
        train(cfg, resume=True, progress=False)


def test_resuming_another_models_run_is_refused(tmp_path):
    train(tiny_config(tmp_path, "vae"), progress=False)
    cfg = tiny_config(tmp_path, "autoencoder")
    with pytest.raises(CheckpointError, match="trained with model='vae', not 'autoencoder'"):
        train(cfg, resume=True, progress=False)


def test_a_model_class_refuses_another_models_checkpoint(tmp_path, saved_model):
    with pytest.raises(
        CheckpointError, match="holds a checkpoint of Autoencoder, expected one of VAE"
    ) as err:
        VAE.load(saved_model)
    assert str(saved_model) in str(err.value)
    with pytest.raises(CheckpointError, match="expected one of DenoisingAutoencoder"):
        DenoisingAutoencoder.load(saved_model)
    assert type(Autoencoder.load(saved_model)) is Autoencoder
    assert type(GenerativeModel.load(saved_model)) is Autoencoder
    # a subclass's checkpoint is one of its base class
    DenoisingAutoencoder(hidden=8, bottleneck=8).save(tmp_path / "dae.pt")
    assert type(Autoencoder.load(tmp_path / "dae.pt")) is DenoisingAutoencoder


def test_weights_that_do_not_fit_their_config_are_named(tmp_path):
    ckpt = Autoencoder(hidden=8, bottleneck=4).checkpoint()
    ckpt["config"]["hidden"] = 9
    torch.save(ckpt, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="weights do not fit Autoencoder") as err:
        GenerativeModel.load(tmp_path / "m.pt")
    assert "\n" not in str(err.value)
    ckpt["class"] = "NoSuchModel"
    torch.save(ckpt, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="unknown model class 'NoSuchModel'"):
        GenerativeModel.load(tmp_path / "m.pt")


def assert_resume_repeats_the_run(tmp_path, monkeypatch, model, device="cpu"):
    # the pictures come after the last checkpoint and sampling is slow: leave them out here
    monkeypatch.setattr(train_module, "_pictures", lambda *args, **kwargs: {})
    run = lambda epochs, out: tiny_config(tmp_path, model, epochs=epochs, out=out, device=device)  # noqa: E731
    straight = train(run(2, "straight"), progress=False)
    train(run(1, "resumed"), progress=False)
    resumed = train(run(2, "resumed"), resume=True, progress=False)
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    assert a["model"]["state_dict"].keys() == b["model"]["state_dict"].keys()
    for name, value in a["model"]["state_dict"].items():
        assert torch.equal(value, b["model"]["state_dict"][name]), name
    assert torch.equal(a["rng"]["cpu"], b["rng"]["cpu"])
    assert resumed["history"] == straight["history"]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_resuming_repeats_an_uninterrupted_run_exactly(tmp_path, monkeypatch, model):
    assert set(TINY) == set(MODELS)
    assert_resume_repeats_the_run(tmp_path, monkeypatch, model)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("model", ["vae", "denoising-autoencoder"])
def test_resuming_on_cuda_restores_the_cuda_random_state(tmp_path, monkeypatch, model):
    assert_resume_repeats_the_run(tmp_path, monkeypatch, model, device="cuda")
