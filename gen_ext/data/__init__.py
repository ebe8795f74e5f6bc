"""Datasets every model trains on: the bundled defaults (no download) and a user's own images
and sound."""

from .audio import (
    KINDS,
    MU_LAW_LEVELS,
    AudioData,
    load_audio,
    mu_law_decode,
    mu_law_encode,
    read_wav,
    synthetic_audio,
    wav_folder,
    write_wav,
)
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
    "KINDS",
    "MU_LAW_LEVELS",
    "AudioData",
    "load_audio",
    "mu_law_decode",
    "mu_law_encode",
    "read_wav",
    "synthetic_audio",
    "wav_folder",
    "write_wav",
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
