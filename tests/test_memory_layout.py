"""The layout a model's network runs in on a CPU: channels last on the kernels backend (unless
GEN_EXT_CPU_LAYOUT=contiguous), as written on the reference backend; either way the same
results."""

import pytest
import torch

from gen_ext import ops
from gen_ext.models import PixelCNNPlusPlus


def conv_input_layouts(model, x):
    """The memory format of every convolution's input in one forward pass."""
    seen = []

    def record(module, args):
        t = args[0]
        if t.is_contiguous():
            seen.append("contiguous")
        elif t.is_contiguous(memory_format=torch.channels_last):
            seen.append("channels_last")
        else:
            seen.append(f"strides {t.stride()}")  # neither: a copy would be made

    handles = [
        m.register_forward_pre_hook(record)
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)
    ]
    try:
        loss = model.loss(x)[0]
    finally:
        for h in handles:
            h.remove()
    return set(seen), loss


def small_model():
    torch.manual_seed(0)
    model = PixelCNNPlusPlus(input_shape=(3, 8, 8), levels=16, channels=8, blocks=1, mixtures=2)
    x = torch.randint(0, 16, (2, 3, 8, 8)).float() / 15
    return model.eval(), x


@pytest.mark.parametrize(
    "backend,setting,layout",
    [
        ("kernels", None, "channels_last"),  # the default
        ("kernels", "channels_last", "channels_last"),
        ("kernels", "contiguous", "contiguous"),
        ("reference", "channels_last", "contiguous"),  # the model as written, whatever the setting
    ],
)
def test_layout_of_the_network_on_a_cpu(monkeypatch, backend, setting, layout):
    """Every convolution reads the layout asked for, and the loss is the reference's NCHW one up
    to float32 rounding (oneDNN sums in another order per layout)."""
    model, x = small_model()
    with ops.use_backend("reference"):
        want = model.loss(x)[0]
    if setting is None:
        monkeypatch.delenv("GEN_EXT_CPU_LAYOUT", raising=False)
    else:
        monkeypatch.setenv("GEN_EXT_CPU_LAYOUT", setting)
    with ops.use_backend(backend):
        layouts, got = conv_input_layouts(model, x)
    assert layouts == {layout}
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_bad_layout_names_the_variable(monkeypatch):
    model, x = small_model()
    monkeypatch.setenv("GEN_EXT_CPU_LAYOUT", "nhwc")
    with pytest.raises(ValueError, match="GEN_EXT_CPU_LAYOUT must be one of"):
        model.loss(x)
