"""PixelCNN++'s cached sampler (gen_ext.models.pixelcnn_pp_sampler) against the naive one: the same
images for a seed, the same parameters as `params` at every pixel of a teacher-forced image, and
a cache written one step late is caught."""

import itertools

import pytest
import torch

from gen_ext.models import PixelCNNPlusPlus
from gen_ext.models.pixelcnn_pp_sampler import PixelCNNPlusPlusSampler

LEVELS = 8


def model_of(C, H, W, resolutions, blocks, dtype=torch.float64, seed=0):
    """A small model with weights 2.5x their initial size, so that the draws vary and a wrong
    input changes them."""
    torch.manual_seed(seed)
    model = PixelCNNPlusPlus(
        input_shape=(C, H, W),
        levels=LEVELS,
        channels=5,
        resolutions=resolutions,
        blocks=blocks,
        mixtures=2,
    )
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.5)
    return model.to(dtype).eval()


def image_of(model, n, seed=1):
    g = torch.Generator().manual_seed(seed)
    p = next(model.parameters())
    k = torch.randint(0, LEVELS, (n, *model.input_shape), generator=g)
    return k.to(p.dtype) / (LEVELS - 1)


def fast_params(model, image, sampler=None):
    """The parameters the cached sampler computes at every pixel [n, P, H, W] while the pixels of
    `image` are filled in raster order (teacher forcing)."""
    n, _, H, W = image.shape
    sampler = sampler or PixelCNNPlusPlusSampler(model, n)
    x = torch.zeros_like(image)
    out = image.new_zeros((n, model.mixture.num_params, H, W))
    with torch.no_grad():
        for (i, j), params in zip(
            itertools.product(range(H), range(W)), sampler.steps(x), strict=False
        ):
            out[:, :, i, j] = params[:, :, 0, 0]
            x[:, :, i, j] = image[:, :, i, j]
    return out


# (C, H, W, resolutions, blocks, n): odd and even sizes, every resolution count
CASES = [
    (1, 5, 7, 1, 1, 1),
    (3, 8, 8, 2, 2, 3),
    (1, 6, 5, 3, 1, 3),
    (3, 5, 7, 3, 2, 1),
    (1, 3, 2, 2, 1, 3),
]


@pytest.mark.parametrize("C,H,W,resolutions,blocks,n", CASES)
def test_fast_and_naive_samples_are_identical(C, H, W, resolutions, blocks, n):
    model = model_of(C, H, W, resolutions, blocks)
    naive = model.sample(n, torch.Generator().manual_seed(5), fast=False)
    fast = model.sample(n, torch.Generator().manual_seed(5), fast=True)
    assert torch.equal(fast, naive)
    assert len(fast.unique()) > 2  # the draws vary


@pytest.mark.parametrize("C,H,W,resolutions,blocks,n", CASES)
def test_parameters_at_every_pixel_equal_params_of_the_image(C, H, W, resolutions, blocks, n):
    model = model_of(C, H, W, resolutions, blocks)
    image = image_of(model, n)
    with torch.no_grad():
        want = model.params(image)
    torch.testing.assert_close(fast_params(model, image), want, rtol=0, atol=1e-10)


def test_parameters_in_float32():
    model = model_of(3, 6, 7, 3, 2, dtype=torch.float32)
    image = image_of(model, 2)
    with torch.no_grad():
        want = model.params(image)
    got = fast_params(model, image)
    assert (got - want).abs().max() <= 1e-5 * want.abs().max()


def written_one_step_late(cache):
    """Make `cache` write each strip one put later: the step that should read it reads the old
    value."""
    put, pending = cache.put, []

    def late(r, c, strip):
        if pending:
            put(*pending.pop())
        pending.append((r, c, strip.clone()))

    cache.put = late


CACHES = {
    "ul block input": lambda s: s.first[0][0][1].inp,
    "ul block hidden, coarse": lambda s: s.second[1][0][1].hid,
    "u block input rows": lambda s: s.first[0][0][0].inp,
    "stride-2 ul input": lambda s: s.down_cache[0][1],
    "stride-2 u input rows": lambda s: s.down_cache[0][0],
}


@pytest.mark.parametrize("which", CACHES)
def test_a_cache_written_one_step_late_is_caught(which):
    model = model_of(1, 6, 5, 2, 1)
    image = image_of(model, 2)
    with torch.no_grad():
        want = model.params(image)
    sampler = PixelCNNPlusPlusSampler(model, 2)
    written_one_step_late(CACHES[which](sampler))
    assert not torch.allclose(fast_params(model, image, sampler), want, rtol=0, atol=1e-6)


def test_fast_sampling_in_training_mode_is_refused():
    model = model_of(1, 3, 3, 2, 1).train()
    with pytest.raises(ValueError, match=r"training mode.*model\.eval\(\)"):
        model.sample(2, fast=True)
    assert model.sample(2, fast=False).shape == (2, 1, 3, 3)  # the naive one samples as it is
    assert model.has_fast_sampler


def test_an_empty_batch():
    model = model_of(1, 3, 3, 2, 1)
    assert model.sample(0, fast=True).shape == model.sample(0, fast=False).shape == (0, 1, 3, 3)
