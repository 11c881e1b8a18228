"""Curriculum commands: ``curriculum`` (POYO-CAP and its baseline) and ``table3`` (all arms)."""

from __future__ import annotations

from pathlib import Path

import click

from poyocap_plugin.workflow.cli._experiment_options import curriculum_inputs, curriculum_options
from poyocap_plugin.workflow.cli._library import (
    default_of,
    field_default,
    parameter_choices,
    user_errors,
)
from poyocap_plugin.workflow.curriculum import run_curriculum
from poyocap_plugin.workflow.runs import arm_metrics
from poyocap_plugin.workflow.settings import CurriculumSettings
from poyocap_plugin.workflow.stages import TABLE3_ARMS
from poyocap_plugin.workflow.table3 import run_table3

__all__ = ["curriculum_command", "table3_command"]

_RUN_ERRORS = (FileNotFoundError, KeyError, ValueError, RuntimeError)


@click.command("curriculum")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@curriculum_options
@click.option(
    "--seed",
    type=int,
    default=default_of(run_curriculum, "seed"),
    show_default=True,
    help="train.py seed of the first seed's runs.",
)
@click.option(
    "--seeds",
    "n_seeds",
    type=click.IntRange(min=1),
    default=default_of(run_curriculum, "n_seeds"),
    show_default=True,
    help="Run every arm with this many seeds: --seed, --seed + 1, ...; with 2 or more the "
    "report gives 95 % CIs and paired t-tests.",
)
@click.option(
    "--dg/--no-dg",
    default=field_default(CurriculumSettings, "dg"),
    show_default=True,
    help="Also run the DG-classification finetune (the DG-accuracy column).",
)
@click.option(
    "--stop-after",
    type=click.Choice(parameter_choices(run_curriculum, "stop_after")),
    default=default_of(run_curriculum, "stop_after"),
    show_default=True,
    help="pretrain: run stage 1 only (a later rerun goes on from there).",
)
def curriculum_command(
    out_dir: Path, seed: int, n_seeds: int, dg: bool, stop_after: str, **kwargs
) -> None:
    """Run the POYO-CAP curriculum into OUT_DIR and write its report; rerun to resume.

    Data (--data-root, or --simulate: simulated sessions prepared with the real `brainsets
    prepare`), the dataset configs, stage 1 on the predictable neurons, stage 2 (movie
    frames, and DG direction) on the unpredictable ones from stage 1's best checkpoint, the
    same stage 2 from scratch, for each of --seeds seeds, then OUT_DIR/report/report.md.
    Every run is `poyocap train` (torch_brain's stock train.py); its command line is logged.
    A finished step is not run again.

    \b
    Examples:
      poyocap curriculum runs/demo --simulate
      poyocap curriculum runs/demo --simulate --stop-after pretrain
      poyocap curriculum runs/demo --simulate --seeds 3
      poyocap curriculum runs/allen --data-root data/processed --preset paper \\
          --perceptual-weights alexnet-owt-7be5be79.pth --gpus 4
    """
    data_root, simulation, settings, min_units = curriculum_inputs(kwargs, dg=dg)
    with user_errors(*_RUN_ERRORS):
        result = run_curriculum(
            out_dir,
            data_root=data_root,
            simulation=simulation,
            settings=settings,
            seed=seed,
            n_seeds=n_seeds,
            min_units=min_units,
            stop_after=stop_after,
        )
    runs = [
        (arm, s, stages) for arm, by_seed in result.arms.items() for s, stages in by_seed.items()
    ]
    for _, _, stages in runs:
        for run in stages.values():
            click.echo(f"{run.name}: best checkpoint {run.best_checkpoint}")
    for arm, run_seed, stages in runs:
        values = arm_metrics(stages)
        shown = ", ".join(f"{k} {v:.3f}" for k, v in values.items() if v is not None)
        click.echo(f"{arm}/seed_{run_seed}: {shown or 'stage 1 only'}")
    if result.report is not None:
        click.echo(f"report: {result.report}")


@click.command("table3")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@curriculum_options
@click.option(
    "--seed",
    "seeds",
    type=int,
    multiple=True,
    default=default_of(run_table3, "seeds"),
    show_default=True,
    help="train.py seed (repeatable); one run set per seed.",
)
@click.option(
    "--arm",
    "arms",
    multiple=True,
    type=click.Choice(TABLE3_ARMS),
    default=default_of(run_table3, "arms"),
    show_default=True,
    help="A row of Table 3 (repeatable).",
)
def table3_command(out_dir: Path, seeds: tuple[int, ...], arms: tuple[str, ...], **kwargs) -> None:
    """Rerun POYO-CAP's Table 3 over several seeds: mean and 95 % CI beside the paper's.

    Rows: POYO-CAP, from scratch (train on all), inhibitory-only SSL, reverse SSL, mixed SSL
    (partitions: `poyocap datasets`). Each (row, seed) runs its stages through `poyocap
    train` into OUT_DIR/runs and is skipped when finished before; writes OUT_DIR/table3.md
    and table3.json. On --simulate data the table says it is a different dataset.

    \b
    Examples:
      poyocap table3 runs/table3 --simulate
      poyocap table3 runs/table3 --simulate --seed 0 --seed 1 --arm poyocap --arm reverse_ssl
      poyocap table3 runs/table3_allen --data-root data/processed --preset paper \\
          --perceptual-weights alexnet-owt-7be5be79.pth --gpus 4
    """
    data_root, simulation, settings, min_units = curriculum_inputs(kwargs)
    with user_errors(*_RUN_ERRORS):
        _, path = run_table3(
            out_dir,
            data_root=data_root,
            simulation=simulation,
            settings=settings,
            seeds=seeds,
            arms=arms,
            min_units=min_units,
        )
    click.echo(path.read_text())
    click.echo(f"table: {path}")
