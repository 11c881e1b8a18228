"""Losses of the POYO-CAP curriculum, following torch_brain's ``Loss`` contract.

torch_brain 0.1.2's ``train.py`` computes each readout's loss as
``spec.loss_fn(output, target, weights)``; every loss here has that signature and
validates its inputs the way ``torch_brain.nn.loss`` does.
"""

from __future__ import annotations

import torch
from torch_brain.nn.loss import Loss

__all__ = ["MaskedLatentL1Loss"]


class MaskedLatentL1Loss(Loss):
    r"""L1 distance between reconstructed and reference latents at masked positions.

    The stage-1 objective of POYO-CAP (Bae et al., ICLR 2026): latents hidden behind the
    mask token must be reconstructed by the shared processor. The model can only hand
    ``train.py`` one tensor per readout, so it packs both sides into ``input``: the
    reconstruction at ``input[:, 0]`` and the reference (unmasked-path) latent at
    ``input[:, 1]``. Whether the reference carries a gradient is the model's choice.

    .. note::
        The paper's loss is L1 on the masked positions. The released code uses MSE over
        all latents; we follow the paper.

    Args (forward):
        input: packed latents of shape :math:`(N, 2, D)`, one row per masked latent.
        target: the readout's placeholder target, of shape :math:`(N,)` or
            :math:`(N, \ldots)`; only its length is used (to check alignment).
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
        if input.ndim != 3 or input.shape[1] != 2:
            raise ValueError(
                "MaskedLatentL1Loss expects input of shape (N, 2, D) packing "
                f"(reconstruction, reference); got {tuple(input.shape)}"
            )
        if target.shape[0] != input.shape[0]:
            raise ValueError(
                f"Input and target must have the same batch size; got {input.shape[0]} "
                f"and {target.shape[0]}"
            )
        per_row = (input[:, 0] - input[:, 1]).abs().mean(dim=-1)
        if weights is None:
            return per_row.mean()
        if not torch.is_tensor(weights):  # train.py passes 1.0 when a readout has none
            return per_row.mean() * weights
        if weights.ndim != 1 or weights.shape[0] != input.shape[0]:
            raise ValueError(
                f"Weights must have shape ({input.shape[0]},); got {tuple(weights.shape)}"
            )
        return (weights * per_row).sum() / weights.sum()
