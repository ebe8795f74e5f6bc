"""gen-ext receptive-field: the dependence set of one output pixel (exact gradients) and its
picture."""

import pytest
import torch
from PIL import Image

from gen_ext.cli import main
from gen_ext.models import GatedPixelCNN, PixelCNN, PixelCNNPlusPlus, PixelRNN
from gen_ext.receptive_field import (
    FUTURE,
    MISSED,
    SEEN,
    TARGET,
    draw_receptive_field,
    earlier_sub_pixels,
    receptive_field,
)

SMALL = {
    PixelCNN: dict(hidden=6, blocks=2, head=12),
    GatedPixelCNN: dict(channels=12, layers=3, kernel_size=5, head=24),
    PixelCNNPlusPlus: dict(channels=4, resolutions=2, blocks=2, mixtures=2, dropout=0.0),
    PixelRNN: dict(hidden=6, layers=1, head=12),
}


def model(cls, C, size=6):
    torch.manual_seed(0)
    return cls(input_shape=(C, size, size), levels=4, **SMALL[cls])


@pytest.mark.parametrize("cls", list(SMALL))
@pytest.mark.parametrize("C", [1, 3])
def test_field_is_the_exact_dependence_set(cls, C):
    """Gated PixelCNN and PixelCNN++ see every earlier sub-pixel; PixelCNN misses its blind spot
    above and to the right; PixelRNN misses only the last colour of the row above's last pixel
    (the dependence tests of tests/test_models_pixelcnn.py say why); none sees a later one."""
    size, pixel = 6, (3, 1)
    # many images: with a few units per colour, a ReLU can be off at the pixel in several
    field = receptive_field(model(cls, C, size), pixel, images=16)
    groups = C if cls is not PixelCNNPlusPlus else 1
    allowed = earlier_sub_pixels((C, size, size), groups, pixel)
    assert field.shape == (groups, C, size, size)
    assert not (field & ~allowed).any()
    missed = allowed & ~field
    if cls is PixelCNN:  # a blind spot, all of it above and to the right
        rows, cols = missed.nonzero()[:, 2], missed.nonzero()[:, 3]
        assert missed.any() and (rows < pixel[0]).all() and (cols > pixel[1]).all()
    elif cls is PixelRNN:
        want = torch.zeros_like(missed)
        want[:, C - 1, 2, size - 1] = True  # (3, 1): 1 < size - 4, out of the 7x7 conv's reach
        assert torch.equal(missed, want)
    else:
        assert not missed.any()


def test_picture_shows_the_field(tmp_path):
    """Each cell's colour says what the field and the raster order say about it."""
    size, pixel, cell = 6, (3, 1), 20
    field = receptive_field(model(PixelCNN, 1, size), pixel)
    path = draw_receptive_field(field, pixel, tmp_path / "f.png", "title", cell=cell)
    image = Image.open(path).convert("RGB")
    allowed = earlier_sub_pixels((1, size, size), 1, pixel)
    # the panel's top-left corner: the cells lie on a grid of `cell` pixels; find it by the
    # output pixel's orange
    pixels = image.load()
    xs = [x for x in range(image.width) for y in range(image.height) if pixels[x, y] == TARGET]
    ys = [y for x in range(image.width) for y in range(image.height) if pixels[x, y] == TARGET]
    left, top = min(xs) - pixel[1] * cell, min(ys) - pixel[0] * cell
    for h in range(size):
        for w in range(size):
            colour = pixels[left + w * cell + cell // 2, top + h * cell + cell // 2]
            if (h, w) == pixel:
                want = TARGET
            elif field[0, 0, h, w]:
                want = SEEN
            elif allowed[0, 0, h, w]:
                want = MISSED
            else:
                want = FUTURE
            assert colour == want, (h, w)


def test_cli_writes_the_picture_and_names_the_blind_spot(tmp_path, capsys):
    out = tmp_path / "rf.png"
    assert main(["receptive-field", "pixelcnn", "--size", "12", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "output pixel (6, 6) sees" in printed and "blind spot:" in printed
    assert Image.open(out).format == "PNG"
    assert main(["receptive-field", "gated-pixelcnn", "--size", "8", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sees 36 of the 36 earlier" in printed and "blind spot" not in printed


def test_cli_refuses_what_it_cannot_draw(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["receptive-field", "pixelcnn", "--size", "8", "--pixel", "8", "0"])
    assert err.value.code == 2
    assert "--pixel 8 0: must lie in the 8x8 image" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        main(["receptive-field", "autoencoder"])
    assert err.value.code == 2


def test_the_callers_model_keeps_its_dtype_and_mode():
    m = model(PixelCNN, 1).train()
    receptive_field(m, (2, 2), images=1)
    assert next(m.parameters()).dtype == torch.float32 and m.training
