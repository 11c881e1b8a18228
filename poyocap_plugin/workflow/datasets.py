"""The curriculum's torch_brain dataset configs, written as plain YAML from a processed brainset.

Writes one torch_brain 0.1.2 dataset config per (variant, stage) of the partitions planned by
:func:`poyocap_plugin.workflow.partitions.plan_curriculum` into
``<out_dir>/dataset/<variant>_<stage>.yaml``: a Hydra config group, so the training configs
pick one with ``dataset: <variant>_<stage>`` and the user adds the folder with one override,
``hydra.searchpath=[file://<out_dir>]``. Stages: ``pretrain`` (drifting-grating direction,
windows inside DG trials), ``finetune_movie`` (natural-movie-one frames, one window per
frame) and ``finetune_dg`` (DG direction, Table 3's DG-accuracy column).

Each group's ``config.neuron_selection`` names its population explicitly, so the YAML says
what every session contributes, whatever the stage's :class:`NeuronSampler` defaults.
"""

from __future__ import annotations

import json
import logging
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from poyocap_plugin.brainset import (
    BRAINSET_ID,
    DG_READOUT,
    MASKED_LATENT_READOUT,
    MOVIE_READOUT,
    MOVIE_WINDOW_S,
    PAPER_KURTOSIS_THRESHOLD,
    PAPER_PREDICTABLE_CRE_LINES,
    PAPER_SKEWNESS_THRESHOLD,
)
from poyocap_plugin.frame_layout import (
    PAPER_FRAME_HEIGHT_PX,
    PAPER_FRAME_WIDTH_PX,
    check_frame_size,
)
from poyocap_plugin.neuron_sampler import CONFIG_KEY, Criterion, NeuronSampler
from poyocap_plugin.predictability import read_unit_statistics
from poyocap_plugin.workflow.files import write_text_atomically
from poyocap_plugin.workflow.partitions import (
    StagePlan,
    TooFew,
    plan_curriculum,
)
from poyocap_plugin.workflow.stages import VARIANTS, Variant

__all__ = [
    "CONFIG_GROUP",
    "MOVIE_METRIC_TARGET",
    "dataset_config",
    "write_dataset_configs",
]

logger = logging.getLogger(__name__)

CONFIG_GROUP = "dataset"
"""The Hydra config group (sub-folder of ``out_dir``) the configs are written to."""
MOVIE_METRIC_TARGET = "poyocap_plugin.metrics.MovieSSIM"
MASKED_LATENT_METRIC_TARGET = "poyocap_plugin.latent_metrics.MaskedLatentR2"

_DG_SAMPLING = "sampling_intervals = sampling_intervals & data.drifting_gratings.coalesce(0.3)\n"
# stage 1 on every DG trial but the validation slice (which still picks the checkpoint);
# the test split then reuses that slice, since its own trials were trained on
_EVERY_TRIAL = (
    "if split == 'train':\n"
    "    sampling_intervals = sampling_intervals | data.test_domain\n"
    "elif split == 'test':\n"
    "    sampling_intervals = data.valid_domain\n"
)
_MOVIE_SAMPLING = (
    "from poyocap_plugin.frame_windows import frame_sampling_intervals\n"
    "sampling_intervals = frame_sampling_intervals(data, sampling_intervals, window_s={window})\n"
)


def _readouts(stage: str, *, frame_height: int, frame_width: int) -> list[dict[str, Any]]:
    if stage == "finetune_movie":
        # The frame size as numbers: torch_brain's Dataset hands the metric config over
        # without resolving interpolations, so ${model.frame_decoder.height} cannot reach it.
        metric = {"_target_": MOVIE_METRIC_TARGET, "height": frame_height, "width": frame_width}
        return [{"readout_id": MOVIE_READOUT, "metrics": [{"metric": metric}]}]
    dg = {
        "readout_id": DG_READOUT,
        "metrics": [
            {
                "metric": {
                    "_target_": "torchmetrics.Accuracy",
                    "task": "multiclass",
                    "num_classes": 8,
                }
            }
        ],
    }
    if stage != "pretrain":
        return [dg]
    # The masked-latent R^2 (higher is better) beside the DG accuracy: both select the
    # stage-1 checkpoint; the log line gives the trivial predictors' R^2 next to it.
    masked = {
        "readout_id": MASKED_LATENT_READOUT,
        "metrics": [{"metric": {"_target_": MASKED_LATENT_METRIC_TARGET}}],
    }
    return [dg, masked]


def dataset_config(
    plan: StagePlan,
    *,
    brainset_id: str = BRAINSET_ID,
    movie_window_s: float = MOVIE_WINDOW_S,
    frame_height: int = PAPER_FRAME_HEIGHT_PX,
    frame_width: int = PAPER_FRAME_WIDTH_PX,
    pretrain_every_trial: bool = False,
) -> list[dict[str, Any]]:
    """The torch_brain 0.1.2 dataset config of one stage, as plain data.

    One entry per session group: ``selection`` lists its sessions, ``config`` carries the
    group's ``neuron_selection``, the ``sampling_intervals_modifier`` that restricts windows
    to the stage's stimulus and the ``multitask_readout``. DG stages sample inside the
    drifting-grating trials; ``finetune_movie`` samples one window per natural-movie-one
    frame (:func:`poyocap_plugin.frame_windows.frame_sampling_intervals`).

    Args:
        plan: The stage's plan.
        brainset_id: The brainset folder under ``data_root``.
        movie_window_s: Window of the movie stage (s); must equal the finetuning model's
            ``sequence_length``.
        frame_height: Height (pixels) of the movie stage's frames, given to its metric;
            must equal the finetuning model's ``frame_decoder.height``.
        frame_width: Width (pixels), likewise ``frame_decoder.width``.
        pretrain_every_trial: A pretraining stage trains on every drifting-grating trial
            but the validation split's (the paper's 80,146 windows over 134 sessions; the
            stock trainer samples only the training split, 70 %), and its test split is
            then the validation split.
    """
    if plan.stage == "finetune_movie":
        sampling = _MOVIE_SAMPLING.format(window=movie_window_s)
    elif plan.stage == "pretrain" and pretrain_every_trial:
        sampling = _EVERY_TRIAL + _DG_SAMPLING
    else:
        sampling = _DG_SAMPLING
    return [
        {
            "selection": [{"brainset": brainset_id, "sessions": list(group.sessions)}],
            "config": {
                CONFIG_KEY: group.selection.to_config(),
                "sampling_intervals_modifier": sampling,
                "multitask_readout": _readouts(
                    plan.stage, frame_height=frame_height, frame_width=frame_width
                ),
            },
        }
        for group in plan.groups
    ]


class _Dumper(yaml.SafeDumper):
    """Block style, with multi-line strings as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _header(plan: StagePlan, out_dir: Path) -> str:
    n_sessions = sum(len(g.sessions) for g in plan.groups)
    lines = [
        f"{plan.name}: {plan.stage} dataset of the {plan.variant!r} curriculum variant.",
        *textwrap.wrap(VARIANTS[plan.variant], width=90),
        f"{n_sessions} sessions, {len(plan.subjects)} subjects; "
        f"{len(plan.excluded)} sessions of these lines left out (see curriculum.json).",
        "Written by `poyocap datasets`; plain YAML in torch_brain 0.1.2's dataset-config",
        "schema, to read and edit. Use it with the stock trainer by adding this folder to",
        "Hydra's search path (the training configs name it in their defaults):",
        f"  hydra.searchpath=[file://{out_dir.resolve()}]",
        f"or select it explicitly with  dataset={plan.name}",
    ]
    return "".join(f"# {line}\n" for line in lines)


def write_dataset_configs(
    data_root: Path,
    out_dir: Path,
    *,
    brainset_id: str = BRAINSET_ID,
    variants: Sequence[Variant] = tuple(VARIANTS),
    criterion: Criterion = "statistics",
    skewness_threshold: float = PAPER_SKEWNESS_THRESHOLD,
    kurtosis_threshold: float = PAPER_KURTOSIS_THRESHOLD,
    predictable_cre_lines: Sequence[str] = PAPER_PREDICTABLE_CRE_LINES,
    min_units: int = 1,
    mixed_fraction: float = 0.5,
    seed: int = 0,
    on_too_few: TooFew = "error",
    movie_window_s: float = MOVIE_WINDOW_S,
    frame_height: int = PAPER_FRAME_HEIGHT_PX,
    frame_width: int = PAPER_FRAME_WIDTH_PX,
    pretrain_every_trial: bool = False,
) -> list[Path]:
    """Plan the curriculum from ``data_root`` and write its dataset configs under ``out_dir``.

    Writes ``<out_dir>/dataset/<variant>_<stage>.yaml`` for every planned stage and
    ``<out_dir>/curriculum.json`` (settings, sessions, subjects, selected-neuron counts,
    left-out sessions). Every written config is then loaded with torch_brain 0.1.2's
    ``Dataset`` and checked with :meth:`NeuronSampler.check_dataset`. Files are written
    under a temporary name and renamed.

    Args:
        data_root: The processed-data root.
        out_dir: Where to write; created if needed.
        brainset_id: The brainset folder under ``data_root``.
        variants, criterion, skewness_threshold, kurtosis_threshold, predictable_cre_lines,
        min_units, mixed_fraction, seed, on_too_few: As :func:`plan_curriculum`.
        movie_window_s: Window of the movie stage (s), as :func:`dataset_config`.
        frame_height, frame_width: The movie stage's frame size (pixels), as
            :func:`dataset_config`.
        pretrain_every_trial: As :func:`dataset_config`.

    Returns:
        The written YAML files, in plan order.

    Raises:
        FileNotFoundError, KeyError, ValueError: From reading the brainset, from
            :func:`plan_curriculum`, or from the check of a written config.
    """
    from torch_brain.data import Dataset  # heavy import, only needed for the check

    if not (isinstance(movie_window_s, float) and movie_window_s > 0):
        raise ValueError(f"movie_window_s must be a float > 0 (s), got {movie_window_s!r}")
    check_frame_size(height=frame_height, width=frame_width, owner="write_dataset_configs")
    stats = read_unit_statistics(data_root, brainset_id=brainset_id)
    plan = plan_curriculum(
        stats,
        variants=variants,
        criterion=criterion,
        skewness_threshold=skewness_threshold,
        kurtosis_threshold=kurtosis_threshold,
        predictable_cre_lines=predictable_cre_lines,
        min_units=min_units,
        mixed_fraction=mixed_fraction,
        seed=seed,
        on_too_few=on_too_few,
    )
    out_dir = Path(out_dir)
    group_dir = out_dir / CONFIG_GROUP
    group_dir.mkdir(parents=True, exist_ok=True)
    written, manifest = [], {}
    for stage in plan.stages:
        path = group_dir / f"{stage.name}.yaml"
        body = yaml.dump(
            dataset_config(
                stage,
                brainset_id=brainset_id,
                movie_window_s=movie_window_s,
                frame_height=frame_height,
                frame_width=frame_width,
                pretrain_every_trial=pretrain_every_trial,
            ),
            Dumper=_Dumper,
            sort_keys=False,
            default_flow_style=False,
        )
        write_text_atomically(path, _header(stage, out_dir) + body)
        dataset = Dataset(str(data_root), config=str(path), split=None)
        counts = NeuronSampler().check_dataset(dataset)
        dataset._close_open_files()
        written.append(path)
        manifest[stage.name] = {
            "variant": stage.variant,
            "stage": stage.stage,
            "file": str(path.relative_to(out_dir)),
            "subjects": list(stage.subjects),
            "groups": [
                {
                    CONFIG_KEY: group.selection.to_config(),
                    "sessions": dict(zip(group.sessions, group.n_selected, strict=True)),
                }
                for group in stage.groups
            ],
            "excluded": stage.excluded,
            "n_selected_neurons": sum(counts.values()),
        }
        logger.info("wrote %s (%d recordings)", path, len(counts))
    write_text_atomically(
        out_dir / "curriculum.json",
        json.dumps(
            {
                "brainset": brainset_id,
                "settings": plan.settings
                | {
                    "movie_window_s": movie_window_s,
                    "frame_height": frame_height,
                    "frame_width": frame_width,
                    "pretrain_every_trial": pretrain_every_trial,
                },
                "configs": manifest,
            },
            indent=2,
        )
        + "\n",
    )
    return written
