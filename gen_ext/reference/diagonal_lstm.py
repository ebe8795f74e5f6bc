"""Reference diagonal LSTM scan (PixelRNN, van den Oord et al., 2016, section 3.2).

On a skewed image (row r moved right by r, so the W + H - 1 columns are the image's diagonals)
the LSTM runs column by column. Column j's gate pre-activations are the input-to-state ones
given for it, plus the state-to-state 2x1 convolution of the previous column's hidden state:
row r reads rows r - 1 (weight tap 0) and r (tap 1) of column j - 1. Gates [o, f, i, g] along
the 4h channels: o, f, i = sigmoid, g = tanh; c = f * c_prev + i * g, h = o * tanh(c).

Only the image's own positions are computed: row r's pixels lie at columns r .. r + W - 1
(W = Ws - H + 1). Every other position holds h = c = 0 and its i2s values are ignored, so the
state before a row's first pixel is zero (as it is for the scan over a zero-padded skew, where
those states are exactly zero) and the states right of a row, which no pixel reads, cost
nothing.

    i2s [B, 4h, H, Ws], weight [4h, h, 2] -> (h [B, h, H, Ws], c [B, h, H, Ws])

A per-column loop of plain ops, batched over images and rows. The fused kernels compute this.
"""

import torch
import torch.nn.functional as F


def inside_mask(H: int, Ws: int, device=None) -> torch.Tensor:
    """[H, Ws] bool: the skewed image's own positions, columns r .. r + Ws - H of row r."""
    r = torch.arange(H, device=device).unsqueeze(1)
    j = torch.arange(Ws, device=device).unsqueeze(0)
    return (j >= r) & (j <= r + Ws - H)


def diagonal_lstm_scan(
    i2s: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    B, G, H, Ws = i2s.shape
    hidden = G // 4
    inside = inside_mask(H, Ws, i2s.device)
    h = i2s.new_zeros(B, hidden, H)
    c = i2s.new_zeros(B, hidden, H)
    hs, cs = [], []
    for j in range(Ws):
        # output row r of a 2-tap convolution padded by one above reads rows r - 1 and r
        a = i2s[..., j] + F.conv1d(h, weight, padding=1)[..., :H]
        a_o, a_f, a_i, a_g = a.chunk(4, dim=1)
        c_new = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)
        h_new = torch.sigmoid(a_o) * torch.tanh(c_new)
        # where, not a product: a NaN outside the image must not reach the state
        c = torch.where(inside[:, j], c_new, 0.0)
        h = torch.where(inside[:, j], h_new, 0.0)
        hs.append(h)
        cs.append(c)
    if Ws == 0:
        empty = i2s.new_zeros(B, hidden, H, 0)
        return empty, empty.clone()
    return torch.stack(hs, dim=-1), torch.stack(cs, dim=-1)
