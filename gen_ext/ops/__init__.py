"""The public ops of gen_ext, backed by torch.ops.gen_ext.* (see DESIGN: each op has a reference
in gen_ext.reference, a CPU kernel and a GPU kernel)."""

from gen_ext import _extension

from .backend import get_backend, use_backend
from .causal_conv1d import causal_conv1d
from .concat_elu import concat_elu
from .conv_path import (
    conv_path_choices,
    conv_path_policy,
    set_conv_path_choices,
    set_conv_path_policy,
    use_conv_path,
)
from .diagonal_lstm import diagonal_lstm_scan
from .dlm import discretized_logistic_mixture_nll, sample_discretized_logistic_mixture
from .gated import gated_activation
from .gated_resnet_block import gated_resnet_block
from .gaussian import gaussian_reparameterize_kl
from .langevin import langevin_step
from .masked_conv import masked_conv2d
from .shifted_conv import shifted_conv2d
from .wavenet_step import wavenet_layer_step

if _extension.available():
    from . import diagonal_lstm as _diagonal_lstm
    from . import dlm as _dlm
    from . import gated as _gated
    from . import gaussian as _gaussian
    from . import langevin as _langevin
    from . import masked_conv as _masked_conv
    from . import shifted_conv as _shifted_conv
    from . import wavenet_step as _wavenet_step
    from .causal_conv1d import register as _register_causal_conv1d
    from .concat_elu import register as _register_concat_elu
    from .gated_resnet_block import register as _register_gated_resnet_block

    _register_concat_elu()
    _register_causal_conv1d()
    _diagonal_lstm.register()
    _dlm.register()
    _gated.register()
    _register_gated_resnet_block()
    _gaussian.register()
    _langevin.register()
    _masked_conv.register()
    _shifted_conv.register()
    _wavenet_step.register()

__all__ = [
    "causal_conv1d",
    "concat_elu",
    "diagonal_lstm_scan",
    "discretized_logistic_mixture_nll",
    "sample_discretized_logistic_mixture",
    "gaussian_reparameterize_kl",
    "gated_activation",
    "gated_resnet_block",
    "langevin_step",
    "masked_conv2d",
    "shifted_conv2d",
    "wavenet_layer_step",
    "get_backend",
    "use_backend",
    "conv_path_choices",
    "conv_path_policy",
    "set_conv_path_choices",
    "set_conv_path_policy",
    "use_conv_path",
]
