"""Model families composed from gen_ext.nn; each constructs with no arguments into a small
configuration that trains on the bundled digits."""

from .autoencoders import VAE, Autoencoder, ConvAutoencoder, DenoisingAutoencoder, corrupt
from .base import GenerativeModel

# the names `gen-ext train MODEL` takes
MODELS = {
    "autoencoder": Autoencoder,
    "conv-autoencoder": ConvAutoencoder,
    "denoising-autoencoder": DenoisingAutoencoder,
    "vae": VAE,
}

__all__ = ["Autoencoder", "ConvAutoencoder", "DenoisingAutoencoder", "VAE", "GenerativeModel",
           "MODELS", "corrupt"]
