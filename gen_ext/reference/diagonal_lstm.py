"""Reference diagonal LSTM scan (PixelRNN, van den Oord et al., 2016, section 3.2).

On a skewed image (row r moved right by r, so the W + H - 1 columns are the image's diagonals)
the LSTM runs column by column. Column j's gate pre-activations are the input-to-state ones
given for it, plus the state-to-state 2x1 convolution of the previous column's hidden state:
row r reads rows r - 1 (weight tap 0) and r (tap 1) of column j - 1, each only where it lies
inside the image (a weight never multiplies the zero state outside it, so a NaN or infinite
weight reaches only the positions that use it). Gates [o, f, i, g] along
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


def _tap_term(weight_tap, h_prev, lo: int, hi: int, shift: int, r0: int, r1: int):
    """One tap's term for rows lo .. hi of a column, which read rows lo - shift .. hi - shift of
    the previous column's state (all inside the image), aligned to the column's rows r0 .. r1;
    0 when no row reads through this tap."""
    if hi < lo:
        return 0.0
    term = F.conv1d(h_prev[..., lo - shift : hi - shift + 1], weight_tap.unsqueeze(-1))
    return F.pad(term, (lo - r0, r1 - hi))


def diagonal_lstm_scan(
    i2s: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    B, G, H, Ws = i2s.shape
    hidden, W = G // 4, Ws - H + 1
    h = i2s.new_zeros(B, hidden, H)
    c = i2s.new_zeros(B, hidden, H)
    hs, cs = [], []
    columns = i2s.unbind(-1)  # one view per column (a single backward, not one per column)
    for j in range(Ws):
        # the rows of column j inside the image, r0 .. r1; only they are computed, so nothing
        # outside (i2s there, the zero state there times a weight) reaches a value or gradient
        r0, r1 = max(0, j - W + 1), min(H - 1, j)
        if r1 < r0:  # an image of width 0
            hs.append(h)
            cs.append(c)
            continue

        # tap 1 reads (r, j - 1), inside for r <= j - 1; tap 0 reads (r - 1, j - 1), for r >= 1
        a = (
            columns[j][..., r0 : r1 + 1]
            + _tap_term(weight[..., 1], h, r0, min(r1, j - 1), 0, r0, r1)
            + _tap_term(weight[..., 0], h, max(r0, 1), r1, 1, r0, r1)
        )
        a_o, a_f, a_i, a_g = a.chunk(4, dim=1)
        c_rows = torch.sigmoid(a_f) * c[..., r0 : r1 + 1] + torch.sigmoid(a_i) * torch.tanh(a_g)
        h_rows = torch.sigmoid(a_o) * torch.tanh(c_rows)
        c = F.pad(c_rows, (r0, H - 1 - r1))
        h = F.pad(h_rows, (r0, H - 1 - r1))
        hs.append(h)
        cs.append(c)
    if Ws == 0:
        empty = i2s.new_zeros(B, hidden, H, 0)
        return empty, empty.clone()
    return torch.stack(hs, dim=-1), torch.stack(cs, dim=-1)
