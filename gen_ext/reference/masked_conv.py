"""Reference masked causal convolution (PixelCNN): the weight multiplied by its mask, then a
stride-1 convolution with 'same' padding.

The mask of a kh x kw kernel (both odd, centre (kh//2, kw//2)) keeps every tap on the rows above
the centre and the taps left of the centre on its row; mask B also keeps the centre, mask A does
not. With color_channels=3 the input and output channels are three contiguous groups (R, G, B)
and at the centre tap output group g sees input groups before g (mask A) or up to g (mask B);
every other kept tap sees all input channels.
"""

import torch
import torch.nn.functional as F

from .conv_taps import conv2d_of_empty, tap

MASK_TYPES = ("A", "B")


def pixelcnn_mask(
    out_channels: int,
    in_channels: int,
    kernel_size: tuple[int, int],
    mask_type: str,
    color_channels: int = 1,
    dtype=torch.float32,
    device=None,
) -> torch.Tensor:
    """The 0/1 mask of a [out_channels, in_channels, kh, kw] weight."""
    kh, kw = kernel_size
    ch, cw = kh // 2, kw // 2
    mask = torch.zeros(out_channels, in_channels, kh, kw, dtype=dtype, device=device)
    mask[:, :, :ch, :] = 1
    mask[:, :, ch, :cw] = 1
    if color_channels == 1:
        if mask_type == "B":
            mask[:, :, ch, cw] = 1
        return mask
    go, gi = out_channels // 3, in_channels // 3
    for g_out in range(3):
        for g_in in range(3):
            if g_in < g_out or (mask_type == "B" and g_in == g_out):
                mask[g_out * go : (g_out + 1) * go, g_in * gi : (g_in + 1) * gi, ch, cw] = 1
    return mask


def masked_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask_type: str,
    color_channels: int = 1,
) -> torch.Tensor:
    """conv2d(x, weight * mask, bias) with 'same' zero padding: [B, Cin, H, W] -> [B, Cout, H, W].

    Computed tap by tap over the kept taps only, each tap a 1x1 convolution of the part of the
    image it reads. A masked weight, a tap that falls outside the image (the zero padding) or an
    input pixel seen only through such taps is never multiplied, so a NaN or inf there reaches no
    output (0 * NaN would be NaN); the kernels skip the same products."""
    out_channels, in_channels, kh, kw = weight.shape
    if x.numel() == 0 or out_channels == 0 or in_channels == 0:
        # nothing is multiplied: the dense form's handling of these shapes is the same
        return masked_conv2d_dense(x, weight, bias, mask_type, color_channels)
    ch, cw = kh // 2, kw // 2
    above = [(di, dj) for di in range(ch) for dj in range(kw)]  # every row above the centre
    left = [(ch, dj) for dj in range(cw)]  # the centre row, left of the centre
    out = sum(tap(x, weight[:, :, di, dj], di - ch, dj - cw) for di, dj in above + left)
    # the centre tap: output group g sees the input groups before it (mask A) or up to it (B),
    # input channels [0, seen): pixelcnn_mask's centre, counted from the shapes (not from the
    # mask tensor, which would break a torch.compile graph at every layer)
    group, in_group = out_channels // color_channels, in_channels // color_channels
    centre = []
    for g in range(color_channels):
        seen = (g + (mask_type == "B")) * in_group
        w = weight[g * group : (g + 1) * group, :seen, ch, cw]
        centre.append(torch.einsum("oi,bihw->bohw", w, x[:, :seen]))
    out = out + torch.cat(centre, 1)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def masked_conv2d_dense(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask_type: str,
    color_channels: int = 1,
) -> torch.Tensor:
    """The same convolution as one dense F.conv2d of the masked weight: equal to masked_conv2d for
    finite inputs (only NaN/inf in masked taps or the padding differ: 0 * inf is NaN here). It is
    what a user writes without the kernel, so it is the benchmark's baseline and the float32
    accuracy yardstick (one oneDNN convolution rounds like the kernel's single GEMM does)."""
    out_channels, in_channels, kh, kw = weight.shape
    mask = pixelcnn_mask(
        out_channels, in_channels, (kh, kw), mask_type, color_channels, weight.dtype, weight.device
    )
    if x.numel() == 0 or out_channels == 0 or in_channels == 0:
        return conv2d_of_empty(x, weight * mask, bias)
    return F.conv2d(x, weight * mask, bias, padding=(kh // 2, kw // 2))
