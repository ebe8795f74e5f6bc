"""The argument-check primitive of the Python side of the ops (fake kernels, Triton paths)."""

import torch

FLOAT_DTYPES = (torch.float32, torch.float64)


def check_arg(cond, op: str, message: str) -> None:
    """Raises RuntimeError("op: message") unless cond, as TORCH_CHECK does in the kernels."""
    torch._check(cond, lambda: f"{op}: {message}")


def check_like_x(t, x, op: str, name: str) -> None:
    """`t` must have x's dtype and device."""
    check_arg(
        t.dtype == x.dtype and t.device == x.device,
        op,
        f"{name} must match x in dtype and device ({x.dtype} on {x.device}), "
        f"got {t.dtype} on {t.device}",
    )


def check_shaped(t, x, shape, op: str, name: str) -> None:
    """`t` must have the shape `shape` and x's dtype and device."""
    shape = list(shape)
    check_arg(list(t.shape) == shape, op, f"{name} must have shape {shape}, got {list(t.shape)}")
    check_like_x(t, x, op, name)


def check_dropout_p(p, op: str) -> None:
    """p in [0, 1), printed as the kernels print a double (2.0 as 2)."""
    check_arg(0.0 <= p < 1.0, op, f"p must lie in [0, 1), got {p:g}")


def check_like_output(t, want, x, op: str, name: str) -> None:
    """`t` (an incoming gradient, a residual) must have the output's shape `want` and x's dtype
    and device; the messages of the kernels' own checks."""
    want = list(want)
    check_arg(
        list(t.shape) == want,
        op,
        f"{name} must have the output's shape {want}, got {list(t.shape)}",
    )
    check_like_x(t, x, op, name)


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


def check_conv2d_operands(x, weight, op: str) -> None:
    """x [B, C, H, W] float32/float64 and weight [out_channels, C, kh, kw] like it: the checks
    every 2-D convolution op shares (csrc/conv2d_checks.h)."""
    check_arg(x.dim() == 4, op, f"x must be 4-D [B, C, H, W], got {x.dim()}-D")
    check_arg(x.dtype in FLOAT_DTYPES, op, f"x must be float32 or float64, got {x.dtype}")
    check_arg(
        weight.dim() == 4,
        op,
        f"weight must be 4-D [out_channels, in_channels, kh, kw], got {weight.dim()}-D",
    )
    check_like_x(weight, x, op, "weight")
    check_arg(
        weight.shape[1] == x.shape[1],
        op,
        f"weight has {weight.shape[1]} input channels but x has {x.shape[1]}",
    )


def check_conv2d_bias(bias, weight, x, op: str) -> None:
    """bias (or None): [out_channels], like x."""
    if bias is None:
        return
    check_arg(
        bias.shape == weight.shape[:1],
        op,
        f"bias must have shape [{weight.shape[0]}], got {list(bias.shape)}",
    )
    check_like_x(bias, x, op, "bias")
