"""The memory layout the elementwise kernels (concat-ELU, gated activation) return, as
csrc/memory_layout.h decides it, for the fake kernels: channels last for a 4-D tensor stored
that way, else contiguous. torch._prims_common.suggest_memory_format is the Python twin of the
C++ Tensor::suggest_memory_format the kernels call."""

import torch
from torch._prims_common import suggest_memory_format


def kernel_layout(x: torch.Tensor) -> torch.memory_format:
    return suggest_memory_format(x) if x.dim() == 4 else torch.contiguous_format


def empty_in_layout_of(x: torch.Tensor, shape) -> torch.Tensor:
    """An uninitialised tensor of `shape` like x, in the layout the kernels would give it."""
    return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=kernel_layout(x))
