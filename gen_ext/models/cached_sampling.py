"""What the cached samplers of the convolutional image models share: each layer's input map kept
with its zero border already in place, written one position (or one row) at a time as the
positions become final, and the layer's output computed only where it is needed next, from the
window there. A naive sampler runs the whole network for every sub-pixel; these compute each
position of each layer once per sub-pixel pass (or once per row), so a step costs a few
positions' work instead of an image's."""

import contextlib

import torch
import torch.nn.functional as F

from gen_ext import ops
from gen_ext.nn import MaskedConv2d

# A strip of a feature map is [n, w, C], channels last: a whole row (w its width) or one position
# (w = 1). Caches are channels last too, so that the window under an output is one matmul's row.


class PaddedCache:
    """A layer's input map [n, H, W, C] inside the zero border (left, right, top, bottom, as F.pad
    orders it) that the layer's convolution pads with, filled as positions become final."""

    def __init__(self, like: torch.Tensor, n: int, channels: int, H: int, W: int, padding):
        left, right, top, bottom = padding
        self.left, self.top, self.W = left, top, W
        self.buf = like.new_zeros((n, top + H + bottom, left + W + right, channels))

    def put(self, r: int, c: int | None, strip: torch.Tensor) -> None:
        """The strip [n, w, C] at row r from column c (the whole row when c is None)."""
        c0 = self.left + (0 if c is None else c)
        self.buf[:, self.top + r, c0 : c0 + strip.shape[1]] = strip


class WindowConv:
    """A convolution (weight [Cout, Cin, kh, kw], bias, the zero border `padding` it reads its
    input inside, a stride) as one matmul over the windows of a PaddedCache under the outputs
    asked for: a whole output row or one position."""

    def __init__(self, weight: torch.Tensor, bias, padding, stride: int = 1):
        self.Cout, _, self.kh, self.kw = weight.shape
        self.padding, self.stride = tuple(padding), stride
        # [kh * kw * Cin, Cout], rows in the (row, column, channel) order of a window
        self.matrix = weight.detach().permute(2, 3, 1, 0).reshape(-1, self.Cout).contiguous()
        self.bias = None if bias is None else bias.detach()

    @classmethod
    def of(cls, conv) -> "WindowConv":
        """A shifted convolution (DownShiftedConv2d, DownRightShiftedConv2d, any stride)."""
        return cls(conv.weight, conv.bias, conv.causal_padding, conv.stride[0])

    def __call__(self, cache: PaddedCache, r: int, c: int | None = None) -> torch.Tensor:
        """The output strip at row r: at column c [n, 1, Cout], or the whole row for c None
        (the cache's left and right border must be the convolution's)."""
        windows = self.windows(cache, r, c)
        flat = windows.flatten(0, 1)
        out = flat @ self.matrix if self.bias is None else torch.addmm(self.bias, flat, self.matrix)
        return out.unflatten(0, windows.shape[:2])

    def windows(self, cache: PaddedCache, r: int, c: int | None = None) -> torch.Tensor:
        """The windows the output strip reads [n, w, kh * kw * Cin], one row per output."""
        left, right, top, _ = self.padding
        s, kh, kw = self.stride, self.kh, self.kw
        r0 = cache.top + s * r - top
        rows = cache.buf[:, r0 : r0 + kh]
        if c is None:
            cols = rows[:, :, cache.left - left : cache.left + cache.W + right]
        else:
            c0 = cache.left + s * c - left
            cols = rows[:, :, c0 : c0 + kw]
        windows = cols.unfold(2, kw, s)  # [n, kh, w, C, kw]
        return windows.permute(0, 2, 1, 4, 3).flatten(2)


class PointwiseConv:
    """A 1x1 convolution (an nn.Conv2d) of a strip."""

    def __init__(self, conv):
        self.matrix = conv.weight.detach()[:, :, 0, 0].t().contiguous()
        self.bias = conv.bias.detach()

    def __call__(self, strip: torch.Tensor) -> torch.Tensor:
        n, w, _ = strip.shape
        return torch.addmm(self.bias, strip.flatten(0, 1), self.matrix).unflatten(0, (n, w))


def gated_activation(strip: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
    """gen_ext.ops.gated_activation of a strip [n, w, 2C] -> [n, w, C]."""
    n, w, _ = strip.shape
    res = None if residual is None else residual.flatten(0, 1)
    return ops.gated_activation(strip.flatten(0, 1), residual=res).unflatten(0, (n, w))


def concat_elu(strip: torch.Tensor) -> torch.Tensor:
    """gen_ext.ops.concat_elu of a strip [n, w, C] -> [n, w, 2C]."""
    n, w, _ = strip.shape
    return ops.concat_elu(strip.flatten(0, 1)).unflatten(0, (n, w))


class CachedMaskedConv:
    """A MaskedConv2d at one position at a time: its input map with the 'same' zero border, and
    its masked weight laid out once per sampling run. 1x1 layers need no map (a position's output
    reads only that position)."""

    def __init__(self, conv: MaskedConv2d, batch: int, size):
        kh, kw = conv.kernel_size
        weight = conv.weight.detach() * conv.mask()
        self.pointwise = (kh, kw) == (1, 1)
        if self.pointwise:
            self.weight, self.bias = weight[:, :, 0, 0], conv.bias
            return
        pad = (kw // 2, kw // 2, kh // 2, kh // 2)
        self.conv = WindowConv(weight, conv.bias, pad)
        self.map = PaddedCache(weight, batch, conv.in_channels, *size, pad)

    def __call__(self, i: int, j: int, x: torch.Tensor) -> torch.Tensor:
        """The output at (i, j), [B, out], given the input there, x [B, in]; the inputs before
        (i, j) in raster order (and above it) were written by earlier calls."""
        if self.pointwise:
            return F.linear(x, self.weight, self.bias)
        self.map.put(i, j, x[:, None])
        return self.conv(self.map, i, j)[:, 0]


def previous_pixel(i: int, j: int, width: int) -> tuple[int, int]:
    """The pixel before (i, j) in raster order (not (0, 0))."""
    return (i, j - 1) if j else (i - 1, width - 1)


def position_program(module, batch: int, size):
    """`module` (an nn.Sequential of MaskedConv2d, ReLU and modules that define their own
    `position_program(batch, size)`) as a function (i, j, x [B, in]) -> its output at (i, j),
    [B, out], with a cache per convolution: called in raster order, it computes what the module
    computes at (i, j) from the inputs at and before (i, j)."""
    if isinstance(module, torch.nn.Sequential):
        parts = [position_program(m, batch, size) for m in module]

        def run(i, j, x):
            for part in parts:
                x = part(i, j, x)
            return x

        return run
    if isinstance(module, MaskedConv2d):
        return CachedMaskedConv(module, batch, size)
    if isinstance(module, torch.nn.ReLU):
        return lambda i, j, x: F.relu(x)
    if hasattr(module, "position_program"):
        return module.position_program(batch, size)
    raise TypeError(f"position_program: no cached form of {type(module).__name__}")


# Up to this batch a cached sampler's steps run on one CPU thread (one_thread_for_small_steps)
ONE_THREAD_BATCH = 256


@contextlib.contextmanager
def one_thread_for_small_steps(device: torch.device, batch: int | None):
    """Runs the body on one CPU thread when `batch` (None: not a cached sampler) is small. A
    cached sampling step is microseconds to tens of microseconds of work per layer, less than
    waking a second thread costs, and on a busy machine a descheduled thread stalls every step at
    the barrier (a softmax over [16, 256] took 11 ms instead of microseconds under a load of 5 on
    2 cores)."""
    if device.type != "cpu" or batch is None or batch > ONE_THREAD_BATCH:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
