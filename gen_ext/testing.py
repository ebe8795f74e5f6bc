"""Inputs shared by the test suite, `gen-ext check` and `gen-ext bench`."""

import torch


def dlm_num_params(C: int, M: int) -> int:
    return (10 if C == 3 else 3) * M


def grid_values(num_bins: int, dtype=torch.float64) -> torch.Tensor:
    return torch.linspace(-1, 1, num_bins, dtype=dtype)


def make_dlm_inputs(B=2, C=3, M=4, spatial=(5, 7), num_bins=256, dtype=torch.float64, seed=0,
                    scale=1.0, device="cpu"):
    """x on the bin grid (edges included) and params in the public code's layout, with
    log-scales spread over [-9, 2] so every branch (edges, interior, underflowed interior) occurs."""
    g = torch.Generator().manual_seed(seed)
    levels = torch.randint(0, num_bins, (B, C, *spatial), generator=g)
    x = (levels.to(dtype) * (2.0 / (num_bins - 1)) - 1.0)
    # the open-ended edge bins are rare for many levels: put a tenth of the values on each
    edge = torch.rand(x.shape, generator=g)
    x = torch.where(edge < 0.1, -1.0, torch.where(edge > 0.9, 1.0, x)).to(dtype)
    P = dlm_num_params(C, M)
    params = torch.randn((B, P, *spatial), generator=g, dtype=dtype) * scale
    per_channel = 3 if C == 3 else 2
    for c in range(C):
        start = M + per_channel * M * c + M
        params[:, start:start + M] = torch.rand((B, M, *spatial), generator=g, dtype=dtype) * 11 - 9
    return x.to(device), params.to(device)
