"""The trunk that stage 2 takes over from stage 1: its keys, and loading it from a checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

__all__ = ["TRUNK_MODULES", "load_pretrained_trunk", "trunk_state_dict"]

logger = logging.getLogger(__name__)

TRUNK_MODULES = (
    "input_tokens",  # the value map and token type of the "concat" and "sum" tokens
    "task_emb",
    "latent_emb",
    "rotary_emb",
    "enc_atn",
    "enc_ffn",
    "proc_layers",
    "dec_atn",
    "dec_ffn",
)
"""Modules transferred from a stage-1 checkpoint to stage 2. Unit and session vocabularies
are new in stage 2 (other neurons, other sessions), and so are its readouts and its Cre-line
embedding (``cre_line_emb``)."""


def trunk_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters and buffers of ``model`` that stage 2 takes over from stage 1."""
    return {
        key: value
        for key, value in model.state_dict().items()
        if key.split(".", 1)[0] in TRUNK_MODULES
    }


def load_pretrained_trunk(model: nn.Module, path: str | Path) -> None:
    """Load ``model``'s trunk from a stage-1 Lightning checkpoint written by train.py.

    Unit and session embeddings, readout heads and the mask token are not loaded:
    train.py gives the new model vocabularies for its own neurons and sessions.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        KeyError: naming every trunk key the checkpoint lacks.
        ValueError: naming every key whose shape differs (a model of another size).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model.pretrained_trunk: {path} does not exist")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    if "state_dict" not in checkpoint:
        raise KeyError(f"{path} is not a Lightning checkpoint: it has no 'state_dict'")
    source = {
        key.removeprefix("model."): value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith("model.")
    }
    expected = trunk_state_dict(model)
    missing = sorted(set(expected) - set(source))
    if missing:
        raise KeyError(f"{path} lacks trunk keys {missing}: is it a CAPOYO checkpoint?")
    task_rows = expected["task_emb.weight"].shape[0]
    if source["task_emb.weight"].shape[0] < task_rows:
        # Modality ids are append-only: a registry that grew since stage 1 keeps the
        # old ids, whose rows we take over; the new rows keep their initialisation.
        grown = expected["task_emb.weight"].clone()
        grown[: source["task_emb.weight"].shape[0]] = source["task_emb.weight"]
        source["task_emb.weight"] = grown
    mismatched = [
        f"{key}: checkpoint {tuple(source[key].shape)} vs model {tuple(value.shape)}"
        for key, value in expected.items()
        if source[key].shape != value.shape
    ]
    if mismatched:
        raise ValueError(
            f"{path} holds a trunk of another size; mismatched keys: "
            + "; ".join(mismatched)
            + ". Use the model config of the stage-1 run."
        )
    # Module by module: the lazy vocabularies' load hooks expect their own keys.
    for name in TRUNK_MODULES:
        getattr(model, name).load_state_dict(
            {
                key.removeprefix(f"{name}."): source[key]
                for key in expected
                if key.split(".", 1)[0] == name
            }
        )
    logger.info("Loaded the trunk (%d tensors) from %s", len(expected), path)
