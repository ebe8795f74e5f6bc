"""WaveNet's layer (van den Oord et al., 2016, "WaveNet: A Generative Model for Raw Audio"): a
dilated causal convolution, the gated activation tanh(a) * sigmoid(b), and 1x1 convolutions to a
residual (added to the input) and a skip output; plus the layer's sampling step from a
ring-buffer cache, which computes one new time step from the inputs the dilation needs."""

import torch
from torch import nn

from gen_ext import ops

from .causal_conv1d import CausalConv1d


class WaveNetLayer(nn.Module):
    """x [B, R, T] -> (x + residual [B, R, T], skip [B, S, T]); output t sees x at t, t - d, ...,
    t - (K-1) d. `cond_channels` > 0 adds a global conditioning vector cond [B, G] inside the gate
    (a linear map to the gate's 2D pre-activations, the same at every time).

    >>> layer = WaveNetLayer(32, dilation=4, skip_channels=64)
    >>> x, skip = layer(x)
    >>> step = layer.sampler(batch=16)       # fast sampling: one time step at a time
    >>> x_t, skip_t = step(x_t)              # x_t [16, 32], time 0, 1, 2, ... in turn
    """

    def __init__(
        self,
        residual_channels: int,
        dilation: int = 1,
        kernel_size: int = 2,
        gate_channels: int | None = None,
        skip_channels: int | None = None,
        cond_channels: int = 0,
    ):
        super().__init__()
        R = residual_channels
        D = R if gate_channels is None else gate_channels
        S = R if skip_channels is None else skip_channels
        sizes = dict(residual_channels=R, gate_channels=D, skip_channels=S)
        if any(not isinstance(v, int) or v < 1 for v in sizes.values()):
            raise ValueError(f"WaveNetLayer: channel counts must be positive ints, got {sizes}")
        if not isinstance(cond_channels, int) or cond_channels < 0:
            raise ValueError(
                f"WaveNetLayer: cond_channels must be an int >= 0, got {cond_channels!r}"
            )
        self.residual_channels, self.gate_channels, self.skip_channels = R, D, S
        self.conv = CausalConv1d(R, 2 * D, kernel_size, dilation)
        self.cond = nn.Linear(cond_channels, 2 * D, bias=False) if cond_channels else None
        # the residual and skip 1x1 convolutions as one: one matrix product for both
        self.out = nn.Conv1d(D, R + S, 1)

    @property
    def receptive_field(self) -> int:
        return self.conv.receptive_field

    def _cond(self, cond: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if (cond is None) != (self.cond is None):
            raise ValueError(
                "WaveNetLayer: pass cond exactly when the layer was built with cond_channels"
            )
        if cond is None:
            return None
        want = [batch, self.cond.in_features]
        if list(cond.shape) != want:
            raise ValueError(f"WaveNetLayer: cond must have shape {want}, got {list(cond.shape)}")
        return self.cond(cond)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None):
        z = self.conv(x)
        c = self._cond(cond, x.shape[0])
        if c is not None:
            z = z + c[:, :, None]
        out = self.out(ops.gated_activation(z))
        R = self.residual_channels
        return x + out[:, :R], out[:, R:]

    @torch.no_grad()
    def sampler(self, batch: int, cond: torch.Tensor | None = None) -> "LayerSampler":
        """The layer's fast sampling step for `batch` sequences, with an empty cache."""
        return LayerSampler(self, batch, self._cond(cond, batch))


class LayerSampler:
    """One WaveNetLayer's state while sampling: its cache of the last (K-1) * dilation inputs
    (a ring buffer [L, B, R], time s in slot s mod L: nothing is ever shifted) and its weights in
    the step op's layout. Called with the layer's input at the next time step, it returns the
    layer's outputs there (gen_ext.ops.wavenet_layer_step), one position of work."""

    def __init__(self, layer: WaveNetLayer, batch: int, cond_bias: torch.Tensor | None):
        w = layer.conv.weight.detach()
        (K,), (d,) = layer.conv.kernel_size, layer.conv.dilation
        self.weight_taps = w.permute(2, 1, 0).contiguous()  # [K, R, 2D]
        self.bias = None if layer.conv.bias is None else layer.conv.bias.detach()
        self.cond = cond_bias
        self.out_weight = layer.out.weight.detach()[:, :, 0].T.contiguous()  # [D, R + S]
        self.out_bias = layer.out.bias.detach()
        self.cache = w.new_zeros(((K - 1) * d, batch, layer.residual_channels))
        self.step = 0

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = ops.wavenet_layer_step(
            x,
            self.cache,
            self.step,
            self.weight_taps,
            self.bias,
            self.cond,
            self.out_weight,
            self.out_bias,
        )
        self.step += 1
        return out
