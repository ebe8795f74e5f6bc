"""gen_ext: fused C++/CUDA/Triton kernels for generative models, and thin models built on them."""

__version__ = "0.1.0"

from . import nn, ops, reference  # noqa: E402

__all__ = ["nn", "ops", "reference", "__version__"]
