"""The cached sampler of PixelCNN++: every feature map of `PixelCNNPlusPlus.params` computed once
per position, at the raster step at which it becomes final, from per-layer caches.

When is a position final? (Level l is the resolution halved l times; its position (r, c) lies
over the image pixel (2^l r, 2^l c).)

- The u stream (down-shifted convolutions) at row r sees only image rows above r. But a
  down-shifted (2, 3) convolution at (r, c) also reads its input at (r, c + 1), to the right, so
  it cannot be computed one position at a time: whole rows are, every layer of both passes, at
  the start of image row 2^l r, when the image rows above it are final. Coarse row a reads fine
  rows 2a - 1 and 2a (stride-2 convolution), final at that same moment; the upsampled u rows
  2a and 2a + 1 read coarse row a only (and its column neighbours), final too.
- The ul stream (down-right-shifted convolutions) at (r, c) sees the pixels before (2^l r, 2^l c)
  in raster order: it is computed one position at a time at that step, every layer. A coarse
  position (a, b) reads fine positions rows 2a - 1..2a, cols 2b - 1..2b, the last of them being
  (2a, 2b): it is final at the same step, computed after the finer level. The upsampled ul at
  fine (r, c) reads coarse (r // 2, c // 2) only, computed at a step not after (r, c)'s.

So at each step the first pass runs from the finest level to the coarsest level that lies over
the current pixel, and the second pass back, as in `params`. Each convolution keeps its input in
a buffer with the zero border of the layer's forward (`PaddedCache`), written as positions become
final; an output is the layer's own convolution of the window (or the rows) under it. Pointwise
steps (concat_elu, the gated activation, 1x1 convolutions) apply to the new positions only.
Dropout is off: the sampler refuses a model in training mode.
"""

import torch
import torch.nn.functional as F

from gen_ext import ops


class PaddedCache:
    """An input map [n, C, H, W] inside the zero border (left, right, top, bottom) its
    convolutions pad with, filled as positions become final."""

    def __init__(self, like: torch.Tensor, n: int, channels: int, H: int, W: int, padding):
        left, right, top, _ = padding
        self.left, self.top, self.W = left, top, W
        self.buf = like.new_zeros((n, channels, top + H, left + W + right))

    def put(self, r: int, c: int | None, value: torch.Tensor) -> None:
        """value [n, C, 1, 1] at (r, c), or [n, C, 1, W] as row r when c is None."""
        row = self.buf[:, :, self.top + r]
        if c is None:
            row[:, :, self.left : self.left + self.W] = value[:, :, 0]
        else:
            row[:, :, self.left + c] = value[:, :, 0, 0]

    def read(self, conv, r: int, c: int | None = None) -> torch.Tensor:
        """What the shifted convolution `conv` reads for its output (r, c): its (kh, kw) window,
        or for c None the kh rows of output row r at full width (the conv's left and right
        border must be the cache's)."""
        kh, kw = conv.kernel_size
        s = conv.stride[0]
        left, right, top, _ = conv.causal_padding
        r0 = self.top + s * r - top
        rows = self.buf[:, :, r0 : r0 + kh]
        if c is None:
            return rows[:, :, :, self.left - left : self.left + self.W + right]
        c0 = self.left + s * c - left
        return rows[:, :, :, c0 : c0 + kw]


def concat_elu(x: torch.Tensor) -> torch.Tensor:
    return ops.concat_elu(x)


class BlockSampler:
    """One GatedResidualBlock at one level, a row (u stream, c None) or a position (ul stream) at
    a time: the same operations as its forward, on the new positions only."""

    def __init__(self, block, like, n: int, H: int, W: int):
        self.block = block
        conv_in, conv_gate = block.conv_in, block.conv_gate
        self.inp = PaddedCache(like, n, conv_in.in_channels, H, W, conv_in.causal_padding)
        self.hid = PaddedCache(like, n, conv_gate.in_channels, H, W, conv_gate.causal_padding)

    def step(self, r, c, x, aux=None):
        b = self.block
        self.inp.put(r, c, concat_elu(x))
        h = b.conv_in.forward_padded(self.inp.read(b.conv_in, r, c))
        if aux is not None:
            h = h + b.aux(concat_elu(aux))
        self.hid.put(r, c, concat_elu(h))  # dropout is off (eval mode)
        g = b.conv_gate.forward_padded(self.hid.read(b.conv_gate, r, c))
        return ops.gated_activation(g, residual=x)


class PixelCNNPlusPlusSampler:
    """The caches of one sampling run of `model` over a batch of n images.

    `steps(x)` yields the mixture parameters [n, P, 1, 1] at (0, 0), (0, 1), ... in raster order,
    reading x [n, C, H, W] as it goes: the caller fills pixel (i, j) of x after the parameters at
    (i, j) and before asking for the next ones."""

    def __init__(self, model, n: int):
        if model.training:
            raise ValueError(
                "PixelCNNPlusPlus.sample(fast=True): the model is in training mode, where dropout "
                "would make the cached sampler differ from the naive one; call model.eval() first"
            )
        self.model = model
        like = next(model.parameters())
        C, H, W = model.input_shape
        R, B = len(model.first_pass), len(model.first_pass[0])
        self.R, self.B, self.H, self.W = R, B, H, W
        sizes = [(H, W)]
        for _ in range(R - 1):
            h, w = sizes[-1]
            sizes.append(((h + 1) // 2, (w + 1) // 2))
        self.sizes = sizes

        def blocks(passes):
            return [
                [
                    [
                        BlockSampler(
                            blk,
                            like,
                            n,
                            *sizes[lv],
                        )
                        for blk in pair
                    ]
                    for pair in level
                ]
                for lv, level in passes
            ]

        # [level][block] -> (u sampler, ul sampler); the second pass is stored finest first
        self.first = blocks(enumerate(model.first_pass))
        self.second = blocks((R - 1 - k, level) for k, level in enumerate(model.second_pass))[::-1]
        # the input (with its channel of ones) for u_in, ul_in_above and ul_in_left
        self.x = PaddedCache(like, n, C + 1, H, W, model.u_in.causal_padding)
        # the finer level's last first-pass output, read by the stride-2 convolutions
        self.down = [
            [PaddedCache(like, n, conv.in_channels, *sizes[lv], conv.causal_padding) for conv in p]
            for lv, p in enumerate(model.downsample)
        ]
        # upsample[lv] goes from level lv + 1 to level lv (the model lists them coarsest first)
        self.upsample = list(model.upsample)[::-1]
        # the upsampled second-pass outputs of level lv + 1 at level lv (even sizes, uncropped)
        F_ = model.u_in.out_channels
        self.up = [[like.new_zeros((n, F_, 2 * h, 2 * w)) for _ in range(2)] for h, w in sizes[1:]]
        self.ones = like.new_ones((n, 1, 1, 1))
        self.zero_row = like.new_zeros((n, F_, 1, W))
        self.zero_pos = like.new_zeros((n, F_, 1, 1))
        # the rows of the u stream of the current row of each level: the first pass's stack
        # (input, block outputs) and the second pass's block outputs
        self.u_stack = [None] * R
        self.u_second = [None] * R
        self.ul_above = None  # shift_down(ul_in_above(x)) on the current image row

    # ---- the u stream, whole rows ----

    def _rows(self, i: int) -> None:
        """Every u-stream row that becomes final when image row i starts: row i >> l of every
        level l with 2^l dividing i."""
        m = self.model
        if i == 0:  # shift_down fills row 0 with zeros
            u, self.ul_above = self.zero_row, self.zero_row
        else:
            u = m.u_in.forward_padded(self.x.read(m.u_in, i - 1))
            self.ul_above = m.ul_in_above.forward_padded(self.x.read(m.ul_in_above, i - 1))
        levels = [lv for lv in range(self.R) if i % (1 << lv) == 0]
        for lv in levels:  # first pass, finest first
            r = i >> lv
            if lv > 0:
                u = m.downsample[lv - 1][0].forward_padded(
                    self.down[lv - 1][0].read(m.downsample[lv - 1][0], r)
                )
            stack = [u]
            for u_block, _ in self.first[lv]:
                u = u_block.step(r, None, u)
                stack.append(u)
            if lv < self.R - 1:
                self.down[lv][0].put(r, None, u)
            self.u_stack[lv] = stack
        for lv in reversed(levels):  # second pass, coarsest first
            r = i >> lv
            stack = list(self.u_stack[lv])
            if lv == self.R - 1:
                u = stack.pop()
            else:
                u = self.up[lv][0][:, :, r : r + 1, : self.sizes[lv][1]]
            outs = []
            for u_block, _ in self.second[lv]:
                u = u_block.step(r, None, u, aux=stack.pop())
                outs.append(u)
            self.u_second[lv] = outs
            if lv > 0:
                self.up[lv - 1][0][:, :, 2 * r : 2 * r + 2] = self.upsample[lv - 1][0](u)

    # ---- the ul stream, one position ----

    def _position(self, i: int, j: int) -> torch.Tensor:
        """Every ul-stream position that becomes final at step (i, j), and the parameters."""
        m = self.model
        above = self.ul_above[:, :, :, j : j + 1]
        left = (
            m.ul_in_left.forward_padded(self.x.read(m.ul_in_left, i, j - 1))
            if j > 0
            else self.zero_pos
        )
        ul = above + left  # shift_down(ul_in_above(x)) + shift_right(ul_in_left(x))
        levels = [lv for lv in range(self.R) if i % (1 << lv) == 0 and j % (1 << lv) == 0]
        stacks = {}
        for lv in levels:  # first pass, finest first
            r, c = i >> lv, j >> lv
            if lv > 0:
                conv = m.downsample[lv - 1][1]
                ul = conv.forward_padded(self.down[lv - 1][1].read(conv, r, c))
            stack = [ul]
            u_rows = self.u_stack[lv]
            for k, (_, ul_block) in enumerate(self.first[lv]):
                ul = ul_block.step(r, c, ul, aux=u_rows[k + 1][:, :, :, c : c + 1])
                stack.append(ul)
            if lv < self.R - 1:
                self.down[lv][1].put(r, c, ul)
            stacks[lv] = stack
        for lv in reversed(levels):  # second pass, coarsest first
            r, c = i >> lv, j >> lv
            stack = stacks[lv]
            if lv == self.R - 1:
                ul = stack.pop()
            else:
                ul = self.up[lv][1][:, :, r : r + 1, c : c + 1]
            for k, (_, ul_block) in enumerate(self.second[lv]):
                u = self.u_second[lv][k][:, :, :, c : c + 1]
                ul = ul_block.step(r, c, ul, aux=torch.cat([u, stack.pop()], dim=1))
            if lv > 0:
                up = self.up[lv - 1][1]
                up[:, :, 2 * r : 2 * r + 2, 2 * c : 2 * c + 2] = self.upsample[lv - 1][1](ul)
        return m.out(F.elu(ul))

    def steps(self, x: torch.Tensor):
        H, W = self.H, self.W
        for i in range(H):
            for j in range(W):
                if j > 0 or i > 0:  # the pixel before (i, j) is final now
                    pi, pj = (i, j - 1) if j > 0 else (i - 1, W - 1)
                    pixel = x[:, :, pi : pi + 1, pj : pj + 1] * 2 - 1
                    self.x.put(pi, pj, torch.cat([pixel, self.ones], dim=1))
                if j == 0:
                    self._rows(i)
                yield self._position(i, j)
