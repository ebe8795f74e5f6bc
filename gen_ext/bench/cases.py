"""Benchmark cases: for each op, a zero-argument callable per implementation (the fused op, the
eager reference, torch.compile of the reference) doing one forward (+ backward where the op is
differentiable) on the same inputs."""

import copy
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from gen_ext import ops, reference
from gen_ext.reference.diagonal_lstm import inside_mask
from gen_ext.testing import make_dlm_inputs

IMPLEMENTATIONS = ("fused", "eager", "compiled")


@dataclass
class BenchCase:
    op: str
    shape: str  # the conditions, as printed in tables
    # implementation name -> () -> callable running one step; built lazily so that compilation
    # happens only for the cases that run
    make: dict[str, Callable[[], Callable[[], object]]] = field(default_factory=dict)
    forward_only: dict[str, Callable[[], Callable[[], object]]] = field(default_factory=dict)
    # bytes every implementation must allocate for its results (outputs and gradients), so the
    # workspace beyond them can be told apart from the peak
    result_bytes: int = 0
    # "op": make runs forward + backward of one op, forward_only its forward; "model"
    # (gen_ext/bench/model_cases.py): make runs a training step, forward_only a sampling step
    # (empty for a model without a sampler)
    kind: str = "op"
    # implementation name -> why it is not measured for this case (absent from make)
    not_run: dict[str, str] = field(default_factory=dict)
    # why the implementations' forward results are not compared before timing (the runner
    # compares them with the eager reference's unless this says why not, e.g. noise drawn anew)
    uncompared: str = ""

    @property
    def compared(self) -> bool:
        """Whether the runner compares this case's forward results with the eager reference's:
        op cases that give no reason not to (a model's steps draw their own samples)."""
        return self.kind == "op" and not self.uncompared


# why a case's results differ by design: each implementation draws its own noise (the tests
# compare the ops with their references given the same noise)
NOISE_DRAWN = "noise drawn per call, by each implementation from its own stream"


def _compiled(fn):
    # dynamic=False: the benchmark shapes are fixed; mode default, as users would call it
    return torch.compile(fn, dynamic=False)


def _implementations(fused, reference_fn) -> dict:
    """The three implementations of an op, built lazily (compilation happens on first use)."""
    return {
        "fused": lambda: fused,
        "eager": lambda: reference_fn,
        "compiled": lambda: _compiled(reference_fn),
    }


def _builders(impls: dict, step) -> dict:
    """implementation name -> builder of its zero-argument step, step(fn) making one from fn."""
    return {name: (lambda get=get: step(get())) for name, get in impls.items()}


def _no_grad(run):
    def step():
        with torch.no_grad():
            return run()

    return step


def dlm_nll_case(
    device: torch.device,
    batch: int = 16,
    competitor=reference.discretized_logistic_mixture_nll,
    name: str = "discretized_logistic_mixture_nll",
    note: str = "",
) -> BenchCase:
    """The fused likelihood against `competitor` eager and compiled (the reference by default)."""
    x, params = make_dlm_inputs(
        batch, 3, 10, (32, 32), 256, dtype=torch.float32, seed=0, device=device
    )
    params.requires_grad_()
    impls = _implementations(ops.discretized_logistic_mixture_nll, competitor)

    def full(fn):
        def step():
            params.grad = None
            fn(x, params, 256).sum().backward()

        return step

    nll_bytes = batch * 32 * 32 * 4
    return BenchCase(
        name,
        f"B={batch}, 3x32x32, M=10, float32, {device.type}{note}",
        make=_builders(impls, full),
        forward_only=_builders(impls, lambda fn: _no_grad(lambda: fn(x, params, 256))),
        result_bytes=nll_bytes + params.numel() * params.element_size(),
    )


def lean_dlm_nll(x: torch.Tensor, params: torch.Tensor, num_bins: int = 256) -> torch.Tensor:
    """The likelihood as PixelCNN++'s published formula writes it, the lean form a user would
    compile instead of this library's reference: the bin's mass as a plain difference of
    sigmoids, softplus for the log-CDFs, the same branches and thresholds. Equal to the reference
    in float64 on the benchmark's inputs (tested); the reference spends more passes on keeping
    the mass accurate where both sigmoids near 1 and on keeping NaN."""
    C = x.shape[1]
    logits, means, log_scales, coeffs = reference.dlm.split_params(params, C)
    log_scales = log_scales.clamp(min=reference.dlm.MIN_LOG_SCALE)
    xk = x.unsqueeze(2)
    means = reference.dlm.colour_conditioned_means(means, coeffs, xk)
    half_bin = 1.0 / (num_bins - 1)
    centred = xk - means
    inv_scale = torch.exp(-log_scales)
    plus_in = inv_scale * (centred + half_bin)
    min_in = inv_scale * (centred - half_bin)
    mid_in = inv_scale * centred
    mass = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    interior = torch.where(
        mass > reference.dlm.MIN_BIN_MASS,
        torch.log(mass.clamp(min=1e-12)),
        mid_in - log_scales - 2.0 * F.softplus(mid_in) - math.log((num_bins - 1) / 2.0),
    )
    log_probs = torch.where(
        xk < -1.0 + half_bin,
        plus_in - F.softplus(plus_in),
        torch.where(xk > 1.0 - half_bin, -F.softplus(min_in), interior),
    )
    return -torch.logsumexp(log_probs.sum(dim=1) + torch.log_softmax(logits, dim=1), dim=1)


def dlm_nll_lean_case(device: torch.device, batch: int = 16) -> BenchCase:
    """The fused likelihood against the lean published formula, eager and compiled: the
    competitor a user has besides this library's reference."""
    return dlm_nll_case(
        device,
        batch,
        lean_dlm_nll,
        "discretized_logistic_mixture_nll (lean formula)",
        " (eager and compiled: the published formula, not the reference)",
    )


def dlm_sample_case(device: torch.device, batch: int = 16) -> BenchCase:
    _, params = make_dlm_inputs(
        batch, 3, 10, (32, 32), 256, dtype=torch.float32, seed=0, device=device
    )
    g = torch.Generator(device=device).manual_seed(0)
    nm = torch.rand((batch, 10, 32, 32), generator=g, device=device)
    nl = torch.rand((batch, 3, 32, 32), generator=g, device=device)
    impls = _implementations(
        torch.ops.gen_ext.discretized_logistic_mixture_sample,
        reference.discretized_logistic_mixture_sample,
    )
    made = _builders(impls, lambda fn: lambda: fn(params, nm, nl, 3, 256))
    return BenchCase(
        "discretized_logistic_mixture_sample",
        f"B={batch}, 3x32x32, M=10, float32, {device.type} (from given noise)",
        make=made,
        forward_only=made,
        result_bytes=nl.numel() * nl.element_size(),
        uncompared="discrete draws: where the given noise lies within float32 rounding of a "
        "bin's or a component's edge, the draw flips (seen: 2 of 49152 values, one bin apart)",
    )


def gaussian_case(device: torch.device, batch: int = 256, dim: int = 512) -> BenchCase:
    g = torch.Generator(device=device).manual_seed(0)
    mu, logvar, eps = (torch.randn((batch, dim), generator=g, device=device) for _ in range(3))
    mu.requires_grad_()
    logvar.requires_grad_()
    impls = _implementations(ops.gaussian_reparameterize_kl, reference.gaussian_reparameterize_kl)

    def full(fn):
        def step():
            mu.grad = logvar.grad = None
            z, kl = fn(mu, logvar, eps)
            (z.sum() + kl.sum()).backward()

        return step

    return BenchCase(
        "gaussian_reparameterize_kl",
        f"B={batch}, {dim} latent dims, float32, {device.type} (given eps)",
        make=_builders(impls, full),
        forward_only=_builders(impls, lambda fn: _no_grad(lambda: fn(mu, logvar, eps))),
        result_bytes=(3 * batch * dim + batch) * 4,
    )


def gaussian_drawn_case(device: torch.device, batch: int = 256, dim: int = 512) -> BenchCase:
    """The same op with the noise drawn by the call: inside the fused kernel (and regenerated by
    its backward), by torch.randn before the eager and compiled references."""
    g = torch.Generator(device=device).manual_seed(0)
    mu, logvar = (torch.randn((batch, dim), generator=g, device=device) for _ in range(2))
    mu.requires_grad_()
    logvar.requires_grad_()

    def with_randn(fn):
        return lambda m, lv: fn(m, lv, torch.randn(m.shape, device=m.device, generator=g))

    impls = {
        "fused": lambda: lambda m, lv: ops.gaussian_reparameterize_kl(m, lv, generator=g),
        "eager": lambda: with_randn(reference.gaussian_reparameterize_kl),
        "compiled": lambda: with_randn(_compiled(reference.gaussian_reparameterize_kl)),
    }

    def full(fn):
        def step():
            mu.grad = logvar.grad = None
            z, kl = fn(mu, logvar)
            (z.sum() + kl.sum()).backward()

        return step

    return BenchCase(
        "gaussian_reparameterize_kl (drawn eps)",
        f"B={batch}, {dim} latent dims, float32, {device.type} (eps drawn per call)",
        make=_builders(impls, full),
        forward_only=_builders(impls, lambda fn: _no_grad(lambda: fn(mu, logvar))),
        result_bytes=(2 * batch * dim + batch) * 4,
        uncompared=NOISE_DRAWN,
    )


def masked_conv_case(
    device: torch.device,
    kernel: int,
    mask_type: str,
    batch: int = 16,
    channels: int = 64,
    size: int = 32,
) -> BenchCase:
    """The masked convolution against the weight multiplied by the mask and then conv2d (eager: the
    baseline the kernel must beat; compiled: the same through torch.compile)."""
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn((batch, channels, size, size), generator=g, device=device, requires_grad=True)
    weight = torch.randn(
        (channels, channels, kernel, kernel), generator=g, device=device, requires_grad=True
    )
    bias = torch.randn((channels,), generator=g, device=device, requires_grad=True)
    impls = _implementations(ops.masked_conv2d, reference.masked_conv2d_dense)

    def full(fn):
        def step():
            x.grad = weight.grad = bias.grad = None
            fn(x, weight, bias, mask_type, 1).sum().backward()

        return step

    result_bytes = (2 * x.numel() + weight.numel() + bias.numel()) * 4
    return BenchCase(
        f"masked_conv2d {kernel}x{kernel} {mask_type}",
        f"B={batch}, {channels}->{channels} ch, {size}x{size}, float32, {device.type}",
        make=_builders(impls, full),
        forward_only=_builders(
            impls, lambda fn: _no_grad(lambda: fn(x, weight, bias, mask_type, 1))
        ),
        result_bytes=result_bytes,
    )


def shifted_conv_case(
    device: torch.device,
    kernel: tuple[int, int],
    shift: str,
    batch: int = 8,
    channels: int = 160,
    size: int = 32,
) -> BenchCase:
    """The shifted convolution (PixelCNN++'s stride-1 layers: 160 filters on 32x32) against
    F.pad + conv2d (eager: what the layers ran before the kernel; compiled: the same through
    torch.compile)."""
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn((batch, channels, size, size), generator=g, device=device, requires_grad=True)
    weight = torch.randn(
        (channels, channels, *kernel), generator=g, device=device, requires_grad=True
    )
    bias = torch.randn((channels,), generator=g, device=device, requires_grad=True)
    impls = _implementations(ops.shifted_conv2d, reference.shifted_conv2d_dense)

    def full(fn):
        def step():
            x.grad = weight.grad = bias.grad = None
            fn(x, weight, bias, shift).sum().backward()

        return step

    result_bytes = (2 * x.numel() + weight.numel() + bias.numel()) * 4
    return BenchCase(
        f"shifted_conv2d {kernel[0]}x{kernel[1]} {shift}",
        f"B={batch}, {channels}->{channels} ch, {size}x{size}, float32, {device.type}",
        make=_builders(impls, full),
        forward_only=_builders(impls, lambda fn: _no_grad(lambda: fn(x, weight, bias, shift))),
        result_bytes=result_bytes,
    )


def gated_case(
    device: torch.device, batch: int = 16, channels: int = 64, size: int = 32
) -> BenchCase:
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn((batch, 2 * channels, size, size), generator=g, device=device) * 2
    residual = torch.randn((batch, channels, size, size), generator=g, device=device)
    x.requires_grad_()
    residual.requires_grad_()
    impls = _implementations(ops.gated_activation, reference.gated_activation)

    def full(fn):
        def step():
            x.grad = residual.grad = None
            fn(x, residual).sum().backward()

        return step

    out_numel = batch * channels * size * size
    shape = f"B={batch}, 2x{channels}x{size}x{size}, float32, {device.type} (with residual)"
    return BenchCase(
        "gated_activation",
        shape,
        make=_builders(impls, full),
        forward_only=_builders(impls, lambda fn: _no_grad(lambda: fn(x, residual))),
        # the output, the gradients of x (twice its size) and of the residual
        result_bytes=4 * out_numel * 4,
    )


def padded_causal_conv1d(x, weight, bias, dilation):
    """What a user writes without the op: conv1d of x padded by (K-1)d on the left."""
    return F.conv1d(
        F.pad(x, ((weight.shape[2] - 1) * dilation, 0)), weight, bias, dilation=dilation
    )


def causal_conv1d_case(
    device: torch.device,
    batch: int = 16,
    in_channels: int = 64,
    out_channels: int = 128,
    kernel: int = 2,
    length: int = 4096,
    dilation: int = 64,
) -> BenchCase:
    """WaveNet's dilated causal convolution: the fused op, its tap-by-tap reference (eager), and
    torch.compile of the padded conv1d a user would write (compiled)."""
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn((batch, in_channels, length), generator=g, device=device, requires_grad=True)
    weight = torch.randn(
        (out_channels, in_channels, kernel), generator=g, device=device, requires_grad=True
    )
    bias = torch.randn((out_channels,), generator=g, device=device, requires_grad=True)
    impls = {
        "fused": lambda: ops.causal_conv1d,
        "eager": lambda: reference.causal_conv1d,
        "compiled": lambda: _compiled(padded_causal_conv1d),
    }

    def full(fn):
        def step():
            x.grad = weight.grad = bias.grad = None
            fn(x, weight, bias, dilation).sum().backward()

        return step

    out_numel = batch * out_channels * length
    return BenchCase(
        "causal_conv1d",
        f"B={batch}, {in_channels}->{out_channels} ch, K={kernel}, d={dilation}, T={length}, "
        f"float32, {device.type}",
        make=_builders(impls, full),
        forward_only=_builders(impls, lambda fn: _no_grad(lambda: fn(x, weight, bias, dilation))),
        # the output and the gradients of x, weight and bias
        result_bytes=(out_numel + x.numel() + weight.numel() + bias.numel()) * 4,
    )


def _plain_concat_elu_dropout(x, p):
    """What a user writes without the fused op: neg, cat, elu and torch's dropout."""
    return F.dropout(F.elu(torch.cat([x, -x], dim=1)), p, training=True)


def concat_elu_case(
    device: torch.device, batch: int = 8, channels: int = 80, size: int = 32, p: float = 0.5
) -> BenchCase:
    """The fused concat-ELU with dropout against the plain formulation (eager and compiled), at
    the size of a PixelCNN++ block's nonlinearity (80 filters, 32x32, batch 8)."""
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn((batch, channels, size, size), generator=g, device=device, requires_grad=True)
    impls = _implementations(ops.concat_elu, _plain_concat_elu_dropout)

    def full(fn):
        def step():
            x.grad = None
            fn(x, p).sum().backward()

        return step

    return BenchCase(
        "concat_elu (dropout)",
        f"B={batch}, {channels}->{2 * channels} ch, {size}x{size}, p={p}, float32, {device.type}",
        make=_builders(impls, full),
        forward_only=_builders(impls, lambda fn: _no_grad(lambda: fn(x, p))),
        # the output (twice the input) and the gradient of x
        result_bytes=3 * x.numel() * 4,
        uncompared=NOISE_DRAWN,
    )


def _plain_gated_resnet_block(x, aux, w_in, b_in, w_aux, b_aux, w_gate, b_gate, stream, p):
    """What a user writes without the op: padded copies, neg and cat for the concat-ELU, torch's
    dropout, the gate and the residual."""
    pad = reference.shifted_padding(stream, w_in.shape[2], w_in.shape[3])
    h = F.conv2d(F.pad(_plain_concat_elu_dropout(x, 0.0), pad), w_in, b_in)
    h = h + F.conv2d(_plain_concat_elu_dropout(aux, 0.0), w_aux, b_aux)
    g = F.conv2d(F.pad(_plain_concat_elu_dropout(h, p), pad), w_gate, b_gate)
    a, b = g.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b) + x


def gated_resnet_block_case(
    device: torch.device,
    batch: int = 8,
    channels: int = 80,
    size: int = 32,
    stream: str = "down_right",
    p: float = 0.5,
) -> BenchCase:
    """PixelCNN++'s gated residual block (the horizontal stream, with its auxiliary input) at the
    model's size: the fused op against the block as a user writes it in plain PyTorch (eager and
    compiled)."""
    g = torch.Generator(device=device).manual_seed(0)
    kh, kw = (2, 3) if stream == "down" else (2, 2)
    C = channels

    def leaf(*shape, scale=1.0):
        t = torch.randn(shape, generator=g, device=device) * scale
        return t.requires_grad_()

    tensors = [
        leaf(batch, C, size, size),
        leaf(batch, C, size, size),
        leaf(C, 2 * C, kh, kw, scale=0.05),
        leaf(C),
        leaf(C, 2 * C, 1, 1, scale=0.05),
        leaf(C),
        leaf(2 * C, 2 * C, kh, kw, scale=0.05),
        leaf(2 * C),
    ]
    impls = _implementations(
        lambda *t: ops.gated_resnet_block(*t, stream, p),
        lambda *t: _plain_gated_resnet_block(*t, stream, p),
    )

    def full(fn):
        def step():
            for t in tensors:
                t.grad = None
            fn(*tensors).sum().backward()

        return step

    return BenchCase(
        "gated_resnet_block",
        f"B={batch}, {C} ch, {stream} {kh}x{kw} with aux {C} ch, {size}x{size}, p={p}, "
        f"float32, {device.type}",
        make=_builders(impls, full),
        forward_only=_builders(impls, lambda fn: _no_grad(lambda: fn(*tensors))),
        # the output and the gradients of every input
        result_bytes=(tensors[0].numel() + sum(t.numel() for t in tensors)) * 4,
        uncompared=NOISE_DRAWN,
    )


def plain_diagonal_lstm_scan(i2s, weight):
    """The scan as a user would write it in plain PyTorch: a per-column loop, batched over
    images and rows, the state-to-state 2x1 convolution as one conv1d over the whole column and
    the positions off the image zeroed with torch.where. The same values as the reference on
    finite inputs; the reference instead computes only the rows inside the image, tap by tap,
    so a non-finite weight never meets the zero state (exact, and slower)."""
    B, G, H, Ws = i2s.shape
    inside = inside_mask(H, Ws, i2s.device)
    h = i2s.new_zeros(B, G // 4, H)
    c = torch.zeros_like(h)
    hs, cs = [], []
    for j in range(Ws):
        a = i2s[..., j] + F.conv1d(h, weight, padding=1)[..., :H]
        a_o, a_f, a_i, a_g = a.chunk(4, dim=1)
        c = torch.where(
            inside[:, j], torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g), 0.0
        )
        h = torch.where(inside[:, j], torch.sigmoid(a_o) * torch.tanh(c), 0.0)
        hs.append(h)
        cs.append(c)
    return torch.stack(hs, -1), torch.stack(cs, -1)


def diagonal_lstm_case(
    device: torch.device, batch: int = 16, hidden: int = 32, size: int = 32
) -> BenchCase:
    """The diagonal LSTM scan of one PixelRNN direction (issue size: B=16, 32x32, 32 hidden
    units) against a per-column loop of plain ops batched over images and rows
    (plain_diagonal_lstm_scan), eager and compiled. i2s comes channels-last, as the layer's 1x1
    convolution gives it."""
    g = torch.Generator(device=device).manual_seed(0)
    shape = (batch, 4 * hidden, size, 2 * size - 1)
    i2s = torch.randn(shape, generator=g, device=device).contiguous(
        memory_format=torch.channels_last
    )
    weight = torch.randn((4 * hidden, hidden, 2), generator=g, device=device) / (2 * hidden) ** 0.5
    i2s.requires_grad_()
    weight.requires_grad_()
    impls = _implementations(ops.diagonal_lstm_scan, plain_diagonal_lstm_scan)

    def full(fn):
        def step():
            i2s.grad = weight.grad = None
            fn(i2s, weight)[0].sum().backward()

        return step

    state_numel = batch * hidden * size * (2 * size - 1)
    return BenchCase(
        "diagonal_lstm_scan",
        f"B={batch}, {hidden} hidden, {size}x{size} skewed to {size}x{2 * size - 1}, "
        f"float32, {device.type}",
        make=_builders(impls, full),
        forward_only=_builders(impls, lambda fn: _no_grad(lambda: fn(i2s, weight))),
        # h and c, the gradient of i2s (4x a state) and of the weight
        result_bytes=(6 * state_numel + weight.numel()) * 4,
    )


def diagonal_bilstm_layer_case(
    device: torch.device, batch: int = 16, hidden: int = 32, size: int = 32
) -> BenchCase:
    """The whole DiagonalBiLSTM layer (1x1 convolutions, skews, both scans, the shift): fused,
    against the same layer and weights with plain_diagonal_lstm_scan as its scans, eager and
    compiled. The PixelRNN issue's size: B=16, 32x32, 32 hidden units per direction, 2 * 32
    input channels."""
    from gen_ext.nn import DiagonalBiLSTM

    torch.manual_seed(0)
    layer = DiagonalBiLSTM(2 * hidden, hidden).to(device)
    plain = copy.deepcopy(layer)
    for direction in (plain.left_to_right, plain.right_to_left):
        direction.scan = functools.partial(plain_scan_of, direction)
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn((batch, 2 * hidden, size, size), generator=g, device=device)
    x.requires_grad_()
    impls = _implementations(layer, plain)

    def full(fn):
        def step():
            x.grad = None
            fn.zero_grad(set_to_none=True)
            fn(x).sum().backward()

        return step

    return BenchCase(
        "DiagonalBiLSTM layer",
        f"B={batch}, {2 * hidden}->{hidden} ch per direction, {size}x{size}, float32, "
        f"{device.type}",
        make=_builders(impls, full),
        forward_only=_builders(impls, lambda fn: _no_grad(lambda: fn(x))),
        # the output and the gradients of x and of the parameters
        result_bytes=(batch * hidden * size * size + x.numel()) * 4
        + sum(p.numel() for p in layer.parameters()) * 4,
    )


def langevin_case(device: torch.device, batch: int = 64, side: int = 32) -> BenchCase:
    """One Langevin step of an EBM sampler on [B, 3, side, side] images, noise drawn by the call:
    inside the fused kernel, by torch.randn before the eager and compiled references (which
    then step and clamp as separate operations)."""
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.rand((batch, 3, side, side), generator=g, device=device)
    grad = torch.randn(x.shape, generator=g, device=device)

    def plain(x, grad, noise):
        return torch.clamp(x - 0.1 * grad + 0.005 * noise, 0.0, 1.0)

    compiled = _compiled(plain)
    impls = {
        "fused": lambda: lambda: ops.langevin_step(x, grad, 0.1, 0.005, (0.0, 1.0), g),
        "eager": lambda: lambda: plain(x, grad, torch.randn(x.shape, device=device, generator=g)),
        "compiled": lambda: (
            lambda: compiled(x, grad, torch.randn(x.shape, device=device, generator=g))
        ),
    }
    made = {impl: (lambda build=build: _no_grad(build())) for impl, build in impls.items()}
    return BenchCase(
        "langevin_step",
        f"B={batch}, 3x{side}x{side}, float32, {device.type} (noise drawn per call, clamped)",
        make=made,
        forward_only=made,
        result_bytes=x.numel() * x.element_size(),
        uncompared=NOISE_DRAWN,
    )


def plain_scan_of(direction, i2s_skewed):
    return plain_diagonal_lstm_scan(i2s_skewed, direction.state_to_state)


CASES = {
    "discretized_logistic_mixture_nll": dlm_nll_case,
    "discretized_logistic_mixture_nll (lean formula)": dlm_nll_lean_case,
    "discretized_logistic_mixture_sample": dlm_sample_case,
    "gaussian_reparameterize_kl": gaussian_case,
    "gaussian_reparameterize_kl (drawn eps)": gaussian_drawn_case,
    "masked_conv2d 7x7 A": lambda device: masked_conv_case(device, 7, "A"),
    "masked_conv2d 3x3 B": lambda device: masked_conv_case(device, 3, "B"),
    "shifted_conv2d 2x3 down": lambda device: shifted_conv_case(device, (2, 3), "down"),
    "shifted_conv2d 2x2 down_right": lambda device: shifted_conv_case(device, (2, 2), "down_right"),
    "gated_activation": gated_case,
    "concat_elu (dropout)": concat_elu_case,
    "gated_resnet_block": gated_resnet_block_case,
    "diagonal_lstm_scan": diagonal_lstm_case,
    "DiagonalBiLSTM layer": diagonal_bilstm_layer_case,
    "causal_conv1d": causal_conv1d_case,
    "langevin_step": langevin_case,
}
