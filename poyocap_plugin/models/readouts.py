"""CAPOYO's readouts: the specs of the supervised ones (each with its loss, weighted and
sized), and how the headless ones (frames, masked latents) join the model's output."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch_brain.registry import ModalitySpec

from poyocap_plugin.brainset import MOVIE_READOUT
from poyocap_plugin.losses import CAPFrameLoss, ScaledLoss
from poyocap_plugin.nn.frame_decoder import SkipUNetFrameDecoder
from poyocap_plugin.nn.readout_heads import copy_spec

__all__ = ["add_readout", "build_readout_specs"]


def build_readout_specs(
    readout_specs: Mapping[str, ModalitySpec],
    readouts: Mapping[str, float],
    *,
    frame_decoder: SkipUNetFrameDecoder | None,
    frame_loss: nn.Module | None,
) -> tuple[dict[str, ModalitySpec], dict[str, ModalitySpec]]:
    """Copies of the registry's specs of ``readouts``, each with the loss the model trains.

    A readout's loss is the registry's, scaled by its weight when that is not 1. The movie
    frame readout's loss is ``frame_loss``, or a :class:`CAPFrameLoss` of the frame
    decoder's height and width (the registry holds only a stand-in that refuses to run).

    Args:
        readout_specs: the modality registry (or train.py's snapshot of it).
        readouts: the supervised readouts, by name, with the weights of their losses.
        frame_decoder: the model's frame decoder, or None without the frame readout.
        frame_loss: the configured frame loss, or None for the default.

    Returns:
        ``(head_specs, headless_specs)``: the readouts that get a linear head, and the
        movie frame readout (decoded by ``frame_decoder``) if named.
    """
    losses = {name: readout_specs[name].loss_fn for name in readouts}
    if frame_decoder is not None:
        losses[MOVIE_READOUT] = (
            frame_loss
            if frame_loss is not None
            else CAPFrameLoss(height=frame_decoder.height, width=frame_decoder.width)
        )
    specs = {
        name: copy_spec(
            readout_specs[name],
            losses[name] if weight == 1.0 else ScaledLoss(loss=losses[name], weight=float(weight)),
        )
        for name, weight in readouts.items()
    }
    head_specs = {k: v for k, v in specs.items() if k != MOVIE_READOUT}
    headless_specs = {k: v for k, v in specs.items() if k == MOVIE_READOUT}
    return head_specs, headless_specs


def add_readout(
    output: dict | list[dict], name: str, values: torch.Tensor, *, sample_index: torch.Tensor
) -> None:
    """Put a headless readout's ``values`` (one row per query) into the model's output.

    Args:
        output: ``{readout: values}`` of the batch, or one such dict per sample
            (``unpack_output``); a sample without queries of ``name`` gets no entry.
        name: the readout.
        values: :math:`(N_q, F)`, the batch's queries of ``name`` in order.
        sample_index: the sample of each row, :math:`(N_q,)`.
    """
    if isinstance(output, list):
        for i, sample_output in enumerate(output):
            rows = sample_index == i
            if bool(rows.any()):
                sample_output[name] = values[rows]
    elif len(values):
        output[name] = values
