"""The argument-check primitive of the Python side of the ops (fake kernels, Triton paths)."""

import torch

FLOAT_DTYPES = (torch.float32, torch.float64)


def check_arg(cond, op: str, message: str) -> None:
    """Raises RuntimeError("op: message") unless cond, as TORCH_CHECK does in the kernels."""
    torch._check(cond, lambda: f"{op}: {message}")


def check_like_output(t, want, x, op: str, name: str) -> None:
    """`t` (an incoming gradient, a residual) must have the output's shape `want` and x's dtype
    and device; the messages of the kernels' own checks."""
    want = list(want)
    check_arg(
        list(t.shape) == want,
        op,
        f"{name} must have the output's shape {want}, got {list(t.shape)}",
    )
    check_arg(
        t.dtype == x.dtype and t.device == x.device,
        op,
        f"{name} must match x in dtype and device ({x.dtype} on {x.device}), "
        f"got {t.dtype} on {t.device}",
    )


def check_shaped_like(t, ref, op: str, name: str, ref_name: str) -> None:
    """`t` must have the shape, dtype and device of the input `ref` (named `ref_name`)."""
    check_arg(
        t.shape == ref.shape,
        op,
        f"{name} must have the shape of {ref_name} {list(ref.shape)}, got {list(t.shape)}",
    )
    check_arg(
        t.dtype == ref.dtype and t.device == ref.device,
        op,
        f"{name} must match {ref_name} in dtype and device ({ref.dtype} on {ref.device}), "
        f"got {t.dtype} on {t.device}",
    )
