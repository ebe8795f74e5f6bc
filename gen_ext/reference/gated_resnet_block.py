"""Reference PixelCNN++ gated residual block (Salimans et al., 2017), the specification of the
fused gen_ext::gated_resnet_block:

    h   = conv_in(pad(concat_elu(x)))  [+ nin(concat_elu(aux))]
    g   = conv_gate(pad(dropout(concat_elu(h))))
    out = tanh(g_a) * sigmoid(g_b) + x

pad is the causal zero border of the stream, (left, right, top, bottom), the shifted
convolution's (reference/shifted_conv.py): "down" (kw odd, centred) sees a pixel's own row and
the rows above, "down_right" also stops at its own column.
The convolutions are dense (stride 1, no padding of their own) over the bordered maps, as a
plain-PyTorch block computes them, so a non-finite weight meets the border's zeros here as it
does there. Dropout is concat_elu's counter-based stream (reference/concat_elu.py).
"""

import torch
import torch.nn.functional as F

from .concat_elu import concat_elu
from .gated import gated_activation
from .shifted_conv import shifted_padding

STREAMS = ("down", "down_right")


def gated_resnet_block_parts(
    x: torch.Tensor,
    aux: torch.Tensor | None,
    w_in: torch.Tensor,
    b_in: torch.Tensor | None,
    w_aux: torch.Tensor | None,
    b_aux: torch.Tensor | None,
    w_gate: torch.Tensor,
    b_gate: torch.Tensor | None,
    stream: str,
    p: float = 0.0,
    seed=0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(out, h, g): the block's output and its two convolutions' outputs."""
    pad = shifted_padding(stream, w_in.shape[2], w_in.shape[3])
    h = F.conv2d(concat_elu(x, pad=pad), w_in, b_in)
    if aux is not None:
        h = h + F.conv2d(concat_elu(aux), w_aux, b_aux)
    g = F.conv2d(concat_elu(h, p, seed, pad), w_gate, b_gate)
    return gated_activation(g, x), h, g


def gated_resnet_block(
    x: torch.Tensor,
    aux: torch.Tensor | None,
    w_in: torch.Tensor,
    b_in: torch.Tensor | None,
    w_aux: torch.Tensor | None,
    b_aux: torch.Tensor | None,
    w_gate: torch.Tensor,
    b_gate: torch.Tensor | None,
    stream: str,
    p: float = 0.0,
    seed=0,
) -> torch.Tensor:
    """x [B, C, H, W] -> [B, C, H, W]; aux [B, Ca, H, W] with w_aux [Cm, 2Ca, 1, 1], or None with
    w_aux None; w_in [Cm, 2C, kh, kw], w_gate [2C, 2Cm, kh, kw]."""
    return gated_resnet_block_parts(
        x, aux, w_in, b_in, w_aux, b_aux, w_gate, b_gate, stream, p, seed
    )[0]
