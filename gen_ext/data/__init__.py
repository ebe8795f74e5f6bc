"""Datasets every model trains on: the bundled defaults (no download) and a user's own images."""

from .datasets import (
    MAX_LEVELS,
    MIN_IMAGES,
    DataError,
    DataWarning,
    ImageData,
    array_file,
    digits,
    image_folder,
    load,
    rgb_patches,
)

__all__ = [
    "MAX_LEVELS",
    "MIN_IMAGES",
    "DataError",
    "DataWarning",
    "ImageData",
    "array_file",
    "digits",
    "image_folder",
    "load",
    "rgb_patches",
]
