"""The cached samplers of PixelCNN and Gated PixelCNN reproduce the naive samplers exactly."""

import itertools

import pytest
import torch

from gen_ext.models import GatedPixelCNN, PixelCNN, PixelRNN, cached_sampling

CONFIGS = {
    "pixelcnn": lambda C: PixelCNN((C, 6, 7), hidden=6, head=6, blocks=2),
    "gated-pixelcnn": lambda C: GatedPixelCNN((C, 6, 7), channels=6, head=6, layers=3),
    "gated-pixelcnn-conditional": lambda C: GatedPixelCNN(
        (C, 5, 6), channels=6, head=6, layers=2, num_classes=3
    ),
}


def model(name, C, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    m = CONFIGS[name](C)
    # weights larger than the initialisation's: distributions far from uniform, so a wrong
    # input changes the draws
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(3)
    return m.to(dtype).eval()


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("n", [1, 3])
def test_fast_sampling_reproduces_naive_sampling_exactly(name, C, n):
    m = model(name, C)
    naive = m.sample(n, torch.Generator().manual_seed(5), fast=False)
    fast = m.sample(n, torch.Generator().manual_seed(5), fast=True)
    assert torch.equal(naive, fast)
    assert naive.unique().numel() >= 5  # the draws vary: an exact match is not a constant
    assert torch.equal(m.sample(n, torch.Generator().manual_seed(5)), fast)  # fast by default


def teacher_forced(m, image, fast):
    """The logits each sampler computes at every sub-pixel, fed `image` as it fills it in."""
    x = torch.zeros_like(image)
    labels = torch.arange(x.shape[0]) % m.num_classes if m.num_classes else None
    passes = m._fast_steps(x, labels) if fast else m._naive_steps(x, labels)
    C, H, W = m.input_shape
    out = []
    for (i, j, c), logits in zip(
        itertools.product(range(H), range(W), range(C)), passes, strict=True
    ):
        out.append(logits)
        x[:, c, i, j] = image[:, c, i, j]
    return torch.stack(out)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-11), (torch.float32, 2e-5)])
@pytest.mark.parametrize("n", [1, 2])
def test_per_step_logits_match(name, dtype, tol, n):
    m = model(name, 3, dtype)
    g = torch.Generator().manual_seed(2)
    image = torch.randint(0, m.levels, (n, *m.input_shape), generator=g).to(dtype) / (m.levels - 1)
    naive, fast = teacher_forced(m, image, False), teacher_forced(m, image, True)
    scale = naive.abs().max()
    torch.testing.assert_close(fast / scale, naive / scale, rtol=0, atol=tol)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_cache_written_one_step_late_is_caught(monkeypatch, name):
    """Every cache write delayed by one write (each map then holds the previous position's
    value where the current one belongs): the per-step logits no longer match."""
    m = model(name, 3)
    image = torch.randint(0, m.levels, (2, *m.input_shape), generator=torch.Generator()) / (
        m.levels - 1
    )
    naive = teacher_forced(m, image.double(), False)
    real = cached_sampling.PaddedCache.put

    def late(self, r, c, strip):
        pending = getattr(self, "pending", None)
        if pending is not None:
            real(self, *pending)
        self.pending = (r, c, strip.clone())

    monkeypatch.setattr(cached_sampling.PaddedCache, "put", late)
    lagging = teacher_forced(m, image.double(), True)
    assert not torch.allclose(lagging, naive, rtol=1e-6, atol=1e-6)


def test_a_model_without_a_cached_sampler_samples_naively_and_refuses_fast():
    m = PixelRNN((1, 4, 4), hidden=3, layers=1, head=6).eval()
    assert not m.has_fast_sampler and PixelCNN().has_fast_sampler
    assert m.sample(2, torch.Generator().manual_seed(0)).shape == (2, 1, 4, 4)
    with pytest.raises(ValueError, match="PixelRNN.sample: no fast sampler"):
        m.sample(2, fast=True)


def test_one_thread_for_small_steps_restores_the_thread_count():
    before = torch.get_num_threads()
    with cached_sampling.one_thread_for_small_steps(torch.device("cpu"), 4):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with cached_sampling.one_thread_for_small_steps(torch.device("cpu"), 10_000):
        assert torch.get_num_threads() == before
