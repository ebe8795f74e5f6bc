"""Shifted convolutions (Gated PixelCNN's stacks, PixelCNN++): dense convolutions padded on the top
(and left) only, so that an output pixel never sees the rows below it (down-shifted) or, in
addition, the pixels to its right (down-right-shifted); their transposes upsample with the same
property. No tap is masked, so every weight is used.

Combined with `shift_down` / `shift_right` (which move a feature map by one pixel, filling with
zeros) they build receptive fields that cover every pixel before the current one in raster order
and nothing else: a vertical stream that sees the rows strictly above, and a horizontal stream that
also sees the pixels to the left on the current row. Causality is by construction (padding and
slicing), which the tests check exactly.
"""

import torch
import torch.nn.functional as F
from torch import nn

from gen_ext import ops
from gen_ext.reference.shifted_conv import shifted_padding


def shift_down(x: torch.Tensor, rows: int = 1) -> torch.Tensor:
    """x moved down by `rows` along dim -2, zeros entering at the top:
    [..., H, W] -> [..., H, W]."""
    return F.pad(x, (0, 0, rows, 0))[..., : x.shape[-2], :]


def shift_right(x: torch.Tensor, cols: int = 1) -> torch.Tensor:
    """x moved right by `cols` along dim -1, zeros entering on the left."""
    return F.pad(x, (cols, 0))[..., : x.shape[-1]]


def _kernel(value, name: str, cls: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(not isinstance(v, int) or v < 1 for v in pair):
        raise ValueError(f"{cls}: {name} must be a positive int or a pair of them, got {value!r}")
    return pair


def _stride(value, cls: str) -> int:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{cls}: stride must be a positive int, got {value!r}")
    return value


class _CausallyPaddedConv2d(nn.Conv2d):
    """A convolution whose input gets the zero border `causal_padding` (left, right, top, bottom,
    as F.pad orders it; set by the subclass) before it is read. With stride 1 it is the op
    gen_ext.ops.shifted_conv2d (`shift` set by the subclass), which pads no rows; a
    larger stride pads a copy and runs nn.Conv2d (the op has no stride), and so does the
    reference backend: there the layer is what a plain PyTorch model computes, the baseline the
    model benchmarks compare with (the op's own reference, tap by tap, is slower than that)."""

    causal_padding: tuple[int, int, int, int]
    shift: str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == (1, 1) and ops.get_backend() == "kernels":
            return ops.shifted_conv2d(x, self.weight, self.bias, self.shift)
        return self.forward_padded(F.pad(x, self.causal_padding))

    def forward_padded(self, x_padded: torch.Tensor) -> torch.Tensor:
        """The convolution of an input already inside its zero border, such as
        gen_ext.ops.concat_elu(x, pad=conv.causal_padding) writes: no padded copy."""
        return super().forward(x_padded)


class DownShiftedConv2d(_CausallyPaddedConv2d):
    """Output (i, j) sees input rows s*i-kh+1 .. s*i and columns s*j-(kw-1)/2 .. s*j+(kw-1)/2 (s the
    stride): its own row and the rows above, never a row below. kw must be odd (centred).
    An H x W input gives ceil(H/s) x ceil(W/s). Stride 1 runs gen_ext.ops.shifted_conv2d (no
    rows padded); a larger stride, or the reference backend, pads a copy and runs nn.Conv2d.

    >>> conv = DownShiftedConv2d(32, 64, (2, 3))        # [B, 32, H, W] -> [B, 64, H, W]
    """

    shift = "down"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size=(2, 3),
        stride: int = 1,
        bias: bool = True,
    ):
        kh, kw = _kernel(kernel_size, "kernel_size", type(self).__name__)
        if kw % 2 == 0:
            raise ValueError(
                f"{type(self).__name__}: the kernel width must be odd (it is centred), "
                f"got kernel_size {kernel_size!r}"
            )
        super().__init__(
            in_channels, out_channels, (kh, kw), _stride(stride, type(self).__name__), bias=bias
        )
        self.causal_padding = shifted_padding(self.shift, kh, kw)  # left, right, top, bottom


class DownRightShiftedConv2d(_CausallyPaddedConv2d):
    """Output (i, j) sees input rows s*i-kh+1 .. s*i and columns s*j-kw+1 .. s*j: the pixels above
    and to the left, and its own. An H x W input gives ceil(H/s) x ceil(W/s). Stride 1 runs
    gen_ext.ops.shifted_conv2d (no rows padded); a larger stride, or the reference backend, pads
    a copy and runs nn.Conv2d.

    >>> conv = DownRightShiftedConv2d(32, 64, (2, 2))   # [B, 32, H, W] -> [B, 64, H, W]
    """

    shift = "down_right"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size=(2, 2),
        stride: int = 1,
        bias: bool = True,
    ):
        kh, kw = _kernel(kernel_size, "kernel_size", type(self).__name__)
        super().__init__(
            in_channels, out_channels, (kh, kw), _stride(stride, type(self).__name__), bias=bias
        )
        self.causal_padding = shifted_padding(self.shift, kh, kw)


class DownShiftedConvTranspose2d(nn.ConvTranspose2d):
    """Upsampling by the stride s: H x W -> s*H x s*W. Output row r reads only input rows at or
    above r // s, so a map whose row i sees the data rows above s*i upsamples to one whose row r
    sees the rows above r. Columns are centred (kw odd). Needs kh >= s and (kw + 1) / 2 >= s to
    fill every output.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size=(2, 3),
        stride: int = 2,
        bias: bool = True,
    ):
        name = type(self).__name__
        kh, kw = _kernel(kernel_size, "kernel_size", name)
        stride = _stride(stride, name)
        if kw % 2 == 0 or kh < stride or (kw + 1) // 2 < stride:
            raise ValueError(
                f"{name}: kernel_size must have an odd width, a height of at least "
                f"the stride and (width + 1) / 2 of at least the stride, got "
                f"{kernel_size!r} with stride {stride}"
            )
        super().__init__(in_channels, out_channels, (kh, kw), stride, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the full transposed convolution is ((H-1)s + kh) x ((W-1)s + kw); keep the top s*H rows
        # (each reads input rows at or above its own) and the s*W centred columns
        s = self.stride[0]
        left = (self.kernel_size[1] - 1) // 2
        H, W = x.shape[-2:]
        return super().forward(x)[..., : s * H, left : left + s * W]


class DownRightShiftedConvTranspose2d(nn.ConvTranspose2d):
    """Upsampling by the stride s: H x W -> s*H x s*W. Output (r, c) reads only input pixels at
    rows <= r // s and columns <= c // s, so a map whose (i, j) sees the data before (s*i, s*j) in
    raster order upsamples to one whose (r, c) sees the data before (r, c). Needs kh >= s and
    kw >= s to fill every output."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size=(2, 2),
        stride: int = 2,
        bias: bool = True,
    ):
        name = type(self).__name__
        kh, kw = _kernel(kernel_size, "kernel_size", name)
        stride = _stride(stride, name)
        if kh < stride or kw < stride:
            raise ValueError(
                f"{name}: kernel_size must be at least the stride in both dimensions, "
                f"got {kernel_size!r} with stride {stride}"
            )
        super().__init__(in_channels, out_channels, (kh, kw), stride, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride[0]
        H, W = x.shape[-2:]
        return super().forward(x)[..., : s * H, : s * W]
