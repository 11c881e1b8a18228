"""Stage-1 losses: the masked-latent L1 and the readout weight.

torch_brain 0.1.2's ``train.py`` computes each readout's loss as
``spec.loss_fn(output, target, weights)``; every loss here has that signature and
validates its inputs the way ``torch_brain.nn.loss`` does.
"""

from __future__ import annotations

import torch
from torch_brain.nn.loss import Loss

__all__ = ["MASKED_LATENT_BLOCKS", "MaskedLatentL1Loss", "ScaledLoss"]


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


#: The column blocks of a packed masked-latent row, each :math:`D` wide: the model's
#: reconstruction, its target, and three trivial predictions of that target (the mean of
#: the window's unmasked target latents; the last unmasked bin copied forward; the mean
#: target at the same bin and latent id in the batch's other windows of its recording).
MASKED_LATENT_BLOCKS = (
    "reconstruction",
    "target",
    "window_mean",
    "copy_forward",
    "position_mean",
)


class MaskedLatentL1Loss(Loss):
    r"""L1 distance between reconstructed and reference latents at masked positions.

    The stage-1 objective of POYO-CAP (Bae et al., ICLR 2026): latents hidden behind the
    mask token must be reconstructed by the shared processor. The model can only hand
    ``train.py`` one tensor per readout, so it packs one row per masked latent: the
    blocks of :data:`MASKED_LATENT_BLOCKS`, each :math:`D` wide; the loss reads the first
    two (reconstruction, target), the validation metrics all of them. Rows stay 2-D because
    torch_brain's stitcher, which the validation evaluator runs on every output, pools only
    1-D and 2-D values. Whether the target carries a gradient is the model's choice.

    .. note::
        The paper's loss is L1 on the masked positions. The released code uses MSE over
        all latents; we follow the paper.

    Args (forward):
        input: packed latents of shape :math:`(N, 5D)`, one row per masked latent.
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
        blocks = len(MASKED_LATENT_BLOCKS)
        if input.ndim != 2 or input.shape[1] % blocks:
            raise ValueError(
                f"MaskedLatentL1Loss expects input of shape (N, {blocks}D) packing "
                f"{MASKED_LATENT_BLOCKS}; got {tuple(input.shape)}"
            )
        if target.shape[0] != input.shape[0]:
            raise ValueError(
                f"Input and target must have the same batch size; got {input.shape[0]} "
                f"and {target.shape[0]}"
            )
        reconstruction, reference = input.chunk(blocks, dim=1)[:2]
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
