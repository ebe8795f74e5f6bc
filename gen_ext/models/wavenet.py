"""WaveNet (van den Oord et al., 2016, "WaveNet: A Generative Model for Raw Audio"): stacks of
dilated causal convolution layers with gated activations, residual and skip connections, over
mu-law quantized audio; the output is a softmax over the mu-law levels or a discretized logistic
mixture over them. Sampling runs naively (the network over the receptive field for every new
sample: the reference) or fast (one position per layer from ring-buffer caches)."""

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from gen_ext.data.audio import MU_LAW_LEVELS, mu_law_decode, mu_law_encode
from gen_ext.metrics import bits_per_dim
from gen_ext.nn import DiscretizedLogisticMixture, WaveNetLayer

from .autoregressive import categorical_by_inversion, nll_in_batches
from .base import GenerativeModel
from .cached_sampling import one_thread_for_small_steps

OUTPUTS = ("softmax", "mixture")


class WaveNet(GenerativeModel):
    """`stacks` stacks of `layers_per_stack` layers with dilations 1, 2, ..., 2^(layers_per_stack
    - 1), kernel size `kernel_size`. The input at time t is the embedding of the mu-law level of
    the sample before t (nothing at t = 0), so the prediction at t sees the `receptive_field`
    samples before t. The skip outputs of all layers are summed, then ReLU, a 1x1 convolution to
    `head_channels`, ReLU, and a 1x1 convolution to the output: `levels` logits (output="softmax")
    or a discretized logistic mixture of `mixtures` components over the levels on [-1, 1]
    (output="mixture").

    `cond_channels` > 0 adds a global conditioning vector (e.g. a speaker or a sound's kind as a
    one-hot) [B, cond_channels] inside every layer's gate; `loss`, `log_prob` and `generate` then
    take `cond`.

    Waveforms are [B, 1, T] in [-1, 1]; `input_shape` (1, T) sets the length `sample` generates.

    >>> model = WaveNet()
    >>> loss, logs = model.loss(waveforms)                  # bits per sample
    >>> audio = model.generate(4, length=8000, generator=g) # fast=True: the cached sampler
    """

    cli_name = "wavenet"
    main_metric = "bits_per_sample"
    unit = "bits/sample"
    # on the synthetic sound, batches of 16 reach in 6 epochs (2 min) the held-out bits/sample
    # that batches of 64 reach in 17 (7 min): 4x the steps for the same samples (measured)
    default_epochs = 15
    default_batch_size = 16
    data_kind = "audio"
    default_data = "synthetic"
    picture_samples = 4

    def __init__(
        self,
        input_shape=(1, 2048),
        levels: int = MU_LAW_LEVELS,
        sample_rate: int = 8000,
        residual_channels: int = 32,
        skip_channels: int = 64,
        head_channels: int = 64,
        layers_per_stack: int = 8,
        stacks: int = 2,
        kernel_size: int = 2,
        output: str = "softmax",
        mixtures: int = 10,
        cond_channels: int = 0,
    ):
        super().__init__(
            input_shape=list(input_shape),
            levels=levels,
            sample_rate=sample_rate,
            residual_channels=residual_channels,
            skip_channels=skip_channels,
            head_channels=head_channels,
            layers_per_stack=layers_per_stack,
            stacks=stacks,
            kernel_size=kernel_size,
            output=output,
            mixtures=mixtures,
            cond_channels=cond_channels,
        )
        if len(input_shape) != 2 or input_shape[0] != 1 or input_shape[1] < 1:
            raise ValueError(
                f"WaveNet: input_shape must be (1, T) (mono clips of T samples), got "
                f"{tuple(input_shape)}"
            )
        positive = dict(
            levels=levels,
            sample_rate=sample_rate,
            residual_channels=residual_channels,
            skip_channels=skip_channels,
            head_channels=head_channels,
            layers_per_stack=layers_per_stack,
            stacks=stacks,
            kernel_size=kernel_size,
            mixtures=mixtures,
        )
        bad = {k: v for k, v in positive.items() if not isinstance(v, int) or v < 1}
        if bad or levels < 2:
            raise ValueError(
                f"WaveNet: {', '.join(positive)} must be positive ints (levels at least 2), "
                f"got {bad or dict(levels=levels)}"
            )
        if output not in OUTPUTS:
            raise ValueError(f"WaveNet: output must be one of {OUTPUTS}, got {output!r}")
        if not isinstance(cond_channels, int) or cond_channels < 0:
            raise ValueError(f"WaveNet: cond_channels must be an int >= 0, got {cond_channels!r}")
        self.input_shape, self.length = tuple(input_shape), input_shape[1]
        self.levels, self.sample_rate, self.output = levels, sample_rate, output
        self.cond_channels = cond_channels
        R = residual_channels
        self.embed = nn.Embedding(levels, R)
        self.layers = nn.ModuleList(
            WaveNetLayer(R, 2**i, kernel_size, None, skip_channels, cond_channels)
            for _ in range(stacks)
            for i in range(layers_per_stack)
        )
        self.mixture = (
            DiscretizedLogisticMixture(1, mixtures, levels) if output == "mixture" else None
        )
        out = levels if output == "softmax" else self.mixture.num_params
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(skip_channels, head_channels, 1),
            nn.ReLU(),
            nn.Conv1d(head_channels, out, 1),
        )

    @property
    def receptive_field(self) -> int:
        """How many samples before t the prediction at t sees."""
        return 1 + sum(layer.receptive_field - 1 for layer in self.layers)

    # ---- data ----

    def check_waveforms(self, x: torch.Tensor) -> torch.Tensor:
        """Mu-law level indices [B, T] of waveforms x [B, 1, T] in [-1, 1]."""
        if x.dim() != 3 or x.shape[1] != 1 or x.shape[2] < 1:
            raise ValueError(
                f"WaveNet: x must be mono waveforms [B, 1, T] with T >= 1, got {list(x.shape)}"
            )
        return mu_law_encode(x[:, 0], self.levels)

    def check_cond(self, cond: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if (cond is None) != (self.cond_channels == 0):
            raise ValueError(
                f"WaveNet: pass cond [B, {self.cond_channels}] exactly when the model is "
                f"conditioned (cond_channels={self.cond_channels})"
            )
        if cond is not None and list(cond.shape) != [n, self.cond_channels]:
            raise ValueError(
                f"WaveNet: cond must have shape {[n, self.cond_channels]}, got {list(cond.shape)}"
            )
        return cond

    # ---- likelihood ----

    def outputs(self, levels: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The output layer [B, P, T] for level indices [B, T]: logits or mixture parameters,
        those at t computed from the levels before t."""
        h = self.embed(levels).transpose(1, 2)
        h = F.pad(h, (1, 0))[..., :-1]  # the input at t is the sample before t
        skip = None
        for layer in self.layers:
            h, s = layer(h, cond)
            skip = s if skip is None else skip + s
        return self.head(skip)

    def _nll_of_levels(self, out: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        """NLL in nats per sample [B, T] of level indices under the outputs."""
        if self.output == "softmax":
            return F.cross_entropy(out, levels, reduction="none")
        y = levels.to(out.dtype) * (2 / (self.levels - 1)) - 1
        return self.mixture.nll(out[:, :, None, :], y[:, None, None, :])[:, 0, 0]

    def _nll(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        levels = self.check_waveforms(x)
        out = self.outputs(levels, self.check_cond(cond, x.shape[0]))
        return self._nll_of_levels(out, levels).sum(1)

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """log p(mu-law levels of x) in nats per clip, [B]."""
        return -self._nll(x, cond)

    def bits_per_sample(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return bits_per_dim(self._nll(x, cond), x.shape[-1])

    def loss(self, x: torch.Tensor, cond: torch.Tensor | None = None):
        bps = self.bits_per_sample(x, cond).mean()
        return bps, {"bits_per_sample": bps.detach()}

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> dict:
        nll = nll_in_batches(self._nll, x, cond)
        return {
            "bits_per_sample": bits_per_dim(nll, x.shape[-1]).mean().item(),
            "nll_nats": nll.mean().item(),
        }

    # ---- sampling ----

    def _draw(self, out: torch.Tensor, u: torch.Tensor, generator) -> torch.Tensor:
        """Level indices [n] from the outputs at one time step [n, P]: the softmax by inverting
        its CDF at the uniforms u [n] (drawn up front), the mixture by its own sampler."""
        if self.output == "softmax":
            return categorical_by_inversion(out, u)
        y = self.mixture.sample(out[:, :, None, None], generator)[:, 0, 0, 0]
        return ((y + 1) * ((self.levels - 1) / 2)).round().long()

    @torch.no_grad()
    def generate(
        self,
        n: int = 1,
        length: int | None = None,
        generator: torch.Generator | None = None,
        cond: torch.Tensor | None = None,
        fast: bool = True,
        progress: bool = False,
    ) -> torch.Tensor:
        """n waveforms [n, 1, length] in [-1, 1] (mu-law level values), one sample at a time.

        fast=True keeps a ring-buffer cache per layer and computes one position per layer per
        sample (gen_ext.ops.wavenet_layer_step; on a CPU, batches up to 256 run on one thread,
        which is faster at that size); fast=False runs the whole network over the
        receptive field for every sample, the reference the fast sampler must reproduce. Both
        draw the same random numbers in the same order, so for a seed they give the same
        waveforms. `progress` shows a bar over the samples on stderr."""
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"WaveNet.generate: n must be a non-negative int, got {n!r}")
        length = self.length if length is None else length
        if not isinstance(length, int) or length < 1:
            raise ValueError(f"WaveNet.generate: length must be a positive int, got {length!r}")
        cond = self.check_cond(cond, n)
        p = self.embed.weight
        u = torch.rand((n, length), generator=generator, device=p.device, dtype=p.dtype)
        levels = torch.zeros((n, length), dtype=torch.long, device=p.device)
        steps = tqdm(
            range(length), desc="sampling", leave=False, disable=not progress, unit="sample"
        )
        run = self._fast_steps if fast else self._naive_steps
        with one_thread_for_small_steps(p.device, n if fast else None):
            for t, out in zip(steps, run(levels, cond), strict=True):
                levels[:, t] = self._draw(out, u[:, t], generator)
        return mu_law_decode(levels, self.levels)[:, None].to(p.dtype)

    def _naive_steps(self, levels: torch.Tensor, cond, start: int = 0):
        """The outputs at t = start, start + 1, ... from the network over the levels in the
        receptive field before t (read after the caller has filled in t - 1)."""
        rf = self.receptive_field
        for t in range(start, levels.shape[1]):
            start = max(0, t - rf)  # the window's first input is dropped by the shift
            yield self.outputs(levels[:, start : t + 1], cond)[:, :, -1]

    def _fast_steps(self, levels: torch.Tensor, cond):
        """The same outputs, one position per layer from each layer's cache."""
        n = levels.shape[0]
        samplers = [layer.sampler(n, cond) for layer in self.layers]
        _, conv1, _, conv2 = self.head
        w1, b1 = conv1.weight[:, :, 0], conv1.bias
        w2, b2 = conv2.weight[:, :, 0], conv2.bias
        h = self.embed.weight.new_zeros((n, self.embed.embedding_dim))  # nothing before t = 0
        for t in range(levels.shape[1]):
            skip = None
            for step in samplers:
                h, s = step(h)
                skip = s if skip is None else skip + s
            yield F.linear(F.relu(F.linear(F.relu(skip), w1, b1)), w2, b2)
            h = self.embed(levels[:, t])

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        progress: bool = False,
        fast: bool = True,
        length: int | None = None,
    ) -> torch.Tensor:
        """n waveforms [n, 1, length] (default: the model's clip length); see `generate`."""
        return self.generate(n, length, generator, fast=fast, progress=progress)

    def write_samples(self, samples: torch.Tensor, png_path) -> list:
        """The waveforms [n, 1, T] as a PNG (one row each) and, beside it with the suffix .wav,
        as one WAV file, one after another a quarter of a second apart."""
        from gen_ext.data.audio import write_wav
        from gen_ext.viz import save_waveforms

        titles = [f"sample {i + 1}" for i in range(samples.shape[0])]
        png = save_waveforms(samples, png_path, self.sample_rate, titles)
        gap = samples.new_zeros((samples.shape[0], 1, self.sample_rate // 4))
        sound = torch.cat([samples, gap], dim=2).flatten()[: -gap.shape[2] or None]
        return [png, write_wav(Path(png_path).with_suffix(".wav"), sound, self.sample_rate)]
