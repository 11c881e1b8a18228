"""POYO-CAP's stage-2 frame loss: the weighted sum of the five image terms."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from torch_brain.nn.loss import Loss

from poyocap_plugin.brainset import MOVIE_READOUT
from poyocap_plugin.losses.image_terms import (
    FFTMagnitudeL1Loss,
    FocalL1Loss,
    FrameLoss,
    PixelL1Loss,
    SSIMLoss,
    weighted_mean,
)
from poyocap_plugin.losses.perceptual import PerceptualFeatureLoss

__all__ = ["CAPFrameLoss", "FrameSizeRequiredLoss"]

logger = logging.getLogger(__name__)

_WEIGHT_ARGS = {  # CAPFrameLoss's term names -> its constructor's weight arguments
    "focal_l1": "focal_weight",
    "pixel_l1": "l1_weight",
    "fft_magnitude_l1": "fft_weight",
    "perceptual": "perceptual_weight",
    "ssim": "ssim_weight",
}


class CAPFrameLoss(FrameLoss):
    r"""POYO-CAP's stage-2 loss for reconstructing natural-movie frames.

    .. math::
        \mathcal{L} = w_f\,\text{Focal} + w_1\,\text{L1} + w_F\,\text{FFT}
                    + w_p\,\text{Perceptual} + w_s\,(1 - \text{SSIM})

    with the terms :class:`FocalL1Loss`, :class:`PixelL1Loss`, :class:`FFTMagnitudeL1Loss`,
    :class:`PerceptualFeatureLoss` and :class:`SSIMLoss`, all on pixels scaled to [0, 1],
    and the paper's weights 50, 50, 50, 1 and 0.1 by default. Each frame's loss is the
    weighted sum of its terms; frames are then averaged with ``weights`` as in torch_brain.

    The perceptual term needs pretrained AlexNet weights, which are never downloaded: give
    a local file as ``perceptual_weights_path``. Without one the term is off
    (:attr:`perceptual_enabled` is False, and the repr says so) and the first call logs one
    warning. ``perceptual_weight=0`` turns it off silently.

    .. note::
        POYO-CAP's README gives this formula. The released code computes something else:
        its "focal" term is an SSIM term, the focal loss is unused, and the effective
        weights come from operator precedence (e.g. 0.368 on L1, 3e-8 on the perceptual
        term, 6e-5 on an FFT term whose frequency weighting is inverted). We implement the
        formula; see ``docs/stage2_components.md``.

    Args:
        focal_weight: :math:`w_f`.
        l1_weight: :math:`w_1`.
        fft_weight: :math:`w_F`.
        perceptual_weight: :math:`w_p`; the term runs only with ``perceptual_weights_path``.
        ssim_weight: :math:`w_s`.
        perceptual_weights_path: local AlexNet state_dict file (see
            :class:`PerceptualFeatureLoss`), or None.
        focal_alpha: :math:`\alpha` of :class:`FocalL1Loss`.
        focal_gamma: :math:`\gamma` of :class:`FocalL1Loss`.
        fft_high_frequency_weight: :math:`\beta` of :class:`FFTMagnitudeL1Loss`.
        ssim_kernel_size: Gaussian window side of :class:`SSIMLoss` (pixels).
        height: frame height :math:`H` (pixels), the frame decoder's
            (``${model.frame_decoder.height}``).
        width: frame width :math:`W` (pixels), the frame decoder's.

    Raises:
        ValueError: if the frame size is not positive integers, a weight is negative, all
            are 0, or a weights path is given with ``perceptual_weight=0``.
    """

    def __init__(
        self,
        *,
        height: int,
        width: int,
        focal_weight: float = 50.0,
        l1_weight: float = 50.0,
        fft_weight: float = 50.0,
        perceptual_weight: float = 1.0,
        ssim_weight: float = 0.1,
        perceptual_weights_path: str | Path | None = None,
        focal_alpha: float = 1.0,
        focal_gamma: float = 1.0,
        fft_high_frequency_weight: float = 2.0,
        ssim_kernel_size: int = 11,
    ):
        super().__init__(height=height, width=width)
        self.term_weights = {
            "focal_l1": focal_weight,
            "pixel_l1": l1_weight,
            "fft_magnitude_l1": fft_weight,
            "perceptual": perceptual_weight,
            "ssim": ssim_weight,
        }
        for term, value in self.term_weights.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(
                    f"{_WEIGHT_ARGS[term]} must be a finite number >= 0; got {value!r}"
                )
        if not any(self.term_weights.values()):
            raise ValueError("CAPFrameLoss: every term weight is 0; at least one must be > 0")
        if perceptual_weights_path is not None and perceptual_weight == 0:
            raise ValueError(
                f"perceptual_weights_path={str(perceptual_weights_path)!r} is set but "
                "perceptual_weight=0; set a positive perceptual_weight or drop the path"
            )
        size = {"height": height, "width": width}
        self.focal_l1 = FocalL1Loss(alpha=focal_alpha, gamma=focal_gamma, **size)
        self.pixel_l1 = PixelL1Loss(**size)
        self.fft_magnitude_l1 = FFTMagnitudeL1Loss(
            high_frequency_weight=fft_high_frequency_weight, **size
        )
        self.ssim = SSIMLoss(kernel_size=ssim_kernel_size, **size)
        self.perceptual = (
            PerceptualFeatureLoss(weights_path=perceptual_weights_path, **size)
            if perceptual_weights_path is not None
            else None
        )
        self._warned_perceptual_off = False

    @property
    def perceptual_enabled(self) -> bool:
        """Whether the perceptual term contributes to the loss."""
        return self.perceptual is not None

    def _active_terms(self) -> dict[str, FrameLoss]:
        if not self.perceptual_enabled and self.term_weights["perceptual"] > 0:
            if not self._warned_perceptual_off:
                logger.warning(
                    "CAPFrameLoss: the perceptual term is OFF (perceptual_weight=%s, but no "
                    "perceptual_weights_path was given); the loss is Focal + L1 + FFT + SSIM "
                    "only. Give a local AlexNet state_dict file to turn it on, or set "
                    "perceptual_weight=0 to silence this warning.",
                    self.term_weights["perceptual"],
                )
                self._warned_perceptual_off = True
        terms = {
            "focal_l1": self.focal_l1,
            "pixel_l1": self.pixel_l1,
            "fft_magnitude_l1": self.fft_magnitude_l1,
            "perceptual": self.perceptual,
            "ssim": self.ssim,
        }
        return {
            name: term
            for name, term in terms.items()
            if term is not None and self.term_weights[name] > 0
        }

    def per_image(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = input.new_zeros(input.shape[0])
        for name, term in self._active_terms().items():
            total = total + self.term_weights[name] * term.per_image(input, target)
        return total

    def terms(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        weights: torch.Tensor | float | None = None,
    ) -> dict[str, torch.Tensor]:
        r"""Each active term's weighted mean over frames, before the term weights.

        Args:
            input: predicted grey levels, as in :meth:`forward`.
            target: true grey levels, as in :meth:`forward`.
            weights: per-frame weights, as in :meth:`forward`.

        Returns:
            Scalars by term name (``focal_l1``, ``pixel_l1``, ``fft_magnitude_l1``,
            ``perceptual`` when enabled, ``ssim`` for :math:`1 - \text{SSIM}`); terms with
            weight 0 are left out.
        """
        input, target = self.unit_images(input, target, weights)
        return {
            name: weighted_mean(term.per_image(input, target), weights)
            for name, term in self._active_terms().items()
        }

    def extra_repr(self) -> str:
        weights = ", ".join(
            f"{_WEIGHT_ARGS[name]}={value}" for name, value in self.term_weights.items()
        )
        state = "on" if self.perceptual_enabled else "off (no perceptual_weights_path)"
        if self.term_weights["perceptual"] == 0:
            state = "off (perceptual_weight=0)"
        return f"{weights}, perceptual_term={state}, {super().extra_repr()}"


class FrameSizeRequiredLoss(Loss):
    """The registry's stand-in loss of the movie frame readout; it refuses to run.

    Defined here rather than in :mod:`poyocap_plugin.modalities` so that re-importing the
    registering module keeps one class (the registry compares loss types).

    The frame loss needs the frame's height and width, which only the model's frame decoder
    knows, and the registry is filled at import, before any model exists. So the registry
    holds this stand-in, and :class:`~poyocap_plugin.models.CAPOYO` builds the readout's
    real loss (a :class:`CAPFrameLoss` of ``frame_decoder.height``
    x ``frame_decoder.width``, or the configured ``model.frame_loss``) into
    ``model.readout.readout_specs``, where train.py looks losses up.
    """

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        weights: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """Raise: a model that decodes frames must give the readout a sized loss.

        Raises:
            ValueError: always, saying where the sized loss comes from.
        """
        raise ValueError(
            f"The registry's loss of {MOVIE_READOUT!r} has no frame size: a model decoding "
            "frames must give the readout its own loss, e.g. CAPFrameLoss(height=..., "
            "width=...) with the frame decoder's size (CAPOYO builds one from "
            "model.frame_decoder.height / width). Look the loss up in "
            "model.readout.readout_specs, not in MODALITY_REGISTRY."
        )
