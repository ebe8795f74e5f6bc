"""PixelCNN++ (Salimans et al., 2017): a discretized logistic mixture per pixel, conditioned on
whole pixels (the mixture's coefficients handle R -> G -> B), two streams of gated residual blocks
over shifted convolutions, and a U-net of stride-2 down- and upsampling with long-range skip
connections."""

import torch
import torch.nn.functional as F
from torch import nn

from gen_ext.nn import (
    DiscretizedLogisticMixture,
    DownRightShiftedConv2d,
    DownRightShiftedConvTranspose2d,
    DownShiftedConv2d,
    DownShiftedConvTranspose2d,
    GatedResidualBlock,
    shift_down,
    shift_right,
)
from gen_ext.ops.memory_layout import to_model_layout

from .autoregressive import AutoregressiveImageModel, raster_order
from .cached_sampling import one_thread_for_small_steps
from .pixelcnn_pp_sampler import PixelCNNPlusPlusSampler


class PixelCNNPlusPlus(AutoregressiveImageModel):
    """Two streams: u (down-shifted: row i sees the rows above) and ul (down-right-shifted: also
    the pixels to the left on row i). The first pass runs `blocks` gated residual blocks per
    resolution, halving the resolution between them (`resolutions` in all) and keeping every
    output; the second pass climbs back with `blocks` (+1 above the coarsest) blocks per
    resolution, each taking one kept output of the first pass as a skip connection. The output at
    (i, j) depends only on the pixels before (i, j) in raster order, all of them once the
    network is deep enough. Images of any size work (odd sizes are cropped after upsampling).

    The input carries an extra channel of ones so the network can tell the zero padding at the
    border from black pixels.
    """

    cli_name = "pixelcnn++"
    # with dropout 0.5 the held-out bits/dim of the digits levels off here (measured; README)
    default_epochs = 30

    def __init__(
        self,
        input_shape=(1, 8, 8),
        levels: int = 17,
        channels: int = 32,
        resolutions: int = 2,
        blocks: int = 2,
        mixtures: int = 5,
        dropout: float = 0.5,
    ):
        super().__init__(
            input_shape,
            levels,
            channels=channels,
            resolutions=resolutions,
            blocks=blocks,
            mixtures=mixtures,
            dropout=dropout,
        )
        if channels < 1 or resolutions < 1 or blocks < 1:
            raise ValueError(
                f"PixelCNNPlusPlus: channels, resolutions and blocks must be "
                f"positive, got channels={channels}, resolutions={resolutions}, "
                f"blocks={blocks}"
            )
        C, F_ = self.input_shape[0], channels
        self.mixture = DiscretizedLogisticMixture(C, mixtures, levels)
        self.u_in = DownShiftedConv2d(C + 1, F_, (2, 3))
        self.ul_in_above = DownShiftedConv2d(C + 1, F_, (1, 3))
        self.ul_in_left = DownRightShiftedConv2d(C + 1, F_, (2, 1))

        def pair(aux_u, aux_ul):  # one block of each stream
            return nn.ModuleList(
                [
                    GatedResidualBlock(F_, "down", aux_u * F_, dropout),
                    GatedResidualBlock(F_, "down_right", aux_ul * F_, dropout),
                ]
            )

        self.first_pass = nn.ModuleList(
            nn.ModuleList(pair(0, 1) for _ in range(blocks)) for _ in range(resolutions)
        )
        self.downsample = nn.ModuleList(
            nn.ModuleList(
                [
                    DownShiftedConv2d(F_, F_, (2, 3), stride=2),
                    DownRightShiftedConv2d(F_, F_, (2, 2), stride=2),
                ]
            )
            for _ in range(resolutions - 1)
        )
        # second pass, coarsest first: the skip of u is one map, of ul that map and u's
        self.second_pass = nn.ModuleList(
            nn.ModuleList(pair(1, 2) for _ in range(blocks + (r > 0))) for r in range(resolutions)
        )
        self.upsample = nn.ModuleList(
            nn.ModuleList(
                [
                    DownShiftedConvTranspose2d(F_, F_, (2, 3), stride=2),
                    DownRightShiftedConvTranspose2d(F_, F_, (2, 2), stride=2),
                ]
            )
            for _ in range(resolutions - 1)
        )
        self.out = nn.Conv2d(F_, self.mixture.num_params, 1)

    def params(self, x: torch.Tensor) -> torch.Tensor:
        """Mixture parameters [B, num_params, H, W]; those at (i, j) see the pixels before it."""
        x = x * 2 - 1
        x = to_model_layout(x)  # channels last on a CPU with the kernels (memory_layout.py)
        x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        u = shift_down(self.u_in(x))
        ul = shift_down(self.ul_in_above(x)) + shift_right(self.ul_in_left(x))
        us, uls = [u], [ul]
        for r, level in enumerate(self.first_pass):
            for u_block, ul_block in level:
                u = u_block(u)
                ul = ul_block(ul, aux=u)
                us.append(u)
                uls.append(ul)
            if r < len(self.downsample):
                down_u, down_ul = self.downsample[r]
                u, ul = down_u(u), down_ul(ul)
                us.append(u)
                uls.append(ul)
        u, ul = us.pop(), uls.pop()
        for r, level in enumerate(self.second_pass):
            if r > 0:
                up_u, up_ul = self.upsample[r - 1]
                H, W = us[-1].shape[-2:]  # the finer map's size, which an odd size rounds up
                u, ul = up_u(u)[..., :H, :W], up_ul(ul)[..., :H, :W]
            for u_block, ul_block in level:
                u = u_block(u, aux=us.pop())
                ul = ul_block(ul, aux=torch.cat([u, uls.pop()], dim=1))
        return self.out(F.elu(ul)).contiguous()

    def _nll(self, x, labels):
        self.check_images(x)
        self.check_labels(labels, x.shape[0])
        return self.mixture.nll(self.params(x), x * 2 - 1).flatten(1).sum(1)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        progress: bool = False,
        fast: bool = True,
    ) -> torch.Tensor:
        """n images [n, C, H, W] on the level grid, one pixel at a time in raster order, each from
        one draw of the mixture at that pixel (all channels of the pixel, R -> G -> B inside the
        draw). `progress` shows a bar over the pixels on stderr.

        fast=False runs a full forward pass per pixel: the exact reference. fast=True (eval mode
        only: a model in training mode raises ValueError) computes every feature map once per
        position from per-layer caches (gen_ext.models.pixelcnn_pp_sampler; on a CPU, batches up
        to 256 run on one thread, faster for its small matmuls). Both make the same
        draws in the same order, so for a seed they give the same images."""
        device, dtype, _ = self._sampling_setup(n, None)
        C, H, W = self.input_shape
        x = torch.zeros((n, C, H, W), device=device, dtype=dtype)
        steps = self._fast_steps(x) if fast else self._naive_steps(x)
        order = raster_order(self.input_shape, per_channel=False, progress=progress)
        with one_thread_for_small_steps(device, n if fast else None):
            for (i, j, _), params in zip(order, steps, strict=True):
                pixel = self.mixture.sample(params, generator)[:, :, 0, 0]  # in [-1, 1]
                # back to the level index, so the stored value is k / (levels - 1) exactly
                k = ((pixel + 1) * ((self.levels - 1) / 2)).round()
                x[:, :, i, j] = k / (self.levels - 1)
        return x

    def _naive_steps(self, x: torch.Tensor):
        """The parameters [n, P, 1, 1] at (0, 0), (0, 1), ... in raster order, each from a full
        forward pass over x (read after the caller has filled in the pixel before)."""
        _, H, W = self.input_shape
        for i in range(H):
            for j in range(W):
                yield self.params(x)[:, :, i : i + 1, j : j + 1]

    def _fast_steps(self, x: torch.Tensor):
        """The same parameters from the cached sampler (ValueError in training mode)."""
        return PixelCNNPlusPlusSampler(self, x.shape[0]).steps(x)
