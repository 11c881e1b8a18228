"""The checks of CAPOYO's constructor arguments, each error naming its ``model.*`` key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

from torch import nn
from torch_brain.registry import ModalitySpec

from poyocap_plugin.brainset import MASKED_LATENT_READOUT, MOVIE_READOUT
from poyocap_plugin.nn.frame_decoder import SkipUNetFrameDecoder
from poyocap_plugin.nn.latent_masking import LatentMasking

__all__ = ["InputToken", "check_arguments", "check_frame_arguments"]

InputToken = Literal["modulated", "concat", "sum"]
"""How a (frame, neuron) value becomes a token (``CAPOYO``'s ``input_token``)."""


def check_arguments(
    *,
    sequence_length: float,
    latent_step: float,
    dim: int,
    readout_specs: Mapping[str, ModalitySpec],
    readouts: Mapping[str, float],
    masking: LatentMasking | None,
    input_token: str,
) -> None:
    """Check CAPOYO's window, width, readouts, masking and input token (its arguments).

    Raises:
        ValueError: naming the ``model.*`` key, the value received and what was expected.
    """
    if input_token not in get_args(InputToken):
        raise ValueError(
            f"model.input_token must be one of {get_args(InputToken)}; got {input_token!r}"
        )
    for name, value in (("sequence_length", sequence_length), ("latent_step", latent_step)):
        if not isinstance(value, float) or value <= 0:
            raise ValueError(f"model.{name} must be a float > 0 (write 1.0, not 1); got {value!r}")
    bins = sequence_length / latent_step
    if abs(bins - round(bins)) > 1e-6:
        raise ValueError(
            f"model.latent_step={latent_step} must divide model.sequence_length="
            f"{sequence_length} into whole bins"
        )
    if dim % 2:
        raise ValueError(f"model.dim must be even (dF/F and unit halves); got {dim}")
    if not readouts:
        raise ValueError("model.readouts names no readout: give at least one, with its weight")
    for name, weight in readouts.items():
        if name not in readout_specs:
            raise ValueError(
                f"model.readouts names {name!r}, which is not a registered modality; "
                f"known: {sorted(readout_specs)}"
            )
        if name == MASKED_LATENT_READOUT:
            raise ValueError(
                f"model.readouts must not name {MASKED_LATENT_READOUT!r}: it is built "
                "from model.masking"
            )
        if not weight > 0:
            raise ValueError(f"model.readouts.{name} must be a weight > 0; got {weight!r}")
    if masking is not None:
        if masking.dim != dim:
            raise ValueError(
                f"model.masking.dim={masking.dim} differs from model.dim={dim}; "
                "set it to ${model.dim}"
            )
        if MASKED_LATENT_READOUT not in readout_specs:
            raise ValueError(
                f"{MASKED_LATENT_READOUT!r} is not in the registry the model was given: "
                "import poyocap_plugin.modalities before building the registry snapshot (in a "
                "config of your own, declare hydra.callbacks: {poyocap_modalities: {_target_: "
                "poyocap_plugin.hydra_callback.RegisterModalities}}, as the plugin's configs do)"
            )


def check_frame_arguments(
    *,
    dim: int,
    readouts: Mapping[str, float],
    frame_decoder: SkipUNetFrameDecoder | None,
    frame_loss: nn.Module | None,
) -> None:
    """Check CAPOYO's frame decoder and frame loss against its readouts, width and each other.

    Raises:
        ValueError: naming the ``model.*`` key, the value received and what was expected.
    """
    wants_frames = MOVIE_READOUT in readouts
    if wants_frames and frame_decoder is None:
        raise ValueError(
            f"model.readouts names {MOVIE_READOUT!r}, which needs "
            "model.frame_decoder (a SkipUNetFrameDecoder)"
        )
    if not wants_frames and (frame_decoder is not None or frame_loss is not None):
        raise ValueError(
            "model.frame_decoder / model.frame_loss are set but model.readouts does not "
            f"name {MOVIE_READOUT!r}: an unused module breaks DDP; remove them"
        )
    if frame_decoder is not None and frame_decoder.dim != dim:
        raise ValueError(
            f"model.frame_decoder.dim={frame_decoder.dim} differs from model.dim={dim}; "
            "set it to ${model.dim}"
        )
    for key in ("height", "width"):
        size = getattr(frame_loss, key, None)
        if frame_decoder is not None and size is not None:
            if size != getattr(frame_decoder, key):
                raise ValueError(
                    f"model.frame_loss.{key}={size} differs from model.frame_decoder."
                    f"{key}={getattr(frame_decoder, key)}; set it to "
                    f"${{model.frame_decoder.{key}}}"
                )
