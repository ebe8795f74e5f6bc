"""sample_discretized_logistic_mixture: CPU kernel, Triton kernel (interpreted on CPU tensors)
and reference agree on the same noise; samples follow the likelihood's distribution."""

import pytest
import torch
from scipy import stats

from gen_ext import ops, reference
from gen_ext.ops.dlm import _sample_triton
from gen_ext.testing import dlm_num_params as num_params
from gen_ext.testing import grid_values
from gen_ext.testing import make_dlm_inputs as make_inputs

SAMPLE = torch.ops.gen_ext.discretized_logistic_mixture_sample


def noise_for(params, C, seed=0):
    g = torch.Generator().manual_seed(seed)
    M = params.shape[1] // reference.dlm.params_per_component(C)
    spatial = params.shape[2:]
    nm = torch.rand((params.shape[0], M, *spatial), generator=g, dtype=params.dtype)
    nl = torch.rand((params.shape[0], C, *spatial), generator=g, dtype=params.dtype)
    nm.view(-1)[:3] = 0.0  # the clamped end of the uniforms
    return nm, nl


def assert_same_or_one_bin_apart(got, want, num_bins, max_fraction):
    """float32 rounding may flip a draw lying on a bin boundary to the neighbouring bin."""
    diff = (got - want).abs()
    bin_width = 2.0 / (num_bins - 1)
    assert (diff <= bin_width * 1.0001).all()
    assert (diff > 0).float().mean().item() <= max_fraction


KERNELS = {
    "cpu": lambda p, nm, nl, C, nb: SAMPLE(p, nm, nl, C, nb),
    "triton": _sample_triton,  # what runs on CUDA, here through the interpreter
}


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("num_bins", [2, 17, 256])
@pytest.mark.parametrize("B,spatial", [(2, (5, 7)), (1, (1,)), (3, (33,))])
def test_kernels_match_reference_float64(kernel, C, num_bins, B, spatial):
    _, params = make_inputs(B, C, 4, spatial, num_bins, seed=num_bins + C)
    nm, nl = noise_for(params, C)
    want = reference.discretized_logistic_mixture_sample(params, nm, nl, C, num_bins)
    got = KERNELS[kernel](params, nm, nl, C, num_bins)
    assert got.shape == (B, C, *spatial) and got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("C", [1, 3])
def test_kernels_match_reference_float32(kernel, C):
    _, params = make_inputs(2, C, 10, (16, 16), 256, seed=3, dtype=torch.float32)
    nm, nl = noise_for(params, C)
    want = reference.discretized_logistic_mixture_sample(params, nm, nl, C, 256)
    got = KERNELS[kernel](params, nm, nl, C, 256)
    assert got.dtype == torch.float32
    assert_same_or_one_bin_apart(got, want, 256, max_fraction=1e-3)


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_non_contiguous_and_empty(kernel):
    _, params = make_inputs(2, 3, 3, (4, 6), 256, seed=1)
    nm, nl = noise_for(params, 3)
    want = reference.discretized_logistic_mixture_sample(params, nm, nl, 3, 256)
    p_nc = params.contiguous(memory_format=torch.channels_last)
    nl_nc = nl.transpose(2, 3).contiguous().transpose(2, 3)
    got = KERNELS[kernel](p_nc, nm, nl_nc, 3, 256)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    empty = torch.zeros(0, 30, 4, 4, dtype=torch.float64)
    out = KERNELS[kernel](
        empty,
        torch.zeros(0, 3, 4, 4, dtype=torch.float64),
        torch.zeros(0, 3, 4, 4, dtype=torch.float64),
        3,
        256,
    )
    assert out.shape == (0, 3, 4, 4)


def test_output_on_the_grid_and_reproducible():
    _, params = make_inputs(2, 3, 5, (8, 8), 256, seed=2, dtype=torch.float32)
    a = ops.sample_discretized_logistic_mixture(params, 3, 256, torch.Generator().manual_seed(7))
    b = ops.sample_discretized_logistic_mixture(params, 3, 256, torch.Generator().manual_seed(7))
    c = ops.sample_discretized_logistic_mixture(params, 3, 256, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    levels = (a + 1) * 127.5
    torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-4)
    assert a.min() >= -1 and a.max() <= 1


def test_reference_backend_draws_the_same_sample():
    _, params = make_inputs(2, 3, 5, (4, 4), 256, seed=2)
    fused = ops.sample_discretized_logistic_mixture(
        params, 3, 256, torch.Generator().manual_seed(3)
    )
    with ops.use_backend("reference"):
        ref = ops.sample_discretized_logistic_mixture(
            params, 3, 256, torch.Generator().manual_seed(3)
        )
    torch.testing.assert_close(fused, ref, rtol=0, atol=0)


@pytest.mark.parametrize("C,num_bins,M", [(3, 4, 3), (1, 8, 2)])
def test_empirical_distribution_matches_likelihood(C, num_bins, M):
    """Chi-square goodness of fit of n draws (fixed seed) against exp(-nll) over every outcome."""
    g = torch.Generator().manual_seed(5)
    one = torch.randn(num_params(C, M), generator=g, dtype=torch.float64) * 0.7
    n = 40_000
    params = one.view(1, -1, 1).expand(1, -1, n)
    draws = ops.sample_discretized_logistic_mixture(
        params, C, num_bins, torch.Generator().manual_seed(6)
    )
    values = grid_values(num_bins)
    outcomes = torch.cartesian_prod(*([values] * C)).view(-1, C) if C > 1 else values.view(-1, 1)
    probs = torch.exp(
        -ops.discretized_logistic_mixture_nll(
            outcomes.T.unsqueeze(0).contiguous(),
            one.view(1, -1, 1).expand(1, -1, len(outcomes)),
            num_bins,
        )
    )[0]
    assert abs(probs.sum().item() - 1) < 1e-9
    index = torch.round((draws[0].T + 1) * (num_bins - 1) / 2).long()  # [n, C] level indices
    flat = torch.zeros(n, dtype=torch.long)
    for c in range(C):
        flat = flat * num_bins + index[:, c]
    counts = torch.bincount(flat, minlength=num_bins**C).double()
    expected = probs * n
    keep = expected >= 5  # pool sparse cells, as the test requires
    observed = torch.cat([counts[keep], counts[~keep].sum().view(1)])
    expect = torch.cat([expected[keep], expected[~keep].sum().view(1)])
    if expect[-1] < 5:
        observed, expect = observed[:-1], expect[:-1]
        expect = expect * observed.sum() / expect.sum()
    chi2 = (((observed - expect) ** 2) / expect).sum().item()
    p_value = stats.chi2.sf(chi2, df=len(observed) - 1)
    assert p_value > 1e-3, (chi2, len(observed), p_value)
    # and the test can fail: a sampler that ignores the RGB/second-component structure is rejected
    shuffled = counts[torch.randperm(len(counts), generator=g)]
    obs_bad = torch.cat([shuffled[keep], shuffled[~keep].sum().view(1)])[: len(observed)]
    chi2_bad = (((obs_bad - expect) ** 2) / expect).sum().item()
    assert stats.chi2.sf(chi2_bad, df=len(observed) - 1) < 1e-6


def test_opcheck():
    _, params = make_inputs(2, 3, 2, (3, 5), 256, seed=5)
    nm, nl = noise_for(params, 3)
    torch.library.opcheck(SAMPLE, (params, nm, nl, 3, 256))


BAD = [
    (dict(num_channels=2), "num_channels must be 1 or 3"),
    (dict(num_bins=1), "num_bins must be at least 2"),
    (dict(params=lambda p: p[:, :25]), "params must have 10\\*M channels"),
    (dict(params=lambda p: p.long()), "params must be float32 or float64"),
    (dict(params=lambda p: p[0, 0, 0]), "params must have shape \\[B, P, \\*spatial\\]"),
]


@pytest.mark.parametrize("change,message", BAD)
def test_bad_input_names_the_argument(change, message):
    _, params = make_inputs(1, 3, 3, (2, 2), 256, seed=0)
    args = dict(params=params, num_channels=3, num_bins=256)
    args.update({k: (v(params) if callable(v) else v) for k, v in change.items()})
    with pytest.raises(RuntimeError, match=message):
        ops.sample_discretized_logistic_mixture(**args)


@pytest.mark.parametrize(
    "which,message",
    [
        ("mix_shape", "noise_mixture must have shape"),
        ("log_shape", "noise_logistic must have shape"),
        ("dtype", "noise must match params in dtype and device"),
    ],
)
def test_bad_noise_in_kernel_and_fake(which, message):
    _, params = make_inputs(1, 3, 3, (2, 2), 256, seed=0)
    nm, nl = noise_for(params, 3)
    if which == "mix_shape":
        nm = nm[:, :2]
    elif which == "log_shape":
        nl = nl[:, :, :1]
    else:
        nl = nl.float()
    with pytest.raises(RuntimeError, match=message):
        SAMPLE(params, nm, nl, 3, 256)
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        with pytest.raises(RuntimeError, match=message):
            SAMPLE(mode.from_tensor(params), mode.from_tensor(nm), mode.from_tensor(nl), 3, 256)
