"""Drop-in layers built on gen_ext.ops."""

from .dlm import DiscretizedLogisticMixture

__all__ = ["DiscretizedLogisticMixture"]
