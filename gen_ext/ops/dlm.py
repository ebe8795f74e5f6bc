"""Discretized logistic mixture (PixelCNN++): the public functions and their torch.library
registrations (fake kernels, autograd with double backward, the Triton sampler on CUDA).

Kernels: CPU and CUDA likelihood in csrc/ (shared math in csrc/include/gen_ext/dlm_math.h), CPU
sampler in csrc/, GPU sampler in kernels/dlm_sample.py. Reference: gen_ext/reference/dlm.py.
"""

import math

import torch

from gen_ext import _extension
from gen_ext import reference as ref

from . import dlm_checks as checks
from .backend import get_backend
from .second_order import backward_of_backward, register_autograd_pair

NLL_OP = "gen_ext::discretized_logistic_mixture_nll"
NLL_BACKWARD_OP = "gen_ext::discretized_logistic_mixture_nll_backward"
NLL_WITH_GRAD_OP = "gen_ext::discretized_logistic_mixture_nll_with_grad"
SAMPLE_OP = "gen_ext::discretized_logistic_mixture_sample"


def discretized_logistic_mixture_nll(
    x: torch.Tensor, params: torch.Tensor, num_bins: int = 256
) -> torch.Tensor:
    """Negative log-likelihood (nats) of x under a discretized logistic mixture, per position.

    x: [B, C, *spatial] in [-1, 1], C in {1, 3}, on the grid of `num_bins` levels.
    params: [B, P, *spatial], P = 10*M for C = 3 (M logits; then per channel M means, M
    log-scales, M coefficients) or 3*M for C = 1 (logits, means, log-scales).
    Returns [B, *spatial], summed over channels. Differentiable in params and x, twice.
    """
    if get_backend() == "reference":
        checks.check_nll_inputs(x, params, num_bins)
        return ref.discretized_logistic_mixture_nll(x, params, num_bins)
    _extension.require()
    if (
        torch.is_grad_enabled()
        and (x.requires_grad or params.requires_grad)
        and not torch.compiler.is_compiling()
    ):
        return _NllWithGrad.apply(x, params, num_bins)
    return torch.ops.gen_ext.discretized_logistic_mixture_nll(x, params, num_bins)


def _all_ones(grad: torch.Tensor) -> bool:
    """Whether grad is one value broadcast everywhere and that value is 1, as `nll.sum()` hands
    back: then the forward's gradients are already the answer and the scaling pass (a read and a
    write of a params-sized tensor) is skipped. Looked at on the CPU only, where reading the
    value costs no device synchronisation."""
    return (
        grad.device.type == "cpu"
        and grad.numel() > 0
        and all(st == 0 for st in grad.stride())
        and grad.reshape(-1)[0].item() == 1
    )


class _NllWithGrad(torch.autograd.Function):
    """The NLL when a backward is expected: the forward computes the gradients for an incoming
    gradient of 1 from the same evaluation of the mixture (one pass instead of two), and the first
    backward scales them by the incoming gradient in place and hands them on. A second backward
    through the graph (retain_graph) or a differentiable one (create_graph) has no such gradients
    to use and runs the backward op, whose own autograd gives the second derivatives.

    Under torch.compile the op is called directly instead (its registered autograd runs the
    backward op), since compiled graphs cannot hold this per-call state.

    The cost: the gradients (the size of params) are held from the forward to the backward."""

    @staticmethod
    def forward(ctx, x, params, num_bins):
        nll, grad_x, grad_params = torch.ops.gen_ext.discretized_logistic_mixture_nll_with_grad(
            x, params, num_bins, x.requires_grad
        )
        ctx.save_for_backward(x, params)
        ctx.num_bins = num_bins
        ctx.unit_grads = (
            grad_x,
            grad_params,
        )  # not saved tensors: the backward scales them in place
        return nll

    @staticmethod
    def backward(ctx, grad):
        unit_grads, ctx.unit_grads = ctx.unit_grads, None
        if unit_grads is None or torch.is_grad_enabled():
            return _nll_backward(ctx, grad)
        grad_x, grad_params = unit_grads
        if not _all_ones(grad):
            per_position = grad.unsqueeze(1)  # [B, 1, *spatial], broadcast over the planes
            grad_params.mul_(per_position)
            if ctx.needs_input_grad[0]:
                grad_x.mul_(per_position)
        return (
            grad_x if ctx.needs_input_grad[0] else None,
            grad_params if ctx.needs_input_grad[1] else None,
            None,
        )


def sample_discretized_logistic_mixture(
    params: torch.Tensor,
    num_channels: int,
    num_bins: int = 256,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One sample per position, [B, num_channels, *spatial], on the grid of `num_bins` levels in
    [-1, 1]: the component by Gumbel-max, then each channel's logistic in order, conditioned on the
    preceding channels. The uniforms come from `generator`, so a seed reproduces the sample."""
    M = checks.check_sample_params(params, num_channels, num_bins)
    opts = dict(dtype=params.dtype, device=params.device, generator=generator)
    noise_mixture = torch.rand((params.shape[0], M, *params.shape[2:]), **opts)
    noise_logistic = torch.rand((params.shape[0], num_channels, *params.shape[2:]), **opts)
    if get_backend() == "reference":
        return ref.discretized_logistic_mixture_sample(
            params, noise_mixture, noise_logistic, num_channels, num_bins
        )
    _extension.require()
    return torch.ops.gen_ext.discretized_logistic_mixture_sample(
        params, noise_mixture, noise_logistic, num_channels, num_bins
    )


# ---- registrations (run by gen_ext.ops once gen_ext._C is loaded) ----


def _nll_fake(x, params, num_bins):
    checks.check_nll_inputs(x, params, num_bins)
    return x.new_empty((x.shape[0], *x.shape[2:]))


def _nll_backward_fake(grad, x, params, num_bins):
    checks.check_nll_inputs(x, params, num_bins, checks.NLL_BACKWARD)
    checks.check_nll_grad(grad, x)
    return torch.empty_like(x, memory_format=torch.contiguous_format), torch.empty_like(
        params, memory_format=torch.contiguous_format
    )


def _nll_with_grad_fake(x, params, num_bins, x_grad):
    checks.check_nll_inputs(x, params, num_bins, checks.NLL_WITH_GRAD)
    return (
        x.new_empty((x.shape[0], *x.shape[2:])),
        x.new_empty(x.shape if x_grad else (0,)),
        torch.empty_like(params, memory_format=torch.contiguous_format),
    )


def _sample_fake(params, noise_mixture, noise_logistic, num_channels, num_bins):
    checks.check_sample_inputs(params, noise_mixture, noise_logistic, num_channels, num_bins)
    return params.new_empty((params.shape[0], num_channels, *params.shape[2:]))


def _sample_triton(params, noise_mixture, noise_logistic, num_channels, num_bins):
    """The GPU sampler (registered for CUDA; the tests run it on CPU tensors under
    TRITON_INTERPRET=1)."""
    checks.check_sample_inputs(params, noise_mixture, noise_logistic, num_channels, num_bins)
    from gen_ext.kernels.dlm_sample import discretized_logistic_mixture_sample_triton

    positions = math.prod(params.shape[2:])
    rows = lambda t: t.reshape(t.shape[0], t.shape[1], positions)  # noqa: E731
    out = discretized_logistic_mixture_sample_triton(
        rows(params), rows(noise_mixture), rows(noise_logistic), num_channels, num_bins
    )
    return out.view(params.shape[0], num_channels, *params.shape[2:])


def _nll_setup_context(ctx, inputs, output):
    x, params, num_bins = inputs
    ctx.save_for_backward(x, params)
    ctx.num_bins = num_bins


def _nll_backward(ctx, grad):
    x, params = ctx.saved_tensors
    grad_x, grad_params = torch.ops.gen_ext.discretized_logistic_mixture_nll_backward(
        grad, x, params, ctx.num_bins
    )
    return (
        grad_x if ctx.needs_input_grad[0] else None,
        grad_params if ctx.needs_input_grad[1] else None,
        None,
    )


def _nll_backward_setup_context(ctx, inputs, output):
    grad, x, params, num_bins = inputs
    ctx.save_for_backward(grad, x, params)
    ctx.num_bins = num_bins


def _nll_backward_backward(ctx, gg_x, gg_params):
    """Second derivatives through the reference (see second_order)."""
    grad, x, params = ctx.saved_tensors
    reference = lambda x, p: ref.discretized_logistic_mixture_nll(x, p, ctx.num_bins)  # noqa: E731
    g_grad, g_x, g_params = backward_of_backward(reference, (x, params), (grad,), (gg_x, gg_params))
    return g_grad, g_x, g_params, None


def register() -> None:
    torch.library.register_fake(NLL_OP, _nll_fake)
    torch.library.register_fake(NLL_BACKWARD_OP, _nll_backward_fake)
    register_autograd_pair(
        NLL_OP,
        NLL_BACKWARD_OP,
        backward=_nll_backward,
        setup_context=_nll_setup_context,
        backward_backward=_nll_backward_backward,
        backward_setup_context=_nll_backward_setup_context,
    )
    torch.library.register_fake(NLL_WITH_GRAD_OP, _nll_with_grad_fake)
    torch.library.register_fake(SAMPLE_OP, _sample_fake)
    torch.library.register_kernel(SAMPLE_OP, "cuda", _sample_triton)
