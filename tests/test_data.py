"""gen_ext.data: the bundled datasets and a user's own images, with clear errors for bad data."""

import numpy as np
import pytest
import torch
from PIL import Image

from gen_ext import data
from gen_ext.data import DataError


def test_digits():
    d = data.digits()
    assert d.shape == (1, 8, 8) and d.levels == 17
    assert d.train.shape[0] + d.test.shape[0] == 1797 and d.test.shape[0] == 359
    levels = d.train * 16
    assert torch.equal(levels, levels.round()) and d.train.min() == 0 and d.train.max() == 1
    again = data.digits()
    assert torch.equal(d.test, again.test) and torch.equal(d.test_labels, again.test_labels)
    assert set(d.train_labels.tolist()) == set(range(10))
    assert torch.equal(data.ImageData.signed(torch.tensor([0.0, 1.0])), torch.tensor([-1.0, 1.0]))


def test_rgb_patches():
    d = data.rgb_patches(size=8, count=100)
    assert d.shape == (3, 8, 8) and d.levels == 256 and d.train.shape[0] == 80
    assert torch.equal(d.train, data.rgb_patches(size=8, count=100).train)
    assert torch.equal(d.train * 255, (d.train * 255).round())


def write_images(folder, n, mode="L", size=(10, 12)):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        shape = size[::-1] if mode == "L" else (*size[::-1], 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"{i}.png")


def test_image_folder(tmp_path):
    write_images(tmp_path / "gray", 5)
    d = data.load(str(tmp_path / "gray"), image_size=8)
    assert d.shape == (1, 8, 8) and d.train.shape[0] + d.test.shape[0] == 5 and d.levels == 256
    write_images(tmp_path / "rgb", 4, mode="RGB")
    assert data.image_folder(tmp_path / "rgb", size=4).shape == (3, 4, 4)


def test_array_files(tmp_path):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "a.npy", rng.integers(0, 256, (10, 6, 6), dtype=np.uint8))
    d = data.load(str(tmp_path / "a.npy"))
    assert d.shape == (1, 6, 6) and d.train.max() <= 1
    np.savez(tmp_path / "b.npz", images=rng.random((10, 4, 4, 3)), labels=np.arange(10))
    assert data.array_file(tmp_path / "b.npz").shape == (3, 4, 4)


def _file(path, content: bytes):
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda p: (p / "empty").mkdir() or p / "empty", "no image files"),
        (
            lambda p: _file(p / "bad" / "x.png", b"not a png").parent,
            "x.png: cannot read as an image",
        ),
        (
            lambda p: np.save(p / "r.npy", np.zeros((3, 4))) or p / "r.npy",
            "expected images of shape",
        ),
        (
            lambda p: np.save(p / "f.npy", np.full((3, 4, 4), 2.0)) or p / "f.npy",
            "must lie in \\[0, 1\\]",
        ),
        (
            lambda p: np.savez(p / "m.npz", a=np.zeros((2, 4, 4)), b=np.zeros(2)) or p / "m.npz",
            "name the images 'images' or 'x'",
        ),
        (lambda p: _file(p / "c.npy", b"garbage"), "cannot read as .npy"),
        (lambda p: p / "missing.npy", "no such file"),
        (lambda p: "nonsense", "expected digits, rgb-patches"),
        (
            lambda p: np.save(p / "one.npy", np.zeros((1, 4, 4))) or p / "one.npy",
            "at least 2 images",
        ),
    ],
)
def test_bad_data_is_a_clear_error(tmp_path, setup, message):
    with pytest.raises(DataError, match=message):
        data.load(str(setup(tmp_path)))
