"""The cached sampler of PixelCNN++: every feature map of `PixelCNNPlusPlus.params` computed once
per position, at the raster step at which it becomes final, from per-layer caches.

When is a position final? (Level l is the resolution halved l times; its position (r, c) lies
over the image pixel (2^l r, 2^l c).)

- The u stream (down-shifted convolutions) at row r sees only the image rows above 2^l r. But a
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

So at each step the first pass runs from the finest level to the coarsest level that lies over the
current pixel, and the second pass back, as in `params`. Each convolution keeps its input in a
buffer with the zero border of the layer's forward (`cached_sampling.PaddedCache`), written as
positions become final; an output is one matmul of the windows under it (rows: every window of the
row at once) with the layer's weight laid out as a matrix once per sampling run. Pointwise steps
(concat_elu, the gated activation, 1x1 convolutions) apply to the new positions only. Per pixel
this is a few dozen small matmuls instead of a forward pass over the whole image. Dropout is off:
the sampler refuses a model in training mode.
"""

import torch
import torch.nn.functional as F

from gen_ext.nn import DownShiftedConvTranspose2d

from .cached_sampling import (
    PaddedCache,
    PointwiseConv,
    WindowConv,
    concat_elu,
    gated_activation,
    previous_pixel,
)


class TransposedConv:
    """A stride-s shifted transposed convolution (DownShiftedConvTranspose2d,
    DownRightShiftedConvTranspose2d) of a strip of input row a: the output rows s*a .. s*a+s-1
    [n, s, s*w, Cout], cropped like the layer's forward. With kh = s these rows read input row a
    only; with kw = s (the down-right one) each output column reads one input column, so one
    input position gives its s x s outputs."""

    def __init__(self, conv):
        Cin, Cout, self.kh, self.kw = conv.weight.shape
        self.stride = conv.stride[0]
        centred = isinstance(conv, DownShiftedConvTranspose2d)
        if self.kh != self.stride or not (centred or self.kw == self.stride):
            raise ValueError(
                "TransposedConv: the kernel height (and width, for the down-right one) must "
                f"equal the stride, got kernel ({self.kh}, {self.kw}) with stride {self.stride}"
            )
        self.left = (self.kw - 1) // 2 if centred else 0
        # [Cin, kh * kw * Cout]: every tap's contribution of one input position at once
        self.matrix = conv.weight.permute(0, 2, 3, 1).reshape(Cin, -1).contiguous()
        self.bias = conv.bias

    def __call__(self, strip: torch.Tensor) -> torch.Tensor:
        n, w, _ = strip.shape
        s, kh, kw = self.stride, self.kh, self.kw
        taps = (strip.flatten(0, 1) @ self.matrix).view(n, w, kh, kw, self.bias.shape[0])
        # input column b, tap q lands on column s*b + q of the uncropped output
        full = strip.new_zeros((n, kh, s * (w - 1) + kw, taps.shape[-1]))
        for q in range(kw):
            full[:, :, q : q + s * (w - 1) + 1 : s] += taps[:, :, :, q].transpose(1, 2)
        return full[:, :s, self.left : self.left + s * w] + self.bias


class BlockSampler:
    """One GatedResidualBlock at one level, a row (u stream, c None) or a position (ul stream) at
    a time: the same operations as its forward, on the new strip only. The 1x1 convolution of
    aux joins conv_in's matmul (the windows and concat_elu(aux) side by side, one bias)."""

    def __init__(self, block, like, n: int, H: int, W: int):
        conv_in, conv_gate = block.conv_in, block.conv_gate
        self.inp = PaddedCache(like, n, conv_in.in_channels, H, W, conv_in.causal_padding)
        self.hid = PaddedCache(like, n, conv_gate.in_channels, H, W, conv_gate.causal_padding)
        self.conv_in, self.conv_gate = WindowConv.of(conv_in), WindowConv.of(conv_gate)
        self.matrix, self.bias = self.conv_in.matrix, self.conv_in.bias
        if block.aux is not None:
            aux = PointwiseConv(block.aux)
            self.matrix = torch.cat([self.matrix, aux.matrix])
            self.bias = self.bias + aux.bias

    def step(self, r, c, x, aux=None):
        n, w, _ = x.shape
        self.inp.put(r, c, concat_elu(x))
        inputs = self.conv_in.windows(self.inp, r, c)
        if aux is not None:
            inputs = torch.cat([inputs, concat_elu(aux)], dim=2)
        h = torch.addmm(self.bias, inputs.flatten(0, 1), self.matrix).unflatten(0, (n, w))
        self.hid.put(r, c, concat_elu(h))  # dropout is off (eval mode)
        return gated_activation(self.conv_gate(self.hid, r, c), residual=x)


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
        like = next(model.parameters())
        C, H, W = model.input_shape
        R = len(model.first_pass)
        self.R, self.H, self.W = R, H, W
        # (H, W) of each level, finest first; an odd size rounds up
        self.sizes = sizes = [(H, W)]
        for _ in range(R - 1):
            sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))

        def blocks(level, lv):  # [block] -> (u sampler, ul sampler)
            return [[BlockSampler(b, like, n, *sizes[lv]) for b in pair] for pair in level]

        self.first = [blocks(level, lv) for lv, level in enumerate(model.first_pass)]
        # the model lists the second pass and its upsampling coarsest first; here index lv is
        # level lv, and up[lv] goes from level lv + 1 to level lv
        self.second = [blocks(level, R - 1 - k) for k, level in enumerate(model.second_pass)]
        self.second.reverse()
        self.up = [[TransposedConv(t) for t in pair] for pair in model.upsample][::-1]
        self.down = [[WindowConv.of(conv) for conv in pair] for pair in model.downsample]
        # the input (the image and a channel of ones) for u_in, ul_in_above and ul_in_left
        self.u_in, self.ul_in_above, self.ul_in_left = (
            WindowConv.of(conv) for conv in (model.u_in, model.ul_in_above, model.ul_in_left)
        )
        self.x_cache = PaddedCache(like, n, C + 1, H, W, model.u_in.causal_padding)
        # level lv's last first-pass outputs (u, ul), read by the stride-2 convolutions
        self.down_cache = [
            [PaddedCache(like, n, conv.in_channels, *sizes[lv], conv.causal_padding) for conv in p]
            for lv, p in enumerate(model.downsample)
        ]
        # level lv + 1's second-pass outputs (u, ul) upsampled to level lv (uncropped)
        F_ = model.u_in.out_channels
        self.up_cache = [
            [like.new_zeros((n, 2 * h, 2 * w, F_)) for _ in range(2)] for h, w in sizes[1:]
        ]
        self.out = PointwiseConv(model.out)
        self.ones = like.new_ones((n, 1))
        self.zero_row = like.new_zeros((n, W, F_))
        self.zero_pos = like.new_zeros((n, 1, F_))
        # the u-stream rows of each level's current row: the first pass's stack (input, block
        # outputs) and the second pass's block outputs; and ul_in_above's row
        self.u_first = [None] * R
        self.u_second = [None] * R
        self.ul_above = None

    # ---- the u stream: whole rows ----

    def _rows(self, i: int) -> None:
        """Every u-stream row that becomes final when image row i starts: row i >> lv of every
        level lv with 2^lv dividing i, first pass finest first, second pass coarsest first."""
        if i == 0:  # shift_down fills row 0 with zeros
            u, self.ul_above = self.zero_row, self.zero_row
        else:  # shift_down(u_in(x)) and shift_down(ul_in_above(x)) at row i
            u = self.u_in(self.x_cache, i - 1)
            self.ul_above = self.ul_in_above(self.x_cache, i - 1)
        levels = [lv for lv in range(self.R) if i % (1 << lv) == 0]
        for lv in levels:
            r = i >> lv
            if lv > 0:  # reads level lv - 1's rows 2r - 1 and 2r, computed just now
                u = self.down[lv - 1][0](self.down_cache[lv - 1][0], r)
            stack = [u]
            for u_block, _ in self.first[lv]:
                u = u_block.step(r, None, u)
                stack.append(u)
            if lv < self.R - 1:
                self.down_cache[lv][0].put(r, None, u)
            self.u_first[lv] = stack
        for lv in reversed(levels):
            r = i >> lv
            skips = list(self.u_first[lv])
            if lv == self.R - 1:
                u = skips.pop()
            else:  # rows 2a and 2a + 1 of level lv both come from row a of level lv + 1
                u = self.up_cache[lv][0][:, r, : self.sizes[lv][1]]
            outs = []
            for u_block, _ in self.second[lv]:
                u = u_block.step(r, None, u, aux=skips.pop())
                outs.append(u)
            self.u_second[lv] = outs
            if lv > 0:
                self.up_cache[lv - 1][0][:, 2 * r : 2 * r + 2] = self.up[lv - 1][0](u)

    # ---- the ul stream: one position ----

    def _position(self, i: int, j: int) -> torch.Tensor:
        """Every ul-stream position that becomes final at step (i, j): (i >> lv, j >> lv) of
        every level lv with 2^lv dividing i and j; then the parameters at (i, j)."""
        left = self.ul_in_left(self.x_cache, i, j - 1) if j > 0 else self.zero_pos
        # shift_down(ul_in_above(x)) + shift_right(ul_in_left(x))
        ul = self.ul_above[:, j : j + 1] + left
        levels = [lv for lv in range(self.R) if i % (1 << lv) == 0 and j % (1 << lv) == 0]
        stacks = {}
        for lv in levels:
            r, c = i >> lv, j >> lv
            if lv > 0:  # reads level lv - 1 up to (2r, 2c), computed just now
                ul = self.down[lv - 1][1](self.down_cache[lv - 1][1], r, c)
            stack = [ul]
            for k, (_, ul_block) in enumerate(self.first[lv]):
                ul = ul_block.step(r, c, ul, aux=self.u_first[lv][k + 1][:, c : c + 1])
                stack.append(ul)
            if lv < self.R - 1:
                self.down_cache[lv][1].put(r, c, ul)
            stacks[lv] = stack
        for lv in reversed(levels):
            r, c = i >> lv, j >> lv
            skips = stacks[lv]
            if lv == self.R - 1:
                ul = skips.pop()
            else:  # from (r // 2, c // 2) of level lv + 1, computed at this step or before
                ul = self.up_cache[lv][1][:, r, c : c + 1]
            for k, (_, ul_block) in enumerate(self.second[lv]):
                aux = torch.cat([self.u_second[lv][k][:, c : c + 1], skips.pop()], dim=2)
                ul = ul_block.step(r, c, ul, aux=aux)
            if lv > 0:
                up = self.up_cache[lv - 1][1]
                up[:, 2 * r : 2 * r + 2, 2 * c : 2 * c + 2] = self.up[lv - 1][1](ul)
        params = self.out(F.elu(ul))  # [n, 1, P]
        return params.transpose(1, 2)[..., None]  # [n, P, 1, 1]

    def steps(self, x: torch.Tensor):
        H, W = self.H, self.W
        for i in range(H):
            for j in range(W):
                if j > 0 or i > 0:  # the pixel before (i, j) is final now
                    pi, pj = previous_pixel(i, j, W)
                    pixel = torch.cat([x[:, :, pi, pj] * 2 - 1, self.ones], dim=1)
                    self.x_cache.put(pi, pj, pixel[:, None])
                if j == 0:
                    self._rows(i)
                yield self._position(i, j)
