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

MASK_TYPES = ("A", "B")


def pixelcnn_mask(out_channels: int, in_channels: int, kernel_size: tuple[int, int],
                  mask_type: str, color_channels: int = 1, dtype=torch.float32,
                  device=None) -> torch.Tensor:
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
                mask[g_out * go:(g_out + 1) * go, g_in * gi:(g_in + 1) * gi, ch, cw] = 1
    return mask


def masked_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  mask_type: str, color_channels: int = 1) -> torch.Tensor:
    """conv2d(x, weight * mask, bias) with 'same' padding: [B, Cin, H, W] -> [B, Cout, H, W].

    Computed over the kept taps only, as three convolutions of the zero-padded input: the rows
    above the centre, the taps left of it on its row, and the centre tap per output channel group
    over the input channels it sees. A masked weight or an input pixel seen only through masked
    taps is never multiplied, so a NaN or inf there reaches no output (0 * NaN would be NaN)."""
    out_channels, in_channels, kh, kw = weight.shape
    ch, cw = kh // 2, kw // 2
    H, W = x.shape[2:]
    padded = F.pad(x, (cw, cw, ch, ch))  # output (i, j) reads padded[i:i + kh, j:j + kw]
    out = x.new_zeros((x.shape[0], out_channels, H, W))
    if ch > 0:  # the rows above the centre row
        out = out + F.conv2d(padded[:, :, :H + ch - 1], weight[:, :, :ch])
    if cw > 0:  # the centre row, left of the centre
        out = out + F.conv2d(padded[:, :, ch:ch + H, :W + cw - 1], weight[:, :, ch:ch + 1, :cw])
    mask = pixelcnn_mask(out_channels, in_channels, (kh, kw), mask_type, color_channels)
    group = out_channels // color_channels
    centre = []
    for g in range(color_channels):
        seen = int(mask[g * group, :, ch, cw].sum())  # input channels [0, seen) at the centre
        w = weight[g * group:(g + 1) * group, :seen, ch, cw]
        centre.append(torch.einsum("oi,bihw->bohw", w, x[:, :seen]))
    out = out + torch.cat(centre, 1)
    return out if bias is None else out + bias.view(1, -1, 1, 1)
