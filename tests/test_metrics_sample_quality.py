import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from gen_ext.data.datasets import digits
from gen_ext.metrics import (
    COVERAGE_THRESHOLD,
    ENTROPY_THRESHOLD,
    digit_classifier,
    frechet_distance,
    mode_coverage,
    precision_recall,
    real_baseline,
    sample_quality,
)
from gen_ext.metrics import quality as sq

# the module, not the function of the same name that gen_ext.metrics exports


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """No test writes to the home directory: the default cache is a fresh temporary folder."""
    monkeypatch.setenv("GEN_EXT_CACHE", str(tmp_path / "default-cache"))


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    cache = tmp_path_factory.mktemp("classifier-cache")
    model, info = digit_classifier(cache_dir=cache)
    return cache, model, info


@pytest.fixture(scope="session")
def data():
    return digits()


def blur(x, sigma=1.0):
    r = torch.arange(-2, 3, dtype=x.dtype)
    k = torch.exp(-(r**2) / (2 * sigma**2))
    k = k / k.sum()
    kernel = (k[:, None] * k[None, :])[None, None]
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kernel).clamp(0, 1)


# -- the classifier ---------------------------------------------------------------------------


def test_classifier_accuracy_and_info(trained):
    _, model, info = trained
    assert info["test_accuracy"] >= 0.95
    assert model.test_accuracy == info["test_accuracy"]
    assert info["epochs"] == sq.TRAIN_EPOCHS and info["seed"] == sq.TRAIN_SEED
    assert info["version"] == sq.CLASSIFIER_VERSION
    x = torch.rand(5, 1, 8, 8)
    assert model.features(x).shape == (5, sq.FEATURES)
    assert model(x).shape == (5, 10)


def test_classifier_training_is_deterministic_even_under_no_grad(trained, tmp_path):
    # a model's evaluation runs under no_grad and is what trains the classifier on a new machine
    _, model, _ = trained
    with torch.no_grad():
        again, _ = digit_classifier(cache_dir=tmp_path, retrain=True)
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_cache_is_reused(trained, monkeypatch):
    cache, model, info = trained

    def no_training():
        raise AssertionError("trained although a cached classifier exists")

    monkeypatch.setattr(sq, "train_digit_classifier", no_training)
    loaded, loaded_info = digit_classifier(cache_dir=cache)
    assert loaded_info["test_accuracy"] == info["test_accuracy"]
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # the default cache folder is $GEN_EXT_CACHE, and the file is named after the version
    monkeypatch.setenv("GEN_EXT_CACHE", str(cache))
    assert sq.classifier_cache_path() == cache / f"{sq.CLASSIFIER_VERSION}.pt"
    digit_classifier()


@pytest.mark.parametrize("damage", [b"", b"not a torch file", "truncate"])
def test_damaged_cache_is_retrained_with_a_warning(trained, tmp_path, monkeypatch, damage):
    cache, model, info = trained
    path = sq.classifier_cache_path(tmp_path)
    good = sq.classifier_cache_path(cache).read_bytes()
    path.write_bytes(good[: len(good) // 2] if damage == "truncate" else damage)
    calls = []

    def cheap_training():
        calls.append(1)
        return model, info

    monkeypatch.setattr(sq, "train_digit_classifier", cheap_training)
    with pytest.warns(UserWarning, match="training it again"):
        _, got = digit_classifier(cache_dir=tmp_path)
    assert calls == [1] and got["test_accuracy"] == info["test_accuracy"]
    # the replaced file loads without training or a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        digit_classifier(cache_dir=tmp_path)
    assert calls == [1]


# -- Fréchet distance -------------------------------------------------------------------------


def test_frechet_zero_for_identical_sets_and_symmetric():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 6, generator=g, dtype=torch.float64)
    b = torch.randn(150, 6, generator=g, dtype=torch.float64) * 1.5 + 0.3
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-9)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    assert frechet_distance(a, a + 1.0) == pytest.approx(6.0, rel=1e-9)  # ||shift||^2
    assert frechet_distance(a, b) > 0.5


def test_frechet_closed_form_1d_and_diagonal():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(300, 1, generator=g, dtype=torch.float64) * 2 + 1
    b = torch.randn(400, 1, generator=g, dtype=torch.float64) * 0.5 - 1
    expected = (a.mean() - b.mean()) ** 2 + (a.std() - b.std()) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected.item(), rel=1e-9)
    # independent coordinates: the sum of the 1-D distances (sample covariances are not exactly
    # diagonal, so compare with the population closed form on whitened draws)
    scale_a, scale_b = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 0.5, 3.0])
    mean_a, mean_b = torch.tensor([0.0, 1.0, -1.0]), torch.tensor([1.0, 1.0, 2.0])
    z = torch.randn(500, 3, generator=g, dtype=torch.float64)
    z = z - z.mean(0)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(z.T))).T  # covariance exactly I
    xa, xb = z * scale_a + mean_a, z.flip(0) * scale_b + mean_b
    closed = ((mean_a - mean_b) ** 2 + (scale_a - scale_b) ** 2).sum().item()
    assert frechet_distance(xa, xb) == pytest.approx(closed, rel=1e-9)


def test_frechet_full_covariance_matches_scipy():
    linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(2)
    a = torch.randn(100, 5, generator=g, dtype=torch.float64) @ torch.randn(
        5, 5, generator=g, dtype=torch.float64
    )
    b = torch.randn(80, 5, generator=g, dtype=torch.float64) @ torch.randn(
        5, 5, generator=g, dtype=torch.float64
    )
    ca, cb = torch.cov(a.T).numpy(), torch.cov(b.T).numpy()
    cross = linalg.sqrtm(ca @ cb).real
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum().item() + (ca + cb - 2 * cross).trace()
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-7)


def test_frechet_rank_deficient_features_are_finite():
    a = torch.zeros(10, 4)
    a[:, 0] = torch.arange(10.0)  # three constant features: singular covariance
    d = frechet_distance(a, a.clone())
    assert math.isfinite(d) and d == pytest.approx(0, abs=1e-6)


def test_frechet_refuses_bad_input():
    with pytest.raises(ValueError, match="feat_a needs at least 2"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="feature size"):
        frechet_distance(torch.zeros(5, 3), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="feat_b must be a 2-D"):
        frechet_distance(torch.zeros(5, 3), torch.zeros(5))
    with pytest.raises(ValueError, match="non-finite"):
        frechet_distance(torch.full((5, 3), float("nan")), torch.zeros(5, 3))


# -- precision and recall ---------------------------------------------------------------------


def test_precision_recall_identical_and_disjoint():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(300, 8, generator=g)
    assert precision_recall(a, a.clone(), k=3) == (1.0, 1.0)
    assert precision_recall(a, a + 1000.0, k=3) == (0.0, 0.0)
    # chunking does not change the answer
    b = torch.randn(200, 8, generator=g) + 0.5
    assert precision_recall(a, b, k=3, chunk=64) == precision_recall(a, b, k=3)


def test_precision_recall_half_overlap():
    g = torch.Generator().manual_seed(4)
    real = torch.randn(400, 2, generator=g)
    # half of the fake set on the real data, half far away: precision about 1/2, recall high
    fake = torch.cat([torch.randn(200, 2, generator=g), torch.randn(200, 2, generator=g) + 50])
    p, r = precision_recall(real, fake, k=3)
    assert 0.45 <= p <= 0.55 and r > 0.8


def test_precision_recall_refuses_bad_input():
    with pytest.raises(ValueError, match="k must be"):
        precision_recall(torch.zeros(5, 2), torch.zeros(5, 2), k=0)
    with pytest.raises(ValueError, match="fake_feats needs at least 4"):
        precision_recall(torch.zeros(5, 2), torch.zeros(3, 2), k=3)


# -- mode coverage ----------------------------------------------------------------------------


def test_mode_coverage_thresholds():
    uniform = mode_coverage(torch.arange(1000) % 10)
    assert uniform["coverage"] == 1.0 and uniform["class_entropy"] == pytest.approx(1.0)
    assert not uniform["collapsed"]
    single = mode_coverage(torch.full((50,), 4))
    assert single["coverage"] == 0.1 and single["class_entropy"] == 0.0 and single["collapsed"]
    assert single["class_histogram"] == [0, 0, 0, 0, 50, 0, 0, 0, 0, 0]
    # eight equally likely classes are not collapsed; five are (entropy 0.699 < 0.75)
    assert not mode_coverage(torch.arange(800) % 8)["collapsed"]
    five = mode_coverage(torch.arange(500) % 5)
    assert five["class_entropy"] == pytest.approx(math.log(5) / math.log(10))
    assert five["class_entropy"] < ENTROPY_THRESHOLD and five["collapsed"]
    # a class with under 2.5% of the samples is not covered
    rare = torch.cat([torch.arange(900) % 9, torch.full((20,), 9)])
    assert mode_coverage(rare)["coverage"] == 0.9
    assert COVERAGE_THRESHOLD == 0.8
    # probabilities are reduced by argmax
    probs = F.one_hot(torch.arange(100) % 10, 10).float() * 0.9 + 0.01
    assert mode_coverage(probs)["class_histogram"] == [10] * 10


def test_mode_coverage_refuses_bad_input():
    with pytest.raises(ValueError, match="labels must lie"):
        mode_coverage(torch.tensor([0, 10]))
    with pytest.raises(ValueError, match=r"\[N, 10\]"):
        mode_coverage(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="no samples"):
        mode_coverage(torch.zeros(0, dtype=torch.long))


# -- sanity on images -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def scores(trained, data):
    _, model, _ = trained
    g = torch.Generator().manual_seed(0)
    n = data.test.shape[0]
    sets = {
        "noise": torch.rand(n, 1, 8, 8, generator=g),
        "blurred": blur(data.test),
        "single": data.train[data.train_labels == 3],
    }
    out = {name: sample_quality(x, classifier=model) for name, x in sets.items()}
    out["real"] = real_baseline(model)
    return out


def test_real_images_score_well(scores, trained):
    real = scores["real"]
    assert real["precision"] >= 0.5 and real["recall"] >= 0.5
    assert real["coverage"] == 1.0 and not real["collapsed"]
    assert real["classifier_accuracy"] == trained[2]["test_accuracy"]
    assert sum(real["class_histogram"]) == digits().train.shape[0]
    assert set(real) == {
        "frechet_distance",
        "precision",
        "recall",
        "coverage",
        "class_entropy",
        "collapsed",
        "class_histogram",
        "classifier_accuracy",
    }


@pytest.mark.parametrize("bad", ["noise", "blurred", "single"])
def test_bad_sets_score_far_worse_than_real(scores, bad):
    real, other = scores["real"], scores[bad]
    assert other["frechet_distance"] > 10 * real["frechet_distance"]
    assert other["recall"] < real["recall"] / 2


def test_single_class_is_flagged_collapsed(scores):
    single = scores["single"]
    assert single["collapsed"] and single["coverage"] < COVERAGE_THRESHOLD
    assert single["class_entropy"] < ENTROPY_THRESHOLD


def test_identical_sets_score_perfectly(trained, data):
    r = sample_quality(data.test, classifier=trained[1])
    assert r["frechet_distance"] == pytest.approx(0, abs=1e-6)
    assert r["precision"] == 1.0 and r["recall"] == 1.0


def test_default_classifier_comes_from_the_cache(trained, data, monkeypatch):
    cache = trained[0]
    monkeypatch.setenv("GEN_EXT_CACHE", str(cache))
    monkeypatch.setattr(sq, "train_digit_classifier", lambda: pytest.fail("retrained"))
    r = sample_quality(data.test[:50])
    assert r["classifier_accuracy"] == trained[2]["test_accuracy"]


@pytest.mark.parametrize(
    "samples, message",
    [
        (torch.zeros(4, 8, 8), r"samples must have shape \[N, 1, 8, 8\]"),
        (torch.zeros(4, 3, 8, 8), r"samples must have shape \[N, 1, 8, 8\]"),
        (torch.zeros(4, 1, 16, 16), r"samples must have shape \[N, 1, 8, 8\]"),
        (torch.zeros(1, 1, 8, 8), "samples needs at least 2"),
        (torch.full((4, 1, 8, 8), 2.0), r"samples must lie in \[0, 1\]"),
        (torch.full((4, 1, 8, 8), -0.5), r"samples must lie in \[0, 1\]"),
        (torch.full((4, 1, 8, 8), float("nan")), "samples holds non-finite"),
        (torch.zeros(4, 1, 8, 8, dtype=torch.long), "samples must be a floating-point"),
        ([[0.0]], "samples must be a floating-point"),
    ],
)
def test_sample_quality_refuses_bad_samples(trained, samples, message):
    with pytest.raises(ValueError, match=message):
        sample_quality(samples, classifier=trained[1])


def test_sample_quality_refuses_bad_reference(trained, data):
    with pytest.raises(ValueError, match="reference must lie"):
        sample_quality(data.test, reference=data.test * 2, classifier=trained[1])
