"""Which input pixels (and colour channels) one output pixel of an autoregressive image model
depends on, read off exact gradients, and its picture: PixelCNN's blind spot shows, as does
the full causal past of the models without one.

A dependence is a non-zero gradient. Each output colour group's values at the pixel are summed
with random positive weights, and a union is taken over a few random images, so a dependence
hides only behind an exact cancellation or a ReLU that is off at every one of them; what a
position may not see always has an exactly zero gradient (masked taps, padding).
"""

import copy
from pathlib import Path

import torch

from gen_ext.models.pixelcnn_pp import PixelCNNPlusPlus
from gen_ext.models.softmax_pixel import SoftmaxPixelModel

COLOUR_NAMES = {1: ["grey"], 3: ["R", "G", "B"]}


def has_receptive_field(cls) -> bool:
    """Whether output_groups knows the model class: the autoregressive image models."""
    return issubclass(cls, (SoftmaxPixelModel, PixelCNNPlusPlus))


def output_groups(model, x: torch.Tensor) -> list[torch.Tensor]:
    """The model's predictions at every position, one [B, K, H, W] tensor per output colour
    group: a softmax model's logits per colour; PixelCNN++'s mixture parameters, which predict
    a pixel's colours jointly, as one group."""
    if isinstance(model, SoftmaxPixelModel):
        logits = model.logits(x)  # [B, C, levels, H, W]
        return list(logits.unbind(1))
    if isinstance(model, PixelCNNPlusPlus):
        return [model.params(x)]
    raise ValueError(
        f"receptive_field: {type(model).__name__} is not an autoregressive image model "
        f"(PixelCNN, Gated PixelCNN, PixelCNN++, PixelRNN)"
    )


def receptive_field(model, pixel: tuple[int, int], images: int = 8, seed: int = 0):
    """[groups, C, H, W] bool: True where output group g at `pixel` depends on input channel c
    at (h, w). The model runs in float64 on `images` random images of its levels."""
    C, H, W = model.input_shape
    i, j = pixel
    if not (0 <= i < H and 0 <= j < W):
        raise ValueError(f"receptive_field: pixel must lie in the {H}x{W} image, got {pixel}")
    model = copy.deepcopy(model).double().eval()  # the caller's model keeps its dtype and mode
    g = torch.Generator().manual_seed(seed)
    levels = model.levels
    field = None
    for _ in range(images):
        x = torch.randint(0, levels, (1, C, H, W), generator=g).double() / (levels - 1)
        x.requires_grad_()
        groups = output_groups(model, x)
        seen = []
        for out in groups:
            picked = out[0, :, i, j]
            weights = torch.rand(picked.shape, generator=g, dtype=picked.dtype) + 0.5
            (grad,) = torch.autograd.grad((picked * weights).sum(), x, retain_graph=True)
            seen.append(grad[0] != 0)
        seen = torch.stack(seen)
        field = seen if field is None else field | seen
    return field


def earlier_sub_pixels(shape, groups: int, pixel: tuple[int, int]) -> torch.Tensor:
    """[groups, C, H, W] bool: what output group g at `pixel` may see: every pixel before it in
    raster order and, with one group per colour, the earlier colours of the pixel itself."""
    C, H, W = shape
    i, j = pixel
    before = torch.zeros((H, W), dtype=torch.bool)
    before.view(-1)[: i * W + j] = True
    allowed = before.expand(groups, C, H, W).clone()
    if groups == C:
        for g in range(groups):
            allowed[g, :g, i, j] = True
    return allowed


# cell colours: the output pixel, an input it depends on, one it may see but does not (a blind
# spot), one it may not see
TARGET, SEEN, MISSED, FUTURE = (230, 120, 20), (40, 70, 160), (235, 80, 80), (235, 235, 235)
LEGEND = "blue: seen   red: earlier but not seen (blind spot)   grey: later   orange: the output"


def draw_receptive_field(
    field: torch.Tensor,
    pixel: tuple[int, int],
    path,
    title: str = "",
    cell: int = 20,
) -> Path:
    """A PNG of field [groups, C, H, W] (receptive_field's), one panel per output colour group;
    each input pixel a cell split into C stripes (its channels): blue where the output depends
    on it, red where it may (earlier in raster order) but does not, light grey where it may not;
    the output pixel in orange."""
    import io

    from PIL import Image, ImageDraw, ImageFont

    from gen_ext.files import atomic_write_bytes

    groups, C, H, W = field.shape
    allowed = earlier_sub_pixels((C, H, W), groups, pixel)
    font = ImageFont.load_default()
    lines = [title, LEGEND] if title else [LEGEND]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_w = max(measure.textlength(line, font=font) for line in lines)
    gap, line_h = cell, 14
    top = gap // 2 + line_h * len(lines) + line_h + 4  # the text lines, then the panel labels
    panel_w, panel_h = W * cell, H * cell
    width = max(groups * (panel_w + gap) + gap, int(text_w) + 2 * gap)
    image = Image.new("RGB", (width, panel_h + top + gap), "white")
    draw = ImageDraw.Draw(image)
    for k, line in enumerate(lines):
        draw.text((gap, gap // 2 + k * line_h), line, fill="black", font=font)
    names = COLOUR_NAMES.get(C, [str(c) for c in range(C)])
    stripe = cell / C
    for g in range(groups):
        left = gap + g * (panel_w + gap)
        label = f"output {names[g]}" if groups == C and C > 1 else "output"
        draw.text((left, top - line_h - 2), label, fill="black", font=font)
        for h in range(H):
            for w in range(W):
                for c in range(C):
                    if (h, w) == tuple(pixel) and not allowed[g, c, h, w]:
                        colour = TARGET
                    elif field[g, c, h, w]:
                        colour = SEEN
                    elif allowed[g, c, h, w]:
                        colour = MISSED
                    else:
                        colour = FUTURE
                    x0 = left + w * cell + round(c * stripe)
                    x1 = left + w * cell + round((c + 1) * stripe) - 1
                    y0 = top + h * cell
                    draw.rectangle([x0, y0, x1, y0 + cell - 1], fill=colour)
        for k in range(H + 1):  # cell borders
            draw.line([left, top + k * cell, left + panel_w, top + k * cell], fill="white")
        for k in range(W + 1):
            draw.line([left + k * cell, top, left + k * cell, top + panel_h], fill="white")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())
