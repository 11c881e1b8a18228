"""Losses of the POYO-CAP curriculum, following torch_brain's ``Loss`` contract.

``latent``: stage 1 (masked-latent L1, readout weights). ``image_terms``, ``perceptual`` and
``cap_frame``: stage 2's movie-frame terms and their weighted sum.
"""

from poyocap_plugin.losses.cap_frame import CAPFrameLoss, FrameSizeRequiredLoss
from poyocap_plugin.losses.image_terms import (
    FFTMagnitudeL1Loss,
    FocalL1Loss,
    PixelL1Loss,
    SSIMLoss,
)
from poyocap_plugin.losses.latent import MASKED_LATENT_BLOCKS, MaskedLatentL1Loss, ScaledLoss
from poyocap_plugin.losses.perceptual import PerceptualFeatureLoss

__all__ = [
    "MASKED_LATENT_BLOCKS",
    "CAPFrameLoss",
    "FFTMagnitudeL1Loss",
    "FocalL1Loss",
    "FrameSizeRequiredLoss",
    "MaskedLatentL1Loss",
    "PerceptualFeatureLoss",
    "PixelL1Loss",
    "SSIMLoss",
    "ScaledLoss",
]
