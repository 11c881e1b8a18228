"""The plugin's modalities, registered into torch_brain's global registry.

This is the one module of the plugin whose import has an effect: it registers the
modalities below, in this fixed order, into ``torch_brain.registry.MODALITY_REGISTRY``.
torch_brain numbers modalities by registration order and sizes the task embedding by the
registry, so every process that builds or feeds a model (the trainer, each DDP rank, each
spawned DataLoader worker, a checkpoint reload) must register the same names in the same
order. The plugin's configs register them through a Hydra callback
(:class:`poyocap_plugin.hydra_callback.RegisterModalities`) before the stock trainer's
``main()`` snapshots the registry, so stock configs never see them; the plugin's models and
transforms import this module too, so spawned workers register on unpickling.

Registration is idempotent: a name already registered with the same spec is left alone;
a name registered with a different spec raises, showing both.
"""

from __future__ import annotations

from typing import Any

from poyocap_plugin.torch_brain_version import require_torch_brain

require_torch_brain()  # before the registry's import fails on another torch_brain

import torch_brain  # noqa: E402
from torch_brain.registry import MODALITY_REGISTRY, DataType, ModalitySpec  # noqa: E402

from poyocap_plugin.brainset import MASKED_LATENT_READOUT, MOVIE_READOUT  # noqa: E402
from poyocap_plugin.losses import FrameSizeRequiredLoss, MaskedLatentL1Loss  # noqa: E402

__all__ = ["PLUGIN_MODALITIES", "register_all", "plugin_modality_names"]


#: The plugin's modalities in registration order. Append only: ids follow this order.
PLUGIN_MODALITIES: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        # Stage-1 self-supervision: one query per masked latent token, at its time.
        # The model emits (reconstruction, reference) pairs; ``dim`` is the per-query
        # width a plain linear head would have and is not used by CAPOYO.
        MASKED_LATENT_READOUT,
        dict(
            dim=1,
            type=DataType.CONTINUOUS,
            timestamp_key="masked_latents.timestamps",
            value_key="masked_latents.placeholder",
            loss_fn=MaskedLatentL1Loss(),
        ),
    ),
    (
        # Stage-2 target: one query per natural-movie-one presentation, at its mid-point.
        # The model's SkipUNetFrameDecoder (not a linear head) turns the query into an
        # H x W frame, output flattened to (N, H*W) like the target that MovieFrameTargets
        # attaches (torch_brain's stitcher pools only 2-D values). ``dim`` is the width a
        # stock linear head would get; 1 keeps that unused head tiny, whatever H x W is.
        # The loss needs the frame size, known only to the model's frame decoder: the
        # registry holds a stand-in that refuses to run, and CAPOYO builds the real one.
        MOVIE_READOUT,
        dict(
            dim=1,
            type=DataType.CONTINUOUS,
            timestamp_key="natural_movie_one.timestamps",
            value_key="natural_movie_one.image",
            loss_fn=FrameSizeRequiredLoss(),
        ),
    ),
)


def plugin_modality_names() -> list[str]:
    """Names of the plugin's modalities, in registration order."""
    return [name for name, _ in PLUGIN_MODALITIES]


def _signature(spec: ModalitySpec | dict[str, Any]) -> tuple:
    get = spec.get if isinstance(spec, dict) else lambda key: getattr(spec, key)
    return (
        get("dim"),
        DataType(get("type")),
        get("timestamp_key"),
        get("value_key"),
        type(get("loss_fn")),
    )


def register_all() -> dict[str, int]:
    """Register the plugin's modalities; return their ids by name.

    Raises:
        ValueError: if a name is already registered with a different spec.
    """
    ids = {}
    for name, kwargs in PLUGIN_MODALITIES:
        existing = MODALITY_REGISTRY.get(name)
        if existing is None:
            ids[name] = torch_brain.register_modality(name, **kwargs)
        elif _signature(existing) == _signature(kwargs):
            ids[name] = existing.id
        else:
            raise ValueError(
                f"Modality {name!r} is already registered with a different spec: "
                f"registered {existing!r}; poyocap-plugin expects {kwargs!r}. "
                "Another package registered this name first; rename or remove one of them."
            )
    return ids


register_all()
