"""The paper's analyses: ``analyze landscape``, ``analyze fisher``, ``analyze scaling``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click

from poyocap_plugin.workflow.analyses.fisher import run_fisher
from poyocap_plugin.workflow.analyses.landscape import Directions, run_landscape
from poyocap_plugin.workflow.analyses.scaling import (
    QUICK_SEEDS,
    QUICK_SIZES,
    model_sizes,
    quick_settings,
    run_scaling,
)
from poyocap_plugin.workflow.cli._experiment_options import curriculum_inputs, curriculum_options
from poyocap_plugin.workflow.cli._library import choices_of, default_of, user_errors

__all__ = ["analyze_group"]

_RUN_ERRORS = (FileNotFoundError, KeyError, ValueError, RuntimeError)
#: what --size and --seed give when not given
_SCALING_DEFAULTS = (
    tuple(default_of(run_scaling, "sizes")),
    tuple(default_of(run_scaling, "seeds")),
)


def _option_of(function, name: str, flag: str, value_type, what: str):
    return click.option(
        flag,
        name,
        type=value_type,
        default=default_of(function, name),
        show_default=True,
        help=what,
    )


def _named_checkpoints(
    context: click.Context, parameter: click.Parameter, values: tuple[str, ...]
) -> dict[str, Path] | None:
    checkpoints = {}
    for value in values:
        name, separator, path = value.partition("=")
        if not (separator and name and path) or name in checkpoints:
            raise click.BadParameter(
                f"{value!r}: give NAME=PATH, one NAME once (e.g. predictable=run/last.ckpt)"
            )
        checkpoints[name] = Path(path)
    return checkpoints or None


def _stage1_options(analysis):
    """--seed, --windows, --device and --checkpoint, defaults from ``analysis``."""
    options = (
        _option_of(analysis, "seed", "--seed", int, "train.py seed of the stage-1 runs."),
        _option_of(analysis, "max_windows", "--windows", int, "Held-out windows per population."),
        _option_of(analysis, "device", "--device", str, "Torch device, e.g. cuda."),
        click.option(
            "--checkpoint",
            "checkpoints",
            multiple=True,
            callback=_named_checkpoints,
            metavar="NAME=PATH",
            help="A population's stage-1 checkpoint to read instead of training (repeatable; "
            "any name and dataset config; with --data-root). The per-epoch checkpoints beside "
            "it draw its path.",
        ),
    )

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _analysis_inputs(kwargs: dict, *own: str) -> dict:
    """The analysis function's arguments: the stage-1 options, its ``own``, the curriculum's."""
    stage1 = ("seed", "max_windows", "device", "checkpoints")
    arguments = {name: kwargs.pop(name) for name in (*stage1, *own)}
    data_root, simulation, settings, min_units = curriculum_inputs(kwargs)
    return arguments | {
        "data_root": data_root,
        "simulation": simulation,
        "settings": settings,
        "min_units": min_units,
    }


def _echo(paths: Iterable[Path], headline: str) -> None:
    for path in paths:
        click.echo(f"wrote {path}")
    click.echo(headline)


@click.group("analyze")
def analyze_group() -> None:
    """The paper's analyses, on a prepared brainset or simulated data: each trains what it
    needs through the stock trainer (resumable: a rerun in the same OUT_DIR reuses the
    runs), writes JSON, CSV and PNG into OUT_DIR and prints its headline number."""


@analyze_group.command("landscape")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@curriculum_options
@_stage1_options(run_landscape)
@click.option(
    "--directions",
    type=click.Choice(choices_of(Directions)),
    default=default_of(run_landscape, "directions"),
    show_default=True,
    help="pca: the training path's two principal directions; random: filter-normalised "
    "random directions (Li et al., 2018).",
)
@_option_of(run_landscape, "steps", "--steps", int, "Grid points per direction.")
def landscape_command(out_dir: Path, **kwargs) -> None:
    """Stage-1 loss landscape of the predictable and unpredictable neurons, and how rough.

    Trains stage 1 on each population (POYO-CAP's and reverse SSL's stage 1), or reads
    the --checkpoint runs of any populations, evaluates the masked-latent loss of
    held-out windows on a grid around each end point, and prints each surface's
    roughness and their ratio beside the paper's 138x (docs/analyses.md).

    \b
    Examples:
      poyocap analyze landscape runs/analyses --simulate
      poyocap analyze landscape runs/analyses --simulate --directions random --steps 21
      poyocap analyze landscape runs/mine --data-root data/processed \\
          --checkpoint sst=runs/sst/lightning_logs/version_0/checkpoints/last.ckpt \\
          --checkpoint cux2=runs/cux2/lightning_logs/version_0/checkpoints/last.ckpt
    """
    arguments = _analysis_inputs(kwargs, "directions", "steps")
    with user_errors(*_RUN_ERRORS):
        result = run_landscape(out_dir, **arguments)
    _echo(result.files.values(), result.headline())


@analyze_group.command("fisher")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@curriculum_options
@_stage1_options(run_fisher)
def fisher_command(out_dir: Path, **kwargs) -> None:
    """Fisher information per data point of the predictable and unpredictable neurons.

    Trains stage 1 on each population (or reuses the runs in OUT_DIR, or reads the
    --checkpoint runs of any populations), then takes the mean squared per-window
    gradient norm of the masked-latent loss on held-out windows, at the trained and at
    the initial weights, with 95 % CIs, and prints the ratio predictable / unpredictable
    beside the paper's 1.93x (docs/analyses.md).

    \b
    Examples:
      poyocap analyze fisher runs/analyses --simulate
      poyocap analyze fisher runs/mine --data-root data/processed --checkpoint sst=A.ckpt \\
          --checkpoint vip=B.ckpt
    """
    arguments = _analysis_inputs(kwargs)
    with user_errors(*_RUN_ERRORS):
        result = run_fisher(out_dir, **arguments)
    _echo(result.files.values(), result.headline())


@analyze_group.command("scaling")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@curriculum_options
@click.option(
    "--size",
    "sizes",
    multiple=True,
    type=click.Choice(model_sizes()),
    default=_SCALING_DEFAULTS[0],
    show_default=True,
    help="A model-size config (repeatable).",
)
@click.option(
    "--seed",
    "seeds",
    type=int,
    multiple=True,
    default=_SCALING_DEFAULTS[1],
    show_default=True,
    help="train.py seed (repeatable).",
)
@click.option(
    "--quick",
    is_flag=True,
    default=False,
    help=f"Sizes {', '.join(QUICK_SIZES)}, seeds {', '.join(map(str, QUICK_SEEDS))}, 1 epoch "
    "per stage: the smallest sweep (its time on 2 cores: docs/analyses.md).",
)
@click.option(
    "--dg/--no-dg",
    default=default_of(run_scaling, "dg"),
    show_default=True,
    help="Also run and plot the DG stage-2 runs (the paper's scaling is movie decoding).",
)
def scaling_command(
    out_dir: Path,
    sizes: tuple[str, ...],
    seeds: tuple[int, ...],
    quick: bool,
    dg: bool,
    **kwargs,
) -> None:
    """Test metrics against model size: POYO-CAP and from scratch at each size and seed.

    Runs the curriculum's two arms at every --size for every --seed through `poyocap
    train` (resumable; movie runs only unless --dg), then plots each test metric against
    the trunk's parameter count with 95 % CIs and says whether each curve rises
    monotonically (docs/analyses.md).

    \b
    Examples:
      poyocap analyze scaling runs/scaling --simulate --quick
      poyocap analyze scaling runs/scaling --simulate --size capoyo_48k --size capoyo_1.2M --dg
      poyocap analyze scaling runs/scaling_allen --data-root data/processed --preset paper \\
          --perceptual-weights alexnet.pth --size capoyo_32M --size capoyo_114M --gpus 4
    """
    data_root, simulation, settings, min_units = curriculum_inputs(kwargs)
    if quick:
        if (sizes, seeds) != _SCALING_DEFAULTS:
            raise click.UsageError(
                "--quick sets the sizes and seeds: give it without --size/--seed"
            )
        settings, sizes, seeds = quick_settings(settings), QUICK_SIZES, QUICK_SEEDS
    with user_errors(*_RUN_ERRORS):
        result = run_scaling(
            out_dir,
            data_root=data_root,
            simulation=simulation,
            settings=settings,
            sizes=sizes,
            seeds=seeds,
            dg=dg,
            min_units=min_units,
        )
    paths = (result.json_path, result.csv_path, result.figure_path, result.markdown_path)
    _echo(paths, result.headline())
