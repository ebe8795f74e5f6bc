"""Fused Gaussian reparameterization and KL: the public function and its torch.library
registrations (fake kernels, autograd with double backward).

Kernels: csrc/cpu/gaussian_kernel_impl.h and csrc/cuda/gaussian_cuda.cu over the shared
per-element math csrc/include/gen_ext/gaussian_math.h. Reference: gen_ext/reference/gaussian.py.
"""

import torch

from gen_ext import _extension
from gen_ext import reference as ref

from .arg_checks import FLOAT_DTYPES, check_arg, check_shaped_like
from .backend import get_backend
from .second_order import backward_of_backward, register_autograd_pair

OP = "gen_ext::gaussian_reparameterize_kl"
BACKWARD_OP = "gen_ext::gaussian_reparameterize_kl_backward"
SEEDED_OP = "gen_ext::gaussian_reparameterize_kl_seeded"
SEEDED_BACKWARD_OP = "gen_ext::gaussian_reparameterize_kl_seeded_backward"
NOISE_OP = "gen_ext::gaussian_noise"


def check_inputs(mu, logvar, eps, op="gaussian_reparameterize_kl"):
    """The conditions and messages of csrc/gaussian_checks.h (eps None: drawn in the kernel)."""
    check_arg(mu.dtype in FLOAT_DTYPES, op, f"mu must be float32 or float64, got {mu.dtype}")
    check_arg(mu.dim() >= 1, op, "mu must have a batch dimension, got a 0-d tensor")
    for name, t in (("logvar", logvar), ("eps", eps)):
        if t is None:
            continue
        check_shaped_like(t, mu, op, name, "mu")


def gaussian_reparameterize_kl(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    eps: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
):
    """z = mu + exp(logvar / 2) * eps and kl = KL(N(mu, exp(logvar)) || N(0, I)) summed over every
    dimension but the first, in one pass (and one pass backward; double backward works).

    logvar is clamped to [-30, 20] (gradients stop outside, as with torch.clamp), which keeps z, kl
    and the gradients finite in float32. When eps is not given, the kernel draws eps ~ N(0, 1)
    itself from a counter-based stream whose seed comes from `generator` (so a generator seed
    reproduces z on any thread count), and the backward regenerates it instead of storing it;
    pass eps or generator, not both. Returns (z shaped like mu, kl of shape [B])."""
    if eps is not None and generator is not None:
        raise ValueError("gaussian_reparameterize_kl: pass eps or generator, not both")
    if eps is None:
        if get_backend() == "reference":
            check_inputs(mu, logvar, None)
            seed = draw_seed_tensor(generator, mu.device)
            eps = ref.gaussian_noise(mu.shape, seed, mu.dtype, mu.device)
            return ref.gaussian_reparameterize_kl(mu, logvar, eps)
        _extension.require()
        seed = draw_seed(generator, mu.device)
        return torch.ops.gen_ext.gaussian_reparameterize_kl_seeded(mu, logvar, seed)
    if get_backend() == "reference":
        check_inputs(mu, logvar, eps)
        return ref.gaussian_reparameterize_kl(mu, logvar, eps)
    _extension.require()
    return torch.ops.gen_ext.gaussian_reparameterize_kl(mu, logvar, eps)


def draw_seed_tensor(generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """A seed for the kernels' noise stream as a 0-d int64 tensor, drawn from `generator` (or the
    default generator of `device`), so the generator's state decides the noise as it would for
    torch.randn. The references take it as it is: under torch.compile a Python int would be a
    new constant, and a recompilation, at every call."""
    where = generator.device if generator is not None else device
    return torch.randint(0, 2**62, (), generator=generator, device=where)


def draw_seed(generator: torch.Generator | None, device: torch.device) -> int:
    """draw_seed_tensor's value, for the kernels' int argument."""
    return int(draw_seed_tensor(generator, device).item())


# ---- registrations (run by gen_ext.ops once gen_ext._C is loaded) ----


def _fake(mu, logvar, eps, op="gaussian_reparameterize_kl"):
    check_inputs(mu, logvar, eps, op)
    return torch.empty_like(mu, memory_format=torch.contiguous_format), mu.new_empty(mu.shape[:1])


def _backward_fake(grad_z, grad_kl, mu, logvar, eps, op="gaussian_reparameterize_kl_backward"):
    check_inputs(mu, logvar, eps, op)
    check_arg(
        grad_z.shape == mu.shape,
        op,
        f"grad_z must have the shape of mu {list(mu.shape)}, got {list(grad_z.shape)}",
    )
    check_arg(
        grad_kl.dim() == 1 and grad_kl.shape[0] == mu.shape[0],
        op,
        f"grad_kl must have shape [B] = [{mu.shape[0]}], got {list(grad_kl.shape)}",
    )
    return tuple(torch.empty_like(mu, memory_format=torch.contiguous_format) for _ in range(3))


def _dense_incoming(mu, grad_z, grad_kl):
    """Autograd passes None for an output nobody used; the kernels want zeros there."""
    grad_z = torch.zeros_like(mu) if grad_z is None else grad_z
    grad_kl = mu.new_zeros(mu.shape[:1]) if grad_kl is None else grad_kl
    return grad_z, grad_kl


def _setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _backward(ctx, grad_z, grad_kl):
    mu, logvar, eps = ctx.saved_tensors
    grad_z, grad_kl = _dense_incoming(mu, grad_z, grad_kl)
    return torch.ops.gen_ext.gaussian_reparameterize_kl_backward(grad_z, grad_kl, mu, logvar, eps)


def _backward_setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _backward_backward(ctx, gg_mu, gg_logvar, gg_eps):
    grad_z, grad_kl, mu, logvar, eps = ctx.saved_tensors
    return tuple(
        backward_of_backward(
            ref.gaussian_reparameterize_kl,
            (mu, logvar, eps),
            (grad_z, grad_kl),
            (gg_mu, gg_logvar, gg_eps),
        )
    )


def _seeded_fake(mu, logvar, seed):
    return _fake(mu, logvar, None, "gaussian_reparameterize_kl_seeded")


def _seeded_backward_fake(grad_z, grad_kl, mu, logvar, seed):
    return _backward_fake(
        grad_z, grad_kl, mu, logvar, None, "gaussian_reparameterize_kl_seeded_backward"
    )[:2]


def _noise_fake(like, seed):
    check_arg(
        like.dtype in FLOAT_DTYPES,
        "gaussian_noise",
        f"like must be float32 or float64, got {like.dtype}",
    )
    return torch.empty_like(like, memory_format=torch.contiguous_format)


def _seeded_setup_context(ctx, inputs, output):
    mu, logvar, seed = inputs
    ctx.save_for_backward(mu, logvar)
    ctx.seed = seed


def _seeded_backward(ctx, grad_z, grad_kl):
    mu, logvar = ctx.saved_tensors
    grad_z, grad_kl = _dense_incoming(mu, grad_z, grad_kl)
    grad_mu, grad_logvar = torch.ops.gen_ext.gaussian_reparameterize_kl_seeded_backward(
        grad_z, grad_kl, mu, logvar, ctx.seed
    )
    return grad_mu, grad_logvar, None


def _seeded_backward_setup_context(ctx, inputs, output):
    grad_z, grad_kl, mu, logvar, seed = inputs
    ctx.save_for_backward(grad_z, grad_kl, mu, logvar)
    ctx.seed = seed


def _seeded_backward_backward(ctx, gg_mu, gg_logvar):
    grad_z, grad_kl, mu, logvar = ctx.saved_tensors
    eps = torch.ops.gen_ext.gaussian_noise(mu, ctx.seed)  # the noise the kernels drew
    reference = lambda m, lv: ref.gaussian_reparameterize_kl(m, lv, eps)  # noqa: E731
    return (
        *backward_of_backward(reference, (mu, logvar), (grad_z, grad_kl), (gg_mu, gg_logvar)),
        None,
    )


def register() -> None:
    torch.library.register_fake(SEEDED_OP, _seeded_fake)
    torch.library.register_fake(SEEDED_BACKWARD_OP, _seeded_backward_fake)
    register_autograd_pair(
        SEEDED_OP,
        SEEDED_BACKWARD_OP,
        backward=_seeded_backward,
        setup_context=_seeded_setup_context,
        backward_backward=_seeded_backward_backward,
        backward_setup_context=_seeded_backward_setup_context,
    )
    torch.library.register_fake(NOISE_OP, _noise_fake)
    torch.library.register_fake(OP, _fake)
    torch.library.register_fake(BACKWARD_OP, _backward_fake)
    register_autograd_pair(
        OP,
        BACKWARD_OP,
        backward=_backward,
        setup_context=_setup_context,
        backward_backward=_backward_backward,
        backward_setup_context=_backward_setup_context,
    )
