import os

# Triton kernels run on CPU tensors through the interpreter; this must be set before anything
# imports triton.
os.environ.setdefault("TRITON_INTERPRET", "1")
# Tests of the CPU convolution kernels must run those kernels, not the dense path a timing would
# pick for some shapes (gen_ext.ops.conv_path); tests/test_conv_path.py covers "auto" and "dense".
os.environ.setdefault("GEN_EXT_CONV_PATH", "kernel")

import pytest  # noqa: E402
import torch  # noqa: E402

import gen_ext  # noqa: E402,F401  (loads gen_ext._C and registers the ops)
from gen_ext import _extension  # noqa: E402

# The CPU kernels are built for several instruction sets; tests that compare kernels against the
# reference run on every one this processor supports.
CPU_ISAS = ("default", "avx2", "avx512")


def pytest_configure(config):
    if not _extension.available():
        raise pytest.UsageError(_extension._load())


@pytest.fixture(params=CPU_ISAS)
def cpu_isa(request, monkeypatch):
    """Selects one CPU kernel build for the test (skipped where the processor lacks it)."""
    monkeypatch.setenv("GEN_EXT_CPU_CAPABILITY", request.param)
    if torch.ops.gen_ext.cpu_capability() != request.param:
        pytest.skip(f"this processor or build has no {request.param} kernels")
    return request.param


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(1234)
