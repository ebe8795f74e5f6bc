"""What every model in gen_ext.models shares: its configuration, checkpoints that record it, and
the interface the `gen-ext train` loop drives."""

import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

# The one model registry: class name -> class, filled by GenerativeModel subclasses, so a
# checkpoint names its class. The `gen-ext train` names are a view of it (ByCliName).
REGISTRY: dict[str, type] = {}


class ByCliName(Mapping):
    """REGISTRY looked up by the name `gen-ext train` takes: each class that declares its own
    `cli_name` (a subclass does not inherit its parent's). A live view, in registration order."""

    def _table(self) -> dict[str, type]:
        return {cls.__dict__["cli_name"]: cls for cls in REGISTRY.values()
                if cls.__dict__.get("cli_name")}

    def __getitem__(self, name: str) -> type:
        return self._table()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())

    def __repr__(self) -> str:
        return f"ByCliName({self._table()!r})"


def atomic_save(obj, path) -> None:
    """torch.save through a temporary file in the same folder and a rename: an interrupted write
    leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class GenerativeModel(nn.Module):
    """Subclasses call `super().__init__(**config)` with every constructor argument, implement
    `loss(x) -> (loss, logs)` for x in [0, 1], and `evaluate(x) -> metrics`; `sample` and
    `reconstruct` where they apply. `main_metric` names the held-out metric (lower is better)."""

    main_metric = "loss"
    default_epochs = 100  # what `gen-ext train` runs when not told otherwise
    cli_name: str | None = None  # the name `gen-ext train` takes; None: not offered there

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        REGISTRY[cls.__name__] = cls

    def __init__(self, **config):
        super().__init__()
        self.config = dict(config)

    def loss(self, x: torch.Tensor):
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor) -> dict:
        loss, logs = self.loss(x)
        return {"loss": loss.item(), **{k: float(v) for k, v in logs.items()}}

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no prior to sample from")

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not reconstruct its input")

    @property
    def can_sample(self) -> bool:
        return type(self).sample is not GenerativeModel.sample

    @property
    def can_reconstruct(self) -> bool:
        return type(self).reconstruct is not GenerativeModel.reconstruct

    def checkpoint(self) -> dict:
        return {"class": type(self).__name__, "config": self.config,
                "state_dict": self.state_dict()}

    def save(self, path) -> None:
        atomic_save(self.checkpoint(), path)

    @staticmethod
    def from_checkpoint(ckpt: dict) -> "GenerativeModel":
        cls = REGISTRY.get(ckpt.get("class"))
        if cls is None:
            raise ValueError(f"checkpoint names an unknown model class {ckpt.get('class')!r}; "
                             f"known: {sorted(REGISTRY)}")
        model = cls(**ckpt["config"])
        model.load_state_dict(ckpt["state_dict"])
        return model

    @staticmethod
    def load(path, map_location="cpu") -> "GenerativeModel":
        """A model saved by `save` (or the model inside a `gen-ext train` checkpoint)."""
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
        return GenerativeModel.from_checkpoint(ckpt.get("model", ckpt))
