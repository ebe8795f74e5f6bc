"""`gen-ext check`: every op's kernel against its reference on a given device.

Each check runs the compiled kernel and the plain-PyTorch reference on the same inputs, in
float64 (and float32 where the tolerance is meaningful), and reports the largest differences of
values and gradients. A GPU user runs it to verify the kernels on their own card.
"""

import math
from dataclasses import dataclass

import torch
from tqdm import tqdm

from gen_ext import ops, reference
from gen_ext.rounding import float32_error_bounds
from gen_ext.testing import make_dlm_inputs


@dataclass
class CheckRow:
    op: str
    case: str
    max_error: float  # largest absolute difference (values, gradients)
    tolerance: float
    detail: str

    @property
    def passed(self) -> bool:
        return self.max_error <= self.tolerance


def _value_and_grads(fn, x, params, num_bins):
    x = x.detach().clone().requires_grad_()
    params = params.detach().clone().requires_grad_()
    out = fn(x, params, num_bins)
    weights = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype, device=out.device).view_as(out)
    grads = torch.autograd.grad((out * weights).sum(), (x, params))
    return (out, *grads)


def _relative_error(got, want) -> float:
    """Largest |got - want| relative to the size of want (max(1, |want|))."""
    return max(
        ((g.double() - w.double()).abs() / w.double().abs().clamp(min=1)).max().item()
        for g, w in zip(got, want, strict=True)
    )


def _second_order_row(op: str, fn, inputs) -> CheckRow:
    """gradcheck and gradgradcheck of fn at inputs (float64, requiring grad) as one row."""
    ok = torch.autograd.gradcheck(
        fn, inputs, raise_exception=False
    ) and torch.autograd.gradgradcheck(fn, inputs, raise_exception=False)
    return CheckRow(
        op,
        "gradcheck+gradgradcheck float64",
        0.0 if ok else 1.0,
        0.0,
        "finite differences of first and second order",
    )


# the kernels' float32 error may reach this multiple of the first-order bound of the reference's
# operations (float32_error_bounds): they compute the same quantities by other operations
# (complements, e^-|z| for sigmoid slopes, one division for every responsibility), each rounded
ROUNDING_SLACK = 2.0


def float32_error_budget(got, exact, bounds, floor: float = 0.0) -> tuple[float, float]:
    """(error, allowed) of the element furthest over (or least under) its allowance, over all the
    results: got (float32) against exact (float64, on the same float32 inputs) element by element,
    allowed ROUNDING_SLACK times that element's first-order rounding bound (see
    gen_ext.rounding.float32_error_bounds, or a summation bound) plus an absolute floor. The
    bound follows each element's conditioning, so a few elements suffice and no luck of a
    float32 reference's rounding enters."""
    worst, worst_ratio = (0.0, 0.0), -1.0
    for g, e, b in zip(got, exact, bounds, strict=True):
        if not g.numel():
            continue
        error = (g.double() - e.double()).abs().flatten().cpu()
        allowed = (ROUNDING_SLACK * b.double() + floor).flatten().cpu()
        ratio = torch.where(error == 0, 0.0, error / allowed).nan_to_num(nan=math.inf)
        i = int(ratio.argmax())
        if ratio[i] > worst_ratio:
            worst, worst_ratio = (error[i].item(), allowed[i].item()), ratio[i].item()
    return worst


def float32_reference_budget(got, ref32, exact) -> tuple[float, float]:
    """(kernel error, allowed error) of float32 results against the float64 reference on the same
    (float32-rounded) inputs, measured against the eager float32 reference's own error: errors
    relative to max(1, |exact|), the kernel's 99th percentile at most twice the reference's and its
    maximum at most four times, per output. Which elements float32 rounding hits is luck, so this
    is fair only for results of many elements whose conditioning is even (masked convolution,
    elementwise ops); the discretized logistic mixture, whose bins cancel at some elements and not
    at others, is held to its per-element bound (float32_error_budget). Returns the pair furthest
    over (or least under) its bound."""
    worst = None
    q = torch.tensor([0.99, 1.0], dtype=torch.float64)
    for g, r, e in zip(got, ref32, exact, strict=True):
        e = e.double()
        scale = e.abs().clamp(min=1)
        kernel = torch.quantile(((g.double() - e).abs() / scale).flatten().cpu(), q)
        eager = torch.quantile(((r.double() - e).abs() / scale).flatten().cpu(), q)
        for k, r_, factor in zip(kernel.tolist(), eager.tolist(), (2.0, 4.0), strict=True):
            pair = (k, factor * r_ + 1e-6)
            if worst is None or pair[0] - pair[1] > worst[0] - worst[1]:
                worst = pair
    return worst


def dlm_nll_results(fn, num_bins: int):
    """(x, params, weights) -> (nll, grad x, grad params of sum(nll * weights)) by fn."""

    def results(x, params, weights):
        x, params = x.detach().requires_grad_(), params.detach().requires_grad_()
        out = fn(x, params, num_bins)
        return (out, *torch.autograd.grad((out * weights.to(out.dtype)).sum(), (x, params)))

    return results


def dlm_float32_error_bounds(x, params, weights, num_bins: int) -> list[torch.Tensor]:
    """Per element first-order bounds of the float32 rounding error of the reference's nll, grad x
    and grad params of sum(nll * weights) (float32_error_bounds, on the positions as rows)."""
    if not x.numel() or not params.numel():
        return [torch.zeros(t.shape, dtype=torch.float64) for t in (weights, x, params)]

    def rows(t):  # [B, K, *S] -> [B * prod(S), K]
        return t.movedim(1, -1).reshape(-1, t.shape[1]).contiguous()

    def unrows(b, like):
        return b.reshape(like.shape[0], *like.shape[2:], like.shape[1]).movedim(-1, 1)

    results = dlm_nll_results(reference.discretized_logistic_mixture_nll, num_bins)
    nll, grad_x, grad_params = float32_error_bounds(
        results, rows(x), rows(params), weights.reshape(-1)
    )
    return [nll.reshape(weights.shape), unrows(grad_x, x), unrows(grad_params, params)]


def dlm_underflow_floor(num_channels: int) -> float:
    """An absolute error every DLM kernel may make: they carry a component's probability as
    exp(log part) * mass, mass >= MIN_BIN_MASS per channel, so their exponentials fall below
    float32's smallest normal number (2^-126) while the probability is still up to
    MIN_BIN_MASS^-C above it, and that component's share of a gradient, up to e^7 (the largest
    inverse scale) times it, comes out zero."""
    tiny = torch.finfo(torch.float32).tiny
    return tiny * reference.dlm.MIN_BIN_MASS**-num_channels * math.exp(-reference.dlm.MIN_LOG_SCALE)


def check_dlm_nll(device: torch.device) -> list[CheckRow]:
    rows = []
    op = "discretized_logistic_mixture_nll"
    for C in (1, 3):
        x, params = make_dlm_inputs(8, C, 10, (16, 16), 256, seed=C, device=device)
        exact = _value_and_grads(reference.discretized_logistic_mixture_nll, x, params, 256)
        got = _value_and_grads(ops.discretized_logistic_mixture_nll, x, params, 256)
        rows.append(
            CheckRow(
                op,
                f"C={C} float64 fwd+bwd",
                _relative_error(got, exact),
                1e-7,
                "value, grad x, grad params vs reference (relative)",
            )
        )
        rows.append(_dlm_float32_row(op, C, device))
    x, params = make_dlm_inputs(1, 3, 2, (2, 3), 17, seed=3, scale=0.5, device=device)
    x = x.clamp(-1 + 2 / 16, 1 - 2 / 16).requires_grad_()
    params.requires_grad_()
    fn = lambda x, p: ops.discretized_logistic_mixture_nll(x, p, 17)  # noqa: E731
    rows.append(_second_order_row("discretized_logistic_mixture_nll", fn, (x, params)))
    return rows


def _dlm_float32_row(op: str, C: int, device) -> CheckRow:
    """float32 results against float64 on the same float32 inputs, each element within its
    rounding bound (float32_error_budget); fewer positions than the float64 row, as the bound takes
    a reverse pass per result index."""
    x, params = make_dlm_inputs(2, C, 10, (6, 5), 256, seed=C, device=device)
    x, params = x.float(), params.float()
    weights = torch.linspace(0.5, 1.5, 60, dtype=torch.float64, device=device).view(2, 6, 5)
    exact = dlm_nll_results(reference.discretized_logistic_mixture_nll, 256)(
        x.double(), params.double(), weights
    )
    got = dlm_nll_results(ops.discretized_logistic_mixture_nll, 256)(x, params, weights)
    bounds = dlm_float32_error_bounds(x, params, weights, 256)
    error, allowed = float32_error_budget(got, exact, bounds, dlm_underflow_floor(C))
    return CheckRow(
        op,
        f"C={C} float32 fwd+bwd",
        error,
        allowed,
        "abs. error vs float64 at the element nearest its rounding bound",
    )


def check_dlm_sample(device: torch.device) -> list[CheckRow]:
    rows = []
    for C in (1, 3):
        # float32: rounding at bin edges
        for dtype, tol in ((torch.float64, 0.0), (torch.float32, 1e-3)):
            _, params = make_dlm_inputs(4, C, 10, (16, 16), 256, seed=C, dtype=dtype, device=device)
            M = params.shape[1] // reference.dlm.params_per_component(C)
            g = torch.Generator(device=device).manual_seed(C)
            nm = torch.rand((4, M, 16, 16), generator=g, dtype=dtype, device=device)
            nl = torch.rand((4, C, 16, 16), generator=g, dtype=dtype, device=device)
            want = reference.discretized_logistic_mixture_sample(params, nm, nl, C, 256)
            got = torch.ops.gen_ext.discretized_logistic_mixture_sample(params, nm, nl, C, 256)
            bins_apart = ((got - want).abs() * 127.5).round()
            flipped = (bins_apart > 0).double().mean().item()
            error = flipped if bins_apart.max().item() <= 1 else float("inf")
            rows.append(
                CheckRow(
                    "discretized_logistic_mixture_sample",
                    f"C={C} {str(dtype).removeprefix('torch.')} same noise",
                    error,
                    tol,
                    "fraction of draws one bin from the reference's",
                )
            )
    return rows


def check_gaussian(device: torch.device) -> list[CheckRow]:
    rows = []
    op = "gaussian_reparameterize_kl"
    g = torch.Generator(device=device).manual_seed(0)
    shape = (64, 333)
    mu, eps = (
        torch.randn(shape, generator=g, dtype=torch.float64, device=device) for _ in range(2)
    )
    logvar = torch.randn(shape, generator=g, dtype=torch.float64, device=device) * 12
    weights = torch.randn(shape, generator=g, dtype=torch.float64, device=device)

    def run(fn, dtype):
        leaves = [t.to(dtype).requires_grad_() for t in (mu, logvar, eps)]
        z, kl = fn(*leaves)
        grads = torch.autograd.grad((z * weights.to(dtype)).sum() + kl.sum(), leaves)
        return (z, kl, *grads)

    exact = run(reference.gaussian_reparameterize_kl, torch.float64)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        got = run(ops.gaussian_reparameterize_kl, dtype)
        rows.append(
            CheckRow(
                op,
                f"{str(dtype).removeprefix('torch.')} fwd+bwd",
                _relative_error(got, exact),
                tol,
                "z, kl, grads of mu, logvar, eps vs float64 reference (relative)",
            )
        )
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        stream = torch.ops.gen_ext.gaussian_noise(mu.to(dtype), 2024)
        want = reference.gaussian_noise(mu.shape, 2024, dtype, device)
        rows.append(
            CheckRow(
                op,
                f"{str(dtype).removeprefix('torch.')} noise drawn in the kernel",
                _relative_error((stream,), (want,)),
                tol,
                "the kernels' counter-based N(0, 1) stream vs the reference's",
            )
        )
    small = [t[:3, :4].clone().requires_grad_() for t in (mu, logvar / 12, eps)]
    rows.append(_second_order_row(op, ops.gaussian_reparameterize_kl, small))
    return rows


def check_masked_conv(device: torch.device) -> list[CheckRow]:
    rows = []
    op = "masked_conv2d"
    g = torch.Generator(device=device).manual_seed(0)

    # on the CPU each shape runs whichever of the kernel and the dense path is faster (see
    # gen_ext.ops.conv_path): both are checked
    paths = ("kernel", "dense") if device.type == "cpu" else ("kernel",)
    for path in paths:
        with ops.use_conv_path(path):
            rows += _masked_conv_rows(device, g, path if len(paths) > 1 else "")
    small = [
        torch.randn(shape, generator=g, dtype=torch.float64, device=device).requires_grad_()
        for shape in ((2, 3, 4, 5), (3, 3, 3, 3), (3,))
    ]
    fn = lambda x, w, b: ops.masked_conv2d(x, w, b, "A", 3)  # noqa: E731
    rows.append(_second_order_row(op, fn, small))
    return rows


def _conv_fwd_bwd(fn, x, weight, bias, *args):
    """A convolution's output and the gradients of x, weight and bias for a ramp cotangent."""
    leaves = [t.detach().clone().requires_grad_() for t in (x, weight, bias)]
    out = fn(*leaves, *args)
    cotangent = torch.linspace(-1, 1, out.numel(), dtype=out.dtype, device=out.device)
    return (out, *torch.autograd.grad(out, leaves, cotangent.view_as(out)))


def _conv_rows(op, case, fused, ref, tensors, *args) -> list[CheckRow]:
    """A convolution's two rows: `fused` against `ref` on float64 `tensors` (x, weight, bias),
    values and gradients (_conv_fwd_bwd), and the same in float32, bound by the float32
    reference's own error."""
    run = _conv_fwd_bwd
    exact = run(ref, *tensors, *args)
    got = run(fused, *tensors, *args)
    f32 = [t.float() for t in tensors]
    error, allowed = float32_reference_budget(
        run(fused, *f32, *args), run(ref, *f32, *args), run(ref, *(t.double() for t in f32), *args)
    )
    return [
        CheckRow(
            op,
            f"{case} float64 fwd+bwd",
            _relative_error(got, exact),
            1e-10,
            "out, grads of x, weight, bias vs reference (relative)",
        ),
        CheckRow(
            op,
            f"{case} float32 fwd+bwd",
            error,
            allowed,
            "relative error vs float64 reference, bound by the float32 reference's",
        ),
    ]


def _masked_conv_rows(device, g, path: str) -> list[CheckRow]:
    rows = []
    op = "masked_conv2d"
    for mask_type, colors, k in (("A", 1, 7), ("B", 1, 3), ("A", 3, 5), ("B", 3, 3)):
        cin = cout = 48 if colors == 3 else 64
        x = torch.randn((4, cin, 13, 11), generator=g, dtype=torch.float64, device=device)
        weight = torch.randn((cout, cin, k, k), generator=g, dtype=torch.float64, device=device)
        bias = torch.randn((cout,), generator=g, dtype=torch.float64, device=device)
        case = f"{k}x{k} mask {mask_type}, {colors} colour group{'s' if colors > 1 else ''}"
        case = f"{case}, {path} path" if path else case
        rows += _conv_rows(
            op,
            case,
            ops.masked_conv2d,
            reference.masked_conv2d,
            (x, weight, bias),
            mask_type,
            colors,
        )
    return rows


def check_shifted_conv(device: torch.device) -> list[CheckRow]:
    rows = []
    op = "shifted_conv2d"
    g = torch.Generator(device=device).manual_seed(0)
    # on the CPU each shape runs whichever of the kernel and the dense path is faster (see
    # gen_ext.ops.conv_path): both are checked
    paths = ("kernel", "dense") if device.type == "cpu" else ("kernel",)
    for path in paths:
        with ops.use_conv_path(path):
            rows += _shifted_conv_rows(device, g, path if len(paths) > 1 else "")
    small = [
        torch.randn(shape, generator=g, dtype=torch.float64, device=device).requires_grad_()
        for shape in ((2, 3, 4, 5), (3, 3, 2, 3), (3,))
    ]
    fn = lambda x, w, b: ops.shifted_conv2d(x, w, b, "down")  # noqa: E731
    rows.append(_second_order_row(op, fn, small))
    return rows


def _shifted_conv_rows(device, g, path: str) -> list[CheckRow]:
    rows = []
    for shift, kernel in (("down", (2, 3)), ("down_right", (2, 2)), ("down", (1, 3))):
        x = torch.randn((4, 64, 13, 11), generator=g, dtype=torch.float64, device=device)
        weight = torch.randn((64, 64, *kernel), generator=g, dtype=torch.float64, device=device)
        bias = torch.randn((64,), generator=g, dtype=torch.float64, device=device)
        case = f"{kernel[0]}x{kernel[1]} {shift}"
        case = f"{case}, {path} path" if path else case
        rows += _conv_rows(
            "shifted_conv2d",
            case,
            ops.shifted_conv2d,
            reference.shifted_conv2d,
            (x, weight, bias),
            shift,
        )
    return rows


def _in_layout(tensors, layout, kernel_made: int = 2):
    """tensors, or copies holding inf when one of the first `kernel_made` (the output and the
    gradient the kernels write) is not stored in `layout`: the row then fails, saying the kernels
    lost the layout they were given. (A residual's gradient is the incoming one, passed on.)
    layout None: nothing to check."""
    if layout is None or all(t.is_contiguous(memory_format=layout) for t in tensors[:kernel_made]):
        return tensors
    return tuple(torch.full_like(t, math.inf) for t in tensors)


def check_gated(device: torch.device) -> list[CheckRow]:
    rows = []
    op = "gated_activation"
    g = torch.Generator(device=device).manual_seed(0)
    # spread wide enough to reach both tails of tanh and sigmoid; odd sizes leave row tails;
    # values float32 can hold, so the float32 run sees the float64 reference's inputs
    x = (torch.randn((8, 2 * 24, 13, 11), generator=g, device=device) * 4).double()
    residual, weights = (
        torch.randn((8, 24, 13, 11), generator=g, device=device).double() for _ in range(2)
    )

    def run(fn, dtype, layout=None):
        layout = layout or torch.contiguous_format
        leaves = [
            t.to(dtype).contiguous(memory_format=layout).requires_grad_() for t in (x, residual)
        ]
        out = fn(*leaves)
        return (out, *torch.autograd.grad((out * weights.to(dtype)).sum(), leaves))

    exact = run(reference.gated_activation, torch.float64)
    # float32: a product of a few factors, each a few float32 ulps (6e-8) off; channels last:
    # the kernels' rows are pixels, and the output and gradients must keep that layout
    for dtype, tol, layout in (
        (torch.float64, 1e-12, None),
        (torch.float32, 2e-6, None),
        (torch.float32, 2e-6, torch.channels_last),
    ):
        got = _in_layout(run(ops.gated_activation, dtype, layout), layout)
        rows.append(
            CheckRow(
                op,
                f"{str(dtype).removeprefix('torch.')}{' channels-last' if layout else ''} fwd+bwd",
                _relative_error(got, exact),
                tol,
                "out, grads of x and residual vs float64 reference (relative)"
                + ("; out and grad x channels last" if layout else ""),
            )
        )
    extremes = torch.tensor([-1e4, -88.0, 0.0, 88.0, 1e4], dtype=torch.float64, device=device)
    pairs = torch.cartesian_prod(extremes, extremes).T.reshape(1, 2, -1)  # every (a, b) pairing

    def at_extremes(fn, dtype):
        leaf = pairs.to(dtype).requires_grad_()
        out = fn(leaf)
        return out, torch.autograd.grad(out.sum(), leaf)[0]

    got = at_extremes(ops.gated_activation, torch.float32)
    finite = all(bool(torch.isfinite(t).all()) for t in got)
    error = _relative_error(got, at_extremes(reference.gated_activation, torch.float64))
    rows.append(
        CheckRow(
            op,
            "float32 at ±1e4, ±88, 0",
            error if finite else float("inf"),
            1e-6,
            "out and grad x finite and vs float64 reference (relative)",
        )
    )
    small = [
        (x[:2, :4, :3, 0] / 4).requires_grad_(),
        residual[:2, :2, :3, 0].clone().requires_grad_(),
    ]
    rows.append(_second_order_row(op, ops.gated_activation, small))
    return rows


def check_causal_conv1d(device: torch.device) -> list[CheckRow]:
    rows = []
    op = "causal_conv1d"
    g = torch.Generator(device=device).manual_seed(0)

    # WaveNet-like taps and dilations, odd lengths; the last shorter than its receptive field (81)
    # on the CPU each shape runs whichever of the kernel and the dense path (conv1d over a padded
    # copy) is faster: both are checked
    paths = ("kernel", "dense") if device.type == "cpu" else ("kernel",)
    fused, ref = ops.causal_conv1d, reference.causal_conv1d
    for k, dilation, length in ((2, 64, 301), (3, 7, 97), (3, 40, 61)):
        x = torch.randn((4, 32, length), generator=g, dtype=torch.float64, device=device)
        weight = torch.randn((48, 32, k), generator=g, dtype=torch.float64, device=device)
        bias = torch.randn((48,), generator=g, dtype=torch.float64, device=device)
        # the dense path is offered only where every tap reads some x, (K - 1) d < T
        for path in paths if (k - 1) * dilation < length else ("kernel",):
            case = f"K={k}, d={dilation}, T={length}"
            case = f"{case}, {path} path" if len(paths) > 1 else case
            with ops.use_conv_path(path):
                rows += _conv_rows(op, case, fused, ref, (x, weight, bias), dilation)
    small = [
        torch.randn(shape, generator=g, dtype=torch.float64, device=device).requires_grad_()
        for shape in ((2, 3, 7), (2, 3, 3), (2,))
    ]
    rows.append(_second_order_row(op, lambda x, w, b: ops.causal_conv1d(x, w, b, 2), small))
    return rows


def check_wavenet_layer_step(device: torch.device) -> list[CheckRow]:
    """The sampling step against its reference, and a layer's steps from an empty cache against
    the layer's forward over the whole sequence (what makes fast sampling exact)."""
    from gen_ext.nn import WaveNetLayer

    rows = []
    op = "wavenet_layer_step"
    g = torch.Generator(device=device).manual_seed(0)

    def randn(*shape, dtype=torch.float64):
        return torch.randn(shape, generator=g, dtype=torch.float64, device=device).to(dtype)

    B, R, D, S, K, d = 5, 24, 20, 28, 3, 7
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 2e-5)):
        shapes = ((B, R), ((K - 1) * d, B, R), (K, R, 2 * D), (2 * D,), (B, 2 * D), (D, R + S))
        x, cache, w, b, c, wo, bo = [randn(*shape, dtype=dtype) for shape in (*shapes, (R + S,))]
        # the reference in float64 on the same values, with its own cache (updated in place)
        x64, cache64, *params64 = (t.double().clone() for t in (x, cache, w, b, c, wo, bo))
        worst = 0.0
        for step in (0, 3, 7, 15, 29):  # taps absent, then present, then the ring wrapping
            got = ops.wavenet_layer_step(x, cache, step, w, b, c, wo, bo)
            want = reference.wavenet_layer_step(x64, cache64, step, *params64)
            worst = max(worst, _relative_error(got, want), _relative_error([cache], [cache64]))
        rows.append(
            CheckRow(
                op,
                f"{str(dtype).removeprefix('torch.')} steps 0..29",
                worst,
                tol,
                "residual, skip and the updated cache vs the reference (relative)",
            )
        )
    torch.manual_seed(0)
    layer = WaveNetLayer(8, dilation=5, kernel_size=2, skip_channels=6, cond_channels=3)
    layer = layer.to(device=device, dtype=torch.float64)
    seq, cond = randn(3, 8, 40), randn(3, 3)
    with torch.no_grad():
        want = layer(seq, cond)
        step = layer.sampler(3, cond)
        outs = [step(seq[:, :, t].contiguous()) for t in range(seq.shape[2])]
    got = [torch.stack([o[i] for o in outs], dim=-1) for i in range(2)]
    rows.append(
        CheckRow(
            op,
            "40 steps = WaveNetLayer forward (float64)",
            _relative_error(got, want),
            1e-12,
            "residual and skip at every time vs the layer over the whole sequence",
        )
    )
    return rows


def check_langevin_step(device: torch.device) -> list[CheckRow]:
    """The step (noise drawn in the kernel, clamped) and its in-place form against the
    reference on the same seed, float64 and float32."""
    rows = []
    op = "langevin_step"
    g = torch.Generator(device=device).manual_seed(0)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 2e-5)):
        x = torch.rand(4, 1, 9, 11, generator=g, device=device, dtype=torch.float64).to(dtype)
        grad = torch.randn(x.shape, generator=g, device=device, dtype=torch.float64).to(dtype)
        worst = 0.0
        for clamp, inplace in (((0.0, 1.0), False), (None, False), ((0.0, 1.0), True)):
            seed = int(torch.randint(0, 2**62, (), generator=g, device=device))
            lo, hi = clamp if clamp else (None, None)
            # the reference in the same dtype: float32 draws its own stream (24-bit uniforms)
            want = reference.langevin_step(x, grad, 0.3, 0.05, lo, hi, seed)
            if inplace:
                got = x.clone()
                torch.ops.gen_ext.langevin_step_(got, grad, 0.3, 0.05, lo, hi, seed)
            else:
                got = torch.ops.gen_ext.langevin_step(x, grad, 0.3, 0.05, lo, hi, seed)
            worst = max(worst, _relative_error([got], [want]))
        rows.append(
            CheckRow(
                op,
                f"{str(dtype).removeprefix('torch.')} clamped, unclamped, in place",
                worst,
                tol,
                "the step with the kernel's own noise vs the reference on the same seed",
            )
        )
    return rows


def check_concat_elu(device: torch.device) -> list[CheckRow]:
    rows = []
    op = "concat_elu"
    g = torch.Generator(device=device).manual_seed(0)
    # odd sizes leave row tails; values float32 holds, so both runs see the same inputs
    x = (torch.randn((8, 24, 13, 11), generator=g, device=device) * 3).double()
    seed = 20261203

    def run(fn, dtype, p, pad, layout=None):
        leaf = x.to(dtype).contiguous(memory_format=layout or torch.contiguous_format)
        leaf.requires_grad_()
        out = fn(leaf, p, seed, pad)
        # the same weights for every run of an output shape, drawn apart from g's stream
        weights_g = torch.Generator(device=device).manual_seed(1)
        weights = torch.randn(out.shape, generator=weights_g, device=device).double()
        return out, torch.autograd.grad((out * weights.to(dtype)).sum(), leaf)[0]

    # pad: the zero border a down-shifted 2x3 convolution reads (the padded kernels); channels
    # last: the kernels of that layout, whose output and gradient must keep it
    cases = [(0.0, [], None), (0.5, [], None), (0.5, [1, 1, 1, 0], None)]
    cases += [(0.5, [], torch.channels_last), (0.5, [1, 1, 1, 0], torch.channels_last)]
    for p, pad, layout in cases:
        exact = run(reference.concat_elu, torch.float64, p, pad)
        # float32: expm1 and a multiply or two, each a float32 ulp (6e-8) or so
        for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-6)):
            got = _in_layout(run(torch.ops.gen_ext.concat_elu, dtype, p, pad, layout), layout)
            rows.append(
                CheckRow(
                    op,
                    f"p={p}{' pad' if pad else ''}{' channels-last' if layout else ''} "
                    f"{str(dtype).removeprefix('torch.')} fwd+bwd",
                    _relative_error(got, exact),
                    tol,
                    "out, grad x vs float64 reference, same dropout stream (relative)"
                    + ("; both channels last" if layout else ""),
                )
            )
    small = [torch.randn((2, 3, 4), generator=g, dtype=torch.float64, device=device)]
    fn = lambda t: torch.ops.gen_ext.concat_elu(t, 0.5, seed)  # noqa: E731
    rows.append(_second_order_row(op, fn, [t.requires_grad_() for t in small]))
    return rows


def check_diagonal_lstm(device: torch.device) -> list[CheckRow]:
    rows = []
    op = "diagonal_lstm_scan"
    g = torch.Generator(device=device).manual_seed(0)
    # 19 hidden units fill no whole vector; a 9 x 14 image skewed to 22 columns
    hidden, H, W = 19, 9, 14
    i2s = torch.randn((3, 4 * hidden, H, W + H - 1), generator=g, device=device).double()
    weight = (torch.randn((4 * hidden, hidden, 2), generator=g, device=device) / 6).double()
    weights = [torch.randn((3, hidden, H, W + H - 1), generator=g, device=device).double()] * 2

    def run(fn, dtype):
        leaves = [t.to(dtype).requires_grad_() for t in (i2s, weight)]
        h, c = fn(*leaves)
        loss = (h * weights[0].to(dtype)).sum() + (c * weights[1].to(dtype)).sum()
        return (h, c, *torch.autograd.grad(loss, leaves))

    exact = run(reference.diagonal_lstm_scan, torch.float64)
    # float32: sums of 2h products per gate, carried over 22 columns
    for dtype, tol in ((torch.float64, 1e-11), (torch.float32, 2e-5)):
        rows.append(
            CheckRow(
                op,
                f"{str(dtype).removeprefix('torch.')} fwd+bwd",
                _relative_error(run(ops.diagonal_lstm_scan, dtype), exact),
                tol,
                "h, c, grads of i2s and weight vs float64 reference (relative)",
            )
        )
    small = [
        i2s[:2, :8, :3, :4].clone().requires_grad_(),
        weight[:8, :2].clone().requires_grad_(),
    ]
    rows.append(_second_order_row(op, ops.diagonal_lstm_scan, small))
    return rows


def _out_and_grads_flat(results):
    """(out, every gradient flattened into one vector)."""
    return results[0], torch.cat([t.flatten() for t in results[1:]])


def check_gated_resnet_block(device: torch.device) -> list[CheckRow]:
    rows = []
    op = "gated_resnet_block"
    g = torch.Generator(device=device).manual_seed(0)
    seed = 20261204
    B, C, Ca, H, W = 4, 24, 16, 13, 11  # odd sizes leave row tails

    def randn(*shape, scale=1.0):
        return (torch.randn(shape, generator=g, device=device) * scale).double()

    for stream, (kh, kw) in (("down", (2, 3)), ("down_right", (2, 2))):
        tensors = [
            randn(B, C, H, W, scale=2),
            randn(B, Ca, H, W, scale=2),
            randn(C, 2 * C, kh, kw, scale=0.2),
            randn(C),
            randn(C, 2 * Ca, 1, 1, scale=0.2),
            randn(C),
            randn(2 * C, 2 * C, kh, kw, scale=0.2),
            randn(2 * C),
        ]
        weights = randn(B, C, H, W)

        def run(fn, dtype, layout=None, tensors=tensors, stream=stream, weights=weights):
            leaves = [t.to(dtype).requires_grad_() for t in tensors]
            args = list(leaves)
            if layout is not None:  # the maps in the layout, the leaves as they were
                args[:2] = [t.contiguous(memory_format=layout) for t in leaves[:2]]
            out = fn(*args, stream, 0.5, seed)
            return (out, *torch.autograd.grad((out * weights.to(dtype)).sum(), leaves))

        fused = lambda *a: torch.ops.gen_ext.gated_resnet_block(*a)[0]  # noqa: E731
        exact = run(reference.gated_resnet_block, torch.float64)
        ref32 = run(reference.gated_resnet_block, torch.float32)
        for dtype, layout in (
            (torch.float64, None),
            (torch.float32, None),
            (torch.float32, torch.channels_last),
        ):
            got = _in_layout(run(fused, dtype, layout), layout, kernel_made=1)
            case = f"{stream} {str(dtype).removeprefix('torch.')}"
            case += f"{' channels-last' if layout else ''} fwd+bwd"
            detail = "out, grads of x, aux, weights, biases vs float64 reference, same dropout"
            if dtype == torch.float64:
                rows.append(CheckRow(op, case, _relative_error(got, exact), 1e-11, detail))
            else:
                # the gradients as one vector: a bias gradient of 24 values alone would put
                # the luck of a few roundings in the 99th percentile
                error, allowed = float32_reference_budget(
                    *(_out_and_grads_flat(t) for t in (got, ref32, exact))
                )
                rows.append(
                    CheckRow(op, case, error, allowed, detail + "; float32 reference's error x2/x4")
                )
    small = [
        randn(1, 2, 3, 3, scale=2),
        randn(1, 1, 3, 3),
        randn(2, 4, 2, 3, scale=0.5),
        randn(2),
        randn(2, 2, 1, 1),
        randn(2),
        randn(4, 4, 2, 3, scale=0.5),
        randn(4),
    ]
    fn = lambda *a: torch.ops.gen_ext.gated_resnet_block(*a, "down", 0.5, seed)[0]  # noqa: E731
    rows.append(_second_order_row(op, fn, [t.requires_grad_() for t in small]))
    return rows


CHECKS = {
    "discretized_logistic_mixture_nll": check_dlm_nll,
    "discretized_logistic_mixture_sample": check_dlm_sample,
    "gaussian_reparameterize_kl": check_gaussian,
    "masked_conv2d": check_masked_conv,
    "shifted_conv2d": check_shifted_conv,
    "gated_activation": check_gated,
    "concat_elu": check_concat_elu,
    "gated_resnet_block": check_gated_resnet_block,
    "diagonal_lstm_scan": check_diagonal_lstm,
    "causal_conv1d": check_causal_conv1d,
    "wavenet_layer_step": check_wavenet_layer_step,
    "langevin_step": check_langevin_step,
}


def run_checks(device: torch.device, names=None, progress: bool = False) -> list[CheckRow]:
    """The rows of the checks of `names` (default: all), with a progress bar over the ops on
    stderr when `progress`."""
    selected = [name for name in CHECKS if names is None or name in names]
    rows = []
    bar = tqdm(selected, desc="check", unit="op", disable=not progress, leave=False)
    for name in bar:
        bar.set_postfix_str(name)
        rows.extend(CHECKS[name](device))
    return rows
