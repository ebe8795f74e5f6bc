"""The memory layout the elementwise kernels (concat-ELU, gated activation) return, as
csrc/memory_layout.h decides it, for the fake kernels: channels last for a 4-D tensor stored
that way, else contiguous. torch._prims_common.suggest_memory_format is the Python twin of the
C++ Tensor::suggest_memory_format the kernels call."""

import os

import torch
from torch._prims_common import suggest_memory_format

from .backend import get_backend


def kernel_layout(x: torch.Tensor) -> torch.memory_format:
    return suggest_memory_format(x) if x.dim() == 4 else torch.contiguous_format


def empty_in_layout_of(x: torch.Tensor, shape) -> torch.Tensor:
    """An uninitialised tensor of `shape` like x, in the layout the kernels would give it."""
    return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=kernel_layout(x))


# GEN_EXT_CPU_LAYOUT: the layout models on the kernels backend run their convolutions in on a CPU
CPU_LAYOUTS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


def cpu_model_layout() -> torch.memory_format:
    """Channels last unless GEN_EXT_CPU_LAYOUT=contiguous (read on every call). oneDNN's
    convolutions at PixelCNN++'s shapes ran 15-25% faster forward and backward on channels-last
    maps on an Intel Xeon (2026-12-04), and the elementwise kernels keep that layout with no copy;
    on another processor `python benchmarks/pixelcnnpp_step.py` times both."""
    name = os.environ.get("GEN_EXT_CPU_LAYOUT", "channels_last")
    if name not in CPU_LAYOUTS:
        raise ValueError(f"GEN_EXT_CPU_LAYOUT must be one of {sorted(CPU_LAYOUTS)}, got {name!r}")
    return CPU_LAYOUTS[name]


def to_model_layout(x: torch.Tensor) -> torch.Tensor:
    """A model's input in the layout its network runs in: cpu_model_layout() for a 4-D CPU
    tensor on the kernels backend; unchanged otherwise (the reference backend runs the model as
    written, in NCHW, and on a GPU the kernels take what they are given)."""
    if x.dim() == 4 and x.device.type == "cpu" and get_backend() == "kernels":
        return x.contiguous(memory_format=cpu_model_layout())
    return x
