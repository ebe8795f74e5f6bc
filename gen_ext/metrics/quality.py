"""Sample-quality metrics for 8x8 digit images, usable on any model's samples.

A small convolutional classifier is trained deterministically on the bundled digits' training
split (seconds on a CPU, no download) and cached on disk. Its penultimate features are the space
in which generated and real images are compared:

- Fréchet distance between Gaussians fitted to the two feature sets;
- precision and recall of the generated distribution: k-nearest-neighbour radius manifolds of
  each set, precision = share of generated samples inside the real manifold, recall = share of
  real samples inside the generated one;
- mode coverage: the histogram of the classifier's classes among the samples, the share of
  classes present, the normalised entropy of the histogram, and a mode-collapse flag.
"""

import io
import math
import os
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..files import atomic_write

# bump when the architecture, the training recipe or the data change: the cache file is named
# after it, so an old file is never loaded into a new network
CLASSIFIER_VERSION = "digit-classifier-v1"
TRAIN_SEED = 0
TRAIN_EPOCHS = 30
TRAIN_BATCH = 64
TRAIN_LR = 2e-3
FEATURES = 64

# A class counts as covered when it holds at least this share of the samples (a quarter of the
# share a uniform class distribution gives it, 2.5% for 10 classes): a class a sampler produces
# once in a thousand draws is not a mode it models. The held-out digits have 7.8-14.2% per class.
MIN_CLASS_SHARE_FACTOR = 0.25
# Collapse: fewer than 8 of the 10 classes covered (the training and held-out digits cover all
# 10, and so do blurred digits; missing three or more digits is a collapsed generator, not
# sampling noise; one class gives 0.1, two classes 0.2) ...
COVERAGE_THRESHOLD = 0.8
# ... or a normalised class entropy below 0.75. Measured / computed references: held-out real
# digits 0.993 (their classifier histogram); 8 equally likely classes 0.903; 6 equally likely
# classes 0.778; 5 classes 0.699; two classes 0.301; a single class 0. So 0.75 flags generators
# that put most of their mass on five or fewer digits even when the others appear now and then.
ENTROPY_THRESHOLD = 0.75

IMAGE_SHAPE = (1, 8, 8)


class DigitClassifier(nn.Module):
    """Two 3x3 convolutions and a hidden layer of FEATURES units (the penultimate features) for
    [B, 1, 8, 8] images in [0, 1]; `forward` returns the 10 logits."""

    def __init__(self, features: int = FEATURES, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, stride=2)  # -> 4x4
        self.hidden = nn.Linear(32 * 4 * 4, features)
        self.out = nn.Linear(features, num_classes)
        self.test_accuracy: float | None = None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x * 2 - 1))
        h = F.relu(self.conv2(h))
        return F.relu(self.hidden(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


def default_cache_dir() -> Path:
    return Path(os.environ.get("GEN_EXT_CACHE") or Path.home() / ".cache" / "gen_ext")


def classifier_cache_path(cache_dir=None) -> Path:
    return Path(cache_dir or default_cache_dir()) / f"{CLASSIFIER_VERSION}.pt"


@torch.no_grad()
def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    return (model(images).argmax(1) == labels).double().mean().item()


def train_digit_classifier() -> tuple[DigitClassifier, dict]:
    """Trains a DigitClassifier on digits().train: fixed seed, fixed epochs and batch order,
    Adam, one thread (so the summation order, and the weights, are the same on every run on a
    machine). Returns the model and its info, including the held-out accuracy."""
    from ..data.datasets import digits

    data = digits()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        gen = torch.Generator().manual_seed(TRAIN_SEED)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(TRAIN_SEED)
            model = DigitClassifier()
        opt = torch.optim.Adam(model.parameters(), lr=TRAIN_LR)
        x, y = data.train, data.train_labels
        # gradients on even when called under no_grad: the first scoring of samples, inside a
        # model's no_grad evaluation, is what trains the classifier on a new machine
        with torch.enable_grad():
            for _ in range(TRAIN_EPOCHS):
                model.train()
                order = torch.randperm(x.shape[0], generator=gen)
                for i in range(0, x.shape[0], TRAIN_BATCH):
                    idx = order[i : i + TRAIN_BATCH]
                    loss = F.cross_entropy(model(x[idx]), y[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
        accuracy = _accuracy(model, data.test, data.test_labels)
    finally:
        torch.set_num_threads(threads)
    info = {
        "test_accuracy": accuracy,
        "train_accuracy": _accuracy(model, data.train, data.train_labels),
        "epochs": TRAIN_EPOCHS,
        "seed": TRAIN_SEED,
        "version": CLASSIFIER_VERSION,
        "train_seconds": time.perf_counter() - start,
    }
    model.eval()
    model.test_accuracy = accuracy
    return model, info


def _load_cached(path: Path) -> tuple[DigitClassifier, dict]:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    info = dict(blob["info"])
    if info.get("version") != CLASSIFIER_VERSION:
        raise ValueError(f"version {info.get('version')!r}, expected {CLASSIFIER_VERSION!r}")
    model = DigitClassifier()
    model.load_state_dict(blob["state_dict"])
    model.eval()
    model.test_accuracy = float(info["test_accuracy"])
    return model, info


def digit_classifier(cache_dir=None, retrain: bool = False) -> tuple[DigitClassifier, dict]:
    """The digit classifier and its info ({"test_accuracy", "epochs", "seed", "version", ...}).
    Loaded from `cache_dir` (default: $GEN_EXT_CACHE, else ~/.cache/gen_ext) when a file of
    this version is there; otherwise (or with `retrain`) trained and written there atomically.
    A cache file that cannot be read is replaced, with a warning."""
    path = classifier_cache_path(cache_dir)
    if not retrain and path.exists():
        try:
            return _load_cached(path)
        except Exception as err:  # any damage: truncated, not a torch file, wrong keys
            warnings.warn(
                f"{path}: cannot read the cached digit classifier ({type(err).__name__}: "
                f"{' '.join(str(err).split())[:200]}); training it again",
                stacklevel=2,
            )
    model, info = train_digit_classifier()
    blob = {"state_dict": model.state_dict(), "info": info}

    def write(f):
        buf = io.BytesIO()
        torch.save(blob, buf)
        f.write(buf.getvalue())

    atomic_write(path, write)
    return model, info


def _check_features(feats: torch.Tensor, name: str, min_rows: int = 2) -> torch.Tensor:
    if not isinstance(feats, torch.Tensor) or feats.dim() != 2:
        shape = tuple(feats.shape) if isinstance(feats, torch.Tensor) else type(feats).__name__
        raise ValueError(f"{name} must be a 2-D tensor [N, F] of features, got {shape}")
    if feats.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} samples, got {feats.shape[0]}")
    feats = feats.detach().to("cpu", torch.float64)
    if not torch.isfinite(feats).all():
        raise ValueError(f"{name} holds non-finite values")
    return feats


def _check_pair(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str], min_rows: int):
    a = _check_features(a, names[0], min_rows)
    b = _check_features(b, names[1], min_rows)
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} differ in feature size: {a.shape[1]} vs {b.shape[1]}"
        )
    return a, b


def _sym_sqrt(m: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix, tiny negative eigenvalues from
    rounding clamped to zero."""
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(feat_a: torch.Tensor, feat_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [Na, F] and [Nb, F]:
    ||mu_a - mu_b||^2 + Tr(Sa + Sb - 2 (Sa Sb)^(1/2)), in float64. Tr((Sa Sb)^(1/2)) is computed
    as Tr((Sa^(1/2) Sb Sa^(1/2))^(1/2)), the square roots of symmetric PSD matrices (same
    eigenvalues, no complex intermediate)."""
    a, b = _check_pair(feat_a, feat_b, ("feat_a", "feat_b"), 2)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    root_a = _sym_sqrt(cov_a)
    inner = root_a @ cov_b @ root_a
    vals = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp_min(0)
    trace_cross = vals.sqrt().sum()
    d = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_cross
    return max(d.item(), 0.0)


def _kth_nn_radius(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Distance from each row of x to its k-th nearest other row."""
    radii = []
    for i in range(0, x.shape[0], chunk):
        d = torch.cdist(x[i : i + chunk], x)
        # the k+1-th smallest includes the point itself at distance 0
        radii.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def _inside(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int):
    """Whether each point lies within the radius of at least one centre."""
    inside = []
    for i in range(0, points.shape[0], chunk):
        d = torch.cdist(points[i : i + chunk], centres)
        inside.append((d <= radii).any(dim=1))
    return torch.cat(inside)


def precision_recall(
    real_feats: torch.Tensor, fake_feats: torch.Tensor, k: int = 3, chunk: int = 1024
) -> tuple[float, float]:
    """Improved precision and recall with k-nearest-neighbour manifolds: each sample's ball
    reaches its k-th nearest neighbour in its own set. Precision = share of fake samples inside
    some real ball; recall = share of real samples inside some fake ball. Float64."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    real, fake = _check_pair(real_feats, fake_feats, ("real_feats", "fake_feats"), k + 1)
    real_r = _kth_nn_radius(real, k, chunk)
    fake_r = _kth_nn_radius(fake, k, chunk)
    precision = _inside(fake, real, real_r, chunk).double().mean().item()
    recall = _inside(real, fake, fake_r, chunk).double().mean().item()
    return precision, recall


def mode_coverage(class_probs_or_labels: torch.Tensor, num_classes: int = 10) -> dict:
    """Class histogram of samples, from integer labels [N] or class probabilities/logits
    [N, num_classes] (argmax). Returns {"class_histogram" (counts), "coverage" (share of classes
    holding at least MIN_CLASS_SHARE_FACTOR / num_classes of the samples), "class_entropy"
    (entropy of the histogram / log(num_classes), in [0, 1]), "collapsed" (coverage <
    COVERAGE_THRESHOLD or class_entropy < ENTROPY_THRESHOLD)}."""
    x = class_probs_or_labels
    if not isinstance(x, torch.Tensor):
        raise ValueError("class_probs_or_labels must be a tensor")
    if x.dim() == 2:
        if x.shape[1] != num_classes:
            raise ValueError(
                f"class_probs_or_labels must be [N, {num_classes}] probabilities, got "
                f"{tuple(x.shape)}"
            )
        labels = x.argmax(1)
    elif x.dim() == 1 and not x.is_floating_point():
        labels = x
    else:
        raise ValueError(
            f"class_probs_or_labels must be integer labels [N] or probabilities [N, "
            f"{num_classes}], got {x.dtype} {tuple(x.shape)}"
        )
    if labels.numel() == 0:
        raise ValueError("class_probs_or_labels holds no samples")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"class_probs_or_labels: labels must lie in [0, {num_classes - 1}]")
    hist = torch.bincount(labels.cpu().long(), minlength=num_classes)
    share = hist.double() / hist.sum()
    coverage = (share >= MIN_CLASS_SHARE_FACTOR / num_classes).double().mean().item()
    nz = share[share > 0]
    entropy = (
        max(0.0, (-(nz * nz.log()).sum() / math.log(num_classes)).item())
        if num_classes > 1
        else 1.0
    )
    return {
        "class_histogram": hist.tolist(),
        "coverage": coverage,
        "class_entropy": entropy,
        "collapsed": bool(coverage < COVERAGE_THRESHOLD or entropy < ENTROPY_THRESHOLD),
    }


def _check_images(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        what = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a floating-point tensor [N, 1, 8, 8], got {what}")
    if x.dim() != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"{name} must have shape [N, 1, 8, 8], got {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 images, got {x.shape[0]}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} holds non-finite values")
    lo, hi = x.min().item(), x.max().item()
    if lo < 0 or hi > 1:
        raise ValueError(f"{name} must lie in [0, 1], got values in [{lo:g}, {hi:g}]")
    return x.detach().to("cpu", torch.float32)


@torch.no_grad()
def _features_and_logits(model: DigitClassifier, x: torch.Tensor, chunk: int = 2048):
    model.eval()
    feats, logits = [], []
    for i in range(0, x.shape[0], chunk):
        f = model.features(x[i : i + chunk])
        feats.append(f)
        logits.append(model.out(f))
    return torch.cat(feats), torch.cat(logits)


def sample_quality(
    samples: torch.Tensor,
    reference: torch.Tensor | None = None,
    classifier: DigitClassifier | None = None,
    k: int = 3,
) -> dict:
    """Quality of `samples` [N, 1, 8, 8] in [0, 1] against `reference` images (default: the
    digits' held-out split), in the digit classifier's feature space (default: the cached
    `digit_classifier()`). Returns {"frechet_distance", "precision", "recall", "coverage",
    "class_entropy", "collapsed", "class_histogram", "classifier_accuracy"}."""
    samples = _check_images(samples, "samples")
    if reference is None:
        from ..data.datasets import digits

        reference = digits().test
    reference = _check_images(reference, "reference")
    if classifier is None:
        classifier, _ = digit_classifier()
    classifier = classifier.to("cpu")
    fake_f, fake_logits = _features_and_logits(classifier, samples)
    real_f, _ = _features_and_logits(classifier, reference)
    precision, recall = precision_recall(real_f, fake_f, k=k)
    modes = mode_coverage(fake_logits)
    return {
        "frechet_distance": frechet_distance(fake_f, real_f),
        "precision": precision,
        "recall": recall,
        "coverage": modes["coverage"],
        "class_entropy": modes["class_entropy"],
        "collapsed": modes["collapsed"],
        "class_histogram": modes["class_histogram"],
        "classifier_accuracy": getattr(classifier, "test_accuracy", None),
    }


def real_baseline(classifier: DigitClassifier | None = None) -> dict:
    """The metrics of the digits' training split against the held-out split: what a perfect
    generator (one that samples the data distribution itself) scores, the yardstick a model's
    Fréchet distance is compared with."""
    from ..data.datasets import digits

    data = digits()
    return sample_quality(data.train, reference=data.test, classifier=classifier)


# how many samples score_samples draws: the Fréchet distance is biased upward by a term that
# shrinks as 1/N, so all models are scored from the same count (the training split, the real
# baseline's "samples", has 1,438 images)
SCORED_SAMPLES = 1000
SCORING_SEED = 0


def score_samples(
    model,
    reference: torch.Tensor | None = None,
    n: int = SCORED_SAMPLES,
    seed: int = SCORING_SEED,
    **sample_args,
) -> dict:
    """sample_quality of n samples of `model` (anything with `sample(n, generator)` returning
    [n, 1, 8, 8] in [0, 1]; `sample_args` go to it) against `reference` (default: the held-out
    digits), drawn from a generator seeded with `seed` on the model's device: the same draws
    each time, so scores of one model at different epochs differ by its weights only."""
    device = next(iter(model.parameters())).device
    generator = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            samples = model.sample(n, generator, **sample_args)
    finally:
        model.train(was_training)
    scores = sample_quality(samples.float().cpu(), None if reference is None else reference.cpu())
    return {**scores, "samples": n}
