"""What the cached samplers of the convolutional image models share: each layer's input map kept
with its zero border already in place, written one position (or one row) at a time as the
positions become final, and the layer's output computed only where it is needed next, from the
window there. A naive sampler runs the whole network for every sub-pixel; these compute each
position of each layer once per sub-pixel pass (or once per row), so a step costs a few
positions' work instead of an image's."""

import contextlib

import torch
import torch.nn.functional as F

from gen_ext.nn import MaskedConv2d


class PaddedMap:
    """A layer's input [B, C, H, W] inside its zero border `pad` (left, right, top, bottom, as
    F.pad orders it), so that the output at (i, j) of a kh x kw convolution over the padded map
    reads rows i .. i + kh - 1 and columns j .. j + kw - 1 of `buf`."""

    def __init__(self, like: torch.Tensor, batch: int, channels: int, size, pad):
        (H, W), (self.left, right, self.top, bottom) = size, pad
        self.buf = like.new_zeros((batch, channels, H + self.top + bottom, W + self.left + right))
        self.width = W

    def write(self, i: int, j: int, value: torch.Tensor) -> None:
        """The input at (i, j), [B, C]."""
        self.buf[:, :, i + self.top, j + self.left] = value

    def write_row(self, i: int, row: torch.Tensor) -> None:
        """The input's row i, [B, C, W]."""
        self.buf[:, :, i + self.top, self.left : self.left + self.width] = row

    def window(self, i: int, j: int, kh: int, kw: int) -> torch.Tensor:
        """The kh x kw window whose output is (i, j), flattened like a weight's [C, kh, kw]."""
        return self.buf[:, :, i : i + kh, j : j + kw].reshape(self.buf.shape[0], -1)

    def rows(self, i: int, kh: int) -> torch.Tensor:
        """The kh padded rows whose convolution is output row i, [B, C, kh, W + pads]."""
        return self.buf[:, :, i : i + kh]


class CachedMaskedConv:
    """A MaskedConv2d at one position at a time: its input map with the 'same' zero border, and
    its masked weight flattened once per sampling run. 1x1 layers need no map (a position's
    output reads only that position)."""

    def __init__(self, conv: MaskedConv2d, batch: int, size):
        kh, kw = self.kernel = conv.kernel_size
        w = conv.weight.detach() * conv.mask()
        self.weight = w.reshape(w.shape[0], -1)
        self.bias = None if conv.bias is None else conv.bias.detach()
        pad = (kw // 2, kw // 2, kh // 2, kh // 2)
        self.map = None if (kh, kw) == (1, 1) else PaddedMap(w, batch, conv.in_channels, size, pad)

    def __call__(self, i: int, j: int, x: torch.Tensor) -> torch.Tensor:
        """The output at (i, j), [B, out], given the input there, x [B, in]; the inputs before
        (i, j) in raster order (and above it) were written by earlier calls."""
        if self.map is None:
            return F.linear(x, self.weight, self.bias)
        self.map.write(i, j, x)
        return F.linear(self.map.window(i, j, *self.kernel), self.weight, self.bias)


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
