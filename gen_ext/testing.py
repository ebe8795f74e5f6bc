"""Inputs shared by the test suite, `gen-ext check` and `gen-ext bench`."""

import torch

from gen_ext.reference.dlm import params_per_component


def dlm_num_params(C: int, M: int) -> int:
    return params_per_component(C) * M


def grid_values(num_bins: int, dtype=torch.float64) -> torch.Tensor:
    return torch.linspace(-1, 1, num_bins, dtype=dtype)


def make_dlm_inputs(
    B=2,
    C=3,
    M=4,
    spatial=(5, 7),
    num_bins=256,
    dtype=torch.float64,
    seed=0,
    scale=1.0,
    device="cpu",
):
    """x on the bin grid (edges included) and params in the public code's layout, with log-scales
    spread over [-9, 2] so every branch (edges, interior, underflowed interior) occurs."""
    g = torch.Generator().manual_seed(seed)
    levels = torch.randint(0, num_bins, (B, C, *spatial), generator=g)
    x = levels.to(dtype) * (2.0 / (num_bins - 1)) - 1.0
    # the open-ended edge bins are rare for many levels: put a tenth of the values on each
    edge = torch.rand(x.shape, generator=g)
    x = torch.where(edge < 0.1, -1.0, torch.where(edge > 0.9, 1.0, x)).to(dtype)
    P = dlm_num_params(C, M)
    params = torch.randn((B, P, *spatial), generator=g, dtype=dtype) * scale
    per_channel = 3 if C == 3 else 2
    for c in range(C):
        start = M + per_channel * M * c + M
        params[:, start : start + M] = (
            torch.rand((B, M, *spatial), generator=g, dtype=dtype) * 11 - 9
        )
    return x.to(device), params.to(device)


def input_dependence(fn, x: torch.Tensor, out_groups: int = 1, seed: int = 0) -> torch.Tensor:
    """Which inputs each output sees, read off autograd exactly: a bool tensor
    [out_groups, H', W', C, H, W], True where the gradient of output channel group g at (i, j)
    with respect to x[0, c, h, w] is non-zero.

    fn maps x [1, C, H, W] to [1, K, H', W']; the K channels form `out_groups` contiguous groups
    (colour groups, say). A group's channels are summed with random positive weights, so a
    dependence could hide only by an exact cancellation. A masked tap or a padded position adds
    exact zeros to a gradient, so "does not see" is an exact == 0, with no tolerance."""
    x = x.detach().clone().requires_grad_()
    out = fn(x)
    K, H, W = out.shape[1:]
    if out.shape[0] != 1 or K % out_groups:
        raise ValueError(
            f"input_dependence: fn must return [1, K, H, W] with K divisible by "
            f"out_groups ({out_groups}), got {list(out.shape)}"
        )
    g = torch.Generator().manual_seed(seed)
    weights = (torch.rand(K, generator=g, dtype=out.dtype) + 0.5).to(out.device)
    size = K // out_groups
    seen = torch.zeros((out_groups, H, W, *x.shape[1:]), dtype=torch.bool)
    for group in range(out_groups):
        for i in range(H):
            for j in range(W):
                picked = out[0, group * size : (group + 1) * size, i, j]
                w = weights[group * size : (group + 1) * size]
                (grad,) = torch.autograd.grad(
                    (picked * w).sum(), x, retain_graph=True, allow_unused=True
                )
                if grad is not None:
                    seen[group, i, j] = (grad[0] != 0).cpu()
    return seen


def raster_order_allowed(
    H: int, W: int, channels: int, out_groups: int, same_pixel: str = "none"
) -> torch.Tensor:
    """The dependence an autoregressive image model may have, in input_dependence's layout
    [out_groups, H, W, channels, H, W]: output (g, i, j) may see every input pixel before (i, j)
    in raster order, and at (i, j) itself: nothing (same_pixel="none"), the input channel groups
    before g ("earlier"), or those up to g ("up_to"), the channels split into out_groups groups."""
    if same_pixel not in ("none", "earlier", "up_to"):
        raise ValueError(
            f"raster_order_allowed: same_pixel must be 'none', 'earlier' or 'up_to', "
            f"got {same_pixel!r}"
        )
    pos = torch.arange(H * W).view(H, W)
    before = pos[:, :, None, None] > pos[None, None]  # [H, W, H, W]: (k, l) before (i, j)
    same = pos[:, :, None, None] == pos[None, None]
    group_of = torch.arange(channels) // (channels // out_groups)
    allowed = torch.zeros((out_groups, H, W, channels, H, W), dtype=torch.bool)
    for g in range(out_groups):
        allowed[g] = before[:, :, None]
        if same_pixel != "none":
            ok = group_of < g if same_pixel == "earlier" else group_of <= g
            allowed[g] |= same[:, :, None] & ok[None, None, :, None, None]
    return allowed
