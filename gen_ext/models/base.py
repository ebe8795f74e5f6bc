"""What every model in gen_ext.models shares: its configuration, checkpoints that record it, and
the interface the `gen-ext train` loop drives."""

import inspect
import re
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from gen_ext.errors import CheckpointError, one_line
from gen_ext.files import atomic_write

# The one model registry: class name -> class, filled by GenerativeModel subclasses, so a
# checkpoint names its class. The `gen-ext train` names are a view of it (ByCliName).
REGISTRY: dict[str, type] = {}

EXPECTED = "a gen_ext checkpoint (written by `gen-ext train` or GenerativeModel.save)"
MODEL_KEYS = ("class", "config", "state_dict")
ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


# Devices whose torch Adam has the fused implementation (one kernel over every parameter). On the
# CPU it took 11 ms a step against the per-parameter loop's 29 ms (torch's default there) for
# PixelCNN++'s 13.4M parameters, 2-core Intel Xeon, 2026-12-05: 1.3% of a training step.
FUSED_ADAM_DEVICES = ("cpu", "cuda")


def adam(params, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """torch.optim.Adam, fused where every parameter is on a device that has it (else torch's
    default implementation): the same update, in one pass."""
    params = list(params)
    fused = bool(params) and all(p.device.type in FUSED_ADAM_DEVICES for p in params)
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused or None)


class ByCliName(Mapping):
    """REGISTRY looked up by the name `gen-ext train` takes: each class that declares its own
    `cli_name` (a subclass does not inherit its parent's). A live view, in registration order."""

    def _table(self) -> dict[str, type]:
        return {
            cls.__dict__["cli_name"]: cls
            for cls in REGISTRY.values()
            if cls.__dict__.get("cli_name")
        }

    def __getitem__(self, name: str) -> type:
        return self._table()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())

    def __repr__(self) -> str:
        return f"ByCliName({self._table()!r})"


def atomic_save(obj, path) -> None:
    """torch.save through a temporary file in the same folder and a rename: an interrupted or
    failed write leaves the previous file intact and no temporary file behind. Saving through a
    Python file object makes a full disk an OSError naming `path` (torch's own file writer
    reports it as an obscure RuntimeError)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def _unreadable(path: Path, err: Exception) -> CheckpointError:
    """Why torch.load failed on `path`, in words about the file rather than torch's internals."""
    with open(path, "rb") as f:
        head = f.read(len(ZIP_MAGIC))
    if head != ZIP_MAGIC:
        why = "it does not start like a torch file (random bytes or another format)"
    elif not zipfile.is_zipfile(path):
        why = "the file is truncated or damaged (its zip archive is incomplete)"
    elif "Weights only load failed" in str(err):
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        what = f" ({found.group(1)})" if found else ""
        why = (
            f"it holds Python objects{what} besides tensors and plain data, which are not "
            f"unpickled for safety"
        )
    else:
        why = f"torch cannot read it: {one_line(err)}"
    return CheckpointError(f"{path}: not a usable checkpoint: {why}; expected {EXPECTED}")


def read_checkpoint(path, map_location="cpu") -> dict:
    """The dictionary inside a checkpoint file; a CheckpointError naming the file and what was
    wrong with it when it is missing, a folder, empty, damaged or not a dictionary."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file; expected {EXPECTED}")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; expected {EXPECTED}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty; expected {EXPECTED}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for damaged or foreign files
        raise _unreadable(path, err) from err
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: holds a {type(ckpt).__name__}; expected {EXPECTED}")
    return ckpt


def model_entry(ckpt: dict, source) -> dict:
    """The model's part of a checkpoint: the whole of one written by `save`, the "model" entry of
    one written by `gen-ext train`."""
    entry = ckpt.get("model", ckpt)
    if not isinstance(entry, dict) or any(k not in entry for k in MODEL_KEYS):
        keys = sorted(map(str, ckpt))[:8]
        bare = all(isinstance(v, torch.Tensor) for v in ckpt.values()) and ckpt
        what = (
            "a bare state_dict (no model class or configuration)"
            if bare
            else f"a dictionary with keys {keys}"
        )
        raise CheckpointError(
            f"{source}: holds {what}; expected {EXPECTED} with keys {', '.join(MODEL_KEYS)}"
        )
    return entry


class GenerativeModel(nn.Module):
    """Subclasses call `super().__init__(**config)` with every constructor argument, implement
    `loss(x) -> (loss, logs)` for x in [0, 1], and `evaluate(x) -> metrics`; `sample` and
    `reconstruct` where they apply. `main_metric` names the held-out metric (lower is better) and
    `unit` its unit."""

    main_metric = "loss"
    default_epochs = 100  # what `gen-ext train` runs when not told otherwise
    default_batch_size = 64  # the same for its batch size
    # the unit of the training loss and of main_metric, which share it (the loss curve plots both
    # on one axis), e.g. "bits/dim"
    unit = "loss"
    cli_name: str | None = None  # the name `gen-ext train` takes; None: not offered there
    data_kind = "images"  # what it models: "images" or "audio" (clips [N, 1, T] in [-1, 1])
    default_data = "digits"  # what `gen-ext train` trains it on when not told
    picture_samples = 64  # how many samples `gen-ext train` draws for its picture
    default_lr = 1e-3  # the learning rate `gen-ext train` uses when not told
    # training_step's logs: those shown on the progress bar, and those recorded at every step
    # (the others are recorded as epoch means)
    progress_logs: tuple = ("loss",)
    step_logs: tuple = ()
    pictures_every_epoch = False  # whether `gen-ext train` draws a sample grid after every epoch

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        REGISTRY[cls.__name__] = cls

    def __init__(self, **config):
        super().__init__()
        self.config = dict(config)

    def loss(self, x: torch.Tensor):
        raise NotImplementedError

    @property
    def lower_is_better(self) -> bool:
        """Whether a lower main_metric means a better model (what --early-stop needs)."""
        return True

    def make_optimizers(self, lr: float) -> dict:
        """The optimizers training_step updates through, by name."""
        return {"model": adam(self.parameters(), lr)}

    def training_step(self, x: torch.Tensor, update, step: int) -> dict:
        """One training step on the batch x (step counts from 1 over the whole run). `update(loss,
        name)` backpropagates loss into optimizer `name`'s parameters, steps it and returns the
        loss as a float. Returns the step's logs {name: float}; "loss" is the training loss."""
        loss, _ = self.loss(x)
        return {"loss": update(loss, "model")}

    def curve_panels(self) -> list:
        """What the curves PNG of a training run draws (gen_ext.viz.CurvePanel each)."""
        from gen_ext.viz import CurvePanel

        metric = f"test_{self.main_metric}"
        ylabel = f"loss ({self.unit})" if self.unit != "loss" else "loss"
        names = {"train_loss": "training loss", metric: f"held-out {self.main_metric}"}
        return [CurvePanel(ylabel, names)]

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor) -> dict:
        loss, logs = self.loss(x)
        return {"loss": loss.item(), **{k: float(v) for k, v in logs.items()}}

    def sample(
        self, n: int, generator: torch.Generator | None = None, progress: bool = False
    ) -> torch.Tensor:
        """n samples in [0, 1]; `progress` shows a bar where sampling takes many passes."""
        raise NotImplementedError(f"{type(self).__name__} has no prior to sample from")

    def write_samples(self, samples: torch.Tensor, png_path) -> list:
        """Writes what `sample` drew where people look at it: a PNG grid of images at
        `png_path` (a model of sound also writes a WAV beside it). Returns the paths written."""
        from gen_ext.viz import save_grid

        return [save_grid(samples, png_path)]

    def extra_pictures(self, out) -> dict:
        """Pictures a family draws besides its samples at the end of `gen-ext train`, written
        into the folder `out`: {name: path}."""
        return {}

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not reconstruct its input")

    @property
    def can_sample(self) -> bool:
        return type(self).sample is not GenerativeModel.sample

    @property
    def has_fast_sampler(self) -> bool:
        """Whether `sample` takes fast=True|False (a cached sampler beside the naive one)."""
        return "fast" in inspect.signature(self.sample).parameters

    @property
    def can_reconstruct(self) -> bool:
        return type(self).reconstruct is not GenerativeModel.reconstruct

    def checkpoint(self) -> dict:
        return {
            "class": type(self).__name__,
            "config": self.config,
            "state_dict": self.state_dict(),
        }

    def save(self, path) -> None:
        atomic_save(self.checkpoint(), path)

    @classmethod
    def from_checkpoint(cls, ckpt: dict, source="checkpoint") -> "GenerativeModel":
        """The model a checkpoint dictionary describes. Called on a subclass, it refuses a
        checkpoint of a model that is not that class (or a subclass of it)."""
        entry = model_entry(ckpt, source)
        found = REGISTRY.get(entry["class"])
        if found is None:
            raise CheckpointError(
                f"{source}: names an unknown model class {entry['class']!r}; "
                f"known: {sorted(REGISTRY)}"
            )
        if not issubclass(found, cls):
            raise CheckpointError(
                f"{source}: holds a checkpoint of {found.__name__}, expected one of {cls.__name__}"
            )
        try:
            model = found(**entry["config"])
        except (TypeError, ValueError) as err:
            raise CheckpointError(
                f"{source}: its {found.__name__} configuration "
                f"{entry['config']} does not build: {one_line(err)}"
            ) from err
        model.load_saved_weights(entry["state_dict"], source)
        return model

    def load_saved_weights(self, state_dict: dict, source="checkpoint") -> None:
        """load_state_dict, with a one-line CheckpointError naming `source` when they differ."""
        try:
            self.load_state_dict(state_dict)
        except (RuntimeError, KeyError, TypeError) as err:
            raise CheckpointError(
                f"{source}: its weights do not fit {type(self).__name__}"
                f"({self.config}): {one_line(err)}"
            ) from err

    @classmethod
    def load(cls, path, map_location="cpu") -> "GenerativeModel":
        """A model saved by `save` (or the model inside a `gen-ext train` checkpoint).
        `GenerativeModel.load` takes any model; `VAE.load` only a VAE."""
        return cls.from_checkpoint(read_checkpoint(path, map_location), source=path)
