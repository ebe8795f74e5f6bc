"""Image datasets as tensors in [0, 1] with a fixed train/test split.

- `digits`: the 8x8 handwritten digits shipped with scikit-learn (1,797 images, 17 intensity
  levels, 10 classes).
- `rgb_patches`: 8x8 RGB patches cropped at fixed places from the two sample photographs shipped
  with scikit-learn (256 levels).
- `image_folder(path)`: every image file in a folder, resized to a square.
- `array_file(path)`: an .npy or .npz array of images.

Each dataset declares its number of intensity levels; likelihood models and bits/dim use it.
A user's images and arrays have 256 levels (k / 255), the most any model here takes:

- Every image is scaled by its own bit depth: 1-bit images give 0 and 1, 8-bit ones k / 255,
  16-bit ones (modes I;16, I;16B, and I as Pillow loads 16-bit PNG and PGM files) v / 65535,
  integer TIFFs by the depth their BitsPerSample tag gives, float (F) images must lie in [0, 1].
  Samples finer than 256 levels move to the nearest level, with one DataWarning per folder
  saying how many moved and by at most how much. Pillow itself reads 16-bit colour and alpha
  PNGs at their high byte; the same notice counts those files.
- Palette images take their palette's colours (gray if the palette is). CMYK, YCbCr and RGBX
  images are converted to RGB by Pillow; other modes (LAB, HSV) are refused.
- Alpha (LA, RGBA, PA, or a transparent palette or colour entry) is composited on white, the
  page such images are usually drawn on, with a DataWarning naming how many files have
  transparent pixels. Dropping alpha would show whatever colour transparent pixels happen to hold.
- A folder is grayscale if every image is, else RGB (gray images are repeated in 3 channels).
  Only the first frame of an animated file is read.
- Arrays: uint8 is k / 255, bool is 0 / 1, uint16 is 16-bit (v / 65535, like 16-bit images).
  Other integer types do not say their depth: values in [0, 255] are read as 8-bit, values up to
  65535 as 16-bit, with a notice saying which; negative or larger values are refused. Floats must
  be finite and lie in [0, 1]; values off the level grid move to the nearest level, with a notice.
- A dataset needs at least MIN_IMAGES images: a held-out test set and a training batch.

Every check happens here, when the data is loaded, before any training starts.
"""

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gen_ext.errors import DataError, DataWarning

IMAGE_SUFFIXES = {
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".pgm",
    ".ppm",
    ".pbm",
    ".pnm",
}
TEST_FRACTION = 0.2
SPLIT_SEED = 0
# the fewest images a dataset may have: 2 held out for testing (TEST_FRACTION) and 8 to train on,
# a batch the size of one row of the picture grids
MIN_IMAGES = 10
# a user's images and arrays are reduced to this many levels (k / 255): the softmax models
# predict one probability per level, so deeper data would multiply their output
MAX_LEVELS = 256
ALPHA_BACKGROUND = 255  # transparent pixels are composited on white
# how far (in levels) a value may lie from a level and still count as on it: float32 data such
# as k / 255 lands within ~1e-5 of it, float16 within its own precision
GRID_TOLERANCE = 1e-3

GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
COLOUR_MODES = {"RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"}
PALETTE_MODES = {"P", "PA"}
ALPHA_MODES = {"LA", "La", "RGBA", "RGBa", "PA"}


@dataclass
class ImageData:
    name: str
    train: torch.Tensor  # [N, C, H, W] float32 in [0, 1]
    test: torch.Tensor
    levels: int  # intensity levels of the source (17 for the digits, 256 for 8-bit images)
    train_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.shape[1:])

    @staticmethod
    def signed(x: torch.Tensor) -> torch.Tensor:
        """[0, 1] -> [-1, 1], the range the likelihood ops take."""
        return x * 2 - 1


def _take(labels: torch.Tensor | None, index: torch.Tensor) -> torch.Tensor | None:
    return None if labels is None else labels[index]


def split_order(n: int, source: str, what: str = "images") -> tuple[torch.Tensor, torch.Tensor]:
    """The train and test indices of `n` items: a fixed shuffle (SPLIT_SEED), TEST_FRACTION of
    it (at least one) held out. Every dataset, of images or of sound clips, is split by this."""
    if n < MIN_IMAGES:
        raise DataError(
            f"{source}: need at least {MIN_IMAGES} {what} (a held-out test set "
            f"and a training batch), got {n}"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = max(1, round(n * TEST_FRACTION))
    return order[n_test:], order[:n_test]


def _split(
    images: torch.Tensor,
    labels: torch.Tensor | None,
    name: str,
    levels: int,
    source: str | None = None,
) -> ImageData:
    train, test = split_order(images.shape[0], source or name)
    return ImageData(
        name,
        images[train].contiguous(),
        images[test].contiguous(),
        levels,
        _take(labels, train),
        _take(labels, test),
    )


def digits() -> ImageData:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.from_numpy(d.images).float().unsqueeze(1) / 16.0
    return _split(images, torch.from_numpy(d.target).long(), "digits", levels=17)


def rgb_patches(size: int = 8, count: int = 4000) -> ImageData:
    from sklearn.datasets import load_sample_images

    photos = [torch.from_numpy(np.array(p)).permute(2, 0, 1) for p in load_sample_images().images]
    g = torch.Generator().manual_seed(SPLIT_SEED)
    patches = []
    for i in range(count):
        photo = photos[i % len(photos)]
        top = int(torch.randint(0, photo.shape[1] - size + 1, (1,), generator=g))
        left = int(torch.randint(0, photo.shape[2] - size + 1, (1,), generator=g))
        patches.append(photo[:, top : top + size, left : left + size])
    images = torch.stack(patches).float() / 255.0
    return _split(images, None, "rgb-patches", levels=256)


def _notice(message: str) -> None:
    """A DataWarning attributed to the first caller outside this module (the line that loaded
    the data), however deep in here it was raised."""
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, DataWarning, stacklevel=level)


@dataclass
class _Snapped:
    levels: torch.Tensor  # the nearest level k of each value, as float32
    moved: int  # values that lay more than the tolerance from their level
    max_move: float  # the farthest any value moved, in levels


def _snap_to_levels(unit: torch.Tensor, tolerance: float = GRID_TOLERANCE) -> _Snapped:
    """Values in [0, 1] -> the nearest of MAX_LEVELS levels, and how far they had to move.
    float64 stays float64 so that the nearest level is the true one."""
    scaled = unit.to(torch.promote_types(unit.dtype, torch.float32)) * (MAX_LEVELS - 1)
    k = scaled.round()
    move = scaled.sub_(k).abs_()
    max_move = float(move.max()) if move.numel() else 0.0
    return _Snapped(k.float(), int((move > tolerance).sum()), max_move)


def _count_moves(moved: int, total: int, max_move: float) -> str:
    return (
        f"{moved:,} of {total:,} values moved to the nearest of {MAX_LEVELS} levels "
        f"(k / {MAX_LEVELS - 1}), by at most {max_move:.3g} levels"
    )


def _refuse_non_finite(values: torch.Tensor, source: str) -> None:
    bad = int(values.numel() - torch.isfinite(values).sum())
    if bad:
        raise DataError(
            f"{source}: {bad:,} of {values.numel():,} values are not finite (NaN or "
            f"inf); images must be finite numbers in [0, 1]"
        )


def _refuse_outside_unit(values: torch.Tensor, source: str, what: str) -> None:
    if values.numel() and (values.min() < 0 or values.max() > 1):
        raise DataError(
            f"{source}: {what} must lie in [0, 1], got values in "
            f"[{values.min().item():g}, {values.max().item():g}]"
        )


# ---- arrays ---------------------------------------------------------------------------------


def _integer_array_depth(array: np.ndarray, source: str) -> tuple[int, str]:
    """The bit depth of an integer array, and how it was chosen when the dtype does not say."""
    if array.dtype == np.uint16:
        return 16, "uint16 values (16-bit)"
    lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
    if lo < 0 or hi > 65535:
        raise DataError(
            f"{source}: {array.dtype} images must hold 8-bit levels in [0, 255] or "
            f"16-bit values in [0, 65535], got values in [{lo}, {hi}]"
        )
    bits = 8 if hi <= 255 else 16
    return bits, (
        f"{array.dtype} values in [{lo}, {hi}] read as {bits}-bit (save uint8 or "
        f"uint16 to state the depth)"
    )


def _array_levels(array: np.ndarray, source: str) -> torch.Tensor:
    """An array's values as levels k / 255 in [0, 1] (float32), by the policy in the docstring."""
    if array.dtype == np.uint8:
        return torch.from_numpy(array).float() / 255.0
    if array.dtype == np.bool_:
        return torch.from_numpy(array).float()
    if np.issubdtype(array.dtype, np.integer):
        bits, reading = _integer_array_depth(array, source)
        snapped = _snap_to_levels(torch.from_numpy(array.astype(np.float32)) / (2**bits - 1))
        if array.dtype != np.uint16 or snapped.moved:
            _notice(
                f"{source}: {reading}; " + _count_moves(snapped.moved, array.size, snapped.max_move)
            )
        return snapped.levels / (MAX_LEVELS - 1)
    if not np.issubdtype(array.dtype, np.floating):
        raise DataError(f"{source}: expected a numeric array, got dtype {array.dtype}")
    values = torch.from_numpy(array)
    _refuse_non_finite(values, source)
    _refuse_outside_unit(values, source, "float images")
    # a float16 k / 255 lies up to half its spacing (0.06 levels near 1) from the level
    tolerance = max(GRID_TOLERANCE, (MAX_LEVELS - 1) * float(np.finfo(array.dtype).eps) / 2)
    snapped = _snap_to_levels(values, tolerance)
    if snapped.moved:
        _notice(
            f"{source}: values off the level grid; "
            + _count_moves(snapped.moved, array.size, snapped.max_move)
        )
    return snapped.levels / (MAX_LEVELS - 1)


def _to_nchw(array: np.ndarray, source: str) -> torch.Tensor:
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[-1] in (1, 3) and array.shape[1] not in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    elif not (array.ndim == 4 and array.shape[1] in (1, 3)):
        raise DataError(
            f"{source}: expected images of shape [N, H, W], [N, H, W, C] or "
            f"[N, C, H, W] with C in (1, 3), got shape {tuple(array.shape)}"
        )
    return _array_levels(np.ascontiguousarray(array), source)


def array_file(path) -> ImageData:
    """Images from .npy, or from .npz (the array named 'images' or 'x', else the only one)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as err:  # numpy raises several types for corrupt files
        raise DataError(f"{path}: cannot read as .npy/.npz ({err})") from err
    if isinstance(loaded, np.lib.npyio.NpzFile):
        keys = list(loaded.keys())
        key = next((k for k in ("images", "x") if k in keys), keys[0] if len(keys) == 1 else None)
        if key is None:
            raise DataError(f"{path}: .npz holds {keys}; name the images 'images' or 'x'")
        loaded = loaded[key]
    return _split(_to_nchw(loaded, str(path)), None, path.stem, levels=MAX_LEVELS, source=str(path))


# ---- image files ----------------------------------------------------------------------------


@dataclass
class _Picture:
    """One file's pixels as 8-bit levels, and what reading it changed."""

    pixels: np.ndarray  # uint8 [H, W] (gray) or [H, W, 3]
    deep_values: int = 0  # samples of more than 8 bits reduced to MAX_LEVELS here
    moved: int = 0  # how many of them moved, and the farthest, in levels
    max_move: float = 0.0
    high_byte: bool = False  # Pillow read 16-bit samples at 8 bits (colour or alpha)
    transparent: bool = False  # some pixel had alpha below 255 and was composited

    @property
    def gray(self) -> bool:
        return self.pixels.ndim == 2


def _is_gray(im) -> bool:
    if im.mode in PALETTE_MODES:
        palette = np.asarray(im.getpalette() or [0, 0, 0]).reshape(-1, 3)
        return bool((palette == palette[:, :1]).all())
    return im.mode in GRAY_MODES


def _pillow_read_16_as_8(im) -> bool:
    """True when Pillow decodes this (not yet loaded) file's 16-bit samples to 8 bits: it has no
    16-bit colour or alpha modes, so it keeps the high byte of RGB;16B, LA;16B and the like."""
    if im.mode not in ("RGB", "RGBA", "LA"):
        return False
    for tile in im.tile:
        rawmode = tile.args if isinstance(tile.args, str) else (tile.args or ("",))[0]
        if isinstance(rawmode, str) and rawmode.rsplit(";", 1)[-1].startswith("16"):
            return True
    return False


def _integer_full_scale(im) -> tuple[int, str]:
    """The largest value of a mode-I image's bit depth: TIFF says it in BitsPerSample (and
    SampleFormat for signed); Pillow gives mode I to 16-bit PNG and PGM files, which carry none."""
    tags = getattr(im, "tag_v2", None) or {}
    bits = tags.get(258, (16,))
    bits = int(bits[0] if isinstance(bits, tuple) else bits)
    sample_format = tags.get(339, (1,))
    signed = (sample_format[0] if isinstance(sample_format, tuple) else sample_format) == 2
    return 2 ** (bits - signed) - 1, f"{bits}-bit {'signed ' if signed else ''}integer"


def _deep_to_unit(im, f: Path) -> torch.Tensor:
    """A 16-bit, 32-bit integer or float image scaled to [0, 1] by its bit depth."""
    values = np.asarray(im)
    if im.mode.startswith("I;16"):
        return torch.from_numpy(values.astype(np.float64)) / 65535
    if im.mode == "I":
        full, what = _integer_full_scale(im)
        lo, hi = int(values.min()), int(values.max())
        if lo < 0 or hi > full:
            raise DataError(
                f"{f}: {what} pixels must lie in [0, {full}], got values in [{lo}, {hi}]"
            )
        return torch.from_numpy(values.astype(np.float64)) / full
    unit = torch.from_numpy(values.astype(np.float32))  # mode F
    _refuse_non_finite(unit, str(f))
    _refuse_outside_unit(unit, str(f), "float (mode F) pixels")
    return unit


def _composite(im, gray: bool) -> tuple[np.ndarray, bool]:
    """Pixels with alpha composited on ALPHA_BACKGROUND, and whether any was transparent."""
    if im.mode == "La":
        im = im.convert("LA")
    rgba = np.asarray(im.convert("RGBA"), dtype=np.float64)
    alpha = rgba[..., 3:] / 255
    pixels = np.rint(rgba[..., :3] * alpha + ALPHA_BACKGROUND * (1 - alpha)).astype(np.uint8)
    return (pixels[..., 0] if gray else pixels), bool((rgba[..., 3] < 255).any())


def _picture(im, f: Path, high_byte: bool) -> _Picture:
    if im.mode not in GRAY_MODES | COLOUR_MODES | PALETTE_MODES:
        raise DataError(
            f"{f}: image mode {im.mode} is not supported (expected one of "
            f"{', '.join(sorted(GRAY_MODES | COLOUR_MODES | PALETTE_MODES))}); "
            f"convert it to RGB or grayscale"
        )
    gray = _is_gray(im)
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        snapped = _snap_to_levels(_deep_to_unit(im, f))
        return _Picture(
            snapped.levels.to(torch.uint8).numpy(),
            snapped.levels.numel(),
            snapped.moved,
            snapped.max_move,
        )
    if im.mode in ALPHA_MODES or "transparency" in im.info:
        pixels, transparent = _composite(im, gray)
        return _Picture(pixels, high_byte=high_byte, transparent=transparent)
    return _Picture(np.asarray(im.convert("L" if gray else "RGB")), high_byte=high_byte)


def _read_picture(f: Path) -> _Picture:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(f) as im:
            high_byte = _pillow_read_16_as_8(im)  # the tile list is gone once loaded
            im.load()
            return _picture(im, f, high_byte)
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{f}: cannot read as an image ({err})") from err


def _notice_folder_changes(path: Path, files: list[Path], pictures: list[_Picture]) -> None:
    """One line for the samples reduced to MAX_LEVELS, one for the alpha composited."""
    reduced = [(f, p) for f, p in zip(files, pictures, strict=True) if p.deep_values]
    moved = sum(p.moved for _, p in reduced)
    by_pillow = [f for f, p in zip(files, pictures, strict=True) if p.high_byte]
    parts = []
    if moved:
        parts.append(
            f"{len(reduced)} images hold samples finer than {MAX_LEVELS} levels (first: "
            f"{reduced[0][0].name}); "
            + _count_moves(
                moved, sum(p.deep_values for _, p in reduced), max(p.max_move for _, p in reduced)
            )
        )
    if by_pillow:
        parts.append(
            f"{len(by_pillow)} images of 16-bit colour or alpha (first: "
            f"{by_pillow[0].name}) read by Pillow at their high byte (within 1 level)"
        )
    if parts:
        _notice(f"{path}: " + "; ".join(parts))
    transparent = [f for f, p in zip(files, pictures, strict=True) if p.transparent]
    if transparent:
        _notice(
            f"{path}: {len(transparent)} images have transparent pixels (first: "
            f"{transparent[0].name}); composited on white"
        )


def image_folder(path, size: int = 8) -> ImageData:
    """Every image file in `path` (not recursive), resized to size x size; grayscale if all are,
    else RGB. Bit depths, palettes and alpha follow the policy in the module docstring."""
    from PIL import Image

    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such folder")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{path}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    pictures = [_read_picture(f) for f in files]
    _notice_folder_changes(path, files, pictures)
    gray = all(p.gray for p in pictures)
    arrays = []
    for p in pictures:
        pixels = p.pixels if gray or not p.gray else np.repeat(p.pixels[..., None], 3, axis=2)
        arrays.append(np.asarray(Image.fromarray(pixels).resize((size, size), Image.BILINEAR)))
    stacked = torch.from_numpy(np.stack(arrays))
    images = stacked[:, None] if gray else stacked.permute(0, 3, 1, 2)
    return _split(images.float() / 255.0, None, path.name, levels=MAX_LEVELS, source=str(path))


def load(source: str, image_size: int = 8) -> ImageData:
    """'digits', 'rgb-patches', a folder of images, or an .npy/.npz file."""
    if source == "digits":
        return digits()
    if source == "rgb-patches":
        return rgb_patches(size=image_size)
    path = Path(source)
    if path.is_dir():
        return image_folder(path, image_size)
    if path.suffix in (".npy", ".npz"):
        return array_file(path)
    raise DataError(
        f"--data {source}: expected digits, rgb-patches, a folder of images or an .npy/.npz file"
    )
