"""Reference Langevin step (the sampler of energy-based models).

out = clamp(x - step_size * grad_energy + noise_scale * noise, lo, hi), where noise is element i
(row-major over x) of the counter-based standard normal stream `seed` (gaussian_noise, the
stream the Gaussian reparameterization draws) and the clamp applies only the bounds given
(None: no bound); a NaN stays NaN, as with torch.clamp.
"""

import torch

from .gaussian import gaussian_noise


def langevin_step(
    x: torch.Tensor,
    grad_energy: torch.Tensor,
    step_size: float,
    noise_scale: float,
    lo: float | None,
    hi: float | None,
    seed,
) -> torch.Tensor:
    noise = gaussian_noise(x.shape, seed, x.dtype, x.device)
    out = x - step_size * grad_energy + noise_scale * noise
    if lo is not None or hi is not None:
        out = torch.clamp(out, lo, hi)
    return out
