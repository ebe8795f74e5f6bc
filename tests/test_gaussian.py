"""gaussian_reparameterize_kl: the fused kernels against the reference (the spec)."""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from gen_ext import ops, reference
from gen_ext.nn import GaussianLatent

OP = torch.ops.gen_ext.gaussian_reparameterize_kl


def inputs(shape, dtype=torch.float64, seed=0, spread=3.0):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(shape, generator=g, dtype=dtype)
    logvar = torch.randn(shape, generator=g, dtype=dtype) * spread
    eps = torch.randn(shape, generator=g, dtype=dtype)
    return mu, logvar, eps


def value_and_grads(fn, mu, logvar, eps, use=("z", "kl")):
    leaves = [t.detach().clone().requires_grad_() for t in (mu, logvar, eps)]
    z, kl = fn(*leaves)
    g = torch.Generator().manual_seed(9)
    loss = 0
    if "z" in use:
        loss = loss + (z * torch.randn(z.shape, generator=g, dtype=torch.float64).to(z.dtype)).sum()
    if "kl" in use:
        loss = (
            loss + (kl * torch.rand(kl.shape, generator=g, dtype=torch.float64).to(kl.dtype)).sum()
        )
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)  # kl alone does not use eps
    return (
        z,
        kl,
        *(torch.zeros_like(t) if g is None else g for g, t in zip(grads, leaves, strict=True)),
    )


@pytest.mark.parametrize("shape", [(3, 5), (1, 1), (5, 37), (4, 64), (2, 3, 4, 5)])
@pytest.mark.parametrize("use", [("z", "kl"), ("z",), ("kl",)])
def test_matches_reference_float64(cpu_isa, shape, use):
    mu, logvar, eps = inputs(shape, seed=len(shape))
    outside = torch.tensor([-31.0, 21.0], dtype=logvar.dtype)  # beyond the clamp at both ends
    n = min(2, logvar.numel())
    logvar.view(-1)[:n] = outside[:n]
    got = value_and_grads(ops.gaussian_reparameterize_kl, mu, logvar, eps, use)
    want = value_and_grads(reference.gaussian_reparameterize_kl, mu, logvar, eps, use)
    for name, g, w in zip(
        ("z", "kl", "grad mu", "grad logvar", "grad eps"), got, want, strict=True
    ):
        torch.testing.assert_close(
            g, w, rtol=1e-12, atol=1e-12, msg=lambda m, name=name: f"{name}: {m}"
        )


def test_float32_close_to_reference(cpu_isa):
    mu, logvar, eps = inputs((16, 100), torch.float32, seed=2)
    got = value_and_grads(ops.gaussian_reparameterize_kl, mu, logvar, eps)
    want = value_and_grads(reference.gaussian_reparameterize_kl, mu, logvar, eps)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=2e-5, atol=1e-5)


def test_gradcheck_and_gradgradcheck():
    mu, logvar, eps = (t.requires_grad_() for t in inputs((3, 4), seed=3, spread=1.0))
    assert torch.autograd.gradcheck(OP, (mu, logvar, eps))
    assert torch.autograd.gradgradcheck(OP, (mu, logvar, eps))


@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck(requires_grad):
    mu, logvar, eps = inputs((3, 2, 5), seed=4)
    torch.library.opcheck(
        OP, (mu.requires_grad_(requires_grad), logvar.requires_grad_(requires_grad), eps)
    )
    z, kl = OP(mu.detach(), logvar.detach(), eps)
    torch.library.opcheck(
        torch.ops.gen_ext.gaussian_reparameterize_kl_backward,
        (torch.rand_like(z), torch.rand_like(kl), mu.detach(), logvar.detach(), eps),
    )


@pytest.mark.parametrize("value", [-1e4, -30.0, 0.0, 20.0, 88.0, 89.0, 1e4])
def test_extreme_logvar_is_finite_in_float32(value):
    """logvar is clamped to [-30, 20]: z, kl and gradients stay finite; outside the range and on
    its bounds the gradient through logvar is zero (as torch.clamp's), inside it is the
    reference's."""
    mu, _, eps = inputs((4, 512), torch.float32, seed=5)
    logvar = torch.full_like(mu, value)
    got = value_and_grads(ops.gaussian_reparameterize_kl, mu, logvar, eps)
    want = value_and_grads(
        reference.gaussian_reparameterize_kl, mu.double(), logvar.double(), eps.double()
    )
    for name, g, w in zip(
        ("z", "kl", "grad mu", "grad logvar", "grad eps"), got, want, strict=True
    ):
        assert torch.isfinite(g).all(), name
        torch.testing.assert_close(
            g.double(), w, rtol=1e-5, atol=1e-5, msg=lambda m, name=name: f"{name}: {m}"
        )
    if not -30 < value < 20:
        assert (got[3] == 0).all()


def test_fixed_eps_is_bit_identical_across_calls_and_threads():
    mu, logvar, eps = inputs((64, 333), torch.float32, seed=6)
    first = ops.gaussian_reparameterize_kl(mu, logvar, eps)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = ops.gaussian_reparameterize_kl(mu, logvar, eps)
    finally:
        torch.set_num_threads(threads)
    again = ops.gaussian_reparameterize_kl(mu, logvar, eps)
    for a, b, c in zip(first, single, again, strict=True):
        assert torch.equal(a, b) and torch.equal(a, c)


def test_noise_from_generator():
    mu, logvar, _ = inputs((8, 16), seed=7)
    a = ops.gaussian_reparameterize_kl(mu, logvar, generator=torch.Generator().manual_seed(1))
    b = ops.gaussian_reparameterize_kl(mu, logvar, generator=torch.Generator().manual_seed(1))
    c = ops.gaussian_reparameterize_kl(mu, logvar, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    torch.testing.assert_close(a[1], c[1])  # kl does not depend on the noise
    eps = (a[0] - mu) / torch.exp(0.5 * logvar.clamp(-30, 20))
    assert abs(eps.mean().item()) < 0.2 and abs(eps.std().item() - 1) < 0.2
    with pytest.raises(ValueError, match="pass eps or generator, not both"):
        ops.gaussian_reparameterize_kl(mu, logvar, eps=mu, generator=torch.Generator())


def test_non_contiguous_and_empty():
    mu, logvar, eps = inputs((6, 10), seed=8)
    want = reference.gaussian_reparameterize_kl(mu, logvar, eps)
    got = ops.gaussian_reparameterize_kl(mu.t().contiguous().t(), logvar, eps.t().contiguous().t())
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
    z, kl = ops.gaussian_reparameterize_kl(*inputs((0, 5)))
    assert z.shape == (0, 5) and kl.shape == (0,)
    z, kl = ops.gaussian_reparameterize_kl(*inputs((3, 0)))
    assert z.shape == (3, 0) and torch.equal(kl, torch.zeros(3, dtype=torch.float64))


BAD = [
    (lambda m, l, e: (m.long(), l, e), "mu must be float32 or float64"),
    (lambda m, l, e: (m, l[:, :2], e), "logvar must have the shape of mu"),
    (lambda m, l, e: (m, l, e[:1]), "eps must have the shape of mu"),
    (lambda m, l, e: (m, l.float(), e), "logvar must match mu in dtype and device"),
    (lambda m, l, e: (m[0, 0], l[0, 0], e[0, 0]), "mu must have a batch dimension"),
]


@pytest.mark.parametrize("change,message", BAD)
def test_bad_input_names_the_argument(change, message):
    args = change(*inputs((3, 4)))
    with pytest.raises(RuntimeError, match=message):
        OP(*args)
    with FakeTensorMode() as mode:
        with pytest.raises(RuntimeError, match=message):
            OP(*(mode.from_tensor(a) for a in args))


def test_gaussian_latent_layer():
    layer = GaussianLatent(12, 5).double()
    features = torch.randn(7, 12, dtype=torch.float64)
    z, kl = layer(features, generator=torch.Generator().manual_seed(0))
    mu, logvar = layer.distribution(features)
    assert z.shape == (7, 5) and kl.shape == (7,)
    z_mean, kl_again = layer(features, sample=False)
    assert torch.equal(z_mean, mu)
    torch.testing.assert_close(
        kl_again, reference.gaussian_reparameterize_kl(mu, logvar, torch.zeros_like(mu))[1]
    )
    (z.sum() + kl.sum()).backward()
    assert layer.to_params.weight.grad is not None
    with pytest.raises(ValueError, match="latent_dim must be at least 1"):
        GaussianLatent(4, 0)


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_broadcast_incoming_gradient(reduce):
    """z.sum() hands the backward a stride-0 gradient, which the CPU kernel reads in place."""
    mu, logvar, eps = inputs((5, 21), seed=10)
    grads = []
    for fn in (ops.gaussian_reparameterize_kl, reference.gaussian_reparameterize_kl):
        m, lv = mu.clone().requires_grad_(), logvar.clone().requires_grad_()
        z, kl = fn(m, lv, eps)
        (getattr(z, reduce)() + kl.sum()).backward()
        grads.append((m.grad, lv.grad))
    for g, w in zip(*grads, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)


SEEDED = torch.ops.gen_ext.gaussian_reparameterize_kl_seeded


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(3, 5), (4, 64), (2, 3, 7)])
def test_noise_drawn_in_the_kernel_is_the_reference_stream(cpu_isa, dtype, shape):
    from gen_ext.ops.gaussian import draw_seed

    mu, logvar, _ = inputs(shape, dtype, seed=11)
    seed = draw_seed(torch.Generator().manual_seed(5), mu.device)
    eps = reference.gaussian_noise(shape, seed, dtype)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-5)
    torch.testing.assert_close(torch.ops.gen_ext.gaussian_noise(mu, seed), eps, **tol)
    got = value_and_grads(
        lambda m, lv, e: ops.gaussian_reparameterize_kl(
            m, lv, generator=torch.Generator().manual_seed(5)
        ),
        mu,
        logvar,
        eps,
    )
    want = value_and_grads(reference.gaussian_reparameterize_kl, mu, logvar, eps)
    for name, g, w in zip(("z", "kl", "grad mu", "grad logvar"), got[:4], want[:4], strict=True):
        torch.testing.assert_close(g, w, **tol, msg=lambda m, name=name: f"{name}: {m}")
    with ops.use_backend("reference"):
        z_ref, _ = ops.gaussian_reparameterize_kl(
            mu, logvar, generator=torch.Generator().manual_seed(5)
        )
    torch.testing.assert_close(z_ref, got[0], **tol)


def test_noise_stream_is_standard_normal_and_reproducible():
    from scipy import stats

    noise = torch.ops.gen_ext.gaussian_noise(torch.empty(200_000, dtype=torch.float64), 123)
    assert stats.kstest(noise.numpy(), "norm").pvalue > 1e-3
    pairs = noise.view(-1, 2)
    assert abs(torch.corrcoef(pairs.T)[0, 1].item()) < 0.01  # the Box-Muller pair is independent
    other = torch.ops.gen_ext.gaussian_noise(torch.empty(200_000, dtype=torch.float64), 124)
    assert abs(torch.corrcoef(torch.stack([noise, other]))[0, 1].item()) < 0.01
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = torch.ops.gen_ext.gaussian_noise(torch.empty(200_000, dtype=torch.float64), 123)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(noise, single)


def test_seeded_op_gradcheck_and_opcheck():
    mu, logvar, _ = (t.requires_grad_() for t in inputs((3, 4), seed=12, spread=1.0))
    f = lambda m, lv: SEEDED(m, lv, 77)  # noqa: E731
    assert torch.autograd.gradcheck(f, (mu, logvar))
    assert torch.autograd.gradgradcheck(f, (mu, logvar))
    torch.library.opcheck(SEEDED, (mu, logvar, 77))
    z, kl = SEEDED(mu.detach(), logvar.detach(), 77)
    torch.library.opcheck(
        torch.ops.gen_ext.gaussian_reparameterize_kl_seeded_backward,
        (torch.rand_like(z), torch.rand_like(kl), mu.detach(), logvar.detach(), 77),
    )
    torch.library.opcheck(torch.ops.gen_ext.gaussian_noise, (mu.detach(), 77))
    with pytest.raises(RuntimeError, match="like must be float32 or float64"):
        torch.ops.gen_ext.gaussian_noise(torch.zeros(3, dtype=torch.int64), 1)
