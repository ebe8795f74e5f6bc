"""The training loop behind `gen-ext train`: progress bar with the running loss, the held-out
metric every epoch, an atomic checkpoint every epoch (an interrupted run loses at most the epoch
in progress and `--resume` continues from the last one), and at the end metrics.json, a loss-curve
PNG and PNG grids of samples and reconstructions."""

import inspect
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from gen_ext.data import ImageData, load
from gen_ext.metrics import likelihood_baselines
from gen_ext.models import MODELS, Autoencoder, GenerativeModel
from gen_ext.models.base import atomic_save
from gen_ext.viz import save_curves, save_grid

CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainConfig:
    model: str
    data: str = "digits"
    epochs: int | None = None  # None: the model's default_epochs
    batch_size: int = 64
    lr: float = 1e-3
    device: str = "cpu"
    out: str = "results/train"
    seed: int = 0
    image_size: int = 8
    model_args: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.epochs is None:
            cls = MODELS.get(self.model, GenerativeModel)  # an unknown name fails in build_model
            self.epochs = cls.default_epochs


def build_model(name: str, data: ImageData, **model_args) -> GenerativeModel:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    cls = MODELS[name]
    kwargs = {"input_shape": data.shape}
    if "levels" in inspect.signature(cls).parameters:  # models of the discrete data
        kwargs["levels"] = data.levels
    kwargs.update(model_args)
    return cls(**kwargs)


def pca_reconstruction_mse(train: torch.Tensor, test: torch.Tensor, components: int) -> float:
    """Held-out mean squared error of the best linear code of `components` dimensions (PCA
    fitted on the training set): the baseline an autoencoder of that width must beat."""
    x = train.flatten(1).double()
    mean = x.mean(0)
    _, _, vt = torch.linalg.svd(x - mean, full_matrices=False)
    basis = vt[:components]
    t = test.flatten(1).double()
    recon = (t - mean) @ basis.T @ basis + mean
    return torch.mean((recon - t) ** 2).item()


def _epoch(model, data, cfg, epoch, optimizer, device, progress) -> float:
    g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)  # same order when resumed
    order = torch.randperm(data.train.shape[0], generator=g)
    steps = range(0, len(order), cfg.batch_size)
    bar = tqdm(steps, desc=f"epoch {epoch}/{cfg.epochs}", leave=False, disable=not progress,
               unit="batch")
    total, count, running = 0.0, 0, None
    for start in bar:
        x = data.train[order[start:start + cfg.batch_size]].to(device)
        loss, _ = model.loss(x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        total, count = total + value * len(x), count + len(x)
        running = value if running is None else 0.9 * running + 0.1 * value
        bar.set_postfix(loss=f"{running:.4g}")
    return total / count


def _pictures(model, data, out: Path, device) -> dict:
    written = {}
    generator = torch.Generator(device=device).manual_seed(0)
    if model.can_sample:
        written["samples"] = str(save_grid(model.sample(64, generator).cpu(), out / "samples.png"))
    if model.can_reconstruct:
        x = data.test[:32].to(device)
        shown = [x]
        if hasattr(model, "corrupt"):
            x = model.corrupt(x, generator)
            shown.append(x)
        with torch.no_grad():
            shown.append(model.reconstruct(x))
        # rows of 8: inputs (corrupted inputs), then their reconstructions
        grid = torch.cat([torch.stack(t.cpu().split(8)) for t in shown], dim=1).flatten(0, 1)
        written["reconstructions"] = str(save_grid(grid, out / "reconstructions.png", columns=8))
    return written


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> dict:
    device = torch.device(cfg.device)
    out = Path(cfg.out)
    torch.manual_seed(cfg.seed)
    data = load(cfg.data, cfg.image_size)
    model = build_model(cfg.model, data, **cfg.model_args).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ckpt_path = out / CHECKPOINT
    history, first_epoch = [], 1
    if resume:
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}")
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        saved = ckpt["train_config"]
        for key in ("model", "data", "image_size", "model_args"):
            if saved[key] != getattr(cfg, key):
                raise ValueError(f"--resume: the checkpoint was trained with {key}={saved[key]!r}, "
                                 f"not {getattr(cfg, key)!r}")
        model.load_state_dict(ckpt["model"]["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        history, first_epoch = ckpt["history"], ckpt["epoch"] + 1
    started = time.perf_counter()
    for epoch in range(first_epoch, cfg.epochs + 1):
        model.train()
        train_loss = _epoch(model, data, cfg, epoch, optimizer, device, progress)
        model.eval()
        held_out = model.evaluate(data.test.to(device))
        history.append({"epoch": epoch, "train_loss": train_loss,
                        **{f"test_{k}": v for k, v in held_out.items()}})
        atomic_save({"model": model.checkpoint(), "optimizer": optimizer.state_dict(),
                     "epoch": epoch, "history": history, "train_config": asdict(cfg)}, ckpt_path)
        if progress:
            tqdm.write(f"epoch {epoch}/{cfg.epochs}  train loss {train_loss:.4f}  "
                       f"held-out {model.main_metric} {held_out[model.main_metric]:.4f}")
    model.eval()
    final = model.evaluate(data.test.to(device)) if history else {}
    metrics = {"model": cfg.model, "class": type(model).__name__, "config": model.config,
               "data": data.name, "levels": data.levels, "train_images": data.train.shape[0],
               "test_images": data.test.shape[0], "epochs": cfg.epochs,
               "seconds_this_run": round(time.perf_counter() - started, 1),
               "test": final, "history": history}
    if isinstance(model, Autoencoder) and model.narrow:
        width = model.config["bottleneck"]
        metrics["baseline"] = {"pca_components": width,
                               "pca_test_mse": pca_reconstruction_mse(data.train, data.test, width)}
    if model.main_metric == "bits_per_dim":
        metrics["baseline"] = likelihood_baselines(data.train, data.test, data.levels)
    metrics["pictures"] = _pictures(model, data, out, device)
    metrics["pictures"]["loss_curve"] = str(save_curves(
        history, ["train_loss", f"test_{model.main_metric}"], out / "loss_curve.png",
        f"{cfg.model} on {data.name}"))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
