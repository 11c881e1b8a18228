"""The options ``curriculum`` and ``table3`` share (data, run sizes), and what they build."""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from poyocap_plugin.workflow.cli._library import (
    choices_of,
    default_of,
    field_default,
    user_errors,
)
from poyocap_plugin.workflow.curriculum import run_curriculum
from poyocap_plugin.workflow.settings import CurriculumSettings, Preset
from poyocap_plugin.workflow.simulated_brainset import SIMULATIONS, SimulationSettings

__all__ = ["DEFAULT_PRESET", "RunInputs", "curriculum_inputs", "curriculum_options"]

F = TypeVar("F", bound=Callable[..., Any])

#: the preset whose settings are CurriculumSettings' defaults
DEFAULT_PRESET: Preset = "cpu"

RunInputs = tuple[Path | None, SimulationSettings | None, CurriculumSettings, int]


def _simulation_option(flag: str, name: str, value_type: Any, what: str) -> Callable[[F], F]:
    by_preset = ", ".join(f"{p}: {getattr(SIMULATIONS[p], name)}" for p in choices_of(Preset))
    return click.option(
        flag,
        name,
        type=value_type,
        default=None,
        help=f"With --simulate: {what} Default: the preset's ({by_preset}).",
    )


def _preset_help() -> str:
    sizes = []
    for name in choices_of(Preset):
        # sizes only: the paper preset alone refuses to build without perceptual weights
        preset = CurriculumSettings.preset(name, perceptual=False)
        frames = (
            f"{preset.frame_size[0]}x{preset.frame_size[1]} frames"
            if preset.frame_size is not None
            else "the stage configs' frames"
        )
        epochs = f"{preset.pretrain_epochs} + {preset.finetune_epochs} epochs"
        sizes.append(f"{name} ({preset.model}, {frames}, {epochs})")
    return (
        f"Run sizes: {' or '.join(sizes)}; {DEFAULT_PRESET} runs in minutes on 2 cores. "
        "The options below change it."
    )


def _preset_field(flag: str, value_type: Any, what: str) -> Callable[[F], F]:
    return click.option(flag, type=value_type, default=None, help=f"{what} Default: preset's.")


_OPTIONS = (
    click.option(
        "--data-root",
        type=click.Path(file_okay=False, path_type=Path),
        default=default_of(run_curriculum, "data_root"),
        help="An existing processed-data root (from `brainsets prepare`). "
        "Exclusive with --simulate.",
    ),
    click.option(
        "--simulate",
        "simulate_data",
        is_flag=True,
        default=False,
        help="Simulate a small Allen-format dataset and prepare it with `brainsets "
        "prepare` into OUT_DIR/data.",
    ),
    _simulation_option("--sim-sessions", "n_sessions", int, "number of sessions."),
    click.option(
        "--sim-cre-line",
        "cre_lines",
        multiple=True,
        default=(),
        help="With --simulate: a Cre line, allensdk spelling (repeatable; sessions cycle "
        "through them). Mix predictable (Sst, Vip, Pvalb, Ntsr1) and other lines. Default: "
        "the preset's ("
        + "; ".join(f"{p}: {', '.join(SIMULATIONS[p].cre_lines)}" for p in choices_of(Preset))
        + ").",
    ),
    _simulation_option("--sim-rois", "n_rois", int, "ROIs per session."),
    _simulation_option(
        "--sim-dg-repeats", "dg_repeats", int, "repeats of each of the 40 grating conditions."
    ),
    _simulation_option(
        "--prepare-workers", "prepare_workers", int, "`brainsets prepare -c N` (Ray workers)."
    ),
    click.option(
        "--preset",
        type=click.Choice(choices_of(Preset)),
        default=DEFAULT_PRESET,
        show_default=True,
        help=_preset_help(),
    ),
    _preset_field("--model", str, "Model-size config, e.g. capoyo_1.2M."),
    _preset_field("--pretrain-epochs", int, "Stage-1 epochs."),
    _preset_field("--finetune-epochs", int, "Epochs of each stage-2 movie run."),
    _preset_field("--dg-epochs", int, "Epochs of each stage-2 DG run."),
    _preset_field(
        "--batch-size", int, "Windows per GPU per step (x GPUs x nodes = the global batch)."
    ),
    _preset_field(
        "--pretrain-batch-size", int, "Windows per GPU per step of stage 1 (unset: --batch-size)."
    ),
    click.option(
        "--pretrain-every-trial/--pretrain-train-split",
        default=None,
        help="Stage 1 on every drifting-grating trial but the validation split's (the "
        "paper's count), or on the training split's only. Default: the preset's (paper: "
        "every trial; cpu, study: training split).",
    ),
    _preset_field(
        "--eval-batch-size", int, "Validation/test batch size (train.py's eval_batch_size)."
    ),
    _preset_field(
        "--base-lr",
        float,
        "Peak LR per window of a GPU's batch (peak LR = base_lr x per-GPU batch, any GPU count).",
    ),
    _preset_field("--gpus", int, "GPUs per node of every run (train.py's gpus)."),
    _preset_field("--nodes", int, "Nodes of every run (train.py's nodes)."),
    click.option(
        "--frame-size",
        type=(int, int, int),
        default=None,
        metavar="HEIGHT WIDTH STAGES",
        help="Decoded frame size (pixels) and UNet x2 stages, e.g. 16 32 4. Default: preset's.",
    ),
    _preset_field("--num-workers", int, "DataLoader workers."),
    _preset_field(
        "--eval-epochs", int, "Validate stage-2 runs every N epochs (train.py's eval_epochs)."
    ),
    _preset_field("--parallel-runs", int, "Training runs at once."),
    click.option(
        "--perceptual/--no-perceptual",
        default=None,
        help="Train the movie runs with the CAP loss's perceptual term (needs "
        "--perceptual-weights). Default: the preset's (paper: on; cpu, study: off).",
    ),
    click.option(
        "--perceptual-weights",
        type=click.Path(dir_okay=False, exists=True),
        default=None,
        help="A local AlexNet state_dict for the perceptual term (e.g. torchvision's "
        "alexnet-owt-7be5be79.pth); never downloaded.",
    ),
    click.option(
        "--override",
        "overrides",
        multiple=True,
        default=field_default(CurriculumSettings, "overrides"),
        help="A Hydra override for every run (repeatable), e.g. wandb.enable=true, "
        "precision=bf16-mixed (not gpus, nodes, batch_size or optim.base_lr: see their "
        "options).",
    ),
    click.option(
        "--launcher",
        default=shlex.join(field_default(CurriculumSettings, "launcher")),
        help="Command prefix of every training run, e.g. 'srun' inside a SLURM "
        "allocation (one task per GPU; Lightning reads SLURM's environment).",
    ),
    click.option(
        "--min-units",
        type=int,
        default=default_of(run_curriculum, "min_units"),
        show_default=True,
        help="Fewest selected neurons a session may bring; sessions with fewer are left out.",
    ),
)


def curriculum_options(command: F) -> F:
    """Add the options `curriculum` and `table3` share: data, run sizes, seeds."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def curriculum_inputs(kwargs: dict[str, Any], **changes: Any) -> RunInputs:
    """Data source, run settings and min_units of `curriculum` / `table3` from their options.

    Pops the options of :func:`curriculum_options` from ``kwargs``; ``changes`` are more
    fields of the settings.

    Raises:
        click.ClickException: If both or neither of --data-root and --simulate are given, or
            the settings are invalid.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    data_root, simulate_data = kwargs.pop("data_root"), kwargs.pop("simulate_data")
    simulation_changes = {
        name: value
        for name in ("n_sessions", "n_rois", "dg_repeats", "prepare_workers", "cre_lines")
        if (value := kwargs.pop(name)) not in (None, ())
    }
    if (data_root is None) == (not simulate_data):
        raise click.ClickException(
            "Give either --data-root DIR (a processed brainset) or --simulate."
        )
    simulation = None
    preset, overrides = kwargs.pop("preset"), tuple(kwargs.pop("overrides"))
    changes["launcher"] = tuple(shlex.split(kwargs.pop("launcher")))
    min_units = kwargs.pop("min_units")
    if kwargs["perceptual_weights"] is not None and kwargs["perceptual"] is None:
        kwargs["perceptual"] = True  # weights given: the term is wanted
    changes |= {k: v for k, v in kwargs.items() if v is not None}
    with user_errors(ValueError):
        if simulate_data:
            simulation = replace(SIMULATIONS[preset], **simulation_changes)
        settings = CurriculumSettings.preset(preset, overrides=overrides, **changes)
    return data_root, simulation, settings, min_units
