"""Argument checks of the discretized logistic mixture ops for the fake (meta) kernels and the
Triton path: the same conditions and messages as csrc/dlm_checks.h, which the C++ kernels run."""

import torch

from gen_ext.reference.dlm import params_per_component

from .arg_checks import FLOAT_DTYPES, check_arg

NLL = "discretized_logistic_mixture_nll"
NLL_BACKWARD = "discretized_logistic_mixture_nll_backward"
NLL_WITH_GRAD = "discretized_logistic_mixture_nll_with_grad"
SAMPLE = "discretized_logistic_mixture_sample"


def check_dtype(t: torch.Tensor, op: str, name: str) -> None:
    check_arg(t.dtype in FLOAT_DTYPES, op, f"{name} must be float32 or float64, got {t.dtype}")


def check_num_bins(num_bins: int, op: str) -> None:
    check_arg(num_bins >= 2, op, f"num_bins must be at least 2, got {num_bins}")


def check_params(params: torch.Tensor, data_shape, channels: int, op: str) -> int:
    """params [B, P, *spatial] against data [B, C, *spatial]; returns M."""
    data_shape = tuple(data_shape)
    check_dtype(params, op, "params")
    check_arg(
        params.dim() == len(data_shape),
        op,
        "params must have the same number of dimensions as x ([B, P, *spatial] against "
        f"[B, C, *spatial]), got params of shape {tuple(params.shape)} and x of shape {data_shape}",
    )
    check_arg(
        params.shape[0] == data_shape[0],
        op,
        f"params and x must have the same batch size, got {params.shape[0]} and {data_shape[0]}",
    )
    check_arg(
        tuple(params.shape[2:]) == data_shape[2:],
        op,
        "params and x must have the same spatial shape, got params of shape "
        f"{tuple(params.shape)} and x of shape {data_shape}",
    )
    per = params_per_component(channels)
    P = params.shape[1]
    check_arg(
        P > 0 and P % per == 0,
        op,
        f"params must have {per}*M channels for {channels}-channel data "
        f"(M mixture components), got {P}",
    )
    return P // per


def check_nll_inputs(x: torch.Tensor, params: torch.Tensor, num_bins: int, op: str = NLL) -> int:
    check_num_bins(num_bins, op)
    check_dtype(x, op, "x")
    check_arg(x.dim() >= 2, op, f"x must have shape [B, C, *spatial], got {tuple(x.shape)}")
    C = x.shape[1]
    check_arg(C in (1, 3), op, f"x must have 1 or 3 channels, got {C}")
    check_arg(
        params.device == x.device,
        op,
        f"params and x must be on the same device, got {params.device} and {x.device}",
    )
    check_arg(
        params.dtype == x.dtype,
        op,
        f"params and x must have the same dtype, got {params.dtype} and {x.dtype}",
    )
    return check_params(params, x.shape, C, op)


def check_nll_grad(grad: torch.Tensor, x: torch.Tensor, op: str = NLL_BACKWARD) -> None:
    want = (x.shape[0], *x.shape[2:])
    check_arg(
        tuple(grad.shape) == want,
        op,
        f"grad must have shape [B, *spatial] = {list(want)}, got {tuple(grad.shape)}",
    )
    check_arg(
        grad.dtype == x.dtype and grad.device == x.device,
        op,
        f"grad must match x in dtype and device, got {grad.dtype} on {grad.device}",
    )


def check_sample_params(
    params: torch.Tensor, num_channels: int, num_bins: int, op: str = SAMPLE
) -> int:
    """The sampler's params and settings; returns M."""
    check_num_bins(num_bins, op)
    check_arg(num_channels in (1, 3), op, f"num_channels must be 1 or 3, got {num_channels}")
    check_arg(
        params.dim() >= 2, op, f"params must have shape [B, P, *spatial], got {tuple(params.shape)}"
    )
    data_shape = (params.shape[0], num_channels, *params.shape[2:])
    return check_params(params, data_shape, num_channels, op)


def check_sample_inputs(
    params: torch.Tensor,
    noise_mixture: torch.Tensor,
    noise_logistic: torch.Tensor,
    num_channels: int,
    num_bins: int,
    op: str = SAMPLE,
) -> int:
    M = check_sample_params(params, num_channels, num_bins, op)
    mix_shape = (params.shape[0], M, *params.shape[2:])
    data_shape = (params.shape[0], num_channels, *params.shape[2:])
    check_arg(
        tuple(noise_mixture.shape) == mix_shape,
        op,
        f"noise_mixture must have shape [B, M, *spatial] = {list(mix_shape)}, "
        f"got {tuple(noise_mixture.shape)}",
    )
    check_arg(
        tuple(noise_logistic.shape) == data_shape,
        op,
        f"noise_logistic must have shape [B, C, *spatial] = {list(data_shape)}, "
        f"got {tuple(noise_logistic.shape)}",
    )
    for t in (noise_mixture, noise_logistic):
        check_arg(
            t.dtype == params.dtype and t.device == params.device,
            op,
            f"noise must match params in dtype and device ({params.dtype} on {params.device}), "
            f"got {t.dtype} on {t.device}",
        )
    return M
