"""The public ops of gen_ext, backed by torch.ops.gen_ext.* (see DESIGN: each op has a reference
in gen_ext.reference, a CPU kernel and a GPU kernel)."""

from gen_ext import _extension

from .backend import get_backend, use_backend
from .dlm import discretized_logistic_mixture_nll, sample_discretized_logistic_mixture
from .gaussian import gaussian_reparameterize_kl

if _extension.available():
    from . import dlm as _dlm
    from . import gaussian as _gaussian

    _dlm.register()
    _gaussian.register()

__all__ = [
    "discretized_logistic_mixture_nll",
    "sample_discretized_logistic_mixture",
    "gaussian_reparameterize_kl",
    "get_backend",
    "use_backend",
]
