"""discretized_logistic_mixture_nll: the fused kernels against the reference (the spec)."""

import functools

import pytest
import torch

from gen_ext import ops, reference
from gen_ext.check import (
    ROUNDING_SLACK,
    dlm_float32_error_bounds,
    dlm_nll_results,
    dlm_underflow_floor,
    float32_error_budget,
)
from gen_ext.ops import use_backend
from gen_ext.testing import dlm_num_params as num_params
from gen_ext.testing import grid_values
from gen_ext.testing import make_dlm_inputs as make_inputs

NLL = torch.ops.gen_ext.discretized_logistic_mixture_nll


def value_and_grads(fn, x, params, num_bins):
    x = x.detach().clone().requires_grad_()
    params = params.detach().clone().requires_grad_()
    out = fn(x, params, num_bins)
    weights = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).view_as(out)
    gx, gp = torch.autograd.grad((out * weights).sum(), (x, params))
    return out, gx, gp


SHAPES = [
    (2, (5, 7)),  # rows longer than one vector plus a tail
    (1, (1, 1)),  # a single position: scalar path only
    (3, (37,)),  # 1-D (audio), odd length
    (2, (2, 3, 5)),  # 3-D spatial
    (2, (16, 16)),  # whole vectors only
    (9, (2, 3)),  # few positions per image: the batch is folded into the vector lanes
    (40, (1,)),
    (3, (17, 19)),  # a staging tile of 256 positions, then vectors and a tail; tasks split rows
]


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("B,spatial", SHAPES)
@pytest.mark.parametrize("num_bins", [2, 17, 256])
def test_matches_reference_float64(cpu_isa, C, B, spatial, num_bins):
    x, params = make_inputs(B, C, 3, spatial, num_bins, seed=hash((C, B, spatial, num_bins)) % 1000)
    want = value_and_grads(reference.discretized_logistic_mixture_nll, x, params, num_bins)
    got = value_and_grads(ops.discretized_logistic_mixture_nll, x, params, num_bins)
    assert_matches_float64(got, want)


# The values agree to 1e-10. Gradients get a wider bound for a reason of the reference's making:
# autograd forms sigmoid' as s * (1 - s), which loses digits as s -> 1 (the kernels use
# e / (1 + e)^2, exact there), and log-scales clamped at -7 scale that error by up to e^7.
GRAD_TOL = dict(rtol=1e-7, atol=1e-8)


def assert_matches_float64(got, want):
    for name, g, w in zip(("nll", "grad x", "grad params"), got, want, strict=True):
        tol = dict(rtol=1e-10, atol=1e-10) if name == "nll" else GRAD_TOL
        torch.testing.assert_close(g, w, **tol, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("M", [1, 3])
@pytest.mark.parametrize("logit_size", [1e10, -1e10, 1e200])
def test_large_logits_keep_the_likelihood_digits(cpu_isa, C, M, logit_size):
    """The softmax of logits of any size is exact relative to the largest; the kernels once added
    each component's log-likelihood to its raw logit and took the largest logit off afterwards,
    so a logit of 1e10 swallowed six digits of it (float32: all of them) and one of 1e200 all."""
    x, params = make_inputs(2, C, M, (3, 5), 256, seed=M)
    params[:, :M] = params[:, :M] + logit_size
    got = value_and_grads(ops.discretized_logistic_mixture_nll, x, params, 256)
    want = value_and_grads(reference.discretized_logistic_mixture_nll, x, params, 256)
    assert_matches_float64(got, want)


@functools.cache
def float32_case(C):
    """float32 inputs (every branch), output weights, the float64 reference's results on them and
    the first-order float32 rounding bound of each result element."""
    x, params = make_inputs(2, C, 10, (6, 5), 256, seed=7)
    x, params = x.float(), params.float()
    weights = torch.linspace(0.5, 1.5, 60, dtype=torch.float64).view(2, 6, 5)
    exact = dlm_nll_results(reference.discretized_logistic_mixture_nll, 256)(
        x.double(), params.double(), weights
    )
    return x, params, weights, exact, dlm_float32_error_bounds(x, params, weights, 256)


def float32_verdicts(got, C):
    """(name, error, allowed) per result of got against float32_case(C)."""
    *_, exact, bounds = float32_case(C)
    names = ("nll", "grad x", "grad params")
    return [
        (name, *float32_error_budget([g], [e], [b], dlm_underflow_floor(C)))
        for name, g, e, b in zip(names, got, exact, bounds, strict=True)
    ]


@pytest.mark.parametrize("C", [1, 3])
def test_float32_within_the_rounding_bound(cpu_isa, C):
    """Every float32 result element within the first-order rounding bound of the reference's
    operations (see gen_ext.check.float32_error_budget), against float64 on the same
    float32-rounded inputs."""
    x, params, weights, *_ = float32_case(C)
    got = dlm_nll_results(ops.discretized_logistic_mixture_nll, 256)(x, params, weights)
    assert all(g.dtype == torch.float32 for g in got)
    for name, error, allowed in float32_verdicts(got, C):
        assert error <= allowed, (name, error, allowed)


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("result,off", [(0, 1e-4), (1, 1e-2), (2, 1e-2)])
def test_the_float32_bound_rejects_a_wrong_element(C, result, off):
    """The bound sees one wrong element: the kernel's result with one element off by `off`
    relative (nll: 1e-4, about 840 float32 ulps; a gradient: 1%) is rejected, where the unchanged
    result passes (test above), at nine elements in ten. The element taken is the median one;
    the rest are those whose sums cancel (a gradient with respect to x adds terms up to e^7 times
    larger than itself), where float32 itself cannot do better."""
    x, params, weights, exact, bounds = float32_case(C)
    got = dlm_nll_results(ops.discretized_logistic_mixture_nll, 256)(x, params, weights)
    scale = exact[result].abs().flatten()
    allowance = (ROUNDING_SLACK * bounds[result] + dlm_underflow_floor(C)).flatten() / scale
    sizable = (scale > 1e-3).nonzero().flatten()
    assert (allowance[sizable] < off).double().mean() >= 0.9
    median = sizable[allowance[sizable].argsort()[len(sizable) // 2]]
    for factor in (1 + off, 1 - off):
        wrong = [g.clone() for g in got]
        wrong[result].view(-1)[median] *= factor
        name, error, allowed = float32_verdicts(wrong, C)[result]
        assert error > allowed, (name, factor, error, allowed)


def test_every_branch_is_exercised():
    """make_inputs must reach the edge bins, the interior and the underflowed-interior branch,
    or the comparisons above would not cover them."""
    x, params = make_inputs(2, 3, 3, (5, 7), 256, seed=0)
    C, M = 3, 3
    means = params[:, M:].reshape(2, C, 3, M, 5, 7)[:, :, 0]
    ls = params[:, M:].reshape(2, C, 3, M, 5, 7)[:, :, 1].clamp(min=-7)
    xk = x.unsqueeze(2)
    centred = xk - means  # ignoring the RGB shift is enough to see the spread
    inv = torch.exp(-ls)
    mass = torch.sigmoid(inv * (centred + 1 / 255)) - torch.sigmoid(inv * (centred - 1 / 255))
    assert (x == -1).any() and (x == 1).any()
    assert (mass > 1e-5).any() and (mass <= 1e-5).any()


@pytest.mark.parametrize("C", [1, 3])
def test_gradcheck_and_gradgradcheck(C):
    x, params = make_inputs(1, C, 2, (2, 3), 17, seed=3, scale=0.5)
    # finite differences must not step outside [-1, 1]: keep x off the two edge values (their
    # gradients are compared with the reference's above)
    x = x.clamp(-1 + 2 / 16, 1 - 2 / 16).requires_grad_()
    params.requires_grad_()
    fn = lambda x, p: NLL(x, p, 17)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, params))
    assert torch.autograd.gradgradcheck(fn, (x, params))


@pytest.mark.parametrize("C", [1, 3])
def test_public_function_gradcheck_and_gradgradcheck(C):
    """The public function takes the fused forward-with-gradients path when a gradient is needed;
    its first derivative comes from the forward's gradients, its second from the backward op."""
    x, params = make_inputs(1, C, 2, (2, 3), 17, seed=3, scale=0.5)
    x = x.clamp(-1 + 2 / 16, 1 - 2 / 16).requires_grad_()
    params.requires_grad_()
    fn = lambda x, p: ops.discretized_logistic_mixture_nll(x, p, 17)  # noqa: E731
    assert "NllWithGrad" in type(fn(x, params).grad_fn).__name__
    assert torch.autograd.gradcheck(fn, (x, params))
    assert torch.autograd.gradgradcheck(fn, (x, params))


def test_fused_path_only_when_a_gradient_is_needed():
    x, params = make_inputs(2, 3, 2, (3, 5), 256, seed=5)
    assert ops.discretized_logistic_mixture_nll(x, params).grad_fn is None
    params.requires_grad_()
    with torch.no_grad():
        assert ops.discretized_logistic_mixture_nll(x, params).grad_fn is None
    assert "NllWithGrad" in type(ops.discretized_logistic_mixture_nll(x, params).grad_fn).__name__


@pytest.mark.parametrize("x_grad", [False, True])
def test_backward_twice_through_a_retained_graph(x_grad):
    """The first backward scales the forward's gradients in place; a second one through the same
    graph must not see them scaled, so it runs the backward op: both equal the reference."""
    x, params = make_inputs(2, 3, 3, (4, 6), 256, seed=8)
    x = x.requires_grad_(x_grad)
    params.requires_grad_()
    want = value_and_grads(reference.discretized_logistic_mixture_nll, x, params, 256)
    out = ops.discretized_logistic_mixture_nll(x, params, 256)
    weights = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).view_as(out)
    inputs = (x, params) if x_grad else (params,)
    first = torch.autograd.grad((out * weights).sum(), inputs, retain_graph=True)
    second = torch.autograd.grad((out * weights).sum(), inputs)
    for got in (first, second):
        torch.testing.assert_close(got[-1], want[2], **GRAD_TOL)
        if x_grad:
            torch.testing.assert_close(got[0], want[1], **GRAD_TOL)


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("B,spatial", [(2, (5, 7)), (3, (17, 19)), (9, (2, 3))])
def test_with_grad_op_matches_the_forward_and_backward_ops(cpu_isa, C, B, spatial):
    x, params = make_inputs(B, C, 3, spatial, 256, seed=13)
    nll, grad_x, grad_params = torch.ops.gen_ext.discretized_logistic_mixture_nll_with_grad(
        x, params, 256, True
    )
    torch.testing.assert_close(nll, NLL(x, params, 256), rtol=1e-12, atol=1e-12)
    want_x, want_params = torch.ops.gen_ext.discretized_logistic_mixture_nll_backward(
        torch.ones_like(nll), x, params, 256
    )
    torch.testing.assert_close(grad_x, want_x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad_params, want_params, rtol=1e-12, atol=1e-12)
    _, no_x, _ = torch.ops.gen_ext.discretized_logistic_mixture_nll_with_grad(x, params, 256, False)
    assert no_x.numel() == 0


@pytest.mark.parametrize("x_grad", [False, True])
def test_opcheck_with_grad_op(x_grad):
    x, params = make_inputs(2, 3, 2, (3, 5), 256, seed=5)
    torch.library.opcheck(
        torch.ops.gen_ext.discretized_logistic_mixture_nll_with_grad, (x, params, 256, x_grad)
    )


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck(C, requires_grad):
    x, params = make_inputs(2, C, 2, (3, 5), 256, seed=5)
    params.requires_grad_(requires_grad)
    torch.library.opcheck(NLL, (x, params, 256))


def test_opcheck_backward_op():
    x, params = make_inputs(2, 3, 2, (3, 5), 256, seed=6)
    grad = torch.rand_like(NLL(x, params, 256))
    torch.library.opcheck(
        torch.ops.gen_ext.discretized_logistic_mixture_nll_backward, (grad, x, params, 256)
    )


def test_non_contiguous_inputs():
    x, params = make_inputs(2, 3, 3, (6, 8), 256, seed=9)
    x_nc = x.transpose(2, 3).contiguous().transpose(2, 3)  # same values, other strides
    p_nc = params.contiguous(memory_format=torch.channels_last)
    assert not x_nc.is_contiguous() and not p_nc.is_contiguous()
    want = value_and_grads(reference.discretized_logistic_mixture_nll, x, params, 256)
    got = value_and_grads(ops.discretized_logistic_mixture_nll, x_nc, p_nc, 256)
    assert_matches_float64(got, want)
    # a strided slice as params, and the expanded (stride-0) incoming gradient of a sum
    p_leaf = torch.stack([params, params], dim=2).flatten(1, 2).requires_grad_()  # p0 p0 p1 p1 ..
    p_ref = params.clone().requires_grad_()
    ops.discretized_logistic_mixture_nll(x, p_leaf[:, ::2], 256).sum().backward()
    reference.discretized_logistic_mixture_nll(x, p_ref, 256).sum().backward()
    torch.testing.assert_close(p_leaf.grad[:, ::2], p_ref.grad, **GRAD_TOL)
    assert (p_leaf.grad[:, 1::2] == 0).all()


@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (2, 3, 0, 4)])
def test_empty(shape):
    x = torch.zeros(shape, dtype=torch.float64)
    params = torch.zeros((shape[0], 20, *shape[2:]), dtype=torch.float64, requires_grad=True)
    out = ops.discretized_logistic_mixture_nll(x, params)
    assert out.shape == (shape[0], *shape[2:])
    out.sum().backward()
    assert params.grad.shape == params.shape and (params.grad == 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_parameters_stay_finite(cpu_isa, dtype):
    """Logits of +-1e4, log-scales far below the clamp and far above, x exactly at +-1, means far
    away: finite values and gradients, equal to the reference."""
    B, C, M, S = 2, 3, 3, 21
    g = torch.Generator().manual_seed(11)
    x = torch.randint(0, 256, (B, C, S), generator=g).to(dtype) / 127.5 - 1
    x[:, :, :7] = 1.0
    x[:, :, 7:14] = -1.0
    params = torch.randn((B, num_params(C, M), S), generator=g, dtype=dtype)
    params[:, 0] = 1e4
    params[:, 1] = -1e4
    for c in range(C):
        ls = M + 3 * M * c + M
        params[:, ls] = -60.0
        params[:, ls + 1] = 30.0
        params[:, ls + 2] = -7.0  # on the clamp: no gradient, as torch.clamp
        params[:, M + 3 * M * c + 2] = 25.0 * (-1) ** c  # a mean far outside [-1, 1]
    got = value_and_grads(ops.discretized_logistic_mixture_nll, x, params, 256)
    want = value_and_grads(
        reference.discretized_logistic_mixture_nll, x.double(), params.double(), 256
    )
    for name, g_, w in zip(("nll", "grad x", "grad params"), got, want, strict=True):
        assert torch.isfinite(g_).all(), name
        tol = 1e-9 if dtype == torch.float64 else 1e-3
        torch.testing.assert_close(
            g_.double(), w, rtol=tol, atol=tol, msg=lambda m, name=name: f"{name}: {m}"
        )


@pytest.mark.parametrize("C,num_bins", [(1, 256), (1, 2), (3, 5)])
def test_probabilities_sum_to_one(C, num_bins):
    """exp(-nll) over every grid value (every colour triple for RGB) is a distribution."""
    M = 3
    values = grid_values(num_bins)
    if C == 1:
        x = values.view(1, 1, -1)
    else:
        r, g_, b = torch.meshgrid(values, values, values, indexing="ij")
        x = torch.stack([r.flatten(), g_.flatten(), b.flatten()]).unsqueeze(0)
    params = torch.randn(
        num_params(C, M), dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )
    for c in range(C):  # broad enough that no interior bin underflows
        params[M + 3 * M * c + M : M + 3 * M * c + 2 * M] = -1.0
    params = params.view(1, -1, 1).expand(1, -1, x.shape[-1])
    total = torch.exp(-ops.discretized_logistic_mixture_nll(x, params, num_bins)).sum()
    assert abs(total.item() - 1.0) < 1e-12


def test_reference_backend_runs_only_when_asked():
    x, params = make_inputs(1, 3, 2, (3, 3), 256, seed=1)
    with use_backend("reference"):
        assert ops.get_backend() == "reference"
        got = ops.discretized_logistic_mixture_nll(x, params)
    assert ops.get_backend() == "kernels"
    torch.testing.assert_close(got, reference.discretized_logistic_mixture_nll(x, params))
    with pytest.raises(ValueError, match="name must be one of"):
        with use_backend("fast"):
            pass


def _bad(**overrides):
    x, params = make_inputs(1, 3, 2, (2, 2), 256, seed=0)
    args = dict(x=x, params=params, num_bins=256)
    args.update({k: (v(args) if callable(v) else v) for k, v in overrides.items()})
    return args


BAD_INPUTS = [
    (dict(num_bins=1), "num_bins must be at least 2"),
    (dict(x=lambda a: a["x"].to(torch.int64)), "x must be float32 or float64"),
    (
        dict(x=lambda a: a["x"].half(), params=lambda a: a["params"].half()),
        "x must be float32 or float64",
    ),
    (dict(params=lambda a: a["params"].float()), "params and x must have the same dtype"),
    (dict(x=lambda a: a["x"][:, :2]), "x must have 1 or 3 channels, got 2"),
    (dict(x=lambda a: a["x"][:, :1]), "params must have 3\\*M channels for 1-channel data"),
    (dict(params=lambda a: a["params"][:, :15]), "params must have 10\\*M channels"),
    (dict(params=lambda a: a["params"][:, :, :1]), "same spatial shape"),
    (dict(params=lambda a: torch.cat([a["params"]] * 2)), "same batch size"),
    (dict(params=lambda a: a["params"][..., 0]), "same number of dimensions"),
    (dict(x=lambda a: a["x"] * 1.5), "x must lie in \\[-1, 1\\]"),
    (dict(x=lambda a: a["x"].fill_(float("nan"))), "x must lie in \\[-1, 1\\]"),
    (dict(x=lambda a: a["x"][0, 0, 0]), "x must have shape \\[B, C, \\*spatial\\]"),
]


@pytest.mark.parametrize("overrides,message", BAD_INPUTS)
def test_bad_input_names_the_argument(overrides, message):
    args = _bad(**overrides)
    with pytest.raises(RuntimeError, match=message):
        ops.discretized_logistic_mixture_nll(args["x"], args["params"], args["num_bins"])


@pytest.mark.parametrize("overrides,message", BAD_INPUTS)
def test_bad_input_on_the_fused_gradient_path(overrides, message):
    """With params requiring grad the public function runs the with-grad op: the same checks."""
    args = _bad(**overrides)
    params = (
        args["params"].requires_grad_() if args["params"].is_floating_point() else args["params"]
    )
    with pytest.raises(RuntimeError, match=message):
        ops.discretized_logistic_mixture_nll(args["x"], params, args["num_bins"])
    with pytest.raises(
        RuntimeError, match="discretized_logistic_mixture_nll_with_grad: .*" + message
    ):
        torch.ops.gen_ext.discretized_logistic_mixture_nll_with_grad(
            args["x"], args["params"].detach(), args["num_bins"], False
        )


def test_backward_op_names_a_bad_grad():
    x, params = make_inputs(1, 3, 2, (2, 2), 256, seed=0)
    backward = torch.ops.gen_ext.discretized_logistic_mixture_nll_backward
    with pytest.raises(RuntimeError, match="grad must have shape \\[B, \\*spatial\\]"):
        backward(torch.ones(1, 2, 3, dtype=x.dtype), x, params, 256)
    with pytest.raises(RuntimeError, match="grad must match x in dtype and device"):
        backward(torch.ones(1, 2, 2, dtype=torch.float32), x, params, 256)


@pytest.mark.parametrize("overrides,message", [b for b in BAD_INPUTS if "lie in" not in b[1]])
def test_fake_kernel_checks_the_same(overrides, message):
    args = _bad(**overrides)
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        x = mode.from_tensor(args["x"])
        params = mode.from_tensor(args["params"])
        with pytest.raises(RuntimeError, match=message):
            NLL(x, params, args["num_bins"])


def test_torch_compile_traces_the_op():
    x, params = make_inputs(2, 3, 2, (4, 4), 256, seed=4)
    params.requires_grad_()
    compiled = torch.compile(
        lambda x, p: ops.discretized_logistic_mixture_nll(x, p).sum(),
        backend="aot_eager",
        fullgraph=True,
    )
    loss = compiled(x, params)
    loss.backward()
    want = value_and_grads(reference.discretized_logistic_mixture_nll, x, params.detach(), 256)
    torch.testing.assert_close(loss, want[0].sum())
    p = params.detach().requires_grad_()
    reference.discretized_logistic_mixture_nll(x, p).sum().backward()
    torch.testing.assert_close(params.grad, p.grad, **GRAD_TOL)


def test_small_colour_coefficients_keep_their_digits(cpu_isa):
    """A coefficient of about 1e-3 scales a gradient by its tanh: the kernels' tanh must keep the
    relative accuracy of a small value (from expm1), as the reference's does. With tanh from
    1 - exp(-2|c|) (2e-7 absolute) grad x was off by up to 55 float32 ulps, beyond its rounding
    bound."""
    C, M = 3, 4
    x, params = make_inputs(2, C, M, (6, 5), 256, seed=11)
    g = torch.Generator().manual_seed(3)
    for c in range(C):
        first = M + 3 * M * c + 2 * M  # this channel's M coefficients
        size = torch.rand((2, M, 6, 5), generator=g, dtype=torch.float64) * 2e-3 + 1e-4
        sign = torch.randint(0, 2, size.shape, generator=g) * 2 - 1
        params[:, first : first + M] = size * sign
    x, params = x.float(), params.float()
    weights = torch.linspace(0.5, 1.5, 60, dtype=torch.float64).view(2, 6, 5)
    exact = dlm_nll_results(reference.discretized_logistic_mixture_nll, 256)(
        x.double(), params.double(), weights
    )
    bounds = dlm_float32_error_bounds(x, params, weights, 256)
    got = dlm_nll_results(ops.discretized_logistic_mixture_nll, 256)(x, params, weights)
    for name, gt, e, b in zip(("nll", "grad x", "grad params"), got, exact, bounds, strict=True):
        error, allowed = float32_error_budget([gt], [e], [b], dlm_underflow_floor(C))
        assert error <= allowed, (name, error, allowed)
