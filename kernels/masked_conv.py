"""The masked convolution's GPU kernels in Triton: an implicit GEMM over the kept taps only.

A "tap plan" (built on the host from the reference mask) lists the kept taps as offsets into the
source image and, for each group of output channels n and each tap, the one range of k (source
channels) that group reads. Then
    dst[b, n, y, x] = bias[n]
                      + sum_t sum_{k in range(g(n), t)} src[b, k, y + oy_t, x + ox_t] * w[t, k, n]
serves the forward (src = x, k = input channel, n = output channel) and the input gradient
(src = the output gradient, k = output channel, n = input channel, taps mirrored), and
    gw[t, k, n] = sum_{b, y, x} src[b, k, y + oy_t, x + ox_t] * grad[b, n, y, x]
is the weight gradient. Reads outside the image are masked (zero padding), and a pixel's taps
outside the image add nothing to it (so a non-finite weight stays out of it, as in the
reference); a masked tap is neither read nor multiplied.
"""

import torch
import triton
import triton.language as tl

__all__ = ["taps_gemm", "taps_weight_grad"]


@triton.jit
def _taps_gemm_kernel(
    src_ptr,
    w_ptr,
    bias_ptr,
    dst_ptr,
    offsets_ptr,
    ranges_ptr,
    B,
    K,
    N,
    H,
    W,
    T,
    group_size,
    HAS_BIAS: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    group = tl.program_id(2)
    dtype = dst_ptr.dtype.element_ty
    plane = H * W
    pixels = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)  # over B*H*W, int64: no wrap
    pixel_ok = pixels < B * plane
    px = pixels % W
    py = (pixels // W) % H
    pb = pixels // plane
    in_group = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    n = group * group_size + in_group
    n_ok = in_group < group_size
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=dtype)
    for t in range(0, T):
        oy = tl.load(offsets_ptr + 2 * t)
        ox = tl.load(offsets_ptr + 2 * t + 1)
        k_begin = tl.load(ranges_ptr + 2 * (group * T + t))
        k_end = tl.load(ranges_ptr + 2 * (group * T + t) + 1)
        sy = py + oy
        sx = px + ox
        inside = pixel_ok & (sy >= 0) & (sy < H) & (sx >= 0) & (sx < W)
        row = pb * K * plane + sy * W + sx
        tap = tl.zeros((BLOCK_M, BLOCK_N), dtype=dtype)
        for k0 in range(k_begin, k_end, BLOCK_K):
            k = k0 + tl.arange(0, BLOCK_K)
            k_ok = k < k_end
            a = tl.load(
                src_ptr + row[:, None] + k[None, :].to(tl.int64) * plane,
                mask=inside[:, None] & k_ok[None, :],
                other=0.0,
            )
            b = tl.load(
                w_ptr + (t * K + k[:, None]).to(tl.int64) * N + n[None, :],
                mask=k_ok[:, None] & n_ok[None, :],
                other=0.0,
            )
            tap += tl.dot(a, b, input_precision=PRECISION, out_dtype=dtype)
        # a tap outside the image adds nothing: its zeros times a non-finite weight would be NaN
        acc += tl.where(inside[:, None], tap, 0.0)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + n, mask=n_ok, other=0.0)[None, :]
    out = pb * N * plane + py * W + px
    tl.store(
        dst_ptr + out[:, None] + n[None, :].to(tl.int64) * plane,
        acc,
        mask=pixel_ok[:, None] & n_ok[None, :],
    )


@triton.jit
def _taps_weight_grad_kernel(
    src_ptr,
    grad_ptr,
    gw_ptr,
    offsets_ptr,
    ranges_ptr,
    B,
    K,
    N,
    H,
    W,
    T,
    groups,
    group_size,
    PRECISION: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    pid_k = tl.program_id(0)
    pid_n = tl.program_id(1)
    t = tl.program_id(2) // groups
    group = tl.program_id(2) % groups
    dtype = gw_ptr.dtype.element_ty
    plane = H * W
    k_begin = tl.load(ranges_ptr + 2 * (group * T + t))
    k_end = tl.load(ranges_ptr + 2 * (group * T + t) + 1)
    oy = tl.load(offsets_ptr + 2 * t)
    ox = tl.load(offsets_ptr + 2 * t + 1)
    k = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    k_ok = (k >= k_begin) & (k < k_end)
    in_group = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    n = group * group_size + in_group
    n_ok = in_group < group_size
    # a block of k outside this group's range at this tap is masked: it sums nothing
    first = pid_k * BLOCK_K
    total = tl.where((first < k_end) & (first + BLOCK_K > k_begin), B * plane, 0)
    acc = tl.zeros((BLOCK_K, BLOCK_N), dtype=dtype)
    for p0 in range(0, total, BLOCK_P):
        pixels = p0 + tl.arange(0, BLOCK_P).to(tl.int64)
        pixel_ok = pixels < B * plane
        px = pixels % W
        py = (pixels // W) % H
        pb = pixels // plane
        sy = py + oy
        sx = px + ox
        inside = pixel_ok & (sy >= 0) & (sy < H) & (sx >= 0) & (sx < W)
        a = tl.load(
            src_ptr + (pb * K * plane + sy * W + sx)[None, :] + k[:, None].to(tl.int64) * plane,
            mask=k_ok[:, None] & inside[None, :],
            other=0.0,
        )
        # pixels where the tap reads outside the image add nothing, even with a non-finite
        # gradient (whose product with the padding's zero would be NaN)
        g = tl.load(
            grad_ptr + (pb * N * plane + py * W + px)[:, None] + n[None, :].to(tl.int64) * plane,
            mask=inside[:, None] & n_ok[None, :],
            other=0.0,
        )
        acc += tl.dot(a, g, input_precision=PRECISION, out_dtype=dtype)
    tl.store(
        gw_ptr + (t * K + k[:, None]).to(tl.int64) * N + n[None, :],
        acc,
        mask=k_ok[:, None] & n_ok[None, :],
    )


def _precision(dtype: torch.dtype) -> str:
    # float32 products in TF32 only when the user allowed it for matrix products
    # (torch.set_float32_matmul_precision("high")): this is an implicit GEMM. Following cuDNN's
    # allow_tf32 instead, which is on by default, put every float32 product in TF32 on an H200 and
    # `gen-ext check` measured 2-3e-2 relative error against 4-8e-5 allowed: cuDNN's flag only
    # permits TF32, and its heuristics chose full float32 algorithms for the reference there.
    if dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return "ieee"


def taps_gemm(src, packed, offsets, ranges, bias, out_channels_per_group: int):
    """dst [B, N, H, W] from src [B, K, H, W], packed [T, K, N], offsets [T, 2] (int32, oy ox),
    ranges [G, T, 2] (int32, k begin/end per group and tap) and bias [N] or None."""
    B, K, H, W = src.shape
    N = packed.shape[2]
    groups, T = ranges.shape[0], ranges.shape[1]
    dst = torch.empty((B, N, H, W), dtype=src.dtype, device=src.device)
    if dst.numel() == 0:
        return dst
    BLOCK_M, BLOCK_N, BLOCK_K = 32, 32, 16
    grid = (triton.cdiv(B * H * W, BLOCK_M), triton.cdiv(out_channels_per_group, BLOCK_N), groups)
    _taps_gemm_kernel[grid](
        src.contiguous(),
        packed,
        bias if bias is not None else packed,
        dst,
        offsets,
        ranges,
        B,
        K,
        N,
        H,
        W,
        T,
        out_channels_per_group,
        HAS_BIAS=bias is not None,
        PRECISION=_precision(src.dtype),
        BLOCK_M=BLOCK_M,
        BLOCK_N=BLOCK_N,
        BLOCK_K=BLOCK_K,
    )
    return dst


def taps_weight_grad(src, grad, offsets, ranges, out_channels_per_group: int):
    """gw [T, K, N] (zero where the plan keeps nothing) from src [B, K, H, W] and grad
    [B, N, H, W]."""
    B, K, H, W = src.shape
    N = grad.shape[1]
    groups, T = ranges.shape[0], ranges.shape[1]
    gw = torch.zeros((T, K, N), dtype=src.dtype, device=src.device)
    if B * H * W == 0 or gw.numel() == 0:
        return gw
    BLOCK_K, BLOCK_N, BLOCK_P = 16, 32, 64
    grid = (triton.cdiv(K, BLOCK_K), triton.cdiv(out_channels_per_group, BLOCK_N), T * groups)
    _taps_weight_grad_kernel[grid](
        src.contiguous(),
        grad.contiguous(),
        gw,
        offsets,
        ranges,
        B,
        K,
        N,
        H,
        W,
        T,
        groups,
        out_channels_per_group,
        PRECISION=_precision(src.dtype),
        BLOCK_K=BLOCK_K,
        BLOCK_N=BLOCK_N,
        BLOCK_P=BLOCK_P,
    )
    return gw
