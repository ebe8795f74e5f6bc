"""Image datasets as tensors in [0, 1] with a fixed train/test split.

- `digits`: the 8x8 handwritten digits shipped with scikit-learn (1,797 images, 17 intensity
  levels, 10 classes).
- `rgb_patches`: 8x8 RGB patches cropped at fixed places from the two sample photographs shipped
  with scikit-learn (256 levels).
- `image_folder(path)`: every image file in a folder, resized to a square.
- `array_file(path)`: an .npy or .npz array of images.

Each dataset declares its number of intensity levels; likelihood models and bits/dim use it.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gen_ext.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
TEST_FRACTION = 0.2
SPLIT_SEED = 0


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


def _split(images: torch.Tensor, labels: torch.Tensor | None, name: str, levels: int) -> ImageData:
    n = images.shape[0]
    if n < 2:
        raise DataError(f"{name}: need at least 2 images for a train/test split, got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = max(1, int(round(n * TEST_FRACTION)))
    test, train = order[:n_test], order[n_test:]
    return ImageData(name, images[train].contiguous(), images[test].contiguous(), levels,
                     _take(labels, train), _take(labels, test))


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
        patches.append(photo[:, top:top + size, left:left + size])
    images = torch.stack(patches).float() / 255.0
    return _split(images, None, "rgb-patches", levels=256)


def _to_nchw(array: np.ndarray, source: str) -> torch.Tensor:
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[-1] in (1, 3) and array.shape[1] not in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    elif not (array.ndim == 4 and array.shape[1] in (1, 3)):
        raise DataError(f"{source}: expected images of shape [N, H, W], [N, H, W, C] or "
                        f"[N, C, H, W] with C in (1, 3), got shape {tuple(array.shape)}")
    if array.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(array)).float() / 255.0
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"{source}: expected a numeric array, got dtype {array.dtype}")
    t = torch.from_numpy(np.ascontiguousarray(array)).float()
    if t.numel() and (t.min() < 0 or t.max() > 1):
        raise DataError(f"{source}: non-uint8 images must lie in [0, 1], got values in "
                        f"[{t.min().item():g}, {t.max().item():g}]")
    return t


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
    return _split(_to_nchw(loaded, str(path)), None, path.stem, levels=256)


def image_folder(path, size: int = 8) -> ImageData:
    """Every image file in `path` (not recursive), resized to size x size; grayscale if all are."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such folder")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{path}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    images = []
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                images.append(im.copy())
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"{f}: cannot read as an image ({err})") from err
    gray = all(im.mode in ("L", "1", "I;16", "I") for im in images)
    mode = "L" if gray else "RGB"
    arrays = [np.asarray(im.convert(mode).resize((size, size), Image.BILINEAR)) for im in images]
    return _split(_to_nchw(np.stack(arrays), str(path)), None, path.name, levels=256)


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
    raise DataError(f"--data {source}: expected digits, rgb-patches, a folder of images or an "
                    f".npy/.npz file")
