"""Sound for WaveNet: mu-law quantization, WAV files, and clip datasets in [-1, 1].

- `mu_law_encode` / `mu_law_decode`: the companding WaveNet predicts over (256 levels by
  default): F(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu) with mu = levels - 1, quantized uniformly
  over [-1, 1]; decoding maps each bin's centre back through the inverse, so
  encode(decode(k)) == k.
- `read_wav` / `write_wav`: PCM WAV through the standard library's `wave` module. Reading takes
  8-bit (unsigned, offset 128), 16-, 24- and 32-bit (signed, little-endian) samples, scaled by
  2^(bits - 1); writing makes 16-bit files, atomically.
- `synthetic_audio`: the bundled default, made on the fly (no files): tones, chirps and noise,
  labelled by KINDS.
- `wav_folder(path)`: every WAV file in a folder, mixed to mono and cut into clips.
- `load_audio(source)`: "synthetic", a folder of WAV files or one WAV file.

Clips are split into train and test like the image datasets (datasets.split_order).
"""

import math
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gen_ext.errors import DataError
from gen_ext.files import atomic_write

from .datasets import MIN_IMAGES, split_order

KINDS = ("tone", "chirp", "noise")
MU_LAW_LEVELS = 256
WAV_SUFFIX = ".wav"
WRITE_SCALE = 32768  # 16-bit PCM: k / 32768, as read_wav reads it


@dataclass
class AudioData:
    name: str
    train: torch.Tensor  # [N, 1, T] float32 in [-1, 1]
    test: torch.Tensor  # [M, 1, T]
    levels: int  # mu-law levels the models predict over
    sample_rate: int  # samples per second
    train_labels: torch.Tensor | None = None  # int64, an index into KINDS for synthetic data
    test_labels: torch.Tensor | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(channels, T): (1, clip length), as ImageData's shape is (C, H, W)."""
        return tuple(self.train.shape[1:])

    @property
    def clip_length(self) -> int:
        return self.train.shape[-1]


# ---- mu-law ---------------------------------------------------------------------------------


def _check_levels(levels) -> int:
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ValueError(f"levels must be an integer >= 2, got {levels!r}")
    return levels


def mu_law_encode(x, levels: int = MU_LAW_LEVELS) -> torch.Tensor:
    """Waveform values in [-1, 1] -> int64 bins in [0, levels)."""
    mu = _check_levels(levels) - 1
    x = torch.as_tensor(x)
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"x must hold real numbers, got dtype {x.dtype}")
    x = x.to(torch.float64)
    bad = int(x.numel() - torch.isfinite(x).sum())
    if bad:
        raise ValueError(f"x must be finite, got {bad} NaN or infinite values")
    if x.numel() and (x.min() < -1 or x.max() > 1):
        raise ValueError(
            f"x must lie in [-1, 1], got values in [{x.min().item():g}, {x.max().item():g}]"
        )
    companded = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return ((companded + 1) / 2 * mu).round().long()


def mu_law_decode(k, levels: int = MU_LAW_LEVELS) -> torch.Tensor:
    """Bins in [0, levels) -> float32 values in [-1, 1]: each bin's centre through the inverse
    of the companding."""
    mu = _check_levels(levels) - 1
    k = torch.as_tensor(k)
    if k.dtype.is_floating_point or k.is_complex() or k.dtype == torch.bool:
        raise ValueError(f"k must be an integer tensor, got dtype {k.dtype}")
    k = k.long()  # compared as int64: `levels` may not fit k's own type (uint8 and 256)
    if k.numel() and (k.min() < 0 or k.max() >= levels):
        raise ValueError(
            f"k must lie in [0, {levels}) for levels={levels}, got values in "
            f"[{k.min().item()}, {k.max().item()}]"
        )
    centre = k.to(torch.float64) * (2 / mu) - 1
    return (torch.sign(centre) * torch.expm1(centre.abs() * math.log1p(mu)) / mu).float()


# ---- WAV files ------------------------------------------------------------------------------


def _pcm_to_float(data: bytes, width: int, channels: int) -> np.ndarray:
    """Interleaved little-endian PCM -> float64 [channels, T] in [-1, 1)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if width == 1:
        values = raw.astype(np.int32) - 128
    elif width == 2:
        values = raw.view("<i2")
    elif width == 3:
        b = raw.reshape(-1, 3).astype(np.int32)
        values = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        values = np.where(values >= 1 << 23, values - (1 << 24), values)
    else:
        values = raw.view("<i4")
    scaled = values.astype(np.float64) / 2 ** (8 * width - 1)
    return scaled.reshape(-1, channels).T


def read_wav(path) -> tuple[torch.Tensor, int]:
    """A PCM WAV file -> (waveform float32 [channels, T] in [-1, 1], sample rate)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate, frames = (
                w.getnchannels(),
                w.getsampwidth(),
                w.getframerate(),
                w.getnframes(),
            )
            data = w.readframes(frames)
    except EOFError as err:
        raise DataError(f"{path}: not a WAV file (empty or cut short in its header)") from err
    except wave.Error as err:
        # wave refuses files without RIFF/WAVE ids and non-PCM formats (float, compressed)
        raise DataError(
            f"{path}: cannot read as a PCM WAV file ({err}); expected 8-, 16-, 24- or 32-bit "
            f"integer PCM"
        ) from err
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err})") from err
    if width not in (1, 2, 3, 4):
        raise DataError(f"{path}: {8 * width}-bit samples; expected 8, 16, 24 or 32 bits")
    if channels < 1 or rate < 1:
        raise DataError(f"{path}: header gives {channels} channels at {rate} Hz")
    frame_bytes = channels * width
    if frames == 0:
        raise DataError(f"{path}: holds no samples")
    if len(data) < frames * frame_bytes:
        raise DataError(
            f"{path}: truncated: the header gives {frames:,} frames, the file holds "
            f"{len(data) // frame_bytes:,}"
        )
    waveform = _pcm_to_float(data, width, channels)
    return torch.from_numpy(waveform).float().contiguous(), rate


def write_wav(path, waveform, sample_rate: int) -> Path:
    """Writes waveform [T] or [channels, T] in [-1, 1] as a 16-bit PCM WAV file, atomically
    (a failed write leaves no partial file). Values outside [-1, 1] are refused, not clipped."""
    path = Path(path)
    waveform = torch.as_tensor(waveform).detach().cpu()
    if waveform.dtype == torch.bool or waveform.is_complex():
        raise ValueError(f"write_wav {path}: waveform must hold real numbers, got {waveform.dtype}")
    if waveform.dim() == 1:
        waveform = waveform[None]
    if waveform.dim() != 2 or waveform.shape[0] < 1 or waveform.shape[1] < 1:
        raise ValueError(
            f"write_wav {path}: waveform must have shape [T] or [channels, T] with T >= 1, "
            f"got {tuple(waveform.shape)}"
        )
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 1:
        raise ValueError(
            f"write_wav {path}: sample_rate must be a positive integer, got {sample_rate!r}"
        )
    values = waveform.to(torch.float64)
    bad = int(values.numel() - torch.isfinite(values).sum())
    if bad:
        raise ValueError(f"write_wav {path}: waveform holds {bad} NaN or infinite values")
    if values.min() < -1 or values.max() > 1:
        raise ValueError(
            f"write_wav {path}: waveform must lie in [-1, 1], got values in "
            f"[{values.min().item():g}, {values.max().item():g}]"
        )
    pcm = (values * WRITE_SCALE).round().clamp(-WRITE_SCALE, WRITE_SCALE - 1).short()
    data = pcm.T.contiguous().numpy().astype("<i2").tobytes()

    def write(f):
        with wave.open(f, "wb") as w:
            w.setnchannels(waveform.shape[0])
            w.setsampwidth(2)
            w.setframerate(sample_rate)
            w.writeframes(data)

    return atomic_write(path, write)


# ---- datasets -------------------------------------------------------------------------------


def _check_positive(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}")
    return value


def _make(
    clips: torch.Tensor,
    labels: torch.Tensor | None,
    name: str,
    sample_rate: int,
    source: str,
) -> AudioData:
    train, test = split_order(clips.shape[0], source, what="clips")
    return AudioData(
        name,
        clips[train].contiguous(),
        clips[test].contiguous(),
        MU_LAW_LEVELS,
        sample_rate,
        None if labels is None else labels[train],
        None if labels is None else labels[test],
    )


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)


def _tones(n: int, t: torch.Tensor, band: tuple[float, float], g) -> torch.Tensor:
    """Sums of 1-3 sines at random frequencies, amplitudes and phases; peak at most 0.9."""
    components = torch.randint(1, 4, (n,), generator=g)
    present = torch.arange(3)[None] < components[:, None]  # [n, 3]
    freqs = torch.exp(_uniform(3 * n, math.log(band[0]), math.log(band[1]), g)).view(n, 3)
    phases = _uniform(3 * n, 0, 2 * math.pi, g).view(n, 3)
    amps = _uniform(3 * n, 0.2, 1.0, g).view(n, 3) * present
    # the amplitudes sum to the peak level, so no sum of the sines can exceed it
    amps = amps / amps.sum(1, keepdim=True) * _uniform(n, 0.3, 0.9, g)[:, None]
    sines = torch.sin(2 * math.pi * freqs[..., None] * t + phases[..., None])  # [n, 3, T]
    return (amps[..., None] * sines).sum(1)


def _chirps(n: int, t: torch.Tensor, duration: float, band: tuple[float, float], g) -> torch.Tensor:
    """A sine sweeping linearly or exponentially between two frequencies at least a factor
    band^(1/2) apart, up or down, under a sin^p envelope peaking at 0.3-0.9."""
    a, b = _uniform(n, 0, 1, g), _uniform(n, 0, 1, g)
    low, high = torch.minimum(a, b) / 2, 0.5 + torch.maximum(a, b) / 2
    down = torch.rand(n, generator=g) < 0.5
    u0, u1 = torch.where(down, high, low), torch.where(down, low, high)
    log_lo, log_hi = math.log(band[0]), math.log(band[1])
    f0 = torch.exp(log_lo + u0 * (log_hi - log_lo))[:, None]
    f1 = torch.exp(log_lo + u1 * (log_hi - log_lo))[:, None]
    exponential = (torch.rand(n, generator=g) < 0.5)[:, None]
    s = t / duration  # [T], 0 .. 1
    # phase = 2 pi * integral of the frequency; f0 / f1 >= band^(1/2) > 1, so the log is nonzero
    linear_phase = f0 * t + (f1 - f0) * duration * s**2 / 2
    ratio = torch.log(f1 / f0)
    exp_phase = f0 * duration * torch.expm1(ratio * s) / ratio
    phase = 2 * math.pi * torch.where(exponential, exp_phase, linear_phase)
    phase = phase + _uniform(n, 0, 2 * math.pi, g)[:, None]
    power = _uniform(n, 0.3, 2.0, g)[:, None]
    envelope = _uniform(n, 0.3, 0.9, g)[:, None] * torch.sin(math.pi * s).clamp(min=0) ** power
    return envelope * torch.sin(phase)


def _noise(n: int, length: int, g) -> torch.Tensor:
    """White noise through a one-pole low-pass y[i] = c y[i-1] + (1 - c) x[i] (c in [0, 0.9]),
    scaled to a peak of 0.05-0.3."""
    white = torch.randn(n, length, generator=g, dtype=torch.float64).numpy()
    c = _uniform(n, 0.0, 0.9, g).numpy()
    out = np.empty_like(white)
    state = np.zeros(n)
    for i in range(length):
        state = c * state + (1 - c) * white[:, i]
        out[:, i] = state
    peak = np.abs(out).max(1, keepdims=True)
    level = _uniform(n, 0.05, 0.3, g).numpy()[:, None]
    return torch.from_numpy(out / np.maximum(peak, 1e-12) * level)


def synthetic_audio(
    clip_length: int = 2048, count: int = 1200, sample_rate: int = 8000, seed: int = 0
) -> AudioData:
    """`count` clips made on the fly, deterministic for `seed`: one third each of tones,
    chirps and noise (labels index KINDS), split into train and test."""
    _check_positive(clip_length, "clip_length")
    _check_positive(count, "count")
    _check_positive(sample_rate, "sample_rate")
    g = torch.Generator().manual_seed(seed)
    # frequencies ~100-1000 Hz, kept under 0.4 of the sample rate (below Nyquist)
    high = min(1000.0, 0.4 * sample_rate)
    band = (min(100.0, high / 10), high)
    t = torch.arange(clip_length, dtype=torch.float64) / sample_rate
    labels = torch.arange(count) % len(KINDS)
    clips = torch.empty(count, clip_length, dtype=torch.float64)
    makers = (
        lambda n: _tones(n, t, band, g),
        lambda n: _chirps(n, t, clip_length / sample_rate, band, g),
        lambda n: _noise(n, clip_length, g),
    )
    for kind, make in enumerate(makers):
        where = labels == kind
        clips[where] = make(int(where.sum()))
    return _make(clips.float()[:, None], labels, "synthetic", sample_rate, "synthetic")


def _wav_clips(files: list[Path], clip_length: int, name: str, source: str) -> AudioData:
    """The files mixed to mono and cut into consecutive clips (each file's remainder dropped)."""
    clips, rate, rate_file = [], None, None
    for f in files:
        waveform, file_rate = read_wav(f)
        if rate is None:
            rate, rate_file = file_rate, f
        elif file_rate != rate:
            raise DataError(
                f"{source}: WAV files must share one sample rate: {rate_file.name} is "
                f"{rate} Hz, {f.name} is {file_rate} Hz"
            )
        mono = waveform.mean(0)
        whole = mono.shape[0] // clip_length
        clips.append(mono[: whole * clip_length].view(whole, clip_length))
    found = sum(c.shape[0] for c in clips)
    if found < MIN_IMAGES:
        raise DataError(
            f"{source}: found {found} clips of {clip_length} samples in {len(files)} WAV "
            f"files; need at least {MIN_IMAGES} (a held-out test set and a training batch): "
            f"add sound or shorten the clip length"
        )
    return _make(torch.cat(clips)[:, None], None, name, rate, source)


def wav_folder(path, clip_length: int = 2048) -> AudioData:
    """Every *.wav file in `path` (sorted, not recursive), mixed to mono and cut into
    consecutive clips of `clip_length` samples; all must share one sample rate."""
    path = Path(path)
    _check_positive(clip_length, "clip_length")
    if not path.is_dir():
        raise DataError(f"{path}: no such folder")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == WAV_SUFFIX and p.is_file())
    if not files:
        raise DataError(f"{path}: found no WAV files (*.wav); need at least one")
    return _wav_clips(files, clip_length, path.name, str(path))


def load_audio(source, clip_length: int = 2048) -> AudioData:
    """'synthetic', a folder of WAV files, or one WAV file (a folder of one)."""
    if source == "synthetic":
        return synthetic_audio(clip_length=clip_length)
    path = Path(source)
    if path.is_dir():
        return wav_folder(path, clip_length)
    if path.is_file() and path.suffix.lower() == WAV_SUFFIX:
        _check_positive(clip_length, "clip_length")
        return _wav_clips([path], clip_length, path.stem, str(path))
    raise DataError(f"--data {source}: expected synthetic, a folder of WAV files or a .wav file")
