"""gen_ext.models: PixelCNN, Gated PixelCNN, PixelCNN++ and PixelRNN — causality (exact,
float64), exact normalisation, the naive samplers against the models' own conditionals,
checkpoints, training."""

import itertools
import json
import math

import pytest
import torch

from gen_ext.cli import main
from gen_ext.data import digits
from gen_ext.models import MODELS, GatedPixelCNN, PixelCNN, PixelCNNPlusPlus, PixelRNN
from gen_ext.models.autoregressive import categorical_by_inversion
from gen_ext.models.base import GenerativeModel
from gen_ext.testing import input_dependence, raster_order_allowed

NAMES = ["pixelcnn", "gated-pixelcnn", "pixelcnn++", "pixelrnn"]

# small enough to be quick, deep enough that the gated and ++ models see every earlier pixel of
# a 5x5 image
SMALL = {
    PixelCNN: dict(hidden=3, blocks=2, head=6),
    GatedPixelCNN: dict(channels=12, layers=3, kernel_size=5, head=24),
    PixelCNNPlusPlus: dict(channels=4, resolutions=2, blocks=2, mixtures=2, dropout=0.0),
    PixelRNN: dict(hidden=3, layers=1, head=6),
}
SOFTMAX = (PixelCNN, GatedPixelCNN, PixelRNN)
FAMILIES = [PixelCNN, GatedPixelCNN, PixelCNNPlusPlus, PixelRNN]


def small(cls, shape, levels=4, seed=0, **kw):
    torch.manual_seed(seed)
    return cls(input_shape=shape, levels=levels, **{**SMALL[cls], **kw}).double().eval()


def random_images(shape, levels, n=1, seed=1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, levels, (n, *shape), generator=g).to(dtype) / (levels - 1)


def outputs(model, x, labels=None):
    """[B, K, H, W] with K in colour groups: the logits (softmax models) or mixture params."""
    if isinstance(model, SOFTMAX):
        return model.logits(x, labels).flatten(1, 2)
    return model.params(x)


def allowed(model, shape):
    """What output group g at (i, j) may see: the earlier pixels, and for the softmax models the
    earlier colours of the same pixel."""
    C, H, W = shape
    if isinstance(model, SOFTMAX):
        return raster_order_allowed(H, W, C, C, "earlier")
    return raster_order_allowed(H, W, C, 1, "none")


CASES = [(cls, C) for cls in FAMILIES for C in (1, 3)]


@pytest.mark.parametrize("cls,C", CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_outputs_see_only_earlier_pixels_and_colours(cls, C):
    """The gradient of every output with respect to every input it may not see is exactly zero;
    the gated, ++ and recurrent models (no blind spot) see everything they may, PixelCNN does
    not. (Seen by
    any of three images: a ReLU that is off at one image hides a dependence there.)"""
    shape = (C, 5, 5)
    model = small(cls, shape)
    groups = C if cls in SOFTMAX else 1
    seen = torch.stack(
        [
            input_dependence(lambda x: outputs(model, x), x, groups)
            # PixelRNN's one unit per colour goes through more ReLUs: more images
            for x in random_images(shape, 4, n=6 if cls is PixelRNN else 3).split(1)
        ]
    ).any(0)
    may = allowed(model, shape)
    assert not (seen & ~may).any()
    if cls is PixelCNN:
        # the blind spot: (4, 0) never sees (3, 4), above and to the right
        assert may[:, 4, 0, :, 3, 4].all() and not seen[:, 4, 0, :, 3, 4].any()
    elif cls is PixelRNN:
        assert torch.equal(seen, may & ~pixelrnn_unseen(shape, may.shape[0]))
    else:
        assert torch.equal(seen, may)


def pixelrnn_unseen(shape, groups):
    """What PixelRNN may see but does not, whatever its depth: the last colour (the only one in
    greyscale) of the last pixel of the row above, (i - 1, W - 1), for outputs (i, j) with
    j < W - 4. Every feature at a position leaves out that position's last colour (mask A, then
    mask B), so the right-to-left direction of row i - 1 never carries it; only the 7x7 mask-A
    input convolution, reaching 3 columns right, brings it to (i, j >= W - 4)."""
    C, H, W = shape
    unseen = torch.zeros((groups, H, W, C, H, W), dtype=torch.bool)
    for i in range(1, H):
        unseen[:, i, : max(W - 4, 0), C - 1, i - 1, W - 1] = True
    return unseen


@pytest.mark.parametrize("cls,C", CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_changing_what_an_output_may_not_see_leaves_it_bit_identical(cls, C):
    """For every output group at every pixel: replace every sub-pixel it may not see by other
    levels; the output stays exactly the same (float64, ==)."""
    shape = (C, 5, 5)
    model = small(cls, shape)
    x = random_images(shape, 4, n=3)
    base = outputs(model, x)
    may = allowed(model, shape)
    G = may.shape[0]
    K = base.shape[1] // G
    g = torch.Generator().manual_seed(2)
    for group, i, j in itertools.product(range(G), range(5), range(5)):
        other = torch.randint(0, 4, x.shape, generator=g).double() / 3
        changed = torch.where(may[group, i, j], x, other)
        out = outputs(model, changed)[:, group * K : (group + 1) * K, i, j]
        assert torch.equal(out, base[:, group * K : (group + 1) * K, i, j]), (group, i, j)


def test_conditional_gated_pixelcnn_is_causal_and_uses_its_labels():
    """The datasets train without labels, so class conditioning is checked on its own."""
    shape = (3, 5, 5)
    model = small(GatedPixelCNN, shape, num_classes=3)
    x = random_images(shape, 4, n=4)
    labels = torch.tensor([0, 1, 2, 1])
    seen = input_dependence(lambda x: outputs(model, x, labels[:1]), x[:1], 3)
    assert torch.equal(seen, allowed(model, shape))
    a = model.log_prob(x, labels)
    b = model.log_prob(x, torch.tensor([1, 2, 0, 0]))
    assert a.shape == (4,) and (a != b).all()
    with pytest.raises(ValueError, match="pass labels"):
        model.log_prob(x)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        model.log_prob(x, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="unconditional"):
        small(GatedPixelCNN, shape).log_prob(x, labels)
    s = model.float().sample(4, torch.Generator().manual_seed(0), labels=labels)
    assert s.shape == (4, *shape)


@pytest.mark.parametrize("cls", FAMILIES)
@pytest.mark.parametrize("shape,levels", [((1, 2, 2), 3), ((3, 1, 2), 2)])
def test_probabilities_of_all_images_sum_to_one(cls, shape, levels):
    """Exact normalisation over every possible image: what a model whose conditionals leaked the
    future would not satisfy."""
    model = small(cls, shape, levels)
    dims = math.prod(shape)
    codes = torch.tensor(list(itertools.product(range(levels), repeat=dims)), dtype=torch.float64)
    x = (codes / (levels - 1)).view(-1, *shape)
    total = torch.logsumexp(model.log_prob(x), 0).exp().item()
    assert total == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_default_construction_loss_and_bits_per_dim(name):
    torch.manual_seed(0)
    model = MODELS[name]()
    assert model.config["input_shape"] == [1, 8, 8] and model.config["levels"] == 17
    x = digits().test[:8]
    loss, logs = model.loss(x)
    assert loss.shape == () and torch.isfinite(loss) and model.main_metric in logs
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    log_p = model.log_prob(x)
    assert log_p.shape == (8,) and (log_p < 0).all()
    torch.testing.assert_close(model.bits_per_dim(x), -log_p / (64 * math.log(2)))
    metrics = model.evaluate(x)
    assert metrics["bits_per_dim"] == pytest.approx(model.bits_per_dim(x).mean().item(), rel=1e-5)
    assert metrics["nll_nats"] == pytest.approx(-log_p.mean().item(), rel=1e-5)


@pytest.mark.parametrize("cls", FAMILIES)
def test_softmax_log_prob_is_the_sum_of_the_conditionals(cls):
    shape = (3, 3, 3)
    model = small(cls, shape, levels=5)
    x = random_images(shape, 5, n=2)
    if cls in SOFTMAX:
        k = (x * 4).round().long()
        log_probs = torch.log_softmax(model.logits(x), dim=2)
        want = log_probs.gather(2, k[:, :, None]).flatten(1).sum(1)
    else:
        want = -model.mixture.nll(model.params(x), x * 2 - 1).flatten(1).sum(1)
    torch.testing.assert_close(model.log_prob(x), want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("cls,C", CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_sampling_shape_levels_and_reproducibility(cls, C):
    shape = (C, 4, 4)
    model = small(cls, shape, levels=5).float()
    s = model.sample(6, torch.Generator().manual_seed(0))
    assert s.shape == (6, *shape) and s.dtype == torch.float32
    assert s.min() >= 0 and s.max() <= 1
    assert torch.equal(s * 4, (s * 4).round())
    assert torch.equal(s, model.sample(6, torch.Generator().manual_seed(0)))
    assert not torch.equal(s, model.sample(6, torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("cls,C", CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_naive_sample_is_drawn_from_the_conditionals_of_the_final_sample(cls, C):
    """One forward pass on the finished sample, then the sampler's own draws from its generator:
    every sub-pixel comes out as sampled, so each was drawn from exactly the conditional the model
    gives it (float32, compared with ==)."""
    shape = (C, 4, 4)
    model = small(cls, shape, levels=7).float()
    naive = {"fast": False} if model.has_fast_sampler else {}
    s = model.sample(8, torch.Generator().manual_seed(3), **naive)
    replay = torch.Generator().manual_seed(3)
    if cls in SOFTMAX:
        logits = model.logits(s)
        noise = torch.rand(s.shape, generator=replay)
        for i, j, c in itertools.product(range(4), range(4), range(C)):
            k = categorical_by_inversion(logits[:, c, :, i, j], noise[:, c, i, j])
            assert torch.equal(k.float() / 6, s[:, c, i, j]), (i, j, c)
    else:
        params = model.params(s)
        for i, j in itertools.product(range(4), range(4)):
            pixel = model.mixture.sample(params[:, :, i : i + 1, j : j + 1], replay)[:, :, 0, 0]
            assert torch.equal(((pixel + 1) * 3).round() / 6, s[:, :, i, j]), (i, j)


def test_categorical_by_inversion():
    logits = torch.log(torch.tensor([[0.2, 0.5, 0.3]])).expand(4, 3)
    u = torch.tensor([0.1, 0.2 + 1e-6, 0.69, 0.99])
    assert categorical_by_inversion(logits, u).tolist() == [0, 1, 1, 2]


@pytest.mark.parametrize("cls", FAMILIES)
def test_checkpoint_round_trip(cls, tmp_path):
    model = small(cls, (3, 4, 4), levels=6).float()
    model.save(tmp_path / "m.pt")
    loaded = GenerativeModel.load(tmp_path / "m.pt").eval()
    assert type(loaded) is cls and loaded.config == model.config
    x = random_images((3, 4, 4), 6, n=3, dtype=torch.float32)
    assert torch.equal(loaded.log_prob(x), model.log_prob(x))
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(loaded.sample(2, g()), model.sample(2, g()))


def test_configuration_and_input_errors():
    with pytest.raises(ValueError, match="levels must be an int of at least 2"):
        PixelCNN(levels=1)
    with pytest.raises(ValueError, match="input_shape must be"):
        GatedPixelCNN(input_shape=(2, 8, 8))
    with pytest.raises(ValueError, match="multiples of 3"):
        PixelCNN(input_shape=(3, 8, 8), hidden=8)
    with pytest.raises(ValueError, match="multiples of 3"):
        GatedPixelCNN(input_shape=(3, 8, 8), channels=8)
    with pytest.raises(ValueError, match="resolutions and blocks must be positive"):
        PixelCNNPlusPlus(resolutions=0)
    model = PixelCNN()
    with pytest.raises(ValueError, match=r"x must have shape \[B, 1, 8, 8\]"):
        model.loss(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="quantized to 17 levels"):
        model.loss(torch.full((2, 1, 8, 8), 0.5 / 16))
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        PixelCNNPlusPlus().log_prob(torch.full((1, 1, 8, 8), -1.0))
    with pytest.raises(ValueError, match="n must be a non-negative int"):
        model.sample(-1)


@pytest.mark.parametrize(
    "name,tiny",
    [
        ("pixelcnn", ["hidden=3", "blocks=1", "head=6"]),
        ("gated-pixelcnn", ["channels=3", "layers=1", "head=3"]),
        ("pixelcnn++", ["channels=4", "blocks=1", "mixtures=1"]),
    ],
)
def test_cli_train_resume_and_sample(name, tiny, tmp_path, capsys):
    out = tmp_path / name
    args = ["train", name, "--epochs", "1", "--batch-size", "256", "--out", str(out)]
    for kv in tiny:
        args += ["--set", kv]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "bits_per_dim" in printed and "histogram" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    base = metrics["baseline"]
    assert base["uniform_bits_per_dim"] == pytest.approx(math.log2(17))
    assert metrics["config"]["levels"] == 17 and metrics["config"]["input_shape"] == [1, 8, 8]
    for png in ("samples.png", "loss_curve.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert main(args[:3] + ["2"] + args[4:] + ["--resume"]) == 0
    resumed = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert (
        main(["sample", str(out / "checkpoint.pt"), "-n", "4", "--out", str(tmp_path / "s.png")])
        == 0
    )
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
