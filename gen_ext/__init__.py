"""gen_ext: fused C++/CUDA/Triton kernels for generative models, and thin models built on them.

`import gen_ext` is enough for gen_ext.ops, .nn, .models, .data and .metrics (data flows
models -> nn -> ops; none of them imports this package's top level, so there is no cycle).
"""

from . import data, metrics, models, nn, ops, reference
from ._version import __version__

__all__ = ["__version__", "data", "metrics", "models", "nn", "ops", "reference"]
