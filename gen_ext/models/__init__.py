"""Model families composed from gen_ext.nn; each constructs with no arguments into a small
configuration that trains on the bundled digits."""

from .autoencoders import VAE, Autoencoder, ConvAutoencoder, DenoisingAutoencoder, corrupt
from .autoregressive import AutoregressiveImageModel
from .base import ByCliName, GenerativeModel
from .began import BEGAN
from .ebm import EnergyBasedModel
from .gans import DCGAN, GAN, WGAN, WGANGP
from .gated_pixelcnn import GatedPixelCNN
from .infogan import InfoGAN
from .pixelcnn import PixelCNN
from .pixelcnn_pp import PixelCNNPlusPlus
from .pixelrnn import PixelRNN
from .wavenet import WaveNet

# the names `gen-ext train MODEL` takes: each model class's `cli_name`, read from the one registry
# (gen_ext.models.base.REGISTRY) that checkpoints are loaded through
MODELS = ByCliName()

__all__ = [
    "Autoencoder",
    "ConvAutoencoder",
    "DenoisingAutoencoder",
    "VAE",
    "GenerativeModel",
    "AutoregressiveImageModel",
    "PixelCNN",
    "GatedPixelCNN",
    "PixelCNNPlusPlus",
    "PixelRNN",
    "WaveNet",
    "GAN",
    "DCGAN",
    "WGAN",
    "WGANGP",
    "BEGAN",
    "InfoGAN",
    "EnergyBasedModel",
    "MODELS",
    "corrupt",
]
