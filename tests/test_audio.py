"""Audio data: mu-law coding, WAV files, the synthetic clips, WAV folders and waveform plots."""

import math
import wave

import numpy as np
import pytest
import torch

from gen_ext.data import (
    KINDS,
    MIN_IMAGES,
    AudioData,
    load_audio,
    mu_law_decode,
    mu_law_encode,
    read_wav,
    synthetic_audio,
    wav_folder,
    write_wav,
)
from gen_ext.data.datasets import SPLIT_SEED, TEST_FRACTION
from gen_ext.errors import DataError
from gen_ext.viz import save_waveforms

# ---- mu-law ---------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [2, 3, 4, 16, 255, 256, 1024])
def test_mu_law_round_trip_and_monotone(levels):
    k = torch.arange(levels)
    values = mu_law_decode(k, levels)
    assert values.dtype == torch.float32
    assert torch.equal(mu_law_encode(values, levels), k)
    assert (values[1:] > values[:-1]).all()
    assert values[0] == -1 and values[-1] == 1
    # symmetric about 0; an odd count has a bin at 0 itself
    assert torch.allclose(values, -values.flip(0), atol=1e-7)
    if levels % 2:
        assert values[(levels - 1) // 2] == 0


def test_mu_law_values():
    k = torch.tensor([0, 127, 128, 255])
    mu = 255
    centre = 1 / mu  # bins 127 and 128 are centred at -+1/255 of the companded range
    expected = math.expm1(centre * math.log1p(mu)) / mu
    values = mu_law_decode(k)
    assert values[0] == -1 and values[3] == 1
    assert values[1].item() == pytest.approx(-expected, rel=1e-6)
    assert values[2].item() == pytest.approx(expected, rel=1e-6)
    assert abs(values[2].item()) < 1e-4
    x = torch.tensor([-1.0, -1e-6, 0.0, 1e-6, 1.0])
    assert mu_law_encode(x).tolist() == [0, 127, 128, 128, 255]  # 0 rounds half to even
    assert mu_law_encode(x).dtype == torch.int64


def test_mu_law_sine_error_within_its_bins():
    x = 0.8 * torch.sin(torch.linspace(0, 20 * math.pi, 4001, dtype=torch.float64))
    k = mu_law_encode(x)
    back = mu_law_decode(k).double()
    # the error is at most half of the bin each value falls in
    edges_low = mu_law_decode((k - 1).clamp(min=0)).double()
    edges_high = mu_law_decode((k + 1).clamp(max=255)).double()
    half_bin = (edges_high - edges_low) / 4
    assert ((back - x).abs() <= half_bin * 1.01 + 1e-7).all()
    assert (back - x).abs().max() < 0.02  # the widest bins (near +-0.8) are ~0.03 wide
    # 8-bit mu-law keeps a sine ~38 dB above its quantization noise
    snr = 10 * math.log10(x.square().mean() / (back - x).square().mean())
    assert snr > 35


def test_mu_law_errors():
    with pytest.raises(ValueError, match="x must lie in"):
        mu_law_encode(torch.tensor([0.5, 1.01]))
    with pytest.raises(ValueError, match="x must be finite"):
        mu_law_encode(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="x must be finite"):
        mu_law_encode(torch.tensor([float("inf")]))
    for levels in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match="levels must be an integer >= 2"):
            mu_law_encode(torch.zeros(2), levels)
        with pytest.raises(ValueError, match="levels must be an integer >= 2"):
            mu_law_decode(torch.zeros(2, dtype=torch.long), levels)
    with pytest.raises(ValueError, match=r"k must lie in \[0, 16\)"):
        mu_law_decode(torch.tensor([0, 16]), 16)
    with pytest.raises(ValueError, match=r"k must lie in"):
        mu_law_decode(torch.tensor([-1]))
    for dtype in (torch.float32, torch.bool):
        with pytest.raises(ValueError, match="k must be an integer tensor"):
            mu_law_decode(torch.zeros(3, dtype=dtype))
    assert mu_law_decode(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [-1.0, 1.0]


# ---- WAV files ------------------------------------------------------------------------------


def _write_pcm(path, samples: np.ndarray, width: int, rate: int = 8000):
    """samples: integers [channels, T] in the signed range of `width` bytes."""
    channels = samples.shape[0]
    frames = samples.T.reshape(-1).astype(np.int64)
    if width == 1:
        data = (frames + 128).astype(np.uint8).tobytes()
    elif width == 2:
        data = frames.astype("<i2").tobytes()
    elif width == 3:
        u = frames & 0xFFFFFF
        data = np.stack([u & 0xFF, (u >> 8) & 0xFF, (u >> 16) & 0xFF], 1).astype(np.uint8)
        data = data.tobytes()
    else:
        data = frames.astype("<i4").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("channels", [1, 2])
def test_read_wav_bit_depths(tmp_path, width, channels):
    full = 2 ** (8 * width - 1)
    rng = np.random.default_rng(width)
    samples = rng.integers(-full, full, size=(channels, 300))
    samples[0, :2] = [-full, full - 1]  # both ends of the range
    path = tmp_path / f"x{width}.wav"
    _write_pcm(path, samples, width, rate=11025)
    waveform, rate = read_wav(path)
    assert rate == 11025
    assert waveform.dtype == torch.float32 and waveform.shape == (channels, 300)
    expected = torch.from_numpy(samples / full).float()
    assert torch.equal(waveform, expected)
    assert waveform.min() >= -1 and waveform.max() <= 1
    assert waveform[0, 0] == -1


@pytest.mark.parametrize("shape", [(500,), (1, 500), (2, 500)])
def test_write_then_read_wav(tmp_path, shape):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1
    x.view(-1)[:2] = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    path = write_wav(tmp_path / "out.wav", x, 16000)
    assert path == tmp_path / "out.wav"
    back, rate = read_wav(path)
    assert rate == 16000
    assert back.shape == (x.shape if x.dim() == 2 else (1, 500))
    assert (back.double() - x.reshape(back.shape)).abs().max() <= 1 / 32768
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no temporary file left


def test_write_wav_refuses_bad_waveforms(tmp_path):
    path = tmp_path / "bad.wav"
    with pytest.raises(ValueError, match=r"bad\.wav.*must lie in \[-1, 1\]"):
        write_wav(path, torch.tensor([0.0, 1.5]), 8000)
    with pytest.raises(ValueError, match="NaN or infinite"):
        write_wav(path, torch.tensor([0.0, float("nan")]), 8000)
    with pytest.raises(ValueError, match="shape"):
        write_wav(path, torch.zeros(2, 2, 2), 8000)
    with pytest.raises(ValueError, match="sample_rate"):
        write_wav(path, torch.zeros(4), 0)
    assert not list(tmp_path.iterdir())
    # a failed write keeps the previous file whole
    write_wav(path, torch.zeros(10), 8000)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        write_wav(path, torch.full((10,), 2.0), 8000)
    assert path.read_bytes() == before


def test_read_wav_refusals(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not a sound file at all, just some text")
    with pytest.raises(DataError, match=r"notes\.wav: cannot read as a PCM WAV file"):
        read_wav(text)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.wav: not a WAV file"):
        read_wav(empty)
    good = tmp_path / "good.wav"
    _write_pcm(good, np.zeros((1, 1000), dtype=np.int64), 2)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good.read_bytes()[:-500])
    with pytest.raises(DataError, match=r"cut\.wav: truncated: the header gives 1,000 frames"):
        read_wav(cut)
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(good.read_bytes()[:20])
    with pytest.raises(DataError, match=r"header\.wav"):
        read_wav(header_only)
    silent = tmp_path / "silent.wav"
    _write_pcm(silent, np.zeros((1, 0), dtype=np.int64), 2)
    with pytest.raises(DataError, match=r"silent\.wav: holds no samples"):
        read_wav(silent)
    # IEEE float (format 3) is not PCM: the wave module refuses it
    floats = tmp_path / "float.wav"
    data = good.read_bytes()
    floats.write_bytes(data[:20] + (3).to_bytes(2, "little") + data[22:])
    with pytest.raises(DataError, match=r"float\.wav: cannot read as a PCM WAV file"):
        read_wav(floats)
    with pytest.raises(DataError, match=r"missing\.wav: no such file"):
        read_wav(tmp_path / "missing.wav")


# ---- synthetic clips ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_audio()


def _top_bin_energy(clips: torch.Tensor, bins: int = 16) -> torch.Tensor:
    power = torch.fft.rfft(clips.double()).abs() ** 2
    return power.sort(-1, descending=True).values[..., :bins].sum(-1) / power.sum(-1)


def test_synthetic_shapes_and_range(synthetic):
    d = synthetic
    assert isinstance(d, AudioData) and d.name == "synthetic"
    assert d.levels == 256 and d.sample_rate == 8000
    assert d.shape == (1, 2048) and d.clip_length == 2048
    n_test = round(1200 * TEST_FRACTION)
    assert d.train.shape == (1200 - n_test, 1, 2048) and d.test.shape == (n_test, 1, 2048)
    for x in (d.train, d.test):
        assert x.dtype == torch.float32 and x.is_contiguous()
        assert torch.isfinite(x).all() and x.abs().max() <= 0.9 + 1e-6
    for labels in (d.train_labels, d.test_labels):
        assert labels.dtype == torch.int64
        assert set(labels.tolist()) == {0, 1, 2}
    assert len(KINDS) == 3 and KINDS == ("tone", "chirp", "noise")
    # the split is the image datasets' one
    order = torch.randperm(1200, generator=torch.Generator().manual_seed(SPLIT_SEED))
    assert torch.equal(d.test_labels, order[:n_test] % 3)


def test_synthetic_determinism():
    a = synthetic_audio(clip_length=256, count=30, seed=3)
    b = synthetic_audio(clip_length=256, count=30, seed=3)
    c = synthetic_audio(clip_length=256, count=30, seed=4)
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)
    assert torch.equal(a.train_labels, b.train_labels)
    assert not torch.equal(a.train, c.train)
    assert a.shape == (1, 256)
    other = synthetic_audio(clip_length=100, count=12, sample_rate=2000)
    assert other.shape == (1, 100) and other.sample_rate == 2000
    assert other.train.abs().max() <= 1


def test_synthetic_kinds_differ(synthetic):
    clips, labels = synthetic.train[:, 0], synthetic.train_labels
    peaky = _top_bin_energy(clips)
    tone, chirp, noise = (peaky[labels == k] for k in range(3))
    # a few sines put nearly all their energy in a few FFT bins; noise and sweeps spread it
    assert tone.min() > 0.8
    assert noise.median() < 0.3 and chirp.median() < 0.4
    assert noise.max() < tone.min()
    # a chirp's strongest frequency moves between the first and last quarter; a tone's does not
    quarter = clips.shape[1] // 4
    first = torch.fft.rfft(clips[:, :quarter]).abs().argmax(-1)
    last = torch.fft.rfft(clips[:, -quarter:]).abs().argmax(-1)
    moved = (first - last).abs() > 2
    assert moved[labels == 1].float().mean() > 0.9
    assert moved[labels == 0].float().mean() < 0.2
    # noise is quieter than the tones and chirps
    peak = clips.abs().amax(-1)
    assert peak[labels == 2].max() <= 0.3 + 1e-6
    assert peak[labels == 0].min() >= 0.2


def test_synthetic_argument_errors():
    with pytest.raises(DataError, match="clip_length must be a positive integer"):
        synthetic_audio(clip_length=0)
    with pytest.raises(DataError, match=f"synthetic: need at least {MIN_IMAGES} clips"):
        synthetic_audio(clip_length=64, count=5)


# ---- WAV folders ----------------------------------------------------------------------------


def test_wav_folder_clips(tmp_path):
    rng = np.random.default_rng(0)
    left = rng.integers(-20000, 20000, size=(1, 1000))
    stereo = rng.integers(-20000, 20000, size=(2, 650))
    _write_pcm(tmp_path / "b.wav", stereo, 2)  # 6 clips, 50 samples dropped
    _write_pcm(tmp_path / "a.WAV", left, 2)  # 10 clips, none dropped
    _write_pcm(tmp_path / "short.wav", left[:, :99], 2)  # no whole clip
    (tmp_path / "readme.txt").write_text("not sound")
    d = wav_folder(tmp_path, clip_length=100)
    assert d.name == tmp_path.name and d.sample_rate == 8000 and d.levels == 256
    assert d.train_labels is None and d.test_labels is None
    assert d.shape == (1, 100)
    assert d.train.shape[0] + d.test.shape[0] == 16 and d.test.shape[0] == 3
    # a.WAV before b.wav (sorted), clips consecutive, stereo mixed to mono
    mono_b = torch.from_numpy(stereo / 32768).float().mean(0)
    expected = torch.cat(
        [torch.from_numpy(left[0] / 32768).float().view(10, 100), mono_b[:600].view(6, 100)]
    )
    everything = torch.cat([d.train, d.test])[:, 0]
    order = torch.randperm(16, generator=torch.Generator().manual_seed(SPLIT_SEED))
    rebuilt = torch.empty_like(everything)
    rebuilt[torch.cat([order[3:], order[:3]])] = everything
    assert torch.allclose(rebuilt, expected)


def test_wav_folder_errors(tmp_path):
    one = np.zeros((1, 2000), dtype=np.int64)
    _write_pcm(tmp_path / "a.wav", one, 2, rate=8000)
    _write_pcm(tmp_path / "b.wav", one, 2, rate=16000)
    with pytest.raises(DataError, match=r"a\.wav is 8000 Hz, b\.wav is 16000 Hz"):
        wav_folder(tmp_path, clip_length=100)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.txt").write_text("x")
    with pytest.raises(DataError, match="found no WAV files"):
        wav_folder(empty)
    few = tmp_path / "few"
    few.mkdir()
    _write_pcm(few / "a.wav", one, 2)
    with pytest.raises(
        DataError, match=r"found 7 clips of 256 samples in 1 WAV files; need at least 10"
    ):
        wav_folder(few, clip_length=256)
    with pytest.raises(DataError, match="no such folder"):
        wav_folder(tmp_path / "nowhere")


def test_load_audio(tmp_path):
    d = load_audio("synthetic", clip_length=64)
    assert d.name == "synthetic" and d.shape == (1, 64)
    _write_pcm(tmp_path / "one.wav", np.zeros((2, 1000), dtype=np.int64), 1)
    single = load_audio(tmp_path / "one.wav", clip_length=100)
    assert single.name == "one" and single.train.shape[0] + single.test.shape[0] == 10
    folder = load_audio(str(tmp_path), clip_length=100)
    assert folder.train.shape == single.train.shape
    (tmp_path / "data.npy").write_bytes(b"")
    for source in ("digits", str(tmp_path / "data.npy"), str(tmp_path / "missing")):
        with pytest.raises(DataError, match="expected synthetic, a folder of WAV files or a .wav"):
            load_audio(source)


# ---- plots ----------------------------------------------------------------------------------


def test_save_waveforms(tmp_path):
    from PIL import Image

    t = torch.arange(400) / 8000
    waves = torch.stack([0.5 * torch.sin(2 * math.pi * f * t) for f in (200, 300, 500)])
    path = save_waveforms(waves[:, None], tmp_path / "w" / "waves.png", 8000, ["a", "b", "c"])
    assert path == tmp_path / "w" / "waves.png"
    with Image.open(path) as im:
        im.load()
        three = im.size
    assert three[0] >= 400 and three[1] >= 200
    one = save_waveforms(waves[:1], tmp_path / "one.png", 8000)
    with Image.open(one) as im:
        assert im.size[0] == three[0] and im.size[1] < three[1]  # a row per waveform
        assert im.size[0] > im.size[1]
    with pytest.raises(ValueError, match="titles"):
        save_waveforms(waves, tmp_path / "bad.png", 8000, ["a"])
    with pytest.raises(ValueError, match="shape"):
        save_waveforms(torch.zeros(2, 2, 5), tmp_path / "bad.png", 8000)
    assert not (tmp_path / "bad.png").exists()
