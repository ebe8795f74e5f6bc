"""The training loop behind `gen-ext train`: progress bar with the running loss, the held-out
metric every epoch, an atomic checkpoint every epoch (an interrupted run loses at most the epoch
in progress and `--resume` continues from the last one), and at the end metrics.json, a loss-curve
PNG and PNG grids of samples and reconstructions."""

import inspect
import json
import math
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from gen_ext import ops
from gen_ext.cpu_memory import keep_freed_cpu_memory
from gen_ext.data import ImageData, load, load_audio, mu_law_encode
from gen_ext.errors import CheckpointError, TrainingError, one_line
from gen_ext.files import atomic_write_bytes
from gen_ext.metrics import histogram_bits_per_dim, likelihood_baselines, score_samples
from gen_ext.models import MODELS, Autoencoder, GenerativeModel
from gen_ext.models.adversarial import AdversarialModel
from gen_ext.models.base import atomic_save, model_entry, read_checkpoint
from gen_ext.models.ebm import DivergenceError
from gen_ext.viz import save_curve_panels, save_grid

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"  # the best epoch's model, kept with --early-stop
EPOCH_SAMPLES = "epochs"  # folder of the sample grid of every epoch (models that draw one)
METRICS = "metrics.json"
PICTURES = {
    "samples": "samples.png",
    "reconstructions": "reconstructions.png",
    "loss_curve": "loss_curve.png",
    "codes": "codes.png",  # InfoGAN: a row of samples for each value of its categorical code
}
# what a training checkpoint holds besides the model ("rng" is newer: see _restore_rng)
TRAINING_KEYS = ("model", "optimizer", "epoch", "history", "train_config")
# settings a resumed run must share with the checkpoint (the others, e.g. lr, may change)
SAME_ON_RESUME = ("model", "data", "image_size", "clip_length", "model_args")
SAMPLES_SOUND = "samples.wav"  # what a model of sound writes beside its samples.png
RECONSTRUCTION_COLUMNS, RECONSTRUCTION_GROUPS = 8, 4


@dataclass
class TrainConfig:
    model: str
    data: str | None = None  # None: the model's default_data
    epochs: int | None = None  # None: the model's default_epochs
    batch_size: int | None = None  # None: the model's default_batch_size
    lr: float | None = None  # None: the model's default_lr
    device: str = "cpu"
    out: str = "results/train"
    seed: int = 0
    image_size: int = 8
    clip_length: int = 1024  # samples per clip of audio data
    model_args: dict = field(default_factory=dict)
    # stop when the held-out main metric has not improved for this many epochs and keep the best
    # epoch's weights (None: run every epoch)
    early_stop: int | None = None

    def __post_init__(self):
        cls = MODELS.get(self.model, GenerativeModel)  # an unknown name fails in build_model
        if self.epochs is None:
            self.epochs = cls.default_epochs
        if self.data is None:
            self.data = cls.default_data
        if self.batch_size is None:
            self.batch_size = cls.default_batch_size
        if self.lr is None:
            self.lr = cls.default_lr
        if self.early_stop is not None and (
            not isinstance(self.early_stop, int)
            or isinstance(self.early_stop, bool)
            or self.early_stop < 1
        ):
            raise TrainingError(
                f"early_stop must be a positive number of epochs (or None), got {self.early_stop!r}"
            )


def load_data(cfg: TrainConfig):
    """The data cfg.data names, images or sound as the model takes."""
    cls = MODELS.get(cfg.model, GenerativeModel)
    if cls.data_kind == "audio":
        return load_audio(cfg.data, cfg.clip_length)
    return load(cfg.data, cfg.image_size)


def build_model(name: str, data: ImageData, **model_args) -> GenerativeModel:
    if name not in MODELS:
        raise TrainingError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    cls = MODELS[name]
    kwargs = {"input_shape": data.shape}
    signature = inspect.signature(cls)
    if "levels" in signature.parameters:  # models of the discrete data
        kwargs["levels"] = data.levels
    if "sample_rate" in signature.parameters:  # models of sound
        kwargs["sample_rate"] = data.sample_rate
    kwargs.update(model_args)
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        named = [p.name for p in signature.parameters.values() if p.kind != p.VAR_KEYWORD]
        raise TrainingError(f"model {name}: {one_line(err)}; it takes {', '.join(named)}") from err
    try:
        model = cls(**kwargs)
        if isinstance(model, AdversarialModel):
            # the digit classifier scores samples of the digits only, not of any 1x8x8 images
            model.set_digit_scoring(data.name == "digits")
        return model
    except (TypeError, ValueError) as err:  # the models' own checks of their settings
        raise TrainingError(
            f"model {name} with {model_args or 'its defaults'} on {data.name}: {one_line(err)}"
        ) from err


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


class _NonFinite(Exception):
    """A training step met a non-finite loss or gradient; train() turns it into a TrainingError
    that also says which checkpoint is kept."""

    def __init__(self, step: int, steps: int, what: str):
        super().__init__(f"step {step} of {steps}: {what}")


def _first_non_finite_gradient(named_parameters) -> str | None:
    named = [(name, p) for name, p in named_parameters if p.grad is not None]
    grads = [p.grad for _, p in named]
    if not grads or torch.isfinite(torch.nn.utils.get_total_norm(grads)):  # one sync per step
        return None
    for name, p in named:
        if not torch.isfinite(p.grad).all():
            return name
    return "a parameter"  # finite pieces whose norm overflows


def _first_non_finite_parameter(model) -> str | None:
    return next((name for name, p in model.named_parameters() if not torch.isfinite(p).all()), None)


class _Updater:
    """What a model's training_step calls to apply one loss: update(loss, optimizer_name,
    max_norm=None) checks the loss is finite, backpropagates it, checks the gradients of that
    optimizer's parameters, clips their norm to max_norm when given, steps the optimizer and
    returns the loss as a float."""

    def __init__(self, model, optimizers: dict, step: int, steps: int):
        self.optimizers = optimizers
        self.step, self.steps = step, steps
        names = {id(p): name for name, p in model.named_parameters()}
        self.named = {
            key: [
                (names.get(id(p), "a parameter"), p) for g in opt.param_groups for p in g["params"]
            ]
            for key, opt in optimizers.items()
        }

    def __call__(self, loss: torch.Tensor, name: str, max_norm: float | None = None) -> float:
        value = loss.item()
        what = "the training loss" if name == "model" else f"the {name} loss"
        if not math.isfinite(value):
            raise _NonFinite(self.step, self.steps, f"{what} is {value}")
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        bad = _first_non_finite_gradient(self.named[name])
        if bad is not None:
            raise _NonFinite(self.step, self.steps, f"the gradient of {bad} is not finite")
        if max_norm is not None:  # gradient clipping, where the model asks for it
            torch.nn.utils.clip_grad_norm_([p for _, p in self.named[name]], max_norm)
        optimizer.step()
        return value


def _epoch(model, data, cfg, epoch, optimizers, device, progress) -> dict:
    """One pass over the training split; the mean of each value the model's training_step
    logs (over the steps that logged it), and for the keys in model.step_logs every step's
    value in "steps"."""
    g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)  # same order when resumed
    order = torch.randperm(data.train.shape[0], generator=g)
    steps = range(0, len(order), cfg.batch_size)
    bar = tqdm(
        steps, desc=f"epoch {epoch}/{cfg.epochs}", leave=False, disable=not progress, unit="batch"
    )
    sums, counts, running = {}, {}, {}
    per_step = {key: [] for key in model.step_logs}
    # the parameters' names are looked up once; the updater is told each step's number
    update = _Updater(model, optimizers, 0, len(steps))
    for step, start in enumerate(bar, 1):
        x = data.train[order[start : start + cfg.batch_size]].to(device)
        update.step = step
        try:
            logs = model.training_step(x, update, (epoch - 1) * len(steps) + step)
        except DivergenceError as err:  # the model's own check (an EBM's energies)
            raise _NonFinite(step, len(steps), str(err)) from None
        for key, value in logs.items():
            sums[key] = sums.get(key, 0.0) + value * len(x)
            counts[key] = counts.get(key, 0) + len(x)
            running[key] = value if key not in running else 0.9 * running[key] + 0.1 * value
        for key in per_step:
            per_step[key].append(logs.get(key))
        bar.set_postfix({k: f"{v:.4g}" for k, v in running.items() if k in model.progress_logs})
    means = {key: sums[key] / counts[key] for key in sums}
    if per_step:
        means["steps"] = per_step
    return means


class EarlyStop:
    """--early-stop: the epoch with the lowest held-out main metric so far, and whether
    `patience` epochs have passed since without a lower one. A resumed run rebuilds it from the
    history."""

    def __init__(self, patience: int | None, metric: str, history: list[dict]):
        self.patience, self.metric = patience, metric
        self.best = self.best_epoch = None
        self.since = 0
        for entry in history:
            self.record(entry)

    def record(self, entry: dict) -> bool:
        """Counts one epoch's history entry; whether it is the best so far."""
        value = entry.get(f"test_{self.metric}")
        if isinstance(value, float) and math.isfinite(value):
            if self.best is None or value < self.best:
                self.best, self.best_epoch, self.since = value, entry["epoch"], 0
                return True
        self.since += 1
        return False

    @property
    def done(self) -> bool:
        return self.patience is not None and self.since >= self.patience

    def summary(self) -> dict | None:
        if self.patience is None:
            return None
        return {
            "patience": self.patience,
            "stopped_early": self.done,
            "best_epoch": self.best_epoch,
            f"best_test_{self.metric}": self.best,
            # the epoch was chosen on the held-out split its metrics are reported on, so they
            # are an optimistic estimate of a fresh sample's
            "selected_on": "held-out split",
        }


def _early_stop(cfg, model, history: list[dict], best_path: Path) -> EarlyStop:
    """The early stop of a run, continued from a resumed run's history where best.pt holds the
    best epoch of that history (a run resumed without --early-stop may have improved past the
    kept model: then the count starts afresh)."""
    stopper = EarlyStop(cfg.early_stop, model.main_metric, history)
    if cfg.early_stop is None or stopper.best_epoch is None:
        return stopper
    if best_path.is_file():
        kept = read_checkpoint(best_path).get("epoch")
        if kept == stopper.best_epoch:
            return stopper
    return EarlyStop(cfg.early_stop, model.main_metric, [])


def _epoch_samples(model, out: Path, epoch: int, device) -> Path:
    """The sample grid of one epoch, from the same latent draws every epoch, so the grids show
    how the same samples change."""
    generator = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        samples = model.sample(model.picture_samples, generator)
    return save_grid(samples.cpu(), out / EPOCH_SAMPLES / f"samples_epoch_{epoch:03d}.png")


def _reconstruction_rows(model, test: torch.Tensor, device):
    """Held-out images and what the model makes of them, as rows of a grid with their labels:
    up to RECONSTRUCTION_GROUPS groups of a row of inputs, (a row of corrupted inputs,) and a row
    of reconstructions. Rows are as long as the test set allows, so any size fits."""
    columns = min(RECONSTRUCTION_COLUMNS, test.shape[0])
    groups = min(RECONSTRUCTION_GROUPS, test.shape[0] // columns)
    x = test[: groups * columns].to(device)
    kinds = [("input", x)]
    if hasattr(model, "corrupt"):
        x = model.corrupt(x, torch.Generator(device=device).manual_seed(0))
        kinds.append(("corrupted input", x))
    with torch.no_grad():
        kinds.append(("reconstruction", model.reconstruct(x)))
    rows, labels = [], []
    for group in range(groups):
        for label, images in kinds:
            rows.append(images[group * columns : (group + 1) * columns].cpu())
            labels.append(label)
    return torch.cat(rows), labels, columns


def _pictures(model, data, history, out: Path, device, title: str, progress: bool) -> dict:
    written = {}
    if model.can_sample:
        generator = torch.Generator(device=device).manual_seed(0)
        samples = model.sample(model.picture_samples, generator, progress=progress)
        files = model.write_samples(samples.cpu(), out / PICTURES["samples"])
        written.update(zip(["samples", "samples_sound"], map(str, files), strict=False))
    written.update({k: str(v) for k, v in model.extra_pictures(out).items()})
    if model.can_reconstruct:
        grid, labels, columns = _reconstruction_rows(model, data.test, device)
        written["reconstructions"] = str(
            save_grid(grid, out / PICTURES["reconstructions"], columns=columns, row_labels=labels)
        )
    written["loss_curve"] = str(
        save_curve_panels(history, model.curve_panels(), out / PICTURES["loss_curve"], title)
    )
    return written


def _refuse_earlier_run(out: Path, resume: bool, overwrite: bool) -> None:
    """A folder holding a checkpoint is continued (resume) or started over (overwrite), never
    trained over by accident."""
    ckpt_path = out / CHECKPOINT
    if resume and overwrite:
        raise TrainingError(
            f"resume and overwrite exclude each other: resume continues the run "
            f"in {out}, overwrite starts it over"
        )
    if ckpt_path.exists() and not (resume or overwrite):
        raise TrainingError(
            f"{ckpt_path} already holds a checkpoint of an earlier run; pass "
            f"--resume to continue it or --overwrite to start over"
        )


def _check_writable(out: Path) -> None:
    """Before any time goes into training: can the folder be made and written?"""
    if out.exists() and not out.is_dir():
        raise TrainingError(f"output folder {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test.", suffix=".tmp")
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise TrainingError(
            f"output folder {out} is not writable: {err.strerror or one_line(err)}"
        ) from err


def _remove_earlier_results(out: Path) -> None:
    """For overwrite, once the new run is ready to start: none of the earlier run's files may be
    mistaken for this run's."""
    for name in (CHECKPOINT, BEST, METRICS, *PICTURES.values(), SAMPLES_SOUND):
        if (out / name).is_file():
            (out / name).unlink()
    for grid in (out / EPOCH_SAMPLES).glob("samples_epoch_*.png"):
        grid.unlink()


def _rng_state(device: torch.device) -> dict:
    """The global random state that dropout, noise and corruption draw from, so a resumed run
    draws what an uninterrupted one would."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng(ckpt: dict, device: torch.device, path: Path) -> None:
    state = ckpt.get("rng")
    if state is None or (device.type == "cuda" and "cuda" not in state):
        warnings.warn(
            f"{path} holds no random state for {device} (written by an older gen_ext "
            f"or on another device): the resumed run will not repeat an uninterrupted "
            f"one exactly",
            stacklevel=3,
        )
    if state is None:
        return
    torch.set_rng_state(state["cpu"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def _load_training_checkpoint(path: Path, cfg: TrainConfig) -> dict:
    """The checkpoint --resume continues, checked to be one of `gen-ext train` for these
    settings."""
    if not path.exists():
        raise CheckpointError(f"--resume: no checkpoint at {path}; start without --resume")
    ckpt = read_checkpoint(path, map_location="cpu")  # optimizer and RNG state move on load
    model_entry(ckpt, path)  # a gen_ext checkpoint at all
    missing = [k for k in TRAINING_KEYS if k not in ckpt]
    if "model" not in ckpt:
        raise CheckpointError(
            f"{path}: holds a model saved by GenerativeModel.save, not a "
            f"training checkpoint; --resume needs the checkpoint.pt that "
            f"gen-ext train writes"
        )
    if missing:
        raise CheckpointError(
            f"{path}: a gen_ext checkpoint without the training state "
            f"({', '.join(missing)}); expected the checkpoint.pt that gen-ext "
            f"train writes"
        )
    saved = ckpt["train_config"]
    for key in SAME_ON_RESUME:
        if saved.get(key) != getattr(cfg, key):
            raise CheckpointError(
                f"{path}: the checkpoint was trained with {key}="
                f"{saved.get(key)!r}, not {getattr(cfg, key)!r}; pass the same "
                f"settings to --resume, or --overwrite to start over"
            )
    return ckpt


def _optimizer_states(saved: dict) -> dict:
    """The optimizer states of a checkpoint by name (one written before models had several
    optimizers holds the single state of "model")."""
    return {"model": saved} if "param_groups" in saved else saved


def _resume(ckpt, path, model, optimizers, device) -> tuple[list, int]:
    model.load_saved_weights(ckpt["model"]["state_dict"], path)
    try:
        states = _optimizer_states(ckpt["optimizer"])
        if set(states) != set(optimizers):
            raise ValueError(f"it holds {sorted(states)}, the model has {sorted(optimizers)}")
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(states[name])
    except (ValueError, KeyError, RuntimeError, TypeError) as err:
        raise CheckpointError(
            f"{path}: its optimizer state does not fit the model: {one_line(err)}"
        ) from err
    _restore_rng(ckpt, device, path)
    # the per-shape convolution paths the run chose: the same arithmetic after the resume
    try:
        ops.set_conv_path_choices(ckpt.get("conv_paths", {}))
    except (ValueError, AttributeError, TypeError, RuntimeError) as err:
        raise CheckpointError(
            f"{path}: its conv_paths entry is not a set of convolution path choices: "
            f"{one_line(err)}"
        ) from err
    return ckpt["history"], ckpt["epoch"] + 1


def _kept(ckpt_path: Path, epoch: int) -> str:
    if epoch > 1:
        return f"the last good checkpoint ({ckpt_path}, epoch {epoch - 1}) is kept"
    return "no checkpoint was written"


def _write_failed(err: OSError, when: str, consequence: str) -> TrainingError:
    where = err.filename or "a file"
    return TrainingError(
        f"{when}: cannot write {where}: {err.strerror or one_line(err)}; {consequence}"
    )


def _summary(cfg, model, data, history, device, started) -> dict:
    model.eval()
    final = model.evaluate(data.test.to(device)) if history else {}
    metrics = {
        "model": cfg.model,
        "class": type(model).__name__,
        "config": model.config,
        "data": data.name,
        "levels": data.levels,
        "train_images": data.train.shape[0],
        "test_images": data.test.shape[0],
        "epochs": cfg.epochs,
        "seconds_this_run": round(time.perf_counter() - started, 1),
        "unit": model.unit,
        "test": final,
        "history": history,
    }
    if isinstance(model, Autoencoder) and model.narrow:
        width = model.config["bottleneck"]
        metrics["baseline"] = {
            # PCA has no more components than training images or values per image
            "pca_components": min(width, *data.train.flatten(1).shape),
            "pca_test_mse": pca_reconstruction_mse(data.train, data.test, width),
        }
    if model.can_sample and data.name == "digits":
        metrics["sample_quality"] = score_samples(model, data.test.to(device))
    if model.main_metric == "bits_per_dim":
        metrics["baseline"] = likelihood_baselines(data.train, data.test, data.levels)
    if model.main_metric == "bits_per_sample":
        metrics["baseline"] = sound_baselines(data.train, data.test, data.levels)
    return metrics


def sound_baselines(train: torch.Tensor, test: torch.Tensor, levels: int) -> dict:
    """The held-out baselines of a model of sound, in bits per sample: every mu-law level equally
    likely, and one histogram of the levels over all training samples (sound has no fixed
    positions, so the histogram is pooled over time)."""

    def pooled(x):  # each sample a one-pixel image on the level grid in [0, 1]
        return (mu_law_encode(x, levels).reshape(-1, 1, 1, 1) / (levels - 1)).float()

    return {
        "uniform_bits_per_sample": math.log2(levels),
        "histogram_bits_per_sample": histogram_bits_per_dim(pooled(train), pooled(test), levels),
    }


def _write_metrics(metrics: dict, out: Path) -> None:
    try:
        atomic_write_bytes(out / METRICS, json.dumps(metrics, indent=2).encode())
    except OSError as err:
        raise _write_failed(err, "after training", "the checkpoint is kept") from err


def train(
    cfg: TrainConfig, resume: bool = False, progress: bool = True, overwrite: bool = False
) -> dict:
    """Trains cfg.model into the folder cfg.out: checkpoint.pt after every epoch, then
    metrics.json and the PNGs. A folder holding a checkpoint is continued with `resume` or
    started over with `overwrite`; without either it is refused. User-facing failures raise
    TrainingError, CheckpointError or DataError with a one-line message."""
    device = torch.device(cfg.device)
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT
    _refuse_earlier_run(out, resume, overwrite)
    ckpt = _load_training_checkpoint(ckpt_path, cfg) if resume else None
    _check_writable(out)
    torch.manual_seed(cfg.seed)
    data = load_data(cfg)
    model = build_model(cfg.model, data, **cfg.model_args).to(device)
    optimizers = model.make_optimizers(cfg.lr)
    history, first_epoch = [], 1
    if ckpt is not None:
        history, first_epoch = _resume(ckpt, ckpt_path, model, optimizers, device)
    if overwrite:
        _remove_earlier_results(out)
    keep_freed_cpu_memory()  # no step pays for page faults of memory freed by the one before
    started = time.perf_counter()
    if cfg.early_stop is not None and not model.lower_is_better:
        raise TrainingError(
            f"--early-stop: {cfg.model} on {data.name} reports {model.main_metric}, which is "
            f"not lower for a better model (a discriminator's loss is lowest when it wins); "
            f"early stopping works on the digits' Fréchet distance"
        )
    stopper = _early_stop(cfg, model, history, out / BEST)
    for epoch in range(first_epoch, cfg.epochs + 1):
        if stopper.done:
            break
        model.train()
        try:
            logs = _epoch(model, data, cfg, epoch, optimizers, device, progress)
        except _NonFinite as err:
            raise TrainingError(
                f"epoch {epoch}, {err}; training stopped and {_kept(ckpt_path, epoch)}"
            ) from None
        bad = _first_non_finite_parameter(model)
        if bad is not None:
            raise TrainingError(
                f"epoch {epoch}: the weights of {bad} are not finite; training "
                f"stopped and {_kept(ckpt_path, epoch)}"
            )
        model.eval()
        held_out = model.evaluate(data.test.to(device))
        steps = logs.pop("steps", None)
        entry = {
            "epoch": epoch,
            **{f"train_{k}": v for k, v in logs.items()},
            **{f"test_{k}": v for k, v in held_out.items()},
        }
        if steps is not None:
            entry["steps"] = steps
        history.append(entry)
        improved = stopper.record(entry)
        try:
            if improved and cfg.early_stop is not None:
                atomic_save({**model.checkpoint(), "epoch": epoch}, out / BEST)
            atomic_save(
                {
                    "model": model.checkpoint(),
                    "optimizer": {k: opt.state_dict() for k, opt in optimizers.items()},
                    "epoch": epoch,
                    "history": history,
                    "train_config": asdict(cfg),
                    "rng": _rng_state(device),
                    "conv_paths": ops.conv_path_choices(),
                },
                ckpt_path,
            )
            if model.pictures_every_epoch:
                _epoch_samples(model, out, epoch, device)
        except OSError as err:
            raise _write_failed(err, f"epoch {epoch}", _kept(ckpt_path, epoch)) from err
        if progress:
            shown = [f"train {k} {logs[k]:.4f}" for k in model.progress_logs if k in logs]
            tqdm.write(
                f"epoch {epoch}/{cfg.epochs}  {'  '.join(shown)}  "
                f"held-out {model.main_metric} {held_out[model.main_metric]:.4f}"
                + (
                    ""
                    if improved or cfg.early_stop is None
                    else f"  (best: epoch {stopper.best_epoch})"
                )
            )
    if cfg.early_stop is not None and stopper.best_epoch is not None:
        best = read_checkpoint(out / BEST, map_location=device)
        model.load_saved_weights(best["state_dict"], out / BEST)
        if progress and stopper.done:
            tqdm.write(
                f"early stop: held-out {model.main_metric} did not improve for {cfg.early_stop} "
                f"epochs; keeping epoch {stopper.best_epoch} ({out / BEST})"
            )
    metrics = _summary(cfg, model, data, history, device, started)
    metrics["epochs_run"] = len(history)
    metrics["early_stop"] = stopper.summary()
    # metrics.json first: a picture that fails must not lose the numbers
    metrics["pictures"] = {}
    _write_metrics(metrics, out)
    try:
        metrics["pictures"] = _pictures(
            model, data, history, out, device, f"{cfg.model} on {data.name}", progress
        )
    except OSError as err:
        raise _write_failed(
            err, "after training", f"{out / METRICS} and the checkpoint are written"
        ) from err
    _write_metrics(metrics, out)
    return metrics
