r"""Image metrics for decoded natural-movie frames, as torchmetrics metrics.

torch_brain's ``MultiTaskDecodingStitchEvaluator`` keeps one metric object per recording
and readout, and calls ``update(stitched_pred, stitched_target)`` once per evaluation
sequence with that sequence's frames, pooled over identical timestamps. Each metric here
scores every frame it is given once, keeps a running sum and a frame count (summed across
DDP ranks), and reports the mean over all frames of the recording; the evaluator's
``average_{val,test}_metric`` then averages over recordings. All are higher-is-better,
as the trainer's checkpoint selection (max of ``average_val_metric``) requires.

Frames arrive as :math:`(N, H, W)` images or flattened :math:`(N, H \cdot W)` rows (the
layout the stitcher needs, see :mod:`poyocap_plugin.frame_layout`), grey levels in
[0, 255]. Each metric is given the frame's ``height`` and ``width`` (pixels), which must be
the frame decoder's: a dataset config writes them as numbers, since torch_brain's
``Dataset`` does not resolve ``${model...}`` interpolations in it.

.. note::
    ``average_val_metric`` is the plain mean of every metric value of every recording, so
    list only metrics on a common scale in the validation config: MovieSSIM and
    PixelCorrelation lie in [-1, 1], while MoviePSNR (dB, ~10-40) would dominate it.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

from poyocap_plugin.frame_layout import check_frame_size, unflatten_frames
from poyocap_plugin.ssim import SSIMWindow

__all__ = ["MovieSSIM", "MoviePSNR", "PixelCorrelation"]

PIXEL_DATA_RANGE = 255.0
"""Range of 8-bit grey levels, the fixed SSIM ``data_range`` and PSNR peak."""
MAX_PSNR_DB = 100.0
"""PSNR given to a frame reproduced exactly (whose PSNR would be infinite)."""
_CORRELATION_EPS = 1e-12  # floor of the correlation's denominator (constant frames score 0)


class _PerFrameMean(Metric):
    """Mean over every frame seen of a per-frame score; subclasses define ``score``.

    The frame size is kept as plain attributes, not in the repr: train.py names each
    metric by ``str(metric)`` (``MovieSSIM()``), and the workflow reads results by that name.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, *, height: int, width: int):
        super().__init__()
        check_frame_size(height=height, width=width, owner=type(self).__name__)
        self.height, self.width = height, width
        self.add_state(
            "score_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state(
            "num_frames", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum"
        )

    def score(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-frame scores of shape (N,) for float64 frames of shape (N, H, W) in [0, 255]."""
        raise NotImplementedError

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        r"""Score each frame once and add it to the running mean.

        Args:
            preds: decoded grey levels in [0, 255], of shape :math:`(N, H, W)` or
                flattened :math:`(N, H \cdot W)`, :math:`H \times W` = ``height`` x ``width``.
            target: true grey levels in [0, 255], of either shape.

        Raises:
            ValueError: if either is not frames of ``height`` x ``width`` pixels, or the
                frame counts differ.
        """
        name = type(self).__name__
        size = {"height": self.height, "width": self.width}
        preds = unflatten_frames(preds, **size, name=f"{name} preds")
        target = unflatten_frames(target, **size, name=f"{name} target")
        if preds.shape[0] != target.shape[0]:
            raise ValueError(
                f"{name}: preds and target must have the same number of frames; got "
                f"{preds.shape[0]} and {target.shape[0]}"
            )
        if preds.shape[0] == 0:
            return
        scores = self.score(preds.double(), target.double())
        self.score_sum += scores.sum().to(self.score_sum.device)
        self.num_frames += scores.shape[0]

    def compute(self) -> torch.Tensor:
        """Mean score over all frames seen (NaN before any frame)."""
        return self.score_sum / self.num_frames


class MovieSSIM(_PerFrameMean):
    r"""Structural similarity of decoded and true frames, averaged over all frames.

    Each frame's SSIM is computed on its single grey channel by
    ``torchmetrics.functional.structural_similarity_index_measure`` with a fixed
    ``data_range=255`` and a Gaussian window (11 x 11, :math:`\sigma = 1.5`,
    :math:`K_1 = 0.01`, :math:`K_2 = 0.03` by default: torchmetrics' and the SSIM paper's
    constants); the metric is the mean over every frame of the recording. POYO-CAP's
    headline "Movie SSIM" (Bae et al., ICLR 2026, Table 3) is this, averaged over
    recordings.

    .. note::
        The released evaluation scores one batch per (first-sample) session, on frames
        replicated to 3 channels, with ``data_range`` inferred from that batch. We score
        every frame once, on one channel, with ``data_range=255``, as the paper's metric
        intends.

    Args:
        kernel_size: side of the Gaussian window (pixels, odd); frames must be at least
            this large.
        sigma: standard deviation of the Gaussian window (pixels).
        k1: :math:`K_1`, with :math:`C_1 = (255 K_1)^2`.
        k2: :math:`K_2`, with :math:`C_2 = (255 K_2)^2`.
        height: frame height :math:`H` (pixels), the frame decoder's.
        width: frame width :math:`W` (pixels), the frame decoder's.
    """

    def __init__(
        self,
        *,
        height: int,
        width: int,
        kernel_size: int = 11,
        sigma: float = 1.5,
        k1: float = 0.01,
        k2: float = 0.03,
    ):
        super().__init__(height=height, width=width)
        self.window = SSIMWindow(kernel_size=kernel_size, sigma=sigma, k1=k1, k2=k2)
        self.window.check_frame_size(height, width, name="MovieSSIM")

    def score(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.window.per_frame(preds, target, data_range=PIXEL_DATA_RANGE, name="MovieSSIM")


class MoviePSNR(_PerFrameMean):
    r"""Peak signal-to-noise ratio (dB) of decoded frames, averaged over all frames.

    :math:`\text{PSNR}_i = 10 \log_{10}(255^2 / \text{MSE}_i)`, with :math:`\text{MSE}_i`
    the mean squared grey-level error of frame :math:`i`, capped at 100 dB (an exact frame
    would score infinity); the metric is the mean over frames. Not part of the paper's
    tables.

    Args:
        height: frame height :math:`H` (pixels), the frame decoder's.
        width: frame width :math:`W` (pixels), the frame decoder's.
    """

    def score(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        mse = (preds - target).pow(2).mean(dim=(1, 2))
        psnr = 10.0 * torch.log10(PIXEL_DATA_RANGE**2 / mse)  # inf where mse == 0
        return psnr.clamp(max=MAX_PSNR_DB)


class PixelCorrelation(_PerFrameMean):
    r"""Pearson correlation between the pixels of decoded and true frames, frame-averaged.

    :math:`r_i = \sum_p \tilde{x}_p \tilde{y}_p / \sqrt{\sum_p \tilde{x}_p^2 \sum_p
    \tilde{y}_p^2}` over the pixels :math:`p` of frame :math:`i`, with
    :math:`\tilde{x}, \tilde{y}` the decoded and true grey levels minus their frame means;
    a constant frame (zero variance) scores 0. The metric is the mean over frames. Not
    part of the paper's tables.

    Args:
        height: frame height :math:`H` (pixels), the frame decoder's.
        width: frame width :math:`W` (pixels), the frame decoder's.
    """

    def score(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = preds.flatten(1) - preds.flatten(1).mean(dim=1, keepdim=True)
        y = target.flatten(1) - target.flatten(1).mean(dim=1, keepdim=True)
        denominator = (x.pow(2).sum(dim=1) * y.pow(2).sum(dim=1)).sqrt()
        return (x * y).sum(dim=1) / denominator.clamp_min(_CORRELATION_EPS)
