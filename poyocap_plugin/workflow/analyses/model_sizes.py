"""The shipped CAPOYO model sizes and their parameter counts.

A size's parameters are its trunk's (:data:`~poyocap_plugin.models.trunk.TRUNK_MODULES`,
what stage 1 hands to stage 2 and what the config names count), without the unit and
session vocabularies (data-dependent) and the frame decoder, whose size follows the decoded
frame size, a run setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources

from poyocap_plugin.models.trunk import TRUNK_MODULES
from poyocap_plugin.workflow import trainer
from poyocap_plugin.workflow.stages import STAGES

__all__ = [
    "CPU_SIZES",
    "check_sizes",
    "model_sizes",
    "module_parameters",
    "parameter_count",
    "trunk_parameters",
]

CPU_SIZES: tuple[str, ...] = ("capoyo_48k", "capoyo_250k", "capoyo_1.2M")
"""The shipped sizes that train on a CPU, about 5x apart: the scaling sweep's default."""


def model_sizes() -> list[str]:
    """The shipped CAPOYO model-size configs (``model/capoyo_*.yaml``), by name."""
    names = [e.name for e in (resources.files("poyocap_plugin") / "configs" / "model").iterdir()]
    return sorted(n[:-5] for n in names if n.startswith("capoyo_") and n.endswith(".yaml"))


def check_sizes(sizes: Sequence[str]) -> None:
    """Raises ValueError naming any size that is not a shipped config, with those that are."""
    available = model_sizes()
    unknown = [size for size in sizes if size not in available]
    if unknown:
        raise ValueError(f"unknown model size config(s) {unknown!r}; available: {available}")


@cache
def module_parameters(
    model_config_name: str, frame_size: tuple[int, int, int] | None
) -> dict[str, int]:
    """Trainable, initialised parameters of the stage-2 movie model, by top-level module.

    ``frame_size``: ``(height, width, num_stages)`` of the frame decoder, or None for the
    config's. Cached.
    """
    import hydra
    import torch
    from hydra import compose, initialize_config_dir
    from torch.nn.parameter import UninitializedParameter
    from torch_brain.registry import MODALITY_REGISTRY

    import poyocap_plugin.modalities  # noqa: F401  (the registry train.py builds models with)

    train_py = trainer.find_trainer()
    if train_py is None:
        raise FileNotFoundError(
            "The stock trainer, whose configs/defaults.yaml every stage config uses, is not "
            "cached: run `poyocap trainer` first"
        )
    # the dataset group is data, not model: dropped, so no dataset config is needed
    overrides = [f"model={model_config_name}", "~dataset"]
    if frame_size is not None:
        height, width, num_stages = frame_size
        overrides += [
            f"model.frame_decoder.height={height}",
            f"model.frame_decoder.width={width}",
            f"+model.frame_decoder.num_stages={num_stages}",
        ]
    config_dir = train_py.parent / "configs"
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        # the stage-2 movie model: it holds the trunk and the frame decoder
        cfg = compose(config_name=STAGES["finetune_movie"].config_name, overrides=overrides)
    with torch.random.fork_rng(devices=[]):  # leaves the caller's RNG as it was
        model = hydra.utils.instantiate(cfg.model, readout_specs=MODALITY_REGISTRY)
    counts: dict[str, int] = {}
    for name, parameter in model.named_parameters():
        # the unit/session vocabularies stay uninitialised (lazy) until initialize_vocab
        if isinstance(parameter, UninitializedParameter) or not parameter.requires_grad:
            continue
        module = name.split(".", 1)[0]
        counts[module] = counts.get(module, 0) + parameter.numel()
    return counts


def trunk_parameters(counts: dict[str, int]) -> int:
    """The trunk's share of :func:`module_parameters`' counts."""
    return sum(n for module, n in counts.items() if module in TRUNK_MODULES)


def parameter_count(model_config_name: str) -> int:
    """Trainable parameters of a CAPOYO size config's trunk, without the vocabularies.

    The stage-2 movie config is composed with ``model=<model_config_name>`` on the stock
    trainer's search path and instantiated as train.py does (torch's global RNG is left as
    it was). Counted: :data:`~poyocap_plugin.models.trunk.TRUNK_MODULES`, what the size names
    count. Not counted: the vocabularies (lazy until ``initialize_vocab``) and the frame
    decoder (its size follows the decoded frame's). Cached per name.

    Raises:
        ValueError: For an unknown config name; the available ones are listed.
        FileNotFoundError: If the stock trainer was never fetched.
    """
    check_sizes([model_config_name])
    return trunk_parameters(module_parameters(model_config_name, None))
