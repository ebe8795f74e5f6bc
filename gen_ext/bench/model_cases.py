"""Model-level benchmark cases: for every model family `gen-ext train` offers, one training step
(forward, loss, backward, Adam step) and one sampling step, each in the same three
implementations as the op cases:

- "fused": the model as users run it, its ops on the compiled kernels (the default backend);
- "eager": the same model and weights under `use_backend("reference")`, so every gen_ext op runs
  its plain-PyTorch reference;
- "compiled": the same, with the model's loss (training) or network pass (sampling) through
  `torch.compile`, traced and run under the reference backend.

Each implementation has its own copies of the model and its own optimizer, made from the same
initial weights, so the Adam steps of one do not change another's. The sampling step is what the
naive sampler repeats once per pixel (per sub-pixel for the softmax models): a forward pass of the
network over a whole sample batch under no_grad and one draw at one position; for the VAE, whose
sampler is a single pass, its `sample()` call. The autoencoders have no sampler: their row has a
training step only.

Why the compiled variant runs the references: the backend is a thread-local read by each op's
Python wrapper. TorchDynamo traces that read like any other Python attribute, so the branch taken
is the one of the backend active while tracing; the step enters `use_backend("reference")` around
the compiled call, and tracing happens inside it. Every later call of that step is under the same
backend, so the traced graph stays valid (tests/test_bench_models.py checks that no gen_ext op
runs and that nothing recompiles after the first call).
"""

import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gen_ext.models import MODELS, WaveNet
from gen_ext.models.autoregressive import AutoregressiveImageModel, categorical_by_inversion
from gen_ext.models.base import adam
from gen_ext.models.softmax_pixel import SoftmaxPixelModel
from gen_ext.ops.backend import use_backend

from .cases import BenchCase

# the backend each implementation's model runs on
BACKEND = {"fused": "kernels", "eager": "reference", "compiled": "reference"}
LEARNING_RATE = 1e-4  # Adam's; the value changes nothing about the time of a step

# Families whose reference path torch.compile cannot compile (as one graph, or in reasonable
# time), so no "compiled" row is measured for them, and why (the table prints the reason). The
# masked convolution's families left it once the reference counted each colour group's visible
# channels from the shapes rather than with int(mask.sum()), which broke the graph in every layer
# (dynamo then hit its recompile limit and ran the rest eagerly, not torch.compile's speed).
NOT_COMPILED: dict[str, str] = {
    # measured 2026-12-03 on the 2-core AMD EPYC: the `--suite models` run spent over 29 minutes
    # in this one compile and was stopped
    "pixelrnn": "torch.compile of the reference's per-column scans (7 layers, 2 directions, 63 "
    "columns each) did not finish in 29 minutes on 2 cores; the `DiagonalBiLSTM layer` op case "
    "compares the layer with torch.compile",
}


# Families with no model case, and why (`--suite models` lists them). The GAN family's networks
# are plain PyTorch layers, except WGAN-GP's critic, whose one gen_ext op (concat ELU) has its
# own op case; a fused-against-reference row would time the same layers twice.
NOT_BENCHED: dict[str, str] = {
    name: "adversarial model: its networks are plain PyTorch layers (WGAN-GP's concat ELU has "
    "an op case)"
    for name in ("gan", "dcgan", "wgan", "wgan-gp", "began", "infogan")
} | {
    "ebm": "its training step is mostly Langevin steps, whose fused op has an op case "
    "(langevin_step)"
}


@dataclass(frozen=True)
class ModelSize:
    """A model's constructor arguments and batch at which it is benchmarked, and those words for
    the table."""

    config: dict
    batch: int
    describe: str


# The documented sizes: PixelCNN++ as in its paper and the common PyTorch port for 32x32 RGB
# (5 blocks per resolution, 3 resolutions, 80 filters, 10 mixtures, dropout 0.5); the others at
# a size a user trains on 28x28 greyscale digits with 256 intensity levels.
SIZES = {
    "autoencoder": ModelSize(
        dict(input_shape=(1, 28, 28), hidden=512, bottleneck=32), 16, "1x28x28, 784-512-32 MLP"
    ),
    "conv-autoencoder": ModelSize(
        dict(input_shape=(1, 28, 28), channels=32, bottleneck=32),
        16,
        "1x28x28, 32/64 channels, bottleneck 32",
    ),
    "denoising-autoencoder": ModelSize(
        dict(input_shape=(1, 28, 28), hidden=512, bottleneck=512),
        16,
        "1x28x28, 784-512-512 MLP, masking noise 0.3",
    ),
    "vae": ModelSize(
        dict(input_shape=(1, 28, 28), hidden=512, latent_dim=32, likelihood="logistic", levels=256),
        16,
        "1x28x28, 512 hidden, 32 latent dims, discretized logistic likelihood, 256 levels",
    ),
    "pixelcnn": ModelSize(
        dict(input_shape=(1, 28, 28), levels=256, hidden=64, blocks=6, head=128),
        16,
        "1x28x28, 256 levels, 7x7 A + 6 residual blocks of 64 (3x3 B), head 128",
    ),
    "gated-pixelcnn": ModelSize(
        dict(input_shape=(1, 28, 28), levels=256, channels=64, layers=8, kernel_size=5, head=128),
        16,
        "1x28x28, 256 levels, 8 gated layers of 64 channels, 5x5, head 128",
    ),
    "pixelcnn++": ModelSize(
        dict(
            input_shape=(3, 32, 32),
            levels=256,
            channels=80,
            resolutions=3,
            blocks=5,
            mixtures=10,
            dropout=0.5,
        ),
        8,
        "3x32x32, 256 levels, 5 blocks per stage, 3 stages, 80 filters, 10 mixtures, dropout 0.5",
    ),
    # the PixelRNN issue's layer size: 32x32, 32 hidden units per direction, batch 16
    "pixelrnn": ModelSize(
        dict(input_shape=(1, 32, 32), levels=256, hidden=32, layers=7, head=128),
        16,
        "1x32x32, 256 levels, 7x7 A + 7 diagonal BiLSTM layers of 32 units per direction, head 128",
    ),
    # the fast-sampling issue's WaveNet (receptive field 2047), on clips of 4096 samples
    "wavenet": ModelSize(
        dict(
            input_shape=(1, 4096),
            residual_channels=64,
            skip_channels=64,
            head_channels=64,
            layers_per_stack=10,
            stacks=2,
        ),
        8,
        "1x4096 samples, 256 mu-law levels, 2 stacks of 10 layers, 64 residual/skip channels",
    ),
}

# Sizes at which every case builds and runs in well under a second (the tests).
TINY_SIZES = {
    "autoencoder": ModelSize(dict(input_shape=(1, 6, 6), hidden=8, bottleneck=4), 2, "tiny"),
    "conv-autoencoder": ModelSize(dict(input_shape=(1, 8, 8), channels=4, bottleneck=4), 2, "tiny"),
    "denoising-autoencoder": ModelSize(
        dict(input_shape=(1, 6, 6), hidden=8, bottleneck=8), 2, "tiny"
    ),
    "vae": ModelSize(
        dict(input_shape=(1, 6, 6), hidden=8, latent_dim=2, likelihood="logistic", levels=17),
        2,
        "tiny",
    ),
    "pixelcnn": ModelSize(
        dict(input_shape=(3, 5, 5), levels=5, hidden=3, blocks=1, head=6), 2, "tiny"
    ),
    "gated-pixelcnn": ModelSize(
        dict(input_shape=(3, 5, 5), levels=5, channels=6, layers=2, kernel_size=3, head=6),
        2,
        "tiny",
    ),
    "pixelcnn++": ModelSize(
        dict(input_shape=(3, 6, 6), levels=17, channels=4, resolutions=2, blocks=1, mixtures=2),
        2,
        "tiny",
    ),
    "pixelrnn": ModelSize(
        dict(input_shape=(3, 5, 5), levels=5, hidden=3, layers=1, head=6), 2, "tiny"
    ),
    "wavenet": ModelSize(
        dict(
            input_shape=(1, 40),
            residual_channels=4,
            skip_channels=4,
            head_channels=4,
            layers_per_stack=3,
            stacks=1,
        ),
        2,
        "tiny",
    ),
}


def level_batch(model, batch: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """A batch of random images [batch, *input_shape] in [0, 1], on the model's intensity grid
    where it has one (the autoregressive models accept nothing else)."""
    g = torch.Generator(device=device).manual_seed(seed)
    shape = (batch, *model.input_shape)
    levels = model.config.get("levels", 256)
    k = torch.randint(0, levels, shape, generator=g, device=device)
    return k.to(next(model.parameters()).dtype) / (levels - 1)


def _compiled(fn):
    return torch.compile(fn)


def training_step(model, batch: torch.Tensor, impl: str) -> Callable[[], torch.Tensor]:
    """One step of `impl` on `model` (which it then owns): zero the gradients, the loss on
    `batch`, backward, Adam. Returns the loss. The compiled variant compiles the loss (forward and,
    through AOTAutograd, its backward); backward() and the Adam step stay eager, identical in all
    three."""
    model.train()
    optimizer = adam(model.parameters(), LEARNING_RATE)
    loss_of = _loss_function(model, batch.device)
    compute = _compiled(loss_of) if impl == "compiled" else loss_of
    backend = BACKEND[impl]

    def step():
        with use_backend(backend):
            optimizer.zero_grad(set_to_none=True)
            loss = compute(batch)
            loss.backward()
            optimizer.step()
        return loss

    return step


def _loss_function(model, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """x -> the model's training loss. A loss that draws its noise from a generator it is given
    (the VAE's) gets one reseeded before every step, so every implementation draws the same noise
    each step and fused and eager compute the same loss (tests/test_bench_models.py checks it).
    The noise costs the same whatever its values."""
    if "generator" not in inspect.signature(model.loss).parameters:
        return lambda x: model.loss(x)[0]
    generator = torch.Generator(device=device)

    def loss_of(x):
        return model.loss(x, generator=generator.manual_seed(0))[0]

    return loss_of


def _network(model) -> Callable[[torch.Tensor], torch.Tensor]:
    """The pass an autoregressive sampler repeats: mixture parameters (PixelCNN++) or logits."""
    if isinstance(model, SoftmaxPixelModel):
        return model.logits
    return model.params


def sampling_step(model, batch: torch.Tensor, impl: str) -> Callable[[], torch.Tensor]:
    """One step of the naive sampler of `model` under no_grad: for the autoregressive image
    models, a forward pass over a sample batch (`batch`, standing for a half-drawn canvas) and the
    draw of the sub-pixel at the centre; for WaveNet, the network over its receptive field and a
    draw at the end; for the others, `sample(len(batch))`."""
    model.eval()
    generator = torch.Generator(device=batch.device).manual_seed(0)
    backend = BACKEND[impl]
    if isinstance(model, WaveNet):
        # the network over the receptive field and one draw at its end, as the naive sampler
        # does for every sample
        n, rf = batch.shape[0], model.receptive_field
        window = torch.randint(
            0, model.levels, (n, rf + 1), generator=generator, device=batch.device
        )
        u = torch.rand((n,), generator=generator, device=batch.device)
        net = _compiled(model.outputs) if impl == "compiled" else model.outputs

        def run():
            return categorical_by_inversion(net(window)[:, :, -1], u)
    elif isinstance(model, AutoregressiveImageModel):
        net = _network(model)
        net = _compiled(net) if impl == "compiled" else net
        draw = _draw_at_centre(model, batch, generator)

        def run():
            return draw(net(batch))
    else:
        n = batch.shape[0]
        sample = _compiled(model.sample) if impl == "compiled" else model.sample

        def run():
            return sample(n, generator)

    def step():
        with use_backend(backend), torch.no_grad():
            return run()

    return step


def _draw_at_centre(model, batch, generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """What the sampler does with the network's output at one position (the centre, channel 0):
    an inverse-CDF draw from the softmax, or a draw from the logistic mixture."""
    _, H, W = model.input_shape
    i, j = H // 2, W // 2
    if isinstance(model, SoftmaxPixelModel):
        u = torch.rand((batch.shape[0],), generator=generator, device=batch.device)
        return lambda logits: categorical_by_inversion(logits[:, 0, :, i, j], u)
    return lambda params: model.mixture.sample(params[:, :, i : i + 1, j : j + 1], generator)


def build_model(cli_name: str, size: ModelSize, device: torch.device, dtype=torch.float32):
    """The model at `size`, its weights drawn from a fixed seed."""
    torch.manual_seed(0)
    return MODELS[cli_name](**size.config).to(device=device, dtype=dtype)


def model_case(
    cli_name: str, device: torch.device, sizes: dict = SIZES, dtype=torch.float32
) -> BenchCase:
    """The case of one model family: `make` builds the training step of an implementation,
    `forward_only` its sampling step (absent for a model without a sampler), each on its own deep
    copy of one model, so all start from the same weights."""
    size = sizes[cli_name]
    model = build_model(cli_name, size, device, dtype)
    batch = level_batch(model, size.batch, device)

    impls = [impl for impl in BACKEND if not (impl == "compiled" and cli_name in NOT_COMPILED)]

    def builders(step_of):
        return {
            impl: (lambda impl=impl: step_of(copy.deepcopy(model), batch, impl)) for impl in impls
        }

    grad_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return BenchCase(
        cli_name,
        f"B={size.batch}, {size.describe}, {str(dtype).removeprefix('torch.')}, {device.type}",
        make=builders(training_step),
        forward_only=builders(sampling_step) if model.can_sample else {},
        # the parameters' gradients: every implementation's backward writes them
        result_bytes=grad_bytes,
        kind="model",
        not_run={"compiled": NOT_COMPILED[cli_name]} if cli_name in NOT_COMPILED else {},
    )


MODEL_CASES = {name: (lambda device, name=name: model_case(name, device)) for name in SIZES}
