"""The training loop's edges: an output folder already in use or not writable, failed writes,
non-finite losses, small datasets, and labelled pictures."""

import errno
import json
import os

import pytest
import torch
from PIL import Image
from train_helpers import tiny_config

from gen_ext import train as train_module
from gen_ext.errors import DataError, TrainingError
from gen_ext.models import MODELS, Autoencoder
from gen_ext.train import train


def leftovers(folder):
    return [name for name in os.listdir(folder) if name.endswith(".tmp")]


def saved_epoch(folder):
    return torch.load(folder / "checkpoint.pt", weights_only=True)["epoch"]


# -- a folder that already holds a run ------------------------------------------------------


def test_a_folder_with_a_checkpoint_is_refused_without_resume_or_overwrite(tmp_path):
    cfg = tiny_config(tmp_path)
    train(cfg, progress=False)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    before = ckpt.read_bytes()
    with pytest.raises(TrainingError, match="already holds a checkpoint") as err:
        train(cfg, progress=False)
    message = str(err.value)
    assert str(ckpt) in message and "--resume" in message and "--overwrite" in message
    assert ckpt.read_bytes() == before


def test_overwrite_starts_over(tmp_path):
    train(tiny_config(tmp_path, epochs=2), progress=False)
    metrics = train(tiny_config(tmp_path, epochs=1), progress=False, overwrite=True)
    assert [h["epoch"] for h in metrics["history"]] == [1]
    assert saved_epoch(tmp_path / "run") == 1
    assert len(json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]) == 1


def test_overwrite_keeps_the_earlier_run_until_the_new_one_can_start(tmp_path):
    train(tiny_config(tmp_path), progress=False)
    cfg = tiny_config(tmp_path)
    cfg.data = str(tmp_path / "missing.npy")
    with pytest.raises(DataError, match="missing.npy"):
        train(cfg, progress=False, overwrite=True)
    assert saved_epoch(tmp_path / "run") == 1 and (tmp_path / "run" / "metrics.json").is_file()


def test_bad_model_settings_are_one_line_training_errors(tmp_path):
    cfg = tiny_config(tmp_path)
    cfg.model_args = {"latent_dim": 2}
    cfg.model = "conv-autoencoder"
    with pytest.raises(
        TrainingError,
        match="model conv-autoencoder: .*latent_dim.*it takes input_shape, channels, bottleneck",
    ):
        train(cfg, progress=False)
    cfg.model_args = {"bottleneck": 64}
    with pytest.raises(TrainingError, match="bottleneck must be narrower than the input"):
        train(cfg, progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_resume_and_overwrite_exclude_each_other(tmp_path):
    with pytest.raises(TrainingError, match="exclude each other"):
        train(tiny_config(tmp_path), resume=True, overwrite=True, progress=False)


# -- the output folder ----------------------------------------------------------------------


def never_train(*args, **kwargs):
    raise AssertionError("training started before the output folder was checked")


def test_an_output_folder_below_a_file_fails_before_training(tmp_path, monkeypatch):
    (tmp_path / "taken").write_text("a file")
    cfg = tiny_config(tmp_path, out="taken/run")
    monkeypatch.setattr(train_module, "_epoch", never_train)
    with pytest.raises(TrainingError, match="not writable") as err:
        train(cfg, progress=False)
    assert str(tmp_path / "taken" / "run") in str(err.value)


def test_an_output_folder_that_is_a_file_fails_before_training(tmp_path, monkeypatch):
    (tmp_path / "run").write_text("a file")
    monkeypatch.setattr(train_module, "_epoch", never_train)
    with pytest.raises(TrainingError, match="is a file"):
        train(tiny_config(tmp_path), progress=False)


def test_a_read_only_output_folder_fails_before_training(tmp_path, monkeypatch):
    # root ignores permission bits, so the refusal is simulated where the probe file is created
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(train_module, "_epoch", never_train)
    monkeypatch.setattr(train_module.tempfile, "mkstemp", refuse)
    with pytest.raises(TrainingError, match="not writable: Permission denied") as err:
        train(tiny_config(tmp_path), progress=False)
    assert str(tmp_path / "run") in str(err.value)


def failing_save(on_call: int, exception):
    """A torch.save that writes part of a file and then fails, on its `on_call`-th call."""
    real, calls = torch.save, {"n": 0}

    def save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] < on_call:
            return real(obj, f, *args, **kwargs)
        if isinstance(f, (str, os.PathLike)):
            with open(f, "wb") as handle:
                handle.write(b"PK\x03\x04 partial")
        else:
            f.write(b"PK\x03\x04 partial")
        raise exception

    return save


def test_a_full_disk_names_the_checkpoint_and_keeps_the_last_one(tmp_path, monkeypatch):
    out = tmp_path / "run"
    no_space = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(torch, "save", failing_save(2, no_space))
    with pytest.raises(TrainingError) as err:
        train(tiny_config(tmp_path, epochs=3), progress=False)
    message = str(err.value)
    assert "epoch 2" in message and str(out / "checkpoint.pt") in message
    assert "No space left on device" in message and "\n" not in message
    assert leftovers(out) == [] and saved_epoch(out) == 1


def test_ctrl_c_in_the_middle_of_a_save_leaves_no_partial_file(tmp_path, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(torch, "save", failing_save(2, KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path, epochs=3), progress=False)
    assert leftovers(out) == [] and saved_epoch(out) == 1


def test_a_failed_picture_keeps_metrics_json(tmp_path, monkeypatch):
    out = tmp_path / "run"

    def no_space(images, path, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(train_module, "save_grid", no_space)
    with pytest.raises(TrainingError, match="No space left on device") as err:
        train(tiny_config(tmp_path), progress=False)
    assert str(out / "reconstructions.png") in str(err.value)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test"]["mse"] > 0 and len(saved["history"]) == 1
    assert leftovers(out) == []


# -- non-finite losses and gradients ------------------------------------------------------------


def poison_step(monkeypatch, step: int, where: str):
    """Autoencoder.loss, made non-finite (`where`="loss") or given a non-finite gradient
    (`where`="gradient") at the `step`-th training step counted over the whole run."""
    real, calls = Autoencoder.loss, {"n": 0}

    def loss(self, x):
        value, logs = real(self, x)
        if self.training:
            calls["n"] += 1
            if calls["n"] == step and where == "loss":
                value = value * float("nan")
            elif calls["n"] == step:
                value.register_hook(lambda grad: grad * float("inf"))
        return value, logs

    monkeypatch.setattr(Autoencoder, "loss", loss)


@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_a_non_finite_step_stops_training_and_keeps_the_last_good_checkpoint(
    tmp_path, monkeypatch, where
):
    out = tmp_path / "run"
    poison_step(monkeypatch, 4 + 3, where)  # 32 training images in batches of 8: 4 steps an epoch
    with pytest.raises(TrainingError, match="epoch 2, step 3 of 4") as err:
        train(tiny_config(tmp_path, epochs=3), progress=False)
    assert ("loss is nan" if where == "loss" else "gradient of") in str(err.value)
    assert "last good checkpoint" in str(err.value)
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert saved["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in saved["model"]["state_dict"].values())
    assert not (out / "metrics.json").exists()


def test_a_non_finite_first_epoch_writes_no_checkpoint(tmp_path, monkeypatch):
    poison_step(monkeypatch, 1, "loss")
    with pytest.raises(TrainingError, match="epoch 1, step 1 of 4.*no checkpoint was written"):
        train(tiny_config(tmp_path, epochs=2), progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


# -- small datasets ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [10, 100, 101])
@pytest.mark.parametrize("model", ["denoising-autoencoder", "vae", "pixelcnn"])
def test_small_datasets_train_evaluate_and_write_every_picture(tmp_path, n, model):
    out = tmp_path / "run"
    metrics = train(tiny_config(tmp_path, model, n=n, batch_size=64), progress=False)
    cls = MODELS[model]
    expected = {"loss_curve"} | ({"samples"} if model != "denoising-autoencoder" else set())
    expected |= {"reconstructions"} if model != "pixelcnn" else set()
    assert set(metrics["pictures"]) == expected
    for path in metrics["pictures"].values():
        assert Image.open(path).format == "PNG"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["train_images"] + saved["test_images"] == n
    assert saved["pictures"] == metrics["pictures"]
    assert saved["test"][cls.main_metric] == metrics["test"][cls.main_metric]


# -- labelled pictures ------------------------------------------------------------------------


def spy(monkeypatch, name):
    real, calls = getattr(train_module, name), []

    def recorded(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, name, recorded)
    return calls


@pytest.mark.parametrize(
    "model,kinds",
    [
        ("autoencoder", ["input", "reconstruction"]),
        ("denoising-autoencoder", ["input", "corrupted input", "reconstruction"]),
    ],
)
def test_reconstruction_rows_are_labelled(tmp_path, monkeypatch, model, kinds):
    calls = spy(monkeypatch, "save_grid")
    train(tiny_config(tmp_path, model, n=101), progress=False)  # 20 test images: 2 rows of 8
    ((args, kwargs),) = [c for c in calls if str(c[0][1]).endswith("reconstructions.png")]
    assert kwargs["row_labels"] == kinds * 2 and kwargs["columns"] == 8
    assert args[0].shape[0] == len(kinds) * 2 * 8


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_names_the_unit_of_its_loss(model):
    assert MODELS[model].unit not in ("", "loss")


@pytest.mark.parametrize(
    "model,unit", [("autoencoder", "MSE"), ("vae", "nats per image"), ("pixelcnn", "bits/dim")]
)
def test_the_loss_curve_has_a_y_label_with_units_and_a_readable_size(
    tmp_path, monkeypatch, model, unit
):
    calls = spy(monkeypatch, "save_curve_panels")
    metrics = train(tiny_config(tmp_path, model), progress=False)
    ((args, _),) = calls
    ((panel),) = args[1]
    assert unit in panel.ylabel
    width, height = Image.open(metrics["pictures"]["loss_curve"]).size
    assert width >= 700 and height >= 480
