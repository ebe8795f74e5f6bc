"""gen_ext.data: the bundled datasets and a user's own images, with clear errors for bad data."""

import re
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from gen_ext import data
from gen_ext.data import MIN_IMAGES, DataError, DataWarning

SIZE = 4  # files are written at the loaded size, so resizing leaves their pixels as they are


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
    write_images(tmp_path / "gray", 10)
    d = data.load(str(tmp_path / "gray"), image_size=8)
    assert d.shape == (1, 8, 8) and d.train.shape[0] + d.test.shape[0] == 10 and d.levels == 256
    write_images(tmp_path / "rgb", 10, mode="RGB")
    assert data.image_folder(tmp_path / "rgb", size=4).shape == (3, 4, 4)


# ---- every image mode, scaled by what its pixels hold --------------------------------------


def all_images(d) -> torch.Tensor:
    return torch.cat([d.train, d.test])


def assert_same_images(loaded: torch.Tensor, expected: torch.Tensor):
    """The split shuffles the files: compare the two sets of images, in a common order."""
    assert loaded.shape == expected.shape
    assert sorted(loaded.flatten(1).tolist()) == sorted(expected.flatten(1).tolist())


def as_levels(k) -> torch.Tensor:
    """Level indices [N, H, W] or [N, H, W, C] -> images [N, C, H, W] of k / 255."""
    t = torch.as_tensor(np.asarray(k, dtype=np.float32))
    return (t[:, None] if t.ndim == 3 else t.permute(0, 3, 1, 2)) / 255


def save_all(folder, images, suffix, **kwargs):
    folder.mkdir(exist_ok=True)
    for i, im in enumerate(images):
        im.save(folder / f"{i}{suffix}", **kwargs)
    return folder


def reopened_mode(folder):
    with Image.open(next(folder.iterdir())) as im:
        return im.mode


def load_quietly(folder):
    """Load with every warning an error: data needing no change must load without a notice."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return data.image_folder(folder, size=SIZE)


def sixteen_bit_pixels(n=10):
    pixels = np.random.default_rng(2).integers(0, 65536, (n, SIZE, SIZE)).astype(np.uint16)
    pixels[0, 0, :3] = (32768, 0, 65535)
    return pixels


@pytest.mark.parametrize(
    "suffix,mode", [(".png", "I;16"), (".tif", "I;16"), (".tif", "I;16B"), (".pgm", "I")]
)
def test_16bit_images_are_scaled_by_their_depth(tmp_path, suffix, mode):
    pixels = sixteen_bit_pixels()
    for i, px in enumerate(pixels):
        if suffix == ".pgm":  # Pillow reads 16-bit PGM (and 16-bit PNG before Pillow 10) as I
            header = f"P5 {SIZE} {SIZE} 65535\n".encode()
            (tmp_path / f"{i}.pgm").write_bytes(header + px.astype(">u2").tobytes())
        else:
            raw = px.astype(">u2" if mode == "I;16B" else "<u2").tobytes()
            Image.frombytes(mode, (SIZE, SIZE), raw).save(tmp_path / f"{i}{suffix}")
    assert reopened_mode(tmp_path) == mode
    with pytest.warns(DataWarning, match=r"10 images hold samples finer than 256 levels") as notes:
        d = data.image_folder(tmp_path, size=SIZE)
    expected = as_levels(np.round(pixels / 257))  # 65535 / 255 = 257 values per level
    assert abs(expected[0, 0, 0, 0] - 0.5) < 1 / 255  # 32768 is half the range, not white
    assert_same_images(all_images(d), expected)
    assert d.levels == 256 and d.shape == (1, SIZE, SIZE)
    moved = int((np.abs(pixels / 257 - np.round(pixels / 257)) > 1e-3).sum())
    assert f"{moved:,} of {pixels.size:,} values moved" in str(notes[0].message)


def test_16bit_images_holding_8bit_levels_need_no_notice(tmp_path):
    levels = np.random.default_rng(3).integers(0, 256, (10, SIZE, SIZE))
    save_all(tmp_path, [Image.fromarray((k * 257).astype(np.uint16)) for k in levels], ".png")
    assert_same_images(all_images(load_quietly(tmp_path)), as_levels(levels))


def test_32bit_integer_tiff_is_scaled_by_its_depth(tmp_path):
    full = 2**31 - 1  # Pillow writes mode I as signed 32-bit TIFF (SampleFormat 2)
    pixels = np.random.default_rng(4).integers(0, full + 1, (10, SIZE, SIZE)).astype(np.int32)
    save_all(tmp_path, [Image.fromarray(px) for px in pixels], ".tif")
    assert reopened_mode(tmp_path) == "I"
    with pytest.warns(DataWarning, match="finer than 256 levels"):
        d = data.image_folder(tmp_path, size=SIZE)
    assert_same_images(all_images(d), as_levels(np.round(pixels / full * 255)))


def test_integer_image_outside_its_depth_is_an_error(tmp_path):
    pixels = np.zeros((10, SIZE, SIZE), np.int32)
    pixels[3, 1, 1] = -7
    save_all(tmp_path, [Image.fromarray(px) for px in pixels], ".tif")
    with pytest.raises(
        DataError,
        match=r"3\.tif: 32-bit signed integer pixels must lie in "
        r"\[0, 2147483647\], got values in \[-7, 0\]",
    ):
        data.image_folder(tmp_path, size=SIZE)


def test_float_tiff_is_quantized_with_a_notice(tmp_path):
    pixels = np.random.default_rng(5).random((10, SIZE, SIZE)).astype(np.float32)
    save_all(tmp_path, [Image.fromarray(px) for px in pixels], ".tif")
    assert reopened_mode(tmp_path) == "F"
    with pytest.warns(DataWarning, match=r"by at most 0\.\d+ levels"):
        d = data.image_folder(tmp_path, size=SIZE)
    assert_same_images(all_images(d), as_levels(np.round(pixels.astype(np.float64) * 255)))


@pytest.mark.parametrize(
    "bad,message",
    [
        (np.nan, r"1 of 16 values are not finite"),
        (1.5, r"must lie in \[0, 1\], got values in \[0, 1.5\]"),
    ],
)
def test_bad_float_tiff_is_an_error(tmp_path, bad, message):
    pixels = np.zeros((10, SIZE, SIZE), np.float32)
    pixels[6, 2, 2] = bad
    save_all(tmp_path, [Image.fromarray(px) for px in pixels], ".tif")
    with pytest.raises(DataError, match=r"6\.tif: .*" + message):
        data.image_folder(tmp_path, size=SIZE)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_1bit_images_are_0_and_1(tmp_path, suffix):
    bits = np.random.default_rng(6).random((10, SIZE, SIZE)) < 0.5
    save_all(tmp_path, [Image.fromarray(b) for b in bits], suffix)
    assert reopened_mode(tmp_path) == "1"
    assert_same_images(all_images(load_quietly(tmp_path)), as_levels(bits * 255))


PALETTE = np.array([[255, 0, 0], [0, 128, 255], [10, 20, 30], [250, 250, 0]], np.uint8)


def palette_images(palette, n=10):
    indices = np.random.default_rng(7).integers(0, len(palette), (n, SIZE, SIZE)).astype(np.uint8)
    images = []
    for idx in indices:
        im = Image.fromarray(idx, "P")
        im.putpalette(palette.flatten().tolist())
        images.append(im)
    return indices, images


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_palette_images_take_their_colours(tmp_path, suffix):
    indices, images = palette_images(PALETTE)
    save_all(tmp_path, images, suffix)
    assert reopened_mode(tmp_path) == "P"
    assert_same_images(all_images(load_quietly(tmp_path)), as_levels(PALETTE[indices]))


def test_gray_palette_images_are_gray(tmp_path):
    gray = np.array([0, 90, 180, 255], np.uint8)
    indices, images = palette_images(np.repeat(gray[:, None], 3, axis=1))
    save_all(tmp_path, images, ".gif")  # how Pillow writes and reads a grayscale GIF
    assert reopened_mode(tmp_path) == "P"
    d = load_quietly(tmp_path)
    assert d.shape == (1, SIZE, SIZE)
    assert_same_images(all_images(d), as_levels(gray[indices]))


def on_white(colour, alpha):
    """What a pixel of this colour and alpha looks like drawn on a white page."""
    a = np.asarray(alpha, np.float64) / 255
    return np.round(np.asarray(colour, np.float64) * a + 255 * (1 - a))


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_alpha_is_composited_on_white(tmp_path, mode):
    channels = 2 if mode == "LA" else 4
    pixels = np.random.default_rng(8).integers(0, 256, (10, SIZE, SIZE, channels)).astype(np.uint8)
    save_all(tmp_path, [Image.fromarray(px, mode) for px in pixels], ".png")
    with pytest.warns(
        DataWarning, match="10 images have transparent pixels .* composited on white"
    ):
        d = data.image_folder(tmp_path, size=SIZE)
    expected = on_white(pixels[..., :-1], pixels[..., -1:])
    assert_same_images(all_images(d), as_levels(expected[..., 0] if mode == "LA" else expected))


def test_opaque_alpha_changes_nothing(tmp_path):
    pixels = np.random.default_rng(9).integers(0, 256, (10, SIZE, SIZE, 4)).astype(np.uint8)
    pixels[..., 3] = 255
    save_all(tmp_path, [Image.fromarray(px, "RGBA") for px in pixels], ".png")
    assert_same_images(all_images(load_quietly(tmp_path)), as_levels(pixels[..., :3]))


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_transparent_palette_entry_is_composited(tmp_path, suffix):
    indices, images = palette_images(PALETTE)
    save_all(tmp_path, images, suffix, transparency=1)
    with pytest.warns(DataWarning, match="transparent pixels"):
        d = data.image_folder(tmp_path, size=SIZE)
    expected = PALETTE[indices].astype(np.float64)
    expected[indices == 1] = 255
    assert_same_images(all_images(d), as_levels(expected))


def test_palette_with_alpha_is_composited(tmp_path):
    indices, images = palette_images(PALETTE)
    alpha = np.random.default_rng(10).integers(0, 256, indices.shape).astype(np.uint8)
    for im, a in zip(images, alpha, strict=True):
        im.putalpha(Image.fromarray(a))  # P -> PA
    save_all(tmp_path, images, ".tif")
    assert reopened_mode(tmp_path) == "PA"
    with pytest.warns(DataWarning, match="transparent pixels"):
        d = data.image_folder(tmp_path, size=SIZE)
    assert_same_images(all_images(d), as_levels(on_white(PALETTE[indices], alpha[..., None])))


def test_cmyk_and_ycbcr_become_rgb(tmp_path):
    rgb = np.random.default_rng(11).integers(0, 256, (10, SIZE, SIZE, 3)).astype(np.uint8)
    cmyk = np.concatenate([255 - rgb, np.zeros_like(rgb[..., :1])], axis=-1)  # no black ink
    save_all(tmp_path / "cmyk", [Image.fromarray(px, "CMYK") for px in cmyk], ".tif")
    assert reopened_mode(tmp_path / "cmyk") == "CMYK"
    assert_same_images(all_images(load_quietly(tmp_path / "cmyk")), as_levels(rgb))
    ycbcr = [Image.fromarray(px, "RGB").convert("YCbCr") for px in rgb]
    save_all(tmp_path / "ycbcr", ycbcr, ".tif")
    assert reopened_mode(tmp_path / "ycbcr") == "YCbCr"
    d = load_quietly(tmp_path / "ycbcr")
    # YCbCr holds 8-bit values of its own, so the round trip is within a level or two
    y, cb, cr = (np.stack([np.asarray(im, np.float64)[..., c] for im in ycbcr]) for c in range(3))
    back = np.stack(
        [
            y + 1.402 * (cr - 128),
            y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
            y + 1.772 * (cb - 128),
        ],
        axis=-1,
    ).clip(0, 255)
    loaded = sorted(all_images(d).flatten(1).tolist())
    wanted = sorted(as_levels(back).flatten(1).tolist())
    assert np.abs(np.array(loaded) - np.array(wanted)).max() <= 2 / 255


def test_unsupported_mode_is_an_error(tmp_path):
    save_all(tmp_path, [Image.new("LAB", (SIZE, SIZE), (50, 128, 128))] * 10, ".tif")
    assert reopened_mode(tmp_path) == "LAB"
    with pytest.raises(DataError, match=r"0\.tif: image mode LAB is not supported .* convert it"):
        data.image_folder(tmp_path, size=SIZE)


def test_mixed_folder_is_rgb(tmp_path):
    rng = np.random.default_rng(12)
    gray = rng.integers(0, 256, (5, SIZE, SIZE)).astype(np.uint8)
    rgb = rng.integers(0, 256, (5, SIZE, SIZE, 3)).astype(np.uint8)
    deep = np.full((SIZE, SIZE), 32768, np.uint16)
    images = [Image.fromarray(g) for g in gray] + [Image.fromarray(c) for c in rgb]
    save_all(tmp_path, images + [Image.fromarray(deep)], ".png")
    with pytest.warns(DataWarning, match="finer than 256 levels"):
        d = data.image_folder(tmp_path, size=SIZE)
    expected = np.concatenate(
        [np.repeat(gray[..., None], 3, axis=-1), rgb, np.full((1, SIZE, SIZE, 3), 128)]
    )
    assert d.shape == (3, SIZE, SIZE)
    assert_same_images(all_images(d), as_levels(expected))


def png_rgb_16bit(path, pixels):
    """A 16-bit RGB PNG (Pillow cannot write one): signature, IHDR, IDAT, IEND."""

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    height, width = pixels.shape[:2]
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_16bit_colour_png_is_read_with_a_notice(tmp_path):
    pixels = np.random.default_rng(13).integers(0, 65536, (10, SIZE, SIZE, 3))
    for i, px in enumerate(pixels):
        png_rgb_16bit(tmp_path / f"{i}.png", px)
    with pytest.warns(DataWarning, match="10 images of 16-bit colour .* high byte"):
        d = data.image_folder(tmp_path, size=SIZE)
    loaded = np.array(sorted(all_images(d).flatten(1).tolist()))
    wanted = np.array(sorted(as_levels(pixels / 257).flatten(1).tolist()))
    assert np.abs(loaded - wanted).max() <= 1 / 255


def test_notices_are_one_line(tmp_path):
    save_all(tmp_path, [Image.fromarray(px) for px in sixteen_bit_pixels()], ".png")
    with pytest.warns(DataWarning) as notes:
        data.image_folder(tmp_path, size=SIZE)
    assert all("\n" not in str(n.message) and str(tmp_path) in str(n.message) for n in notes)


# ---- arrays ---------------------------------------------------------------------------------


def test_array_files(tmp_path):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "a.npy", rng.integers(0, 256, (10, 6, 6), dtype=np.uint8))
    d = data.load(str(tmp_path / "a.npy"))
    assert d.shape == (1, 6, 6) and d.train.max() <= 1
    np.savez(tmp_path / "b.npz", images=rng.random((10, 4, 4, 3)), labels=np.arange(10))
    with pytest.warns(DataWarning):
        assert data.array_file(tmp_path / "b.npz").shape == (3, 4, 4)


def load_array(path, array):
    np.save(path, array)
    return all_images(data.array_file(path))


def test_non_finite_values_are_an_error(tmp_path):
    values = np.zeros((10, SIZE, SIZE), np.float32)
    values[1, 0, :3] = np.nan
    values[4, 2, :2] = (np.inf, -np.inf)
    with pytest.raises(DataError, match=r"nan\.npy: 5 of 160 values are not finite"):
        load_array(tmp_path / "nan.npy", values)
    values[4, 2, :2] = 0  # NaN alone slipped past the [0, 1] range check
    with pytest.raises(DataError, match=r"nan\.npy: 3 of 160 values are not finite"):
        load_array(tmp_path / "nan.npy", values)


def test_off_grid_floats_move_to_the_nearest_level_with_a_notice(tmp_path):
    values = np.random.default_rng(14).random((10, SIZE, SIZE))
    values[0, 0, 0] = 5 / 255  # already on the grid
    with pytest.warns(DataWarning) as notes:
        loaded = load_array(tmp_path / "f.npy", values)
    expected = as_levels(np.round(values * 255))
    assert_same_images(loaded, expected)
    distance = np.abs(values * 255 - np.round(values * 255))
    message = str(notes[0].message)
    found = re.search(
        r"f\.npy: .*?([\d,]+) of 160 values moved .* by at most ([\d.]+) levels", message
    )
    assert found, message
    assert int(found.group(1).replace(",", "")) == int((distance > 1e-3).sum())
    assert float(found.group(2)) == pytest.approx(distance.max(), rel=1e-2)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_floats_on_the_grid_load_without_a_notice(tmp_path, dtype):
    levels = np.random.default_rng(15).integers(0, 256, (10, SIZE, SIZE))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_array(tmp_path / "g.npy", (levels / 255).astype(dtype))
    assert_same_images(loaded, as_levels(levels))


def test_uint16_arrays_are_16bit(tmp_path):
    pixels = sixteen_bit_pixels()
    with pytest.warns(DataWarning, match=r"u16\.npy: uint16 values \(16-bit\); .* moved"):
        loaded = load_array(tmp_path / "u16.npy", pixels)
    assert_same_images(loaded, as_levels(np.round(pixels / 257)))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.uint32])
def test_other_integer_arrays_say_how_they_were_read(tmp_path, dtype):
    levels = np.random.default_rng(16).integers(0, 256, (10, SIZE, SIZE))
    with pytest.warns(DataWarning, match=r"values in \[0, 255\] read as 8-bit"):
        assert_same_images(load_array(tmp_path / "i.npy", levels.astype(dtype)), as_levels(levels))
    deep = levels * 100  # up to 25,500: more than 8 bits
    with pytest.warns(DataWarning, match=r"values in \[0, 25500\] read as 16-bit"):
        loaded = load_array(tmp_path / "i.npy", deep.astype(dtype))
    assert_same_images(loaded, as_levels(np.round(deep / 257)))


@pytest.mark.parametrize("low,high", [(-1, 10), (0, 70000)])
def test_integer_arrays_outside_16_bits_are_an_error(tmp_path, low, high):
    values = np.zeros((10, SIZE, SIZE), np.int64)
    values[0, 0, :2] = (low, high)
    with pytest.raises(DataError, match=rf"int64 images .* got values in \[{low}, {high}\]"):
        load_array(tmp_path / "i.npy", values)


def test_bool_arrays_are_0_and_1(tmp_path):
    bits = np.random.default_rng(17).random((10, SIZE, SIZE)) < 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same_images(load_array(tmp_path / "b.npy", bits), as_levels(bits * 255))


# ---- size -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [MIN_IMAGES, 100, 101])
def test_small_datasets_split(tmp_path, n):
    np.save(tmp_path / "a.npy", np.zeros((n, SIZE, SIZE), np.uint8))
    d = data.array_file(tmp_path / "a.npy")
    assert d.test.shape[0] >= 1 and d.train.shape[0] >= 8
    assert d.train.shape[0] + d.test.shape[0] == n
    write_images(tmp_path / "folder", n, size=(SIZE, SIZE))
    d = data.image_folder(tmp_path / "folder", size=SIZE)
    assert d.test.shape[0] >= 1 and d.train.shape[0] + d.test.shape[0] == n


def test_too_few_images_is_an_error(tmp_path):
    assert MIN_IMAGES == 10
    write_images(tmp_path / "nine", 9)
    with pytest.raises(DataError, match=r"nine: need at least 10 images .* got 9"):
        data.image_folder(tmp_path / "nine")
    np.save(tmp_path / "nine.npy", np.zeros((9, SIZE, SIZE), np.uint8))
    with pytest.raises(DataError, match=r"nine\.npy: need at least 10 images .* got 9"):
        data.array_file(tmp_path / "nine.npy")


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
            "at least 10 images",
        ),
        (
            lambda p: np.save(p / "c.npy", np.zeros((10, 4, 4), np.complex64)) or p / "c.npy",
            "expected a numeric array, got dtype complex64",
        ),
    ],
)
def test_bad_data_is_a_clear_error(tmp_path, setup, message):
    with pytest.raises(DataError, match=message):
        data.load(str(setup(tmp_path)))
