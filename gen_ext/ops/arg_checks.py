"""The argument-check primitive of the Python side of the ops (fake kernels, Triton paths)."""

import torch

FLOAT_DTYPES = (torch.float32, torch.float64)


def check_arg(cond, op: str, message: str) -> None:
    """Raises RuntimeError("op: message") unless cond, as TORCH_CHECK does in the kernels."""
    torch._check(cond, lambda: f"{op}: {message}")
