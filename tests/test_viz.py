"""PNG output: grids with row labels, atomic writes of result files."""

import errno
import os

import numpy as np
import pytest
import torch
from PIL import Image

from gen_ext import viz
from gen_ext.files import atomic_write, atomic_write_bytes, new_file_mode


def test_row_labels_are_drawn_beside_the_rows(tmp_path, monkeypatch):
    images = torch.rand(12, 1, 8, 8)
    bare = Image.open(viz.save_grid(images, tmp_path / "bare.png", columns=4))
    calls = []
    real = viz.draw_row_labels
    monkeypatch.setattr(
        viz,
        "draw_row_labels",
        lambda grid, labels, **kw: calls.append(labels) or real(grid, labels, **kw),
    )
    labels = ["input", "corrupted input", "reconstruction"]
    labelled = Image.open(
        viz.save_grid(images, tmp_path / "labelled.png", columns=4, row_labels=labels)
    )
    assert calls == [labels]
    assert labelled.height == bare.height and labelled.width > bare.width
    margin = labelled.convert("L").crop((0, 0, labelled.width - bare.width, labelled.height))
    assert np.asarray(margin).min() < 128  # some text was drawn there
    with pytest.raises(ValueError, match="one label per row"):
        viz.save_grid(images, tmp_path / "x.png", columns=4, row_labels=["input"])


def test_the_loss_curve_labels_its_axes(tmp_path, monkeypatch):
    import matplotlib.axes

    labels = []
    real = matplotlib.axes.Axes.set_ylabel
    monkeypatch.setattr(
        matplotlib.axes.Axes,
        "set_ylabel",
        lambda self, text, **kw: labels.append(text) or real(self, text, **kw),
    )
    history = [
        {"epoch": 1, "train_loss": 2.0, "test_x": 1.5},
        {"epoch": 2, "train_loss": 1.0, "test_x": 1.2},
    ]
    path = viz.save_curves(
        history, ["train_loss", "test_x"], tmp_path / "c.png", "t", ylabel="loss (bits/dim)"
    )
    assert labels == ["loss (bits/dim)"]
    assert Image.open(path).size[0] >= 700


@pytest.mark.parametrize(
    "failure", [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), KeyboardInterrupt()]
)
def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path, failure):
    path = tmp_path / "result.json"
    path.write_text("old")

    def write(f):
        f.write(b"part of the new")
        raise failure

    with pytest.raises(type(failure)) as err:
        atomic_write(path, write)
    if isinstance(failure, OSError):
        assert err.value.filename == str(path) and err.value.errno == errno.ENOSPC
        assert str(path) in str(err.value)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["result.json"]


def test_atomic_writes_give_the_mode_a_plain_open_would(tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    written = atomic_write_bytes(tmp_path / "atomic", b"x")
    assert written.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == new_file_mode()


@pytest.mark.parametrize("umask", [0o077, 0o002])
def test_atomic_writes_follow_the_umask_of_the_moment(tmp_path, umask):
    """The umask set after import decides, as it does for open()."""
    previous = os.umask(umask)
    try:
        plain = tmp_path / "plain"
        plain.write_bytes(b"x")
        written = atomic_write_bytes(tmp_path / "atomic", b"x")
    finally:
        os.umask(previous)
    assert written.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~umask


def test_curve_panels_draw_per_step_values_log_axes_and_reference_lines(tmp_path, monkeypatch):
    import matplotlib.axes

    plotted, hlines, scales = [], [], []
    real_plot, real_hline, real_scale = (
        matplotlib.axes.Axes.plot,
        matplotlib.axes.Axes.axhline,
        matplotlib.axes.Axes.set_yscale,
    )
    monkeypatch.setattr(
        matplotlib.axes.Axes,
        "plot",
        lambda self, x, y, **kw: (
            plotted.append((list(x), list(y), kw["label"])) or real_plot(self, x, y, **kw)
        ),
    )
    monkeypatch.setattr(
        matplotlib.axes.Axes,
        "axhline",
        lambda self, y, **kw: hlines.append((y, kw["label"])) or real_hline(self, y, **kw),
    )
    monkeypatch.setattr(
        matplotlib.axes.Axes,
        "set_yscale",
        lambda self, v, **kw: scales.append(v) or real_scale(self, v, **kw),
    )
    history = [
        {"epoch": 1, "train_w": 2.0, "test_fd": 100.0, "steps": {"w": [1.0, 3.0]}},
        {"epoch": 2, "train_w": 5.0, "test_fd": 30.0, "steps": {"w": [4.0, 6.0]}},
    ]
    panels = [
        viz.CurvePanel("w", {"train_w": "estimate"}, step_keys=("train_w",)),
        viz.CurvePanel("fd", {"test_fd": "FD"}, log=True, references={"real": 16.4}),
    ]
    path = viz.save_curve_panels(history, panels, tmp_path / "p.png", "run")
    assert plotted[0] == ([0.5, 1.0, 1.5, 2.0], [1.0, 3.0, 4.0, 6.0], "estimate")
    assert plotted[1] == ([1, 2], [100.0, 30.0], "FD")
    assert hlines == [(16.4, "real")] and scales == ["log"]
    width, height = Image.open(path).size
    assert width > 1400  # two panels side by side
