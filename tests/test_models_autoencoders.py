"""gen_ext.models: the autoencoder family."""

import pytest
import torch
import torch.nn.functional as F

from gen_ext.data import digits
from gen_ext.models import MODELS, VAE, Autoencoder, ConvAutoencoder, DenoisingAutoencoder, corrupt
from gen_ext.models.base import GenerativeModel

AUTOENCODER_FAMILY = ["autoencoder", "conv-autoencoder", "denoising-autoencoder", "vae"]


@pytest.mark.parametrize("name", AUTOENCODER_FAMILY)
def test_default_construction_loss_and_checkpoint(name, tmp_path):
    torch.manual_seed(0)
    model = MODELS[name]()
    x = torch.rand(6, 1, 8, 8)
    loss, logs = model.loss(x)
    assert torch.isfinite(loss) and model.main_metric in logs
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.save(tmp_path / "m.pt")
    loaded = GenerativeModel.load(tmp_path / "m.pt")
    assert type(loaded) is type(model) and loaded.config == model.config
    if model.can_reconstruct:
        assert torch.equal(loaded.reconstruct(x), model.reconstruct(x))


def test_configuration_errors():
    with pytest.raises(ValueError, match="bottleneck must be narrower than the input"):
        Autoencoder(bottleneck=64)
    with pytest.raises(ValueError, match="multiples of 4"):
        ConvAutoencoder(input_shape=(1, 6, 6))
    with pytest.raises(ValueError, match="noise must be one of"):
        DenoisingAutoencoder(noise="blur")
    with pytest.raises(ValueError, match="likelihood must be one of"):
        VAE(likelihood="poisson")
    with pytest.raises(NotImplementedError, match="no prior to sample from"):
        Autoencoder().sample(2)


@pytest.mark.parametrize("noise,level", [("gaussian", 0.1), ("masking", 0.3), ("salt_pepper", 0.3)])
def test_corruption(noise, level):
    x = torch.full((2000,), 0.5)
    y = corrupt(x, noise, level, torch.Generator().manual_seed(0))
    changed = (y != x).float().mean().item()
    if noise == "gaussian":
        assert abs((y - x).std().item() - level) < 0.01  # 5 sigma from the clip at 0 and 1
    else:
        assert abs(changed - level) < 0.04
        assert set(y[y != x].unique().tolist()) <= {0.0, 1.0}


def _fit(model, x, steps, lr=2e-3):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        batch = x[torch.randint(0, len(x), (64,), generator=g)]
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_overcomplete_denoiser_beats_returning_its_input():
    """With a bottleneck wider than the input (128 for 64 pixels) the identity is available, yet
    the trained denoiser's output is closer to the clean image than the corrupted input is."""
    torch.manual_seed(0)
    d = digits()
    model = _fit(
        DenoisingAutoencoder(bottleneck=128, noise="salt_pepper", noise_level=0.2), d.train, 600
    )
    assert model.config["bottleneck"] >= 64
    metrics = model.evaluate(d.test)
    assert metrics["mse"] < 0.5 * metrics["corrupted_mse"], metrics


def test_vae_bounds_and_sampling():
    torch.manual_seed(0)
    d = digits()
    model = _fit(VAE(likelihood="logistic", levels=17), d.train, 300)
    model.eval()
    x = d.test[:100]
    g = torch.Generator().manual_seed(1)
    elbo = model.importance_weighted_log_likelihood(x, 1, g).mean()
    iw = model.importance_weighted_log_likelihood(x, 64, g).mean()
    assert iw > elbo  # more samples, tighter bound
    metrics = model.evaluate(x)
    assert metrics["neg_iw_bound"] <= metrics["neg_elbo"] + 0.5
    # 64 pixels of 17 levels: a uniform model pays 64 log 17 = 181 nats
    assert metrics["neg_elbo"] < 150
    s = model.sample(5, torch.Generator().manual_seed(0))
    assert s.shape == (5, 1, 8, 8)
    torch.testing.assert_close(s * 16, (s * 16).round())
    assert model.reconstruct(x).shape == x.shape
    assert F.mse_loss(model.reconstruct(x), x) < F.mse_loss(torch.full_like(x, x.mean()), x)


def test_one_registry_serves_checkpoints_and_cli_names():
    """MODELS (the `gen-ext train` names) is a view of the registry checkpoints load through: every
    CLI name finds the class a checkpoint of it names, and a subclass that declares no `cli_name`
    of its own is not offered under its parent's."""
    from gen_ext.models import base

    assert set(MODELS) == {
        "autoencoder",
        "conv-autoencoder",
        "denoising-autoencoder",
        "vae",
        "pixelcnn",
        "gated-pixelcnn",
        "pixelcnn++",
        "pixelrnn",
        "wavenet",
        "gan",
        "dcgan",
        "wgan",
        "wgan-gp",
        "began",
        "infogan",
        "ebm",
    }
    for name, cls in MODELS.items():
        assert cls.cli_name == name
        assert base.REGISTRY[cls.__name__] is cls

    named = len(MODELS)

    class UnnamedVariant(Autoencoder):
        pass

    try:
        assert base.REGISTRY["UnnamedVariant"] is UnnamedVariant
        assert UnnamedVariant not in MODELS.values() and len(MODELS) == named
    finally:
        del base.REGISTRY["UnnamedVariant"]
