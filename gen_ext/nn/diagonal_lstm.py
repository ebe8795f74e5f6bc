"""PixelRNN's diagonal LSTM layers (van den Oord et al., 2016, section 3.2) over the fused scan
(gen_ext.ops.diagonal_lstm_scan).

The image is skewed (row r moved right by r) so that a column of the skewed map is a diagonal
of the image; the LSTM then runs column by column, each position reading the state on its left
and above. Skew and unskew are single index copies (no Python loop); in channels-last layout,
which the scan reads and writes without a copy.
"""

import torch
import torch.nn.functional as F
from torch import nn

from gen_ext import ops
from gen_ext.reference.masked_conv import pixelcnn_mask

from .masked_conv import check_channel_counts
from .shifted_conv import shift_down


def _skew_index(H: int, W: int, device) -> torch.Tensor:
    """Flat position r * (W + H - 1) + r + c of image pixel (r, c) in the skewed map."""
    r = torch.arange(H, device=device).unsqueeze(1)
    c = torch.arange(W, device=device).unsqueeze(0)
    return (r * (W + H - 1) + r + c).reshape(-1)


def skew(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, H, W + H - 1]: row r moved right by r, zeros elsewhere. The result is
    channels-last in memory."""
    B, C, H, W = x.shape
    rows = x.permute(0, 2, 3, 1).reshape(B, H * W, C)
    out = x.new_zeros(B, H * (W + H - 1), C).index_copy(1, _skew_index(H, W, x.device), rows)
    return out.view(B, H, W + H - 1, C).permute(0, 3, 1, 2)


def unskew(y: torch.Tensor, width: int) -> torch.Tensor:
    """skew's inverse: [B, C, H, W + H - 1] -> [B, C, H, W] (channels-last in memory)."""
    B, C, H, Ws = y.shape
    if Ws != width + H - 1:
        raise ValueError(
            f"unskew: a skewed map of {H} rows and width {width} has {width + H - 1} columns, "
            f"got {Ws}"
        )
    rows = y.permute(0, 2, 3, 1).reshape(B, H * Ws, C)
    out = rows.index_select(1, _skew_index(H, width, y.device))
    return out.view(B, H, width, C).permute(0, 3, 1, 2)


class DiagonalLSTM(nn.Module):
    """One direction (left to right) of the diagonal LSTM: [B, in, H, W] -> [B, hidden, H, W].

    The input-to-state map is a mask-B 1x1 convolution to the 4 * hidden gates (o, f, i, g), so
    output (i, j) depends only on inputs at raster positions up to and including (i, j); with
    colour_channels=3 the hidden units are split in thirds R, G, B and a unit sees, at its own
    pixel, the input thirds up to its colour. The state-to-state map is a 2x1 convolution of the
    previous column (the pixel on the left and the one above), run by the fused scan.

    >>> lstm = DiagonalLSTM(32, 16)     # [B, 32, H, W] -> [B, 16, H, W]
    """

    def __init__(self, in_channels: int, hidden_channels: int, color_channels: int = 1):
        super().__init__()
        check_channel_counts(
            type(self).__name__,
            color_channels,
            in_channels=in_channels,
            hidden_channels=hidden_channels,
        )
        self.hidden_channels = hidden_channels
        self.input_to_state = nn.Conv2d(in_channels, 4 * hidden_channels, 1)
        # each gate block uses the hidden units' colour groups: unit u's four gates share its mask
        mask = pixelcnn_mask(hidden_channels, in_channels, (1, 1), "B", color_channels)
        self.register_buffer("i2s_mask", mask.repeat(4, 1, 1, 1), persistent=False)
        self.state_to_state = nn.Parameter(torch.empty(4 * hidden_channels, hidden_channels, 2))
        nn.init.uniform_(
            self.state_to_state, -1 / (2 * hidden_channels) ** 0.5, 1 / (2 * hidden_channels) ** 0.5
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        W = x.shape[-1]
        # channels-last, so the 1x1 convolution, the skew and the scan need no transposing copy
        x = x.contiguous(memory_format=torch.channels_last)
        i2s = F.conv2d(x, self.input_to_state.weight * self.i2s_mask, self.input_to_state.bias)
        h, _ = self.scan(skew(i2s))
        return unskew(h, W)

    def scan(self, i2s_skewed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(h, c) of the skewed map: the fused op (a benchmark swaps in a plain loop here)."""
        return ops.diagonal_lstm_scan(i2s_skewed, self.state_to_state)


class DiagonalBiLSTM(nn.Module):
    """PixelRNN's diagonal BiLSTM: a left-to-right DiagonalLSTM plus a right-to-left one (run on
    the mirrored image) whose output is shifted down one row before the two are added, so each
    pixel sees every pixel above it (both directions' context) and those on its left, never
    itself beyond its colour's mask B, never the future: [B, in, H, W] -> [B, hidden, H, W].

    >>> layer = DiagonalBiLSTM(32, 16, color_channels=1)
    """

    def __init__(self, in_channels: int, hidden_channels: int, color_channels: int = 1):
        super().__init__()
        check_channel_counts(
            type(self).__name__,
            color_channels,
            in_channels=in_channels,
            hidden_channels=hidden_channels,
        )
        self.left_to_right = DiagonalLSTM(in_channels, hidden_channels, color_channels)
        self.right_to_left = DiagonalLSTM(in_channels, hidden_channels, color_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        backward = self.right_to_left(x.flip(-1)).flip(-1)
        return self.left_to_right(x) + shift_down(backward)
