"""Commands on a prepared brainset: ``predictability`` (report) and ``datasets`` (configs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from poyocap_plugin.workflow import predictability_report as reporting
from poyocap_plugin.workflow.cli._library import default_of, parameter_choices, user_errors
from poyocap_plugin.workflow.datasets import write_dataset_configs
from poyocap_plugin.workflow.stages import VARIANTS

__all__ = ["ON_TOO_FEW", "datasets_command", "predictability_command"]

#: --exclude-too-few / --refuse-too-few -> write_dataset_configs's ``on_too_few``
ON_TOO_FEW = {True: "exclude", False: "error"}

_DATA_ERRORS = (FileNotFoundError, KeyError, ValueError)


def _default(name: str) -> Any:
    """The default of the wrapped function's parameter ``name``."""
    return default_of(write_dataset_configs, name)


@click.command("predictability")
@click.argument("data_root", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("predictability"),
    show_default=True,
    help="Folder for predictability.json, cre_lines.csv, units.csv and predictability.png.",
)
@click.option(
    "--brainset-id",
    default=default_of(reporting.predictability_report, "brainset_id"),
    show_default=True,
    help="Brainset folder under DATA_ROOT.",
)
def predictability_command(data_root: Path, out_dir: Path, brainset_id: str) -> None:
    """Report neuron predictability per Cre line and re-derive the knee thresholds.

    Reads the per-neuron dF/F skewness and kurtosis the pipeline stored under DATA_ROOT,
    prints per Cre line the neuron count, median and quartiles of both statistics and the
    fraction predictable (at the paper's thresholds), the Kneedle thresholds across lines
    beside the paper's, and writes JSON, CSV and a PNG scatter plot.

    \b
    Examples:
      poyocap predictability data/processed
      poyocap predictability data/processed --out reports/predictability
    """
    with user_errors(*_DATA_ERRORS):
        report = reporting.predictability_report(data_root, brainset_id=brainset_id)
        paths = reporting.write_report(report, out_dir)
    columns = ["n_units", "skewness_median", "kurtosis_median", "fraction_predictable"]
    click.echo(report.lines[columns + ["predictable_line"]].to_string(float_format="%.3f"))

    def show(value: float | None) -> str:
        return "not found" if value is None else f"{value:.3f}"

    click.echo(
        f"thresholds  paper: skewness {report.paper_skewness}, kurtosis {report.paper_kurtosis}"
        f"  |  knee: skewness {show(report.knee_skewness)}, "
        f"kurtosis {show(report.knee_kurtosis)}"
    )
    click.echo(f"predictable lines (paper thresholds): {list(report.predictable_lines_paper)}")
    click.echo(f"predictable lines (knee thresholds):  {report.predictable_lines_knee}")
    for path in paths.values():
        click.echo(f"wrote {path}")


@click.command("datasets")
@click.argument("data_root", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write dataset/<variant>_<stage>.yaml and curriculum.json into.",
)
@click.option(
    "--variant",
    "variants",
    multiple=True,
    type=click.Choice(tuple(VARIANTS)),
    default=_default("variants"),
    show_default=True,
    help="Curriculum variant to write (repeatable).",
)
@click.option(
    "--criterion",
    type=click.Choice(parameter_choices(write_dataset_configs, "criterion")),
    default=_default("criterion"),
    show_default=True,
    help="Classify neurons by their skewness/kurtosis, or by Cre line (the released code).",
)
@click.option(
    "--skewness-threshold",
    type=float,
    default=_default("skewness_threshold"),
    show_default=True,
    help="Largest predictable dF/F skewness.",
)
@click.option(
    "--kurtosis-threshold",
    type=float,
    default=_default("kurtosis_threshold"),
    show_default=True,
    help="Largest predictable dF/F kurtosis.",
)
@click.option(
    "--predictable-line",
    "predictable_lines",
    multiple=True,
    default=_default("predictable_cre_lines"),
    show_default=True,
    help="A predictable Cre line, allensdk spelling (repeatable).",
)
@click.option(
    "--min-units",
    type=int,
    default=_default("min_units"),
    show_default=True,
    help="Fewest selected neurons a session may contribute.",
)
@click.option(
    "--mixed-fraction",
    type=float,
    default=_default("mixed_fraction"),
    show_default=True,
    help="Fraction of each predictable line's subjects pretrained on in mixed_ssl.",
)
@click.option(
    "--seed",
    type=int,
    default=_default("seed"),
    show_default=True,
    help="Seed of the mixed_ssl subject split.",
)
@click.option(
    "--movie-window",
    "movie_window_s",
    type=float,
    default=_default("movie_window_s"),
    show_default=True,
    help="Window of the movie finetuning stage (s); must equal its model's sequence_length.",
)
@click.option(
    "--frame-size",
    nargs=2,
    type=int,
    default=(_default("frame_height"), _default("frame_width")),
    show_default=True,
    metavar="HEIGHT WIDTH",
    help="Frame size (pixels) the movie stage's metric scores; must equal its model's "
    "model.frame_decoder.height and width.",
)
@click.option(
    "--pretrain-every-trial/--pretrain-train-split",
    default=_default("pretrain_every_trial"),
    show_default=True,
    help="Pretraining stages train on every drifting-grating trial but the validation "
    "split's (the paper's count; their test split is then the validation split), or on the "
    "training split's only.",
)
@click.option(
    "--exclude-too-few/--refuse-too-few",
    default=ON_TOO_FEW[True] == _default("on_too_few"),
    show_default=True,
    help="Leave out sessions with fewer than --min-units selected neurons (recorded in "
    "curriculum.json) instead of refusing to write.",
)
@click.option(
    "--brainset-id",
    default=_default("brainset_id"),
    show_default=True,
    help="Brainset folder under DATA_ROOT.",
)
def datasets_command(
    data_root: Path,
    out_dir: Path,
    variants: tuple[str, ...],
    criterion: str,
    skewness_threshold: float,
    kurtosis_threshold: float,
    predictable_lines: tuple[str, ...],
    min_units: int,
    mixed_fraction: float,
    seed: int,
    movie_window_s: float,
    frame_size: tuple[int, int],
    pretrain_every_trial: bool,
    exclude_too_few: bool,
    brainset_id: str,
) -> None:
    """Write the curriculum's torch_brain dataset configs for the sessions under DATA_ROOT.

    One plain-YAML config per variant and stage (pretrain, finetune_movie, finetune_dg) in
    OUT/dataset/, each loaded and checked with torch_brain's Dataset; pretraining and
    finetuning never share a subject. Train on them by adding OUT to Hydra's search path:
    hydra.searchpath=[file://OUT].

    \b
    Examples:
      poyocap datasets data/processed --out curriculum
      poyocap datasets data/processed --out curriculum --variant poyocap --min-units 10
      poyocap train --config-name <stage config> data_root=data/processed \\
          'hydra.searchpath=[file://'$PWD'/curriculum]'
    """
    with user_errors(*_DATA_ERRORS):
        paths = write_dataset_configs(
            data_root,
            out_dir,
            brainset_id=brainset_id,
            variants=variants,
            criterion=criterion,
            skewness_threshold=skewness_threshold,
            kurtosis_threshold=kurtosis_threshold,
            predictable_cre_lines=predictable_lines,
            min_units=min_units,
            mixed_fraction=mixed_fraction,
            seed=seed,
            on_too_few=ON_TOO_FEW[exclude_too_few],
            movie_window_s=movie_window_s,
            frame_height=frame_size[0],
            frame_width=frame_size[1],
            pretrain_every_trial=pretrain_every_trial,
        )
    for path in paths:
        click.echo(f"wrote {path}")
    click.echo(f"wrote {Path(out_dir) / 'curriculum.json'}")
    click.echo(f"use with: hydra.searchpath=[file://{Path(out_dir).resolve()}]")
