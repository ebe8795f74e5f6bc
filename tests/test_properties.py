"""Property-based tests: every op's kernel against its reference on shapes, memory layouts,
dtypes and (finite) values drawn by hypothesis, sizes 0 and 1 and odd sizes included.

float64 results are held to the tolerances of the ops' own tests; float32 results of the mixture
likelihood to a rounding bound per element (gen_ext.check.float32_error_budget), of the masked
convolution to the rounding bound of its sums, and of the elementwise ops to the float32
reference's own error against float64 (gen_ext.check.float32_reference_budget).
The profile is fixed (derandomized, no example database, a bounded number of examples), so the
file runs the same examples on every run and machine."""

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gen_ext import ops, reference
from gen_ext.check import (
    dlm_float32_error_bounds,
    dlm_nll_results,
    dlm_underflow_floor,
    float32_error_budget,
    float32_reference_budget,
)
from gen_ext.testing import dlm_num_params

settings.register_profile(
    "gen_ext_properties",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile("gen_ext_properties")

SAMPLE = torch.ops.gen_ext.discretized_logistic_mixture_sample
DTYPES = st.sampled_from([torch.float64, torch.float32])
SIZES = st.sampled_from([0, 1, 2, 3, 5, 8, 17])  # empty, single, odd, a whole vector and a tail
LAYOUTS = ("contiguous", "transposed", "sliced", "channels_last")


# ---- drawing inputs ----


def seeded(draw) -> torch.Generator:
    return torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))


def spread_values(draw, shape, magnitudes, g) -> torch.Tensor:
    """float64 values of one drawn order of magnitude, some of them pushed to the largest
    magnitude allowed (the extremes an op must survive)."""
    values = torch.randn(shape, generator=g, dtype=torch.float64) * draw(
        st.sampled_from(magnitudes)
    )
    if values.numel() and draw(st.booleans()):
        picks = torch.rand(shape, generator=g) < 0.2
        signs = torch.randint(0, 2, shape, generator=g).to(torch.float64) * 2 - 1
        values = torch.where(picks, signs * max(magnitudes), values)
    return values


def laid_out(t: torch.Tensor, layout: str) -> torch.Tensor:
    """t's values in another memory layout: the same tensor, other strides."""
    if layout == "transposed" and t.dim() >= 2:
        return t.transpose(0, -1).contiguous().transpose(0, -1)
    if layout == "sliced" and t.dim() >= 1:
        wide = t.new_zeros((*t.shape[:-1], 2 * t.shape[-1] + 1))
        wide[..., 1::2] = t
        return wide[..., 1::2]
    if layout == "channels_last" and t.dim() == 4:
        return t.contiguous(memory_format=torch.channels_last)
    return t


def batch_size(draw, dtype) -> int:
    """float64 results are compared element by element, so any batch will do; the float32 budget
    compares error quantiles, which a handful of elements makes a matter of luck (float32 shapes
    of every size are the float64 ones with a batch of 64)."""
    return draw(st.sampled_from([0, 1, 2, 3] if dtype == torch.float64 else [0, 64]))


def layout_of(draw) -> str:
    return draw(st.sampled_from(LAYOUTS))


# ---- comparing ----


def value_and_grads(fn, tensors, differentiable, seed=0):
    """fn's outputs and the gradients of the `differentiable` tensors (by index) of a randomly
    weighted sum of them."""
    # detached views of the inputs themselves: the drawn layouts reach the op unchanged
    leaves = [t.detach().requires_grad_(i in differentiable) for i, t in enumerate(tensors)]
    out = fn(*leaves)
    outs = out if isinstance(out, tuple) else (out,)
    g = torch.Generator().manual_seed(seed)
    loss = sum(
        (o * torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype)).sum() for o in outs
    )
    wrt = [leaves[i] for i in differentiable]
    grads = (
        torch.autograd.grad(loss, wrt, allow_unused=True)
        if wrt and loss.requires_grad
        else [None] * len(wrt)
    )
    return [
        *outs,
        *(torch.zeros_like(t) if d is None else d for d, t in zip(grads, wrt, strict=True)),
    ]


def assert_float64_close(got, want, names, **tol):
    assert len(got) == len(want)
    # names cover every optional input; the results only those given
    for name, g, w in zip(names, got, want, strict=False):
        torch.testing.assert_close(g, w, **tol, msg=lambda m, name=name: f"{name}: {m}")


def assert_float32_within_budget(fn, ref_fn, tensors, differentiable, names):
    """The kernel's float32 error (against the float64 reference on the same float32 inputs) within
    the float32 reference's own, per result."""
    got = value_and_grads(fn, tensors, differentiable)
    ref32 = value_and_grads(ref_fn, tensors, differentiable)
    exact = value_and_grads(ref_fn, [t.double() for t in tensors], differentiable)
    for name, g, r, e in zip(names, got, ref32, exact, strict=False):
        assert g.shape == e.shape and g.dtype == torch.float32, name
        if g.numel():
            kernel_error, allowed = float32_reference_budget([g], [r], [e])
            assert kernel_error <= allowed, f"{name}: error {kernel_error:.3g} > {allowed:.3g}"


def check_against_reference(fn, ref_fn, tensors, differentiable, names, **float64_tol):
    if tensors[0].dtype == torch.float64:
        got = value_and_grads(fn, tensors, differentiable)
        want = value_and_grads(ref_fn, tensors, differentiable)
        assert_float64_close(got, want, names, **float64_tol)
    else:
        assert_float32_within_budget(fn, ref_fn, tensors, differentiable, names)


EXACT = dict(rtol=1e-12, atol=1e-12)


# ---- gated_activation ----


@PROFILE
@given(data=st.data(), dtype=DTYPES)
def test_gated_activation(data, dtype):
    draw = data.draw
    spatial = draw(st.lists(SIZES, min_size=0, max_size=2))
    shape = (batch_size(draw, dtype), 2 * draw(st.sampled_from([0, 1, 2, 3, 9])), *spatial)
    g = seeded(draw)
    top = 3e38 if dtype == torch.float32 else 1e300
    x = spread_values(draw, shape, (1.0, 30.0, top), g).to(dtype)
    tensors = [laid_out(x, layout_of(draw))]
    if draw(st.booleans()):
        out_shape = (shape[0], shape[1] // 2, *spatial)
        tensors.append(
            laid_out(spread_values(draw, out_shape, (1.0, 1e6), g).to(dtype), layout_of(draw))
        )
    names = ("out", "grad x", "grad residual")
    check_against_reference(
        ops.gated_activation,
        reference.gated_activation,
        tensors,
        range(len(tensors)),
        names,
        **EXACT,
    )


# ---- gaussian_reparameterize_kl (given eps) ----


@PROFILE
@given(data=st.data(), dtype=DTYPES)
def test_gaussian_reparameterize_kl(data, dtype):
    draw = data.draw
    shape = (batch_size(draw, dtype), *draw(st.lists(SIZES, min_size=0, max_size=2)))
    g = seeded(draw)
    # mu and eps no larger than keeps mu^2 and exp(10) * eps finite; logvar anywhere (clamped)
    big = 1e18 if dtype == torch.float32 else 1e150
    top = 3e38 if dtype == torch.float32 else 1e300
    mu = spread_values(draw, shape, (1.0, 1e3, big), g)
    logvar = spread_values(draw, shape, (1.0, 10.0, 40.0, top), g)
    eps = spread_values(draw, shape, (1.0, big), g)
    tensors = [laid_out(t.to(dtype), layout_of(draw)) for t in (mu, logvar, eps)]
    names = ("z", "kl", "grad mu", "grad logvar", "grad eps")
    check_against_reference(
        ops.gaussian_reparameterize_kl,
        reference.gaussian_reparameterize_kl,
        tensors,
        range(3),
        names,
        **EXACT,
    )


# ---- masked_conv2d ----


@st.composite
def conv_case(draw, dtype):
    colors = draw(st.sampled_from([1, 3]))
    cin = colors * draw(st.sampled_from([0, 1, 2, 3, 5]))
    cout = colors * draw(st.sampled_from([0, 1, 2, 5]))
    kh, kw = draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 3, 5, 7]))
    batch = batch_size(draw, dtype)
    h = draw(st.sampled_from([0, 1, 2, 3, 6]))
    w = draw(st.sampled_from([0, 1, 2, 5, 7, 13, 259]))  # 259: more than one gathered piece
    g = seeded(draw)
    x = spread_values(draw, (batch, cin, h, w), (1.0, 1e-3, 1e3), g).to(dtype)
    weight = spread_values(draw, (cout, cin, kh, kw), (1.0, 1e-3, 1e3), g).to(dtype)
    tensors = [laid_out(x, layout_of(draw)), laid_out(weight, layout_of(draw))]
    if draw(st.booleans()):
        tensors.append(spread_values(draw, (cout,), (1.0, 1e3), g).to(dtype))
    return tensors, draw(st.sampled_from("AB")), colors


def summation_bound(terms: int, dtype) -> float:
    """gamma_n = n u / (1 - n u): the classical bound on the rounding error of any order of summing
    n products, relative to the sum of their magnitudes (u the unit roundoff of dtype)."""
    u = torch.finfo(dtype).eps / 2
    return terms * u / (1 - terms * u)


def conv_magnitudes(x, weight, bias, out_weights, mask_type, colors):
    """The sums of |products| behind the convolution's output and each gradient of
    sum(out * out_weights), in float64: the scale its rounding error is bounded by."""
    ax, aw, ag = x.double().abs(), weight.double().abs(), out_weights.abs()
    ab = None if bias is None else bias.double().abs()
    out = reference.masked_conv2d_dense(ax, aw, ab, mask_type, colors)
    x_, w_ = ax.clone().requires_grad_(), aw.clone().requires_grad_()
    # linear in each argument: the gradient at |x| (|w|) of sum(conv * |g|) sums |products|
    grad_x = torch.autograd.grad(
        (reference.masked_conv2d_dense(x_, aw, None, mask_type, colors) * ag).sum(), x_
    )[0]
    grad_w = torch.autograd.grad(
        (reference.masked_conv2d_dense(ax, w_, None, mask_type, colors) * ag).sum(), w_
    )[0]
    grads = [grad_x, grad_w] + ([] if bias is None else [ag.sum((0, 2, 3))])
    return [out, *grads]


@PROFILE
@given(data=st.data(), dtype=DTYPES)
def test_masked_conv2d(data, dtype):
    """Against the dense form (the spec's value on finite inputs) in float64, each result within
    the rounding bound of its sums: inputs of 1e-3 to 1e3 cancel, so an error relative to the
    result says nothing, while a wrong tap or channel breaks the bound by orders of magnitude."""
    tensors, mask_type, colors = data.draw(conv_case(dtype))
    with_bias = len(tensors) == 3
    x, weight = tensors[:2]
    bias = tensors[2] if with_bias else None
    B, H, W = x.shape[0], x.shape[2], x.shape[3]
    cout, cin, kh, kw = weight.shape

    def conv_with(impl):
        return lambda *t: impl(*t, *(() if with_bias else (None,)), mask_type, colors)

    differentiable = range(len(tensors))
    got = value_and_grads(conv_with(ops.masked_conv2d), tensors, differentiable)
    exact = value_and_grads(
        conv_with(reference.masked_conv2d_dense), [t.double() for t in tensors], differentiable
    )
    # the output weights value_and_grads draws (seed 0), unrounded
    g = torch.Generator().manual_seed(0)
    out_weights = torch.randn((B, cout, H, W), generator=g, dtype=torch.float64)
    scales = conv_magnitudes(x, weight, bias, out_weights, mask_type, colors)
    # products per result (+2: the bias, the output weights rounded to dtype and the final store)
    terms = [cin * kh * kw + 2, cout * kh * kw + 2, B * H * W + 2, B * H * W + 2]
    names = ("out", "grad x", "grad weight", "grad bias")
    for name, r, e, scale, n in zip(names, got, exact, scales, terms, strict=False):
        assert r.shape == e.shape and r.dtype == dtype, name
        error = (r.double() - e).abs()
        allowed = summation_bound(n, dtype) * scale
        worst = (error - allowed).argmax() if error.numel() else None
        assert (error <= allowed).all(), (
            f"{name}: error {error.flatten()[worst]:.3g} > bound {allowed.flatten()[worst]:.3g}"
        )


# ---- causal_conv1d ----


@st.composite
def causal_conv1d_case(draw, dtype):
    """x [B, C_in, T], weight [C_out, C_in, K] (each in a drawn layout), a bias or none, and a
    dilation: sequences shorter and longer than the receptive field, taps that read nothing."""
    B, cin, cout, length = batch_size(draw, dtype), draw(SIZES), draw(SIZES), draw(SIZES)
    k, dilation = draw(st.sampled_from([1, 2, 3, 5])), draw(st.sampled_from([1, 2, 3, 7, 64]))
    g = seeded(draw)
    x = torch.randn((B, cin, length), generator=g, dtype=torch.float64).to(dtype)
    weight = torch.randn((cout, cin, k), generator=g, dtype=torch.float64).to(dtype)
    tensors = [laid_out(x, layout_of(draw)), laid_out(weight, layout_of(draw))]
    if draw(st.booleans()):
        tensors.append(torch.randn((cout,), generator=g, dtype=torch.float64).to(dtype))
    return tensors, dilation


@PROFILE
@given(data=st.data(), dtype=DTYPES)
def test_causal_conv1d(data, dtype):
    tensors, dilation = data.draw(causal_conv1d_case(dtype))
    with_bias = len(tensors) == 3

    def conv_with(impl):
        return lambda *t: impl(*t, *(() if with_bias else (None,)), dilation)

    check_against_reference(
        conv_with(ops.causal_conv1d),
        conv_with(reference.causal_conv1d),
        tensors,
        range(len(tensors)),
        ("out", "grad x", "grad weight", "grad bias"),
        **EXACT,
    )


# ---- discretized logistic mixture: likelihood and sampler ----


@st.composite
def dlm_case(draw, dtype):
    channels = draw(st.sampled_from([1, 3]))
    components = draw(st.sampled_from([1, 2, 5]))
    num_bins = draw(st.sampled_from([2, 3, 17, 256]))
    spatial = tuple(draw(st.lists(SIZES, min_size=0, max_size=2)))
    # float32 is held to a bound per element (dlm_float32_error_bounds), so any batch will do
    batch = draw(st.sampled_from([0, 1, 2, 3]))
    g = seeded(draw)
    levels = torch.randint(0, num_bins, (batch, channels, *spatial), generator=g)
    x = (levels.to(torch.float64) * (2.0 / (num_bins - 1)) - 1).to(dtype)
    # means, log-scales and coefficients of every size up to 1e4: log-scales far below the clamp
    # at -7 and far above 0 make every branch (edge bins, tiny mass, flat logistic) occur. Beyond
    # that the components' log-likelihoods reach magnitudes whose rounding alone (ulp 1e184 at
    # 1e200) decides which component explains x, for the reference as for the kernels.
    params = spread_values(
        draw, (batch, dlm_num_params(channels, components), *spatial), (1.0, 5.0, 100.0, 1e4), g
    )
    # logits of any size: the softmax is exact relative to the largest
    top = 1e30 if dtype == torch.float32 else 1e200
    params[:, :components] = spread_values(
        draw, (batch, components, *spatial), (1.0, 100.0, top), g
    )
    if channels == 3 and dtype == torch.float32:
        # float32 forms tanh's derivative 1 - t^2 by cancellation, kernels and reference alike
        # (at a coefficient of 7 the reference is 1% off, the kernel 4%): coefficients where
        # tanh is not saturated, until both compute it another way
        for c in range(3):
            first = components + 3 * components * c + 2 * components
            params[:, first : first + components] = torch.randn(
                (batch, components, *spatial), generator=g, dtype=torch.float64
            )
    params = params.to(dtype)
    return x, params, channels, components, num_bins, g


@PROFILE
@given(
    data=st.data(),
    dtype=DTYPES,
    x_layout=st.sampled_from(LAYOUTS),
    params_layout=st.sampled_from(LAYOUTS),
)
def test_discretized_logistic_mixture_nll(data, dtype, x_layout, params_layout):
    x, params, _, _, num_bins, _ = data.draw(dlm_case(dtype))
    tensors = [laid_out(x, x_layout), laid_out(params, params_layout)]
    if dtype == torch.float32:
        assert_dlm_float32_within_bound(*tensors, num_bins)
        return
    # gradients: the reference's autograd forms sigmoid' as s * (1 - s), which loses digits as
    # s -> 1, see test_dlm_nll.GRAD_TOL
    check_against_reference(
        lambda a, b: ops.discretized_logistic_mixture_nll(a, b, num_bins),
        lambda a, b: reference.discretized_logistic_mixture_nll(a, b, num_bins),
        tensors,
        (0, 1),
        ("nll", "grad x", "grad params"),
        rtol=1e-7,
        atol=1e-8,
    )


def assert_dlm_float32_within_bound(x, params, num_bins):
    """Each float32 result element (value, gradients of a randomly weighted sum) within its
    first-order rounding bound of the float64 reference on the same float32 inputs."""
    g = torch.Generator().manual_seed(0)
    weights = torch.randn((x.shape[0], *x.shape[2:]), generator=g, dtype=torch.float64)
    got = dlm_nll_results(ops.discretized_logistic_mixture_nll, num_bins)(x, params, weights)
    exact = dlm_nll_results(reference.discretized_logistic_mixture_nll, num_bins)(
        x.double(), params.double(), weights
    )
    bounds = dlm_float32_error_bounds(x, params, weights, num_bins)
    floor = dlm_underflow_floor(x.shape[1])
    for name, r, e, b in zip(("nll", "grad x", "grad params"), got, exact, bounds, strict=True):
        assert r.shape == e.shape and r.dtype == torch.float32, name
        error, allowed = float32_error_budget([r], [e], [b], floor)
        assert error <= allowed, f"{name}: error {error:.3g} > allowed {allowed:.3g}"


@PROFILE
@given(data=st.data(), dtype=DTYPES, layout=st.sampled_from(LAYOUTS))
def test_sample_discretized_logistic_mixture_from_given_noise(data, dtype, layout):
    _, params, channels, components, num_bins, g = data.draw(dlm_case(dtype))
    spatial = params.shape[2:]
    noise_mixture = torch.rand(
        (params.shape[0], components, *spatial), generator=g, dtype=torch.float64
    ).to(dtype)
    noise_logistic = torch.rand(
        (params.shape[0], channels, *spatial), generator=g, dtype=torch.float64
    ).to(dtype)
    if noise_mixture.numel() and data.draw(st.booleans()):
        noise_mixture.view(-1)[0] = 0.0  # the clamped end of the uniforms
        noise_logistic.view(-1)[0] = 0.0
    args = [laid_out(t, layout) for t in (params, noise_mixture, noise_logistic)]
    got = SAMPLE(*args, channels, num_bins)
    want = reference.discretized_logistic_mixture_sample(*args, channels, num_bins)
    assert got.shape == want.shape == (params.shape[0], channels, *spatial)
    if dtype == torch.float64:
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    else:
        # float32 rounding may move a draw lying on a bin boundary into the neighbouring bin
        assert ((got - want).abs() <= 2.0 / (num_bins - 1) * 1.0001).all()


def test_the_profile_is_deterministic_and_bounded():
    assert PROFILE.derandomize and PROFILE.database is None and PROFILE.deadline is None
    assert PROFILE.max_examples <= 50
