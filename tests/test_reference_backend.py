"""The reference backend (`ops.use_backend("reference")`) accepts every shape the kernels accept
and agrees with them there, gradients included: empty batches and images, size-1 dimensions,
1-D inputs and channel counts of zero."""

import pytest
import torch

from gen_ext import ops
from gen_ext.testing import dlm_num_params

EXACT = dict(rtol=1e-12, atol=1e-12)


def on_both_backends(fn, *tensors):
    """fn's outputs and the gradients of every tensor argument (of a weighted sum of the outputs),
    with the kernels and with the reference backend."""
    results = []
    for backend in ("kernels", "reference"):
        leaves = [t.detach().clone().requires_grad_() for t in tensors]
        with ops.use_backend(backend):
            out = fn(*leaves)
        outs = out if isinstance(out, tuple) else (out,)
        g = torch.Generator().manual_seed(5)
        loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outs)
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        results.append(
            (
                *outs,
                *(
                    torch.zeros_like(t) if d is None else d
                    for d, t in zip(grads, leaves, strict=True)
                ),
            )
        )
    return results


def assert_backends_agree(fn, *tensors, **tol):
    kernels, reference = on_both_backends(fn, *tensors)
    assert len(kernels) == len(reference)
    for i, (k, r) in enumerate(zip(kernels, reference, strict=True)):
        torch.testing.assert_close(r, k, **(tol or EXACT), msg=lambda m, i=i: f"result {i}: {m}")


def randn(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("shape", [(5,), (1,), (0,), (0, 3), (3, 0), (1, 1), (2, 1, 3), (2, 0, 4)])
def test_gaussian_reparameterize_kl(shape):
    # a 1-D mu is a batch of single numbers: kl[b] is the one element's term
    mu, logvar, eps = randn(*shape), randn(*shape, seed=1), randn(*shape, seed=2)
    assert_backends_agree(ops.gaussian_reparameterize_kl, mu, logvar, eps)


@pytest.mark.parametrize("shape", [(5,), (0,), (1, 1), (0, 3), (3, 0)])
def test_gaussian_reparameterize_kl_drawn_noise(shape):
    mu, logvar = randn(*shape), randn(*shape, seed=1)
    draw = lambda m, lv: ops.gaussian_reparameterize_kl(  # noqa: E731
        m, lv, generator=torch.Generator().manual_seed(3)
    )
    assert_backends_agree(draw, mu, logvar)


@pytest.mark.parametrize(
    "shape", [(2, 0), (0, 4), (1, 2), (1, 2, 1), (2, 0, 3), (3, 2, 0, 5), (1, 2, 1, 1, 1)]
)
@pytest.mark.parametrize("with_residual", [False, True])
def test_gated_activation(shape, with_residual):
    x = randn(*shape)
    if with_residual:
        residual = randn(shape[0], shape[1] // 2, *shape[2:], seed=1)
        assert_backends_agree(ops.gated_activation, x, residual)
    else:
        assert_backends_agree(ops.gated_activation, x)


# (batch, in, out, H, W, kernel side, colours)
CONV_SHAPES = [
    (2, 0, 5, 3, 4, 3, 1),  # no input channels: the output is the bias
    (2, 0, 6, 3, 4, 5, 3),
    (0, 3, 6, 4, 4, 3, 3),  # empty batch
    (2, 3, 6, 0, 4, 3, 3),  # empty image
    (2, 3, 6, 4, 0, 3, 1),
    (2, 3, 6, 0, 0, 5, 1),
    (2, 3, 0, 4, 4, 3, 3),  # no output channels
    (1, 1, 1, 1, 1, 7, 1),  # a kernel larger than the image
    (2, 3, 6, 1, 1, 1, 1),
    (1, 3, 3, 1, 9, 3, 3),
]


@pytest.mark.parametrize("shape", CONV_SHAPES)
@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize("with_bias", [False, True])
def test_masked_conv2d(shape, mask_type, with_bias):
    batch, cin, cout, h, w, k, colors = shape
    x, weight, bias = randn(batch, cin, h, w), randn(cout, cin, k, k, seed=1), randn(cout, seed=2)

    def conv(*t):
        return ops.masked_conv2d(*t, *(() if with_bias else (None,)), mask_type, colors)

    tensors = (x, weight, bias) if with_bias else (x, weight)
    assert_backends_agree(conv, *tensors)


# (batch, in, out, H, W, kh, kw)
SHIFTED_CONV_SHAPES = [
    (2, 0, 5, 3, 4, 2, 3),  # no input channels: the output is the bias
    (0, 3, 6, 4, 4, 2, 2),  # empty batch
    (2, 3, 6, 0, 4, 2, 3),  # empty image
    (2, 3, 6, 4, 0, 1, 1),
    (2, 3, 0, 4, 4, 2, 3),  # no output channels
    (1, 1, 1, 1, 1, 3, 5),  # a kernel larger than the image
    (1, 3, 3, 1, 9, 2, 2),
]


@pytest.mark.parametrize("shape", SHIFTED_CONV_SHAPES)
@pytest.mark.parametrize("shift", ["down", "down_right"])
@pytest.mark.parametrize("with_bias", [False, True])
def test_shifted_conv2d(shape, shift, with_bias):
    batch, cin, cout, h, w, kh, kw = shape
    if shift == "down" and kw % 2 == 0:
        pytest.skip("a down shift centres its columns: its kernel width is odd")
    x, weight, bias = randn(batch, cin, h, w), randn(cout, cin, kh, kw, seed=1), randn(cout, seed=2)

    def conv(*t):
        return ops.shifted_conv2d(*t, *(() if with_bias else (None,)), shift)

    tensors = (x, weight, bias) if with_bias else (x, weight)
    assert_backends_agree(conv, *tensors)


# (batch, channels, components, spatial)
DLM_SHAPES = [
    (0, 3, 2, (4, 4)),
    (2, 1, 1, ()),
    (2, 3, 2, (0,)),
    (1, 1, 1, (1,)),
    (2, 3, 2, (3, 0, 2)),
    (1, 3, 1, (1, 1)),
]


def dlm_inputs(batch, channels, components, spatial):
    g = torch.Generator().manual_seed(len(spatial))
    levels = torch.randint(0, 256, (batch, channels, *spatial), generator=g)
    x = levels.to(torch.float64) / 127.5 - 1
    return x, randn(batch, dlm_num_params(channels, components), *spatial, seed=1)


@pytest.mark.parametrize("shape", DLM_SHAPES)
def test_discretized_logistic_mixture_nll(shape):
    x, params = dlm_inputs(*shape)
    nll = lambda x_, p: ops.discretized_logistic_mixture_nll(x_, p, 256)  # noqa: E731
    # the reference's autograd forms sigmoid' as s * (1 - s) (see test_dlm_nll.GRAD_TOL)
    assert_backends_agree(nll, x, params, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("shape", DLM_SHAPES)
def test_sample_discretized_logistic_mixture(shape):
    _, params = dlm_inputs(*shape)
    draws = []
    for backend in ("kernels", "reference"):
        with ops.use_backend(backend):
            draws.append(
                ops.sample_discretized_logistic_mixture(
                    params, shape[1], 256, generator=torch.Generator().manual_seed(4)
                )
            )
    torch.testing.assert_close(draws[1], draws[0], rtol=0, atol=0)


# (batch, in, out, T, kernel, dilation)
CAUSAL_CONV1D_SHAPES = [
    (2, 0, 3, 5, 2, 1),  # no input channels: the output is the bias
    (0, 3, 4, 6, 2, 2),  # empty batch
    (2, 3, 4, 0, 3, 1),  # empty sequence
    (2, 3, 0, 6, 2, 1),  # no output channels
    (1, 1, 1, 1, 1, 1),
    (2, 3, 2, 4, 3, 5),  # only the newest tap reads anything
    (1, 2, 3, 9, 4, 2),
]


@pytest.mark.parametrize("shape", CAUSAL_CONV1D_SHAPES)
@pytest.mark.parametrize("with_bias", [False, True])
def test_causal_conv1d(shape, with_bias):
    batch, cin, cout, length, k, dilation = shape
    x, weight, bias = randn(batch, cin, length), randn(cout, cin, k, seed=1), randn(cout, seed=2)

    def conv(*t):
        return ops.causal_conv1d(*t, *(() if with_bias else (None,)), dilation)

    assert_backends_agree(conv, *((x, weight, bias) if with_bias else (x, weight)))
