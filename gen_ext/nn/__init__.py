"""Drop-in layers built on gen_ext.ops."""

from .dlm import DiscretizedLogisticMixture
from .gated import GatedActivation
from .gaussian import GaussianLatent
from .masked_conv import MaskedConv2d

__all__ = ["DiscretizedLogisticMixture", "GatedActivation", "GaussianLatent", "MaskedConv2d"]
