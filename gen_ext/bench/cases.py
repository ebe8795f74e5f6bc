"""Benchmark cases: for each op, a zero-argument callable per implementation (the fused op, the
eager reference, torch.compile of the reference) doing one forward (+ backward where the op is
differentiable) on the same inputs."""

from dataclasses import dataclass, field
from typing import Callable

import torch

from gen_ext import ops, reference
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


def _compiled(fn):
    # dynamic=False: the benchmark shapes are fixed; mode default, as users would call it
    return torch.compile(fn, dynamic=False)


def _implementations(fused, reference_fn) -> dict:
    """The three implementations of an op, built lazily (compilation happens on first use)."""
    return {"fused": lambda: fused, "eager": lambda: reference_fn,
            "compiled": lambda: _compiled(reference_fn)}


def _builders(impls: dict, step) -> dict:
    """implementation name -> builder of its zero-argument step, step(fn) making one from fn."""
    return {name: (lambda get=get: step(get())) for name, get in impls.items()}


def _no_grad(run):
    def step():
        with torch.no_grad():
            run()
    return step


def dlm_nll_case(device: torch.device, batch: int = 16) -> BenchCase:
    x, params = make_dlm_inputs(batch, 3, 10, (32, 32), 256, dtype=torch.float32, seed=0,
                                device=device)
    params.requires_grad_()
    impls = _implementations(ops.discretized_logistic_mixture_nll,
                             reference.discretized_logistic_mixture_nll)

    def full(fn):
        def step():
            params.grad = None
            fn(x, params, 256).sum().backward()
        return step

    nll_bytes = batch * 32 * 32 * 4
    return BenchCase(
        "discretized_logistic_mixture_nll",
        f"B={batch}, 3x32x32, M=10, float32, {device.type}",
        make=_builders(impls, full),
        forward_only=_builders(impls, lambda fn: _no_grad(lambda: fn(x, params, 256))),
        result_bytes=nll_bytes + params.numel() * params.element_size(),
    )


def dlm_sample_case(device: torch.device, batch: int = 16) -> BenchCase:
    _, params = make_dlm_inputs(batch, 3, 10, (32, 32), 256, dtype=torch.float32, seed=0,
                                device=device)
    g = torch.Generator(device=device).manual_seed(0)
    nm = torch.rand((batch, 10, 32, 32), generator=g, device=device)
    nl = torch.rand((batch, 3, 32, 32), generator=g, device=device)
    impls = _implementations(torch.ops.gen_ext.discretized_logistic_mixture_sample,
                             reference.discretized_logistic_mixture_sample)
    made = _builders(impls, lambda fn: lambda: fn(params, nm, nl, 3, 256))
    return BenchCase("discretized_logistic_mixture_sample",
                     f"B={batch}, 3x32x32, M=10, float32, {device.type} (from given noise)",
                     make=made, forward_only=made, result_bytes=nl.numel() * nl.element_size())


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

    return BenchCase("gaussian_reparameterize_kl",
                     f"B={batch}, {dim} latent dims, float32, {device.type} (given eps)",
                     make=_builders(impls, full),
                     forward_only=_builders(impls, lambda fn: _no_grad(lambda: fn(mu, logvar, eps))),
                     result_bytes=(3 * batch * dim + batch) * 4)


CASES = {
    "discretized_logistic_mixture_nll": dlm_nll_case,
    "discretized_logistic_mixture_sample": dlm_sample_case,
    "gaussian_reparameterize_kl": gaussian_case,
}
