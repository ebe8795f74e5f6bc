"""`python -m gen_ext.results_table`: the README's tables from the metrics.json files of runs."""

import json
import subprocess
import sys
from pathlib import Path

from gen_ext import results_table

RUN = {
    "model": "pixelcnn",
    "data": "digits",
    "epochs": 3,
    "seconds_this_run": 12.0,
    "config": {"input_shape": [1, 8, 8]},
    "test": {"bits_per_dim": 1.25},
    "baseline": {"uniform_bits_per_dim": 4.087, "histogram_bits_per_dim": 2.5},
}


def test_likelihood_run_row_and_table(tmp_path, capsys):
    (tmp_path / "pixelcnn").mkdir()
    (tmp_path / "pixelcnn" / "metrics.json").write_text(json.dumps(RUN))
    results_table.main(str(tmp_path))
    out = capsys.readouterr().out
    assert "| pixelcnn | digits | 3 | 1.250 bits/dim | uniform 4.087, histogram 2.500" in out
    assert "| uniform | 4.087 |" in out
    assert "| pixelcnn | 1.250 (3 epochs, 12 s) |" in out


def test_runs_as_a_module(tmp_path):
    """The Makefile's `results` target runs it as `python -m gen_ext.results_table FOLDER`."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "gen_ext.results_table", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=root,
        check=True,
    )
    assert done.stdout.splitlines()[0].startswith("| model | data |")


def test_sound_run_row(tmp_path, capsys):
    run = {
        "model": "wavenet",
        "data": "synthetic",
        "epochs": 2,
        "seconds_this_run": 30.0,
        "config": {"input_shape": [1, 1024]},
        "test": {"bits_per_sample": 5.1234, "nll_nats": 3636.0},
        "baseline": {"uniform_bits_per_sample": 8.0, "histogram_bits_per_sample": 7.803},
    }
    (tmp_path / "wavenet").mkdir()
    (tmp_path / "wavenet" / "metrics.json").write_text(json.dumps(run))
    results_table.main(str(tmp_path))
    out = capsys.readouterr().out
    assert (
        "| wavenet | synthetic | 2 | 5.123 bits/sample | uniform 8.000, histogram of the levels "
        "7.803 bits/sample | 30 s |" in out
    )


QUALITY = {
    "frechet_distance": 21.5,
    "precision": 0.71,
    "recall": 0.88,
    "coverage": 1.0,
    "class_entropy": 0.99,
    "collapsed": False,
}


def test_gan_runs_and_the_sample_quality_table(tmp_path, capsys):
    gan = {
        **RUN,
        "model": "dcgan",
        "epochs": 100,
        "seconds_this_run": 104.0,
        "test": dict(QUALITY),
        "sample_quality": dict(QUALITY),
    }
    vae = {
        **RUN,
        "model": "vae",
        "config": {"input_shape": [1, 8, 8], "likelihood": "logistic"},
        "test": {"neg_elbo": 88.1, "neg_iw_bound": 85.3, "iw_samples": 64, "kl": 10.6},
        "sample_quality": {**QUALITY, "frechet_distance": 90.0, "collapsed": True},
    }
    for name, run in (("dcgan", gan), ("vae", vae)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(run))
    results_table.main(str(tmp_path))
    out = capsys.readouterr().out
    assert (
        "| dcgan | digits | 100 | Fréchet 21.5, precision 0.71, recall 0.88 | coverage 1.0 |" in out
    )
    lines = out.splitlines()
    real = next(i for i, line in enumerate(lines) if line.startswith("| real: the 1,438"))
    one = next(i for i, line in enumerate(lines) if line.startswith("| one class: the 152"))
    dcgan = next(i for i, line in enumerate(lines) if line.startswith("| dcgan | 21.5 |"))
    vae_row = next(i for i, line in enumerate(lines) if line.startswith("| vae (logistic) | 90.0"))
    assert real < one < dcgan < vae_row  # references first, then best Fréchet distance first
    assert lines[one].split("|")[7].strip() == "yes"  # the one-class set is flagged collapsed
    assert lines[vae_row].split("|")[7].strip() == "yes"
    assert lines[dcgan].endswith("| 100, 104 s |")


def test_samples_picture_draws_a_labelled_row_per_digit_model(tmp_path, capsys, monkeypatch):
    from PIL import Image
    from train_helpers import tiny_config

    from gen_ext import viz
    from gen_ext.train import train

    for model in ("vae", "gan"):
        cfg = tiny_config(tmp_path, model, out=f"train/{model}")
        cfg.data, cfg.batch_size = "digits", 256
        train(cfg, progress=False)
    calls = []
    real = viz.save_grid
    monkeypatch.setattr(
        viz,
        "save_grid",
        lambda images, path, **kw: calls.append((images, kw)) or real(images, path, **kw),
    )
    picture = tmp_path / "samples.png"
    results_table.main(str(tmp_path / "train"), str(picture))
    assert f"written: {picture}" in capsys.readouterr().out
    ((images, kw),) = calls
    assert images.shape == (2 * results_table.SAMPLES_PER_ROW, 1, 8, 8)
    assert sorted(kw["row_labels"]) == ["gan", "vae (mse)"]
    assert Image.open(picture).size[1] > 2 * 8 * 4  # two rows of 8-pixel images at scale 4


def test_an_early_stopped_run_is_named_with_its_kept_epoch():
    run = {
        **RUN,
        "model": "began",
        "epochs": 100,
        "epochs_run": 77,
        "early_stop": {"best_epoch": 67, "stopped_early": True},
        "sample_quality": dict(QUALITY),
    }
    (line,) = [x for x in results_table.quality_table([run]) if x.startswith("| began")]
    assert line.startswith("| began, early stop: epoch 67 | 21.5 |")
    assert line.endswith("| 77, 12 s |")
