"""Neural-network building blocks of POYO-CAP."""

from poyocap_plugin.nn.frame_decoder import SkipUNetFrameDecoder
from poyocap_plugin.nn.latent_masking import LatentMasking

__all__ = ["LatentMasking", "SkipUNetFrameDecoder"]
