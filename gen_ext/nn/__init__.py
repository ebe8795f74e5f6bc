"""Drop-in layers built on gen_ext.ops."""

from .causal_conv1d import CausalConv1d
from .diagonal_lstm import DiagonalBiLSTM, DiagonalLSTM, skew, unskew
from .dlm import DiscretizedLogisticMixture
from .gated import GatedActivation
from .gated_resnet import ConcatELU, GatedResidualBlock, concat_elu
from .gated_stack import GatedStackLayer
from .gaussian import GaussianLatent
from .masked_conv import MaskedConv2d
from .shifted_conv import (
    DownRightShiftedConv2d,
    DownRightShiftedConvTranspose2d,
    DownShiftedConv2d,
    DownShiftedConvTranspose2d,
    shift_down,
    shift_right,
)
from .wavenet import WaveNetLayer

__all__ = [
    "CausalConv1d",
    "DiscretizedLogisticMixture",
    "GatedActivation",
    "GaussianLatent",
    "MaskedConv2d",
    "DownShiftedConv2d",
    "DownRightShiftedConv2d",
    "DownShiftedConvTranspose2d",
    "DownRightShiftedConvTranspose2d",
    "shift_down",
    "shift_right",
    "GatedStackLayer",
    "GatedResidualBlock",
    "concat_elu",
    "ConcatELU",
    "DiagonalLSTM",
    "DiagonalBiLSTM",
    "skew",
    "unskew",
    "WaveNetLayer",
]
