"""Plain-PyTorch references of every gen_ext op: readable, float64-capable, the specification the
fused kernels are tested against. Also the backend behind
``gen_ext.ops.use_backend("reference")``."""

from .causal_conv1d import causal_conv1d
from .concat_elu import concat_elu, dropout_factors
from .diagonal_lstm import diagonal_lstm_scan
from .dlm import (
    discretized_logistic_mixture_nll,
    discretized_logistic_mixture_sample,
    sample_discretized_logistic_mixture,
)
from .gated import gated_activation
from .gated_resnet_block import gated_resnet_block, gated_resnet_block_parts
from .gaussian import gaussian_noise, gaussian_reparameterize_kl
from .langevin import langevin_step
from .masked_conv import masked_conv2d, masked_conv2d_dense, pixelcnn_mask
from .shifted_conv import shifted_conv2d, shifted_conv2d_dense, shifted_padding
from .wavenet_step import wavenet_layer_step

__all__ = [
    "causal_conv1d",
    "concat_elu",
    "dropout_factors",
    "diagonal_lstm_scan",
    "discretized_logistic_mixture_nll",
    "discretized_logistic_mixture_sample",
    "sample_discretized_logistic_mixture",
    "gaussian_reparameterize_kl",
    "gaussian_noise",
    "gated_activation",
    "gated_resnet_block",
    "gated_resnet_block_parts",
    "masked_conv2d",
    "masked_conv2d_dense",
    "pixelcnn_mask",
    "shifted_conv2d",
    "shifted_conv2d_dense",
    "shifted_padding",
    "wavenet_layer_step",
    "langevin_step",
]
