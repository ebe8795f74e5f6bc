"""Drop-in layers built on gen_ext.ops."""

from .dlm import DiscretizedLogisticMixture
from .gaussian import GaussianLatent

__all__ = ["DiscretizedLogisticMixture", "GaussianLatent"]
