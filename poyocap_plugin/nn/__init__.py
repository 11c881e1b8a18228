"""Neural-network building blocks of POYO-CAP."""

from poyocap_plugin.nn.frame_decoder import SkipUNetFrameDecoder
from poyocap_plugin.nn.latent_masking import LatentMasking
from poyocap_plugin.nn.readout_heads import ReadoutHeads, copy_spec

__all__ = ["LatentMasking", "ReadoutHeads", "SkipUNetFrameDecoder", "copy_spec"]
