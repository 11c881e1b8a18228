"""CAPOYO's tokenizer: one window of calcium data into the model's inputs and targets."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from temporaldata import Data
from torch import nn
from torch_brain.data import chain, pad8, track_mask8
from torch_brain.nn import prepare_for_multitask_readout
from torch_brain.utils.tokenizers import create_linspace_latent_tokens

from poyocap_plugin.brainset import ALLEN_CRE_LINES, MASKED_LATENT_READOUT

__all__ = ["tokenize_window"]

_QUERY_TIME_SPLIT_S = 1e-6  # time (s) between masked-latent queries of one bin


def tokenize_window(model: nn.Module, data: Data) -> dict[str, Any]:
    """Turn one window into ``model``'s inputs and targets (the trainer's last transform).

    Runs on the CPU, in DataLoader workers. The input tokens are every (frame, unit)
    dF/F value of ``data.calcium_traces.df_over_f`` (columns aligned with
    ``data.units.id``). The output queries are those of the window's readouts
    (``data.config["multitask_readout"]``), plus, when the model masks, one query per
    masked latent for the masked-latent readout, at that latent's time.

    Args:
        model: the :class:`~poyocap_plugin.models.CAPOYO` whose vocabularies, latent grid,
            masking and readouts the tokens follow.
        data: one window of a recording.

    Returns:
        torch_brain's sample dict: ``model_inputs`` (the keyword arguments of
        ``model.forward``, padded for collation), ``target_values``, ``target_weights``,
        ``session_id``, ``absolute_start`` and ``eval_mask``.

    Raises:
        KeyError: if the recording's config asks for a readout the model lacks.
        ValueError: if the model embeds Cre lines and the recording's
            ``subject.cre_line`` is not one of the 13 Allen lines.
    """
    wanted = [r["readout_id"] for r in data.config["multitask_readout"]]
    if model.masking is None and MASKED_LATENT_READOUT in wanted:
        # a stage-1 dataset config run with masking off: the readout has no queries
        wanted.remove(MASKED_LATENT_READOUT)
    missing = [name for name in wanted if name not in model.readout.readout_specs]
    if missing:
        raise KeyError(
            f"Recording {data.session.id!r} asks for readouts {missing}, but the model "
            f"was built with {sorted(model.readout.readout_specs)}: add them to "
            "model.readouts or remove them from the dataset config"
        )
    df_over_f = np.asarray(data.calcium_traces.df_over_f, dtype=np.float32)
    num_frames, num_units = df_over_f.shape
    unit_index = np.asarray(model.unit_emb.tokenizer(list(data.units.id)), dtype=np.int64)
    # a neuron's missing frame (NaN dF/F, which NormalizeDfOverF keeps) is no token
    finite = np.isfinite(df_over_f.reshape(-1))
    input_unit_index = torch.from_numpy(np.tile(unit_index, num_frames)[finite])
    input_timestamps = torch.from_numpy(
        np.repeat(np.asarray(data.calcium_traces.timestamps, dtype=np.float64), num_units)[finite]
    )
    input_values = torch.from_numpy(df_over_f.reshape(-1, 1)[finite])

    latent_index, latent_timestamps = create_linspace_latent_tokens(
        0.0,
        model.sequence_length,
        step=model.latent_step,
        num_latents_per_step=model.num_latents_per_step,
    )
    if MASKED_LATENT_READOUT in (r["readout_id"] for r in data.config["multitask_readout"]):
        # A dataset config names the masked-latent readout only to attach validation
        # metrics; its queries are the masked latents, added below.
        data.config = {
            **data.config,
            "multitask_readout": [
                r
                for r in data.config["multitask_readout"]
                if r["readout_id"] != MASKED_LATENT_READOUT
            ],
        }
    timestamps, values, decoder_index, weights, eval_mask = prepare_for_multitask_readout(
        data, model.readout.readout_specs
    )
    model_inputs = {}
    if model.masking is not None:
        latent_mask = model.masking.select(
            num_bins=model.num_latent_bins, num_latents_per_bin=model.num_latents_per_step
        )
        # Apart by a microsecond per latent id, so that the evaluator's stitcher, which
        # pools outputs of equal time, keeps the latents of one bin apart.
        masked_times = (
            latent_timestamps[latent_mask] + _QUERY_TIME_SPLIT_S * latent_index[latent_mask]
        )
        spec = model.readout.readout_specs[MASKED_LATENT_READOUT]
        timestamps = torch.cat((torch.as_tensor(timestamps), torch.from_numpy(masked_times)))
        decoder_index = torch.cat(
            (decoder_index, torch.full((len(masked_times),), spec.id, dtype=torch.long))
        )
        values[MASKED_LATENT_READOUT] = np.zeros(len(masked_times), dtype=np.float32)
        weights[MASKED_LATENT_READOUT] = np.ones(len(masked_times), dtype=np.float32)
        eval_mask[MASKED_LATENT_READOUT] = np.ones(len(masked_times), dtype=bool)
        model_inputs["latent_mask"] = latent_mask
    session = model.session_emb.tokenizer(data.session.id)
    session_index = np.full(len(timestamps), session)
    if model.input_tokens.uses_session:
        model_inputs["input_session_index"] = session
    if model.cre_line_emb is not None:
        model_inputs["input_cre_line_index"] = _cre_line_index(data)

    model_inputs.update(
        input_unit_index=pad8(input_unit_index),
        input_timestamps=pad8(input_timestamps),
        input_values=pad8(input_values),
        input_mask=track_mask8(input_unit_index),
        latent_index=latent_index,
        latent_timestamps=latent_timestamps,
        output_session_index=pad8(session_index),
        output_timestamps=pad8(timestamps),
        output_decoder_index=pad8(decoder_index),
    )
    return {
        "model_inputs": model_inputs,
        "target_values": chain(values, allow_missing_keys=True),
        "target_weights": chain(weights, allow_missing_keys=True),
        "session_id": data.session.id,
        "absolute_start": data.absolute_start,
        "eval_mask": chain(eval_mask, allow_missing_keys=True),
    }


def _cre_line_index(data: Data) -> int:
    cre_line = str(data.subject.cre_line)
    if cre_line not in ALLEN_CRE_LINES:
        raise ValueError(
            f"Recording {data.session.id!r}: subject.cre_line {cre_line!r} is not one of the "
            f"Allen lines {list(ALLEN_CRE_LINES)}, which model.cre_line_embedding embeds"
        )
    return ALLEN_CRE_LINES.index(cre_line)
