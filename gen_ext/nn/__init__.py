"""Drop-in layers built on gen_ext.ops."""

from .dlm import DiscretizedLogisticMixture
from .gaussian import GaussianLatent
from .masked_conv import MaskedConv2d

__all__ = ["DiscretizedLogisticMixture", "GaussianLatent", "MaskedConv2d"]
