"""Losses of the POYO-CAP curriculum, following torch_brain's ``Loss`` contract.

torch_brain 0.1.2's ``train.py`` computes each readout's loss as
``spec.loss_fn(output, target, weights)``; every loss here has that signature and
validates its inputs the way ``torch_brain.nn.loss`` does.
"""

from __future__ import annotations

import torch
from torch_brain.nn.loss import Loss

__all__ = ["MaskedLatentL1Loss", "ScaledLoss"]


class ScaledLoss(Loss):
    r"""A readout's loss multiplied by a constant weight.

    torch_brain's losses take the weighted mean over queries (``sum(w * l) / sum(w)``),
    so a constant per-query weight cancels out; a readout's weight in the total loss
    (POYO-CAP's 0.01 on the drifting-gratings cross-entropy in stage 1) must scale the
    loss itself.

    Args:
        loss: the readout's own loss.
        weight: the factor applied to it.
    """

    def __init__(self, *, loss: Loss, weight: float):
        super().__init__()
        if not weight > 0:
            raise ValueError(f"ScaledLoss weight must be > 0; got {weight!r}")
        self.loss = loss
        self.weight = weight

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.weight * self.loss(input, target, weights)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


class MaskedLatentL1Loss(Loss):
    r"""L1 distance between reconstructed and reference latents at masked positions.

    The stage-1 objective of POYO-CAP (Bae et al., ICLR 2026): latents hidden behind the
    mask token must be reconstructed by the shared processor. The model can only hand
    ``train.py`` one tensor per readout, so it packs both sides into one row per masked
    latent: the reconstruction in the first :math:`D` columns and the reference
    (unmasked-path) latent in the last :math:`D`. Rows stay 2-D because torch_brain's
    stitcher, which the validation evaluator runs on every output, pools only 1-D and
    2-D values. Whether the reference carries a gradient is the model's choice.

    .. note::
        The paper's loss is L1 on the masked positions. The released code uses MSE over
        all latents; we follow the paper.

    Args (forward):
        input: packed latents of shape :math:`(N, 2D)`, one row per masked latent.
        target: the readout's placeholder target, of shape :math:`(N,)`; only its length
            is used (to check alignment).
        weights: per-row weights of shape :math:`(N,)`, or None for a plain mean.

    Returns:
        The weighted mean over rows of the mean absolute error over :math:`D`.
    """

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if input.ndim != 2 or input.shape[1] % 2:
            raise ValueError(
                "MaskedLatentL1Loss expects input of shape (N, 2D) packing "
                f"(reconstruction, reference); got {tuple(input.shape)}"
            )
        if target.shape[0] != input.shape[0]:
            raise ValueError(
                f"Input and target must have the same batch size; got {input.shape[0]} "
                f"and {target.shape[0]}"
            )
        reconstruction, reference = input.chunk(2, dim=1)
        per_row = (reconstruction - reference).abs().mean(dim=-1)
        if weights is None:
            return per_row.mean()
        if not torch.is_tensor(weights):  # train.py passes 1.0 when a readout has none
            return per_row.mean() * weights
        if weights.ndim != 1 or weights.shape[0] != input.shape[0]:
            raise ValueError(
                f"Weights must have shape ({input.shape[0]},); got {tuple(weights.shape)}"
            )
        return (weights * per_row).sum() / weights.sum()


# --- Stage 2: movie-frame reconstruction ----------------------------------------------

_PIXEL_MAX = 255.0  # grey levels of an 8-bit frame; every image term works on pixels / 255
_FOCAL_EPS = 1e-8  # floor of the per-image maximum error in FocalL1Loss
_IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the perceptual network's input normalisation
_IMAGENET_STD = (0.229, 0.224, 0.225)
_PERCEPTUAL_MIN_SIDE_PX = 15  # smallest frame side the perceptual feature stack accepts
_WEIGHT_ARGS = {  # CAPFrameLoss's term names -> its constructor's weight arguments
    "focal_l1": "focal_weight",
    "pixel_l1": "l1_weight",
    "fft_magnitude_l1": "fft_weight",
    "perceptual": "perceptual_weight",
    "ssim": "ssim_weight",
}


def _weighted_mean(per_image: torch.Tensor, weights: torch.Tensor | float | None) -> torch.Tensor:
    """Mean of per-image losses, weighted as torch_brain's losses weight their rows."""
    if weights is None:
        return per_image.mean()
    if not torch.is_tensor(weights):  # train.py passes 1.0 when a readout has no weights
        return per_image.mean() * weights
    return (weights * per_image).sum() / weights.sum()
