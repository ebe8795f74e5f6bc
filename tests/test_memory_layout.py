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
        seen.append("channels_last" if not t.is_contiguous() else "contiguous")

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


def test_kernels_run_channels_last_on_a_cpu(monkeypatch):
    monkeypatch.delenv("GEN_EXT_CPU_LAYOUT", raising=False)
    model, x = small_model()
    layouts, fused = conv_input_layouts(model, x)
    assert layouts == {"channels_last"}
    with ops.use_backend("reference"):
        layouts, reference = conv_input_layouts(model, x)
    assert layouts == {"contiguous"}
    torch.testing.assert_close(fused, reference, rtol=1e-5, atol=1e-5)


def test_contiguous_layout_on_request(monkeypatch):
    model, x = small_model()
    monkeypatch.setenv("GEN_EXT_CPU_LAYOUT", "channels_last")
    channels_last = conv_input_layouts(model, x)[1]
    monkeypatch.setenv("GEN_EXT_CPU_LAYOUT", "contiguous")
    layouts, contiguous = conv_input_layouts(model, x)
    assert layouts == {"contiguous"}
    torch.testing.assert_close(channels_last, contiguous, rtol=1e-5, atol=1e-5)


def test_bad_layout_names_the_variable(monkeypatch):
    model, x = small_model()
    monkeypatch.setenv("GEN_EXT_CPU_LAYOUT", "nhwc")
    with pytest.raises(ValueError, match="GEN_EXT_CPU_LAYOUT must be one of"):
        model.loss(x)
