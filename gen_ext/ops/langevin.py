"""One step of Langevin dynamics, the sampler of energy-based models: the public function and its
fake kernels. Samplers run it under no_grad, so the op has no autograd; it refuses inputs that
would want one.

Kernels: csrc/cpu/langevin_kernel_impl.h and csrc/cuda/langevin_cuda.cu over the shared
per-element math csrc/include/gen_ext/langevin_math.h and the noise stream of
gen_ext/gaussian_math.h. Reference: gen_ext/reference/langevin.py.
"""

import math

import torch

from gen_ext import _extension
from gen_ext import reference as ref

from .arg_checks import FLOAT_DTYPES, check_arg, check_shaped_like
from .backend import get_backend
from .gaussian import draw_seed, draw_seed_tensor

OP = "gen_ext::langevin_step"
INPLACE_OP = "gen_ext::langevin_step_"


def check_inputs(x, grad_energy, step_size, noise_scale, lo, hi, op="langevin_step") -> None:
    """The conditions and messages of csrc/langevin_checks.h."""
    check_arg(x.dtype in FLOAT_DTYPES, op, f"x must be float32 or float64, got {x.dtype}")
    check_shaped_like(grad_energy, x, op, "grad_energy", "x")
    check_arg(math.isfinite(step_size), op, f"step_size must be finite, got {step_size}")
    check_arg(
        math.isfinite(noise_scale) and noise_scale >= 0,
        op,
        f"noise_scale must be finite and >= 0, got {noise_scale}",
    )
    check_arg(lo is None or not math.isnan(lo), op, "lo must not be NaN")
    check_arg(hi is None or not math.isnan(hi), op, "hi must not be NaN")
    check_arg(
        lo is None or hi is None or lo <= hi,
        op,
        f"lo must not exceed hi, got lo = {lo} and hi = {hi}",
    )


def _bounds(clamp) -> tuple[float | None, float | None]:
    if clamp is None:
        return None, None
    try:
        lo, hi = clamp
    except (TypeError, ValueError):
        raise ValueError(
            f"langevin_step: clamp must be (lo, hi) (either may be None), got {clamp!r}"
        ) from None
    return (None if lo is None else float(lo)), (None if hi is None else float(hi))


def langevin_step(
    x: torch.Tensor,
    grad_energy: torch.Tensor,
    step_size: float,
    noise_scale: float,
    clamp: tuple[float | None, float | None] | None = None,
    generator: torch.Generator | None = None,
    inplace: bool = False,
) -> torch.Tensor:
    """x <- clamp(x - step_size * grad_energy + noise_scale * noise, lo, hi) in one pass: a step of
    (stochastic gradient) Langevin dynamics on the energy whose gradient at x is grad_energy.

    The noise ~ N(0, 1) is drawn inside the kernel from the counter-based stream whose seed comes
    from `generator` (or the default generator of x's device), element i of x taking element i
    of the stream, so a generator seed reproduces the step on any device and thread count.
    `clamp` = (lo, hi) keeps the result in range (either bound None: none). With inplace=True x
    is overwritten and returned (no new tensor: the sampler's loop allocates nothing). For
    sampling: no gradients (call it under torch.no_grad())."""
    if torch.is_grad_enabled() and (x.requires_grad or grad_energy.requires_grad):
        raise ValueError(
            "langevin_step: the sampling step has no gradients; call it under torch.no_grad() "
            "(or pass tensors that do not require grad)"
        )
    lo, hi = _bounds(clamp)
    step_size, noise_scale = float(step_size), float(noise_scale)
    op = "langevin_step_" if inplace else "langevin_step"
    if get_backend() == "reference":
        check_inputs(x, grad_energy, step_size, noise_scale, lo, hi, op)
        seed = draw_seed_tensor(generator, x.device)
        out = ref.langevin_step(x, grad_energy, step_size, noise_scale, lo, hi, seed)
        return x.copy_(out) if inplace else out
    _extension.require()
    seed = draw_seed(generator, x.device)
    if inplace:
        torch.ops.gen_ext.langevin_step_(x, grad_energy, step_size, noise_scale, lo, hi, seed)
        return x
    return torch.ops.gen_ext.langevin_step(x, grad_energy, step_size, noise_scale, lo, hi, seed)


# ---- registrations (run by gen_ext.ops once gen_ext._C is loaded) ----


def _fake(x, grad_energy, step_size, noise_scale, lo, hi, seed):
    check_inputs(x, grad_energy, step_size, noise_scale, lo, hi)
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _fake_inplace(x, grad_energy, step_size, noise_scale, lo, hi, seed):
    check_inputs(x, grad_energy, step_size, noise_scale, lo, hi, "langevin_step_")


def register() -> None:
    torch.library.register_fake(OP, _fake)
    torch.library.register_fake(INPLACE_OP, _fake_inplace)
