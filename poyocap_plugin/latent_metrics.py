r"""Validation metrics of the stage-1 objective, as torchmetrics metrics.

CAPOYO's masked-latent readout emits one packed row per masked latent, the blocks of
:data:`~poyocap_plugin.losses.MASKED_LATENT_BLOCKS`: the reconstruction, its target and three
trivial predictions of that target (the mean of the window's unmasked target latents, the
last unmasked bin copied forward, and the mean target at the same bin and latent id in the
batch's other windows of the same recording, which knows only the position).
torch_brain's stitch evaluator hands each recording's rows to ``update``; ``compute``
scores them all at once.

:class:`MaskedLatentR2` is the coefficient of determination of one of those predictions
against the target, pooled over rows and features:

.. math::

    R^2 = 1 - \frac{\sum_{n,d} (\hat z_{nd} - z_{nd})^2}{\sum_{n,d} (z_{nd} - \bar z_d)^2}

higher-is-better, as the trainer's checkpoint selection needs. A reconstruction that does
not beat the trivial predictors' :math:`R^2` has learned nothing about the masked future
that the visible past does not already give.

With ``predictor="reconstruction"`` it also logs, once per evaluation, the trivial
predictors' :math:`R^2` and the collapse signals of the targets: the mean per-feature
standard deviation and the effective rank (the exponential of the entropy of the
normalised singular values of the centred targets; Roy & Vetterli, 2007). An effective
rank below :data:`COLLAPSE_RANK` is logged as a warning: the targets have collapsed onto a
line, and a low loss then means nothing.

.. note::
    ``average_val_metric`` averages every configured metric, so a stage-1 dataset config
    lists only the reconstruction's :math:`R^2` (beside the DG accuracy); the trivial
    predictors' values are in the log line, or configure them explicitly.
"""

from __future__ import annotations

import logging
import math

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from poyocap_plugin.losses import MASKED_LATENT_BLOCKS

__all__ = [
    "COLLAPSE_RANK",
    "MaskedLatentR2",
    "MaskedLatentTargetRank",
    "effective_rank",
    "r2_score",
]

logger = logging.getLogger(__name__)

COLLAPSE_RANK = 2.0
"""Effective rank of the targets below which a run is warned of collapse."""
_PREDICTORS = tuple(name for name in MASKED_LATENT_BLOCKS if name != "target")


def r2_score(prediction: torch.Tensor, target: torch.Tensor) -> float:
    r"""Pooled :math:`R^2` of ``prediction`` against ``target``, both :math:`(N, D)`.

    Constant targets (no variance) score 0 rather than dividing by zero.
    """
    residual = (prediction - target).pow(2).sum()
    total = (target - target.mean(0, keepdim=True)).pow(2).sum()
    if total <= 0:
        return 0.0
    return float(1.0 - residual / total)


def effective_rank(rows: torch.Tensor) -> float:
    r"""Effective rank of :math:`(N, D)` rows: :math:`\exp H(\sigma / \sum \sigma)` of the
    singular values :math:`\sigma` of the centred rows; 0 for rows without variance."""
    centred = rows - rows.mean(0, keepdim=True)
    singular = torch.linalg.svdvals(centred.double())
    if singular.sum() <= 0:
        return 0.0
    p = singular / singular.sum()
    p = p[p > 0]
    return float(math.exp(-(p * p.log()).sum()))


class _PackedRows(Metric):
    """Collects a recording's packed masked-latent rows (gathered across DDP ranks)."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self):
        super().__init__()
        self.add_state("rows", default=[], dist_reduce_fx="cat")

    def blocks(self) -> dict[str, torch.Tensor] | None:
        """The rows split into :data:`MASKED_LATENT_BLOCKS`, or None before any update."""
        if not self.rows:  # e.g. a stage-1 dataset config run with masking off
            return None
        rows = dim_zero_cat(self.rows)
        return dict(
            zip(MASKED_LATENT_BLOCKS, rows.chunk(len(MASKED_LATENT_BLOCKS), 1), strict=True)
        )

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add packed rows ``preds`` of shape :math:`(N, 5D)`; ``target`` is the readout's
        placeholder, of shape :math:`(N,)`."""
        blocks = len(MASKED_LATENT_BLOCKS)
        if preds.ndim != 2 or preds.shape[1] % blocks:
            raise ValueError(
                f"{type(self).__name__} expects packed rows of shape (N, {blocks}D); "
                f"got {tuple(preds.shape)}"
            )
        if target.shape[0] != preds.shape[0]:
            raise ValueError(
                f"preds and target must have the same length; got {preds.shape[0]} "
                f"and {target.shape[0]}"
            )
        self.rows.append(preds.detach().float())


class MaskedLatentR2(_PackedRows):
    """:math:`R^2` of a prediction of the masked latents' targets (see the module docs).

    Args:
        predictor: which block predicts the target: ``"reconstruction"`` (the model),
            ``"window_mean"``, ``"copy_forward"`` or ``"position_mean"`` (the trivial
            predictors).
    """

    def __init__(self, *, predictor: str = "reconstruction"):
        super().__init__()
        if predictor not in _PREDICTORS:
            raise ValueError(
                f"MaskedLatentR2.predictor must be one of {_PREDICTORS}; got {predictor!r}"
            )
        self.predictor = predictor

    def extra_repr(self) -> str:
        # the evaluator keys a recording's metrics by str(metric): one key per predictor
        return f"predictor={self.predictor}"

    def compute(self) -> torch.Tensor:
        blocks = self.blocks()
        if blocks is None:
            return torch.tensor(0.0)
        target = blocks["target"]
        score = r2_score(blocks[self.predictor], target)
        if self.predictor == "reconstruction":
            rank = effective_rank(target)
            logger.log(
                logging.WARNING if rank < COLLAPSE_RANK else logging.INFO,
                "masked-latent R^2 %.3f (window mean %.3f, copy-forward %.3f, position mean "
                "%.3f) over %d latents; targets: mean std %.3g, effective rank %.2f of %d%s",
                score,
                r2_score(blocks["window_mean"], target),
                r2_score(blocks["copy_forward"], target),
                r2_score(blocks["position_mean"], target),
                len(target),
                float(target.std(0).mean()) if len(target) > 1 else 0.0,
                rank,
                target.shape[1],
                " (collapsed)" if rank < COLLAPSE_RANK else "",
            )
        return torch.tensor(score, dtype=torch.float32)


class MaskedLatentTargetRank(_PackedRows):
    """Effective rank of the masked latents' targets: a collapse signal (falls to 1 when
    every target lies on one line)."""

    def compute(self) -> torch.Tensor:
        blocks = self.blocks()
        rank = 0.0 if blocks is None else effective_rank(blocks["target"])
        return torch.tensor(rank, dtype=torch.float32)
