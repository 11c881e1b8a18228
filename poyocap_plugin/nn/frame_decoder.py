"""The skip-connection UNet that decodes one movie frame from one output-query embedding."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from poyocap_plugin.frame_layout import PAPER_FRAME_HEIGHT_PX, PAPER_FRAME_WIDTH_PX

__all__ = ["SkipUNetFrameDecoder"]

Norm = Literal["group", "batch"]

_MAX_GROUPS = 8  # GroupNorm uses gcd(channels, 8) groups
_LEAKY_SLOPE = 0.2
_PIXEL_MAX = 255.0  # grey levels of an 8-bit frame
_OUTPUT_INIT_GAIN = 0.1  # start near mid-grey, in the sigmoid's linear range


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(math.gcd(channels, _MAX_GROUPS), channels)
    return nn.BatchNorm2d(channels)


class _UpStage(nn.Module):
    """Upsample x2 (bilinear), 3x3 conv, norm, LeakyReLU; then fuse an optional skip map."""

    def __init__(
        self,
        *,
        dim: int,
        in_channels: int,
        out_channels: int,
        height: int,
        width: int,
        skip_channels: int,
        norm: Norm,
    ):
        super().__init__()
        self.height, self.width, self.skip_channels = height, width, skip_channels
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            _norm(norm, out_channels),
            nn.LeakyReLU(_LEAKY_SLOPE),
        )
        if skip_channels > 0:
            self.skip_proj = nn.Linear(dim, skip_channels * height * width)
            self.fuse = nn.Sequential(
                nn.Conv2d(out_channels + skip_channels, out_channels, kernel_size=1),
                _norm(norm, out_channels),
                nn.LeakyReLU(_LEAKY_SLOPE),
            )

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.upsample(x))
        if self.skip_channels == 0:
            return x
        skip = self.skip_proj(embedding).view(-1, self.skip_channels, self.height, self.width)
        return self.fuse(torch.cat([x, skip], dim=1))


class SkipUNetFrameDecoder(nn.Module):
    r"""Decodes a grey-level movie frame from one decoded output-query embedding.

    The frame decoder of POYO-CAP (Bae et al., "Decoding Dynamic Visual Experience from
    Calcium Imaging via Cell-Pattern-Aware Pretraining", ICLR 2026), a decoder-only UNet:
    there is no image encoder, and the "skip connections" are learned projections of the
    same embedding, reshaped to each stage's resolution. The steps:

    1. LayerNorm the embedding :math:`z \in \mathbb{R}^{D}`.
    2. Seed: a linear projection of :math:`z` to a :math:`C_0 \times h_0 \times w_0` map,
       with :math:`h_0 = H / 2^S`, :math:`w_0 = W / 2^S` for :math:`S` = ``num_stages``.
    3. :math:`S` upsampling stages, each: bilinear x2, 3x3 conv, norm, LeakyReLU(0.2). The
       first ``num_skip_stages`` stages then concatenate a skip map, a linear projection of
       :math:`z` to ``skip_channels`` x (stage resolution), and fuse it with a 1x1 conv,
       norm and LeakyReLU.
    4. A 3x3 conv to one channel, and :math:`255 \cdot \sigma(\cdot)`: every output in
       (0, 255) has a nonzero gradient.

    Channels halve at every stage, from ``base_channels`` at the output resolution upwards,
    capped at ``max_channels``: stage :math:`s` (0-based) has
    :math:`\min(\text{max\_channels}, \text{base\_channels} \cdot 2^{S-1-s})` and the seed
    :math:`\min(\text{max\_channels}, \text{base\_channels} \cdot 2^{S})`.

    .. note::
        We follow the paper's architecture (latent-projection skips) at any frame size the
        stage count allows. The released code differs where it is broken: it ends in tanh
        followed by clamp(0, 1) x 255, so every negative output is exactly 0 with zero
        gradient; we use 255 x sigmoid. It also hard-codes 128 x 256 (or 64 x 128 below a
        latent width of 1024, whatever the target size) and uses BatchNorm; we default to
        GroupNorm, which does not depend on the batch (batches of one frame, evaluation with
        running statistics), and LayerNorm the embedding first.

    The module lives outside ``model.readout`` under a name free of ``readout``,
    ``unit_emb`` and ``session_emb`` (it has 1-D and 4-D parameters, which SparseLamb's
    sparse group cannot update).

    Args:
        dim: width :math:`D` of the output-query embedding.
        height: frame height :math:`H` (pixels); 128 in the paper.
        width: frame width :math:`W` (pixels); 256 in the paper.
        num_stages: number of x2 upsampling stages :math:`S`; :math:`H` and :math:`W`
            must be multiples of :math:`2^S`.
        base_channels: channels of the last (full-resolution) stage.
        max_channels: cap on the channels of the seed and the early stages.
        skip_channels: channels of each skip map.
        num_skip_stages: how many of the first stages receive a skip map (0 for none);
            a skip costs :math:`D \cdot \text{skip\_channels} \cdot h_s w_s` weights, so
            skips stay at the coarse stages.
        norm: ``"group"`` (GroupNorm with gcd(C, 8) groups) or ``"batch"`` (BatchNorm2d,
            as the released code).

    Example::

        >>> decoder = SkipUNetFrameDecoder(dim=32, height=16, width=32, num_stages=4,
        ...                                base_channels=8, max_channels=32)
        >>> decoder(torch.randn(5, 32)).shape
        torch.Size([5, 16, 32])
    """

    def __init__(
        self,
        *,
        dim: int,
        height: int = PAPER_FRAME_HEIGHT_PX,
        width: int = PAPER_FRAME_WIDTH_PX,
        num_stages: int = 7,
        base_channels: int = 16,
        max_channels: int = 256,
        skip_channels: int = 16,
        num_skip_stages: int = 4,
        norm: Norm = "group",
    ):
        super().__init__()
        for key, value, minimum in (
            ("dim", dim, 1),
            ("height", height, 1),
            ("width", width, 1),
            ("num_stages", num_stages, 1),
            ("base_channels", base_channels, 1),
            ("max_channels", max_channels, 1),
            ("skip_channels", skip_channels, 1),
            ("num_skip_stages", num_skip_stages, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{key} must be an integer >= {minimum}; got {value!r}")
        if norm not in ("group", "batch"):
            raise ValueError(f"norm must be one of 'group', 'batch'; got {norm!r}")
        scale = 2**num_stages
        if height % scale or width % scale:
            largest = min(_trailing_twos(height), _trailing_twos(width))
            fix = f"num_stages <= {largest} for this size" if largest else "even sides"
            raise ValueError(
                f"frame size height={height}, width={width} is not a multiple of "
                f"2**num_stages={scale}; choose {fix}, or a size whose sides are multiples "
                f"of {scale}"
            )
        if num_skip_stages > num_stages:
            raise ValueError(f"num_skip_stages={num_skip_stages} exceeds num_stages={num_stages}")
        self.dim, self.height, self.width = dim, height, width
        self.num_stages, self.num_skip_stages, self.norm = num_stages, num_skip_stages, norm

        def channels(stage: int) -> int:  # stage -1 is the seed
            return min(max_channels, base_channels * 2 ** (num_stages - 1 - stage))

        self.seed_shape = (channels(-1), height // scale, width // scale)
        self.input_norm = nn.LayerNorm(dim)
        self.seed_proj = nn.Linear(dim, math.prod(self.seed_shape))
        self.stages = nn.ModuleList(
            _UpStage(
                dim=dim,
                in_channels=channels(s - 1),
                out_channels=channels(s),
                height=height // 2 ** (num_stages - 1 - s),
                width=width // 2 ** (num_stages - 1 - s),
                skip_channels=skip_channels if s < num_skip_stages else 0,
                norm=norm,
            )
            for s in range(num_stages)
        )
        self.to_pixels = nn.Conv2d(channels(num_stages - 1), 1, kernel_size=3, padding=1)
        self.reset_parameters()
        # Channels-last conv weights make the convolutions (and their backward, most of the
        # decoder's time) run channels-last, which oneDNN and cuDNN run faster; ``.to()``
        # and ``load_state_dict`` keep the layout. See docs/benchmarks.md.
        self.to(memory_format=torch.channels_last)

    def reset_parameters(self) -> None:
        """Xavier-normal conv weights with zero biases; other layers keep PyTorch's init.

        The output conv's weights are scaled down (gain 0.1), so an untrained decoder starts
        near mid-grey (127.5), where the sigmoid is steepest.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_normal_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.xavier_normal_(self.to_pixels.weight, gain=_OUTPUT_INIT_GAIN)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        r"""Decode one frame per embedding.

        Args:
            embedding: decoded output-query embeddings of shape :math:`(N, D)`, one per
                frame (the query at the frame's time).

        Returns:
            Grey levels in (0, 255) of shape :math:`(N, H, W)`.

        Raises:
            ValueError: if ``embedding`` is not of shape :math:`(N, D)`.
        """
        if embedding.ndim != 2 or embedding.shape[1] != self.dim:
            raise ValueError(
                f"SkipUNetFrameDecoder expects embeddings of shape (N, {self.dim}); got "
                f"{tuple(embedding.shape)}"
            )
        z = self.input_norm(embedding)
        x = self.seed_proj(z).view(-1, *self.seed_shape)
        for stage in self.stages:
            x = stage(x, z)
        return _PIXEL_MAX * torch.sigmoid(self.to_pixels(x).squeeze(1))

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, height={self.height}, width={self.width}, "
            f"num_stages={self.num_stages}, num_skip_stages={self.num_skip_stages}, "
            f"norm={self.norm!r}"
        )


def _trailing_twos(n: int) -> int:
    """Exponent of the largest power of two dividing ``n`` (> 0)."""
    return (n & -n).bit_length() - 1
