"""Small data and small models for tests that run the training loop many times."""

import numpy as np
import torch

from gen_ext.data import write_wav
from gen_ext.models import MODELS
from gen_ext.train import TrainConfig

# every model family in a configuration that trains in well under a second on 8x8 images
TINY = {
    "autoencoder": {"hidden": 8, "bottleneck": 4},
    "conv-autoencoder": {"channels": 4, "bottleneck": 4},
    "denoising-autoencoder": {"hidden": 8, "bottleneck": 8},
    "vae": {"hidden": 8, "latent_dim": 2, "iw_samples": 2},
    "pixelcnn": {"hidden": 3, "blocks": 1, "head": 6},
    "gated-pixelcnn": {"channels": 3, "layers": 1, "head": 6},
    "pixelcnn++": {"channels": 4, "resolutions": 1, "blocks": 1, "mixtures": 1},
    "pixelrnn": {"hidden": 3, "layers": 1, "head": 6},
    "gan": {"latent_dim": 4, "hidden": 8},
    "dcgan": {"latent_dim": 4, "width": 4},
    "wgan": {"latent_dim": 4, "width": 4, "critic_steps": 2},
    "wgan-gp": {"latent_dim": 4, "width": 4, "critic_steps": 2},
    "began": {"latent_dim": 4, "width": 4},
    "infogan": {"latent_dim": 4, "width": 4, "continuous": 1},
    "ebm": {"width": 2, "langevin_steps": 2, "sample_steps": 2, "buffer_size": 16},
    "wavenet": {
        "residual_channels": 4,
        "skip_channels": 4,
        "head_channels": 4,
        "layers_per_stack": 2,
        "stacks": 1,
    },
}
TINY_CLIP = 24  # samples per clip of the sound models' tiny runs


def image_array(folder, n: int, name: str = "images.npy") -> str:
    """n images of 8x8 with values k/255 in [0, 1], written to an .npy file; its path."""
    rng = np.random.default_rng(n)
    path = folder / name
    np.save(path, (rng.integers(0, 256, size=(n, 8, 8)) / 255).astype(np.float32))
    return str(path)


def sound_file(folder, n: int, clip_length: int = TINY_CLIP, name: str = "sound.wav") -> str:
    """A WAV file of n clips of clip_length samples of a noisy tone at 8 kHz; its path."""
    t = np.arange(n * clip_length) / 8000
    rng = np.random.default_rng(n)
    wave_ = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(t.shape)
    path = folder / name
    write_wav(path, torch.from_numpy(np.clip(wave_, -1, 1)).float(), 8000)
    return str(path)


def tiny_config(folder, model="autoencoder", n=40, epochs=1, out="run", **kw) -> TrainConfig:
    """A run of `model` in its tiny configuration on n images (or clips of sound) in batches of
    8."""
    if MODELS[model].data_kind == "audio":
        data = sound_file(folder, n)
        kw.setdefault("clip_length", TINY_CLIP)
    else:
        data = image_array(folder, n)
    kw.setdefault("batch_size", 8)
    return TrainConfig(
        model=model,
        data=data,
        epochs=epochs,
        out=str(folder / out),
        model_args=dict(TINY[model]),
        **kw,
    )
