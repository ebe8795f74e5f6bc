"""WaveNet: likelihood, causality and receptive field, and fast sampling that reproduces the naive
sampler exactly."""

import json
import math

import pytest
import torch
from PIL import Image

from gen_ext.data import read_wav, synthetic_audio
from gen_ext.models import WaveNet
from gen_ext.nn import wavenet as wavenet_layers

SMALL = dict(
    residual_channels=6, skip_channels=5, head_channels=7, layers_per_stack=3, stacks=2, mixtures=3
)


def small_wavenet(output="softmax", cond_channels=0, dtype=torch.float64, length=40, seed=0):
    torch.manual_seed(seed)
    model = WaveNet((1, length), output=output, cond_channels=cond_channels, **SMALL)
    # weights larger than the initialisation's, so the distributions are far from uniform and a
    # wrong input changes the draws
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)
    return model.to(dtype).eval()


def cond_for(model, n, seed=5):
    if not model.cond_channels:
        return None
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, model.cond_channels), generator=g, dtype=model.embed.weight.dtype)


def test_receptive_field_of_the_default_and_the_issues_configuration():
    assert WaveNet().receptive_field == 2 * 255 + 1
    assert WaveNet(layers_per_stack=10, stacks=2).receptive_field == 2047
    assert WaveNet(layers_per_stack=3, stacks=1, kernel_size=3).receptive_field == 1 + 2 * 7


@pytest.mark.parametrize("output", ["softmax", "mixture"])
def test_the_output_at_t_depends_on_exactly_the_receptive_field_before_t(output):
    """Changing the level at p changes the outputs at t exactly where t - rf <= p < t."""
    model = small_wavenet(output)
    rf, T = model.receptive_field, 2 * model.receptive_field + 5
    g = torch.Generator().manual_seed(0)
    levels = torch.randint(0, model.levels, (1, T), generator=g)
    with torch.no_grad():
        base = model.outputs(levels)
        for p in range(T):
            changed = levels.clone()
            changed[0, p] = (changed[0, p] + 101) % model.levels
            differs = (model.outputs(changed) != base).any(1)[0]
            t = torch.arange(T)
            assert torch.equal(differs, (t - rf <= p) & (p < t)), p


@pytest.mark.parametrize("output", ["softmax", "mixture"])
@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("cond_channels", [0, 4])
def test_fast_sampling_reproduces_naive_sampling_exactly(output, n, cond_channels):
    """float64, the same seed: the same waveforms from the cached and the naive sampler, past
    the point where the caches wrap around (length > receptive field)."""
    model = small_wavenet(output, cond_channels)
    length = 3 * model.receptive_field + 2
    cond = cond_for(model, n)
    naive = model.generate(n, length, torch.Generator().manual_seed(7), cond, fast=False)
    fast = model.generate(n, length, torch.Generator().manual_seed(7), cond, fast=True)
    assert naive.shape == (n, 1, length)
    assert torch.equal(naive, fast)
    assert len(naive.unique()) >= 5  # the draws vary: an exact match is not a constant


def step_outputs(model, levels, fast, cond=None):
    """The outputs at every time step of one sampler fed the given levels (teacher forcing)."""
    with torch.no_grad():
        steps = model._fast_steps(levels, cond) if fast else model._naive_steps(levels, cond)
        return torch.stack(list(steps), dim=-1)


@pytest.mark.parametrize("output", ["softmax", "mixture"])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-11), (torch.float32, 2e-5)])
@pytest.mark.parametrize("n", [1, 2])
def test_per_step_distributions_match(output, dtype, tol, n):
    """Fed the same levels, both samplers compute the same output at every step (the logits or
    mixture parameters), and both equal the network's one-pass output (teacher forcing)."""
    model = small_wavenet(output, cond_channels=3, dtype=dtype)
    T = 2 * model.receptive_field + 9
    g = torch.Generator().manual_seed(3)
    levels = torch.randint(0, model.levels, (n, T), generator=g)
    cond = cond_for(model, n)
    naive, fast = step_outputs(model, levels, False, cond), step_outputs(model, levels, True, cond)
    with torch.no_grad():
        whole = model.outputs(levels, cond)
    scale = whole.abs().max()
    torch.testing.assert_close(fast / scale, naive / scale, rtol=0, atol=tol)
    torch.testing.assert_close(fast / scale, whole / scale, rtol=0, atol=tol)


def test_a_cache_read_one_step_late_is_caught(monkeypatch):
    """The exactness checks fail for a sampler whose caches lag a step: each layer's input
    written one step after it should be (its oldest tap then reads the input before the one it
    needs)."""
    model = small_wavenet()
    T = 2 * model.receptive_field
    levels = torch.randint(0, model.levels, (2, T), generator=torch.Generator().manual_seed(1))
    naive = step_outputs(model, levels, False)
    real = wavenet_layers.ops.wavenet_layer_step

    def late(x, cache, step, *rest):
        pending = getattr(cache, "_pending", None)
        before = cache.clone()
        out = real(x, cache, step, *rest)
        cache.copy_(before)  # undo this step's write ...
        if pending is not None:  # ... and make the previous one instead
            cache[pending[0]] = pending[1]
        cache._pending = (step % cache.shape[0], x.clone())
        return out

    monkeypatch.setattr(wavenet_layers.ops, "wavenet_layer_step", late)
    lagging = step_outputs(model, levels, True)
    assert not torch.allclose(lagging, naive, rtol=1e-6, atol=1e-6)


def test_likelihood_is_normalised_and_bits_per_sample_agree():
    """The softmax sums to one over the levels at each step; bits/sample is the NLL over T log 2."""
    model = small_wavenet()
    x = synthetic_audio(clip_length=40, count=12).train[:4].double()
    lp = model.log_prob(x)
    assert lp.shape == (4,) and torch.isfinite(lp).all()
    torch.testing.assert_close(model.bits_per_sample(x), -lp / (40 * math.log(2)))
    loss, logs = model.loss(x)
    torch.testing.assert_close(loss, (-lp / (40 * math.log(2))).mean())
    assert set(model.evaluate(x)) == {"bits_per_sample", "nll_nats"}


def test_mixture_output_scores_the_level_grid():
    """The mixture's probabilities over all levels of one step sum to one."""
    model = small_wavenet("mixture", length=1)
    with torch.no_grad():
        out = model.outputs(torch.zeros((1, 1), dtype=torch.long))  # [1, P, 1]
        levels = torch.arange(model.levels)
        nll = model._nll_of_levels(out.expand(model.levels, -1, -1), levels[:, None])
    torch.testing.assert_close(torch.exp(-nll).sum(), torch.tensor(1.0, dtype=torch.float64))


def test_training_learns_a_tone():
    """A few hundred Adam steps on clips of a 440 Hz tone beat the level histogram by far: the
    model predicts the next sample from the previous ones."""
    torch.manual_seed(0)
    t = torch.arange(64 * 40) / 8000
    x = (0.6 * torch.sin(2 * math.pi * 440 * t)).view(40, 1, 64)
    model = WaveNet(
        (1, 64),
        residual_channels=8,
        skip_channels=8,
        head_channels=16,
        layers_per_stack=3,
        stacks=1,
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss, _ = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.evaluate(x)["bits_per_sample"] < 3.0  # uniform: 8 bits


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_shape=(2, 64)), r"input_shape must be \(1, T\)"),
        (dict(output="logistic"), "output must be one of"),
        (dict(residual_channels=0), "must be positive ints"),
        (dict(levels=1), "levels at least 2"),
        (dict(cond_channels=-1), "cond_channels must be an int >= 0"),
    ],
)
def test_bad_configuration_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WaveNet(**kwargs)


def test_bad_inputs_are_refused():
    model, conditioned = small_wavenet(), small_wavenet(cond_channels=2)
    with pytest.raises(ValueError, match=r"x must be mono waveforms \[B, 1, T\]"):
        model.loss(torch.zeros(2, 2, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must lie in"):
        model.loss(torch.full((2, 1, 8), 1.5, dtype=torch.float64))
    with pytest.raises(ValueError, match="pass cond"):
        conditioned.loss(torch.zeros(2, 1, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"cond must have shape \[2, 2\]"):
        conditioned.loss(torch.zeros(2, 1, 8, dtype=torch.float64), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="length must be a positive int"):
        model.generate(2, 0)
    with pytest.raises(ValueError, match="n must be a non-negative int"):
        model.generate(-1)


def test_write_samples_draws_the_waveforms_and_writes_them_as_sound(tmp_path):
    model = small_wavenet(length=300)
    samples = model.sample(3, torch.Generator().manual_seed(0))
    png, wav = model.write_samples(samples.float(), tmp_path / "samples.png")
    assert Image.open(png).format == "PNG"
    sound, rate = read_wav(wav)
    gap = rate // 4
    assert rate == model.sample_rate and sound.shape == (1, 3 * 300 + 2 * gap)
    torch.testing.assert_close(sound[0, :300], samples[0, 0].float(), rtol=0, atol=1 / 32768)
    assert (sound[0, 300 : 300 + gap] == 0).all()


def test_cli_trains_on_sound_and_samples_fast_and_naive_alike(tmp_path, capsys):
    from train_helpers import sound_file

    from gen_ext.cli import main

    data, out = sound_file(tmp_path, 16, clip_length=48), tmp_path / "wavenet"
    tiny = ["residual_channels=4", "skip_channels=4", "head_channels=4", "layers_per_stack=2"]
    args = ["train", "wavenet", "--data", data, "--clip-length", "48", "--epochs", "1"]
    args += ["--batch-size", "8", "--out", str(out)] + [a for kv in tiny for a in ("--set", kv)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "(3 clips)" in printed and "bits_per_sample" in printed
    assert "histogram of the levels" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["baseline"]["uniform_bits_per_sample"] == 8.0
    assert metrics["config"]["input_shape"] == [1, 48] and metrics["config"]["sample_rate"] == 8000
    assert Image.open(out / "samples.png").format == "PNG"
    assert read_wav(out / "samples.wav")[0].shape[1] == 4 * 48 + 3 * 2000
    ckpt = str(out / "checkpoint.pt")
    for name, extra in (("fast", []), ("naive", ["--naive"])):
        png = tmp_path / f"{name}.png"
        assert main(["sample", ckpt, "-n", "2", "--length", "30", "--out", str(png), *extra]) == 0
    fast, naive = read_wav(tmp_path / "fast.wav")[0], read_wav(tmp_path / "naive.wav")[0]
    assert fast.shape == (1, 2 * 30 + 2000) and torch.equal(fast, naive)


def test_cli_sample_edges(tmp_path, capsys):
    from gen_ext.cli import main
    from gen_ext.models import PixelCNN, PixelRNN

    PixelRNN((1, 4, 4), hidden=3, layers=1, head=6).save(tmp_path / "rnn.pt")
    assert (
        main(["sample", str(tmp_path / "rnn.pt"), "-n", "2", "--out", str(tmp_path / "r.png")]) == 0
    )
    assert "PixelRNN has no fast sampler yet; sampling naively" in capsys.readouterr().err
    PixelCNN((1, 4, 4), hidden=3, blocks=1, head=6).save(tmp_path / "cnn.pt")
    code = main(
        ["sample", str(tmp_path / "cnn.pt"), "--length", "9", "--out", str(tmp_path / "c.png")]
    )
    assert code == 1 and "--length: PixelCNN draws images" in capsys.readouterr().err


def test_train_config_defaults_to_the_models_own_data():
    from gen_ext.train import TrainConfig

    assert TrainConfig(model="wavenet").data == "synthetic"
    assert TrainConfig(model="pixelcnn").data == "digits"
