"""The ``poyocap`` command: each subcommand wraps one library function."""

from __future__ import annotations

from pathlib import Path

import click

from poyocap_plugin.brainset import PAPER_PREDICTABLE_CRE_LINES
from poyocap_plugin.workflow import trainer as _trainer
from poyocap_plugin.workflow.runs import arm_metrics, find_run_outputs
from poyocap_plugin.workflow.settings import CurriculumSettings
from poyocap_plugin.workflow.simulated_brainset import SimulationSettings


@click.group()
@click.version_option(package_name="poyocap-plugin")
def cli() -> None:
    """POYO-CAP on torch_brain: simulate and prepare Allen calcium data, run the curriculum
    through torch_brain's stock POYO+ trainer."""


@cli.command("trainer")
@click.option(
    "--sdist",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A local torch_brain-0.1.2.tar.gz to use instead of downloading it with pip.",
)
def trainer_command(sdist: Path | None) -> None:
    """Find or fetch torch_brain 0.1.2's stock POYO+ train.py and print its path.

    The script comes from the torch_brain 0.1.2 sdist on PyPI (checked by SHA-256) and is
    cached under $POYOCAP_CACHE_DIR (default: the user cache dir).

    \b
    Examples:
      poyocap trainer
      POYOCAP_CACHE_DIR=/scratch/cache poyocap trainer --sdist torch_brain-0.1.2.tar.gz
    """
    try:
        click.echo(_trainer.fetch_trainer(sdist=sdist))
    except (RuntimeError, ValueError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from error


@cli.command(
    "train",
    context_settings=dict(ignore_unknown_options=True, allow_extra_args=True),
)
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Check the composed config (paths, sessions, readouts, model, transforms, one "
    "batch) before train.py starts; a failure exits with code 2.",
)
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def train_command(check: bool, overrides: tuple[str, ...]) -> None:
    """Run the stock torch_brain POYO+ train.py, unchanged, with Hydra OVERRIDES.

    Everything after `train` goes to train.py as it is. The plugin's configs are on
    Hydra's search path and its modalities are registered before train.py starts.

    \b
    Examples:
      poyocap train --config-name poyocap_smoke data_root=data/processed
      poyocap train --config-name poyocap_smoke epochs=5 num_workers=2
      poyocap train --no-check --config-name poyocap_pretrain data_root=data/processed
    """
    from poyocap_plugin.workflow.preflight import PreflightError

    try:
        code = _trainer.run_trainer(list(overrides), check=check)
    except PreflightError as error:
        raise _ConfigError(str(error)) from error
    except (RuntimeError, ValueError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from error
    raise SystemExit(code)


class _ConfigError(click.ClickException):
    """A configuration the preflight rejected: exit code 2, like a usage error."""

    exit_code = 2

    def format_message(self) -> str:
        return f"configuration check failed, train.py was not started:\n{self.message}"


@cli.command("summary")
@click.argument("log_dir", type=click.Path(file_okay=False, path_type=Path))
def summary_command(log_dir: Path) -> None:
    """Print where the newest run under LOG_DIR put its checkpoints, and its test metrics.

    \b
    Examples:
      poyocap summary runs/poyocap_smoke
    """
    try:
        run = find_run_outputs(log_dir)
    except (FileNotFoundError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"best checkpoint: {run.best_checkpoint}")
    click.echo(f"last checkpoint: {run.last_checkpoint}  (resume with ckpt_path=...)")
    click.echo(f"metrics:         {run.metrics_csv}")
    for name, value in sorted(run.test_metrics.items()):
        click.echo(f"  {name} = {value:.4f}")


@cli.command("predictability")
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
    default="allen_brain_observatory_calcium",
    show_default=True,
    help="Brainset folder under DATA_ROOT.",
)
def predictability_command(data_root: Path, out_dir: Path, brainset_id: str) -> None:
    """Report neuron predictability per Cre line and re-derive the knee thresholds.

    Reads the per-neuron dF/F skewness and kurtosis the pipeline stored under DATA_ROOT,
    prints per Cre line the neuron count, median and quartiles of both statistics and the
    fraction predictable (paper thresholds 3.51 / 22.62), the Kneedle thresholds across
    lines beside the paper's, and writes JSON, CSV and a PNG scatter plot.

    \b
    Examples:
      poyocap predictability data/processed
      poyocap predictability data/processed --out reports/predictability
    """
    from poyocap_plugin.workflow import predictability_report as reporting

    try:
        report = reporting.predictability_report(data_root, brainset_id=brainset_id)
        paths = reporting.write_report(report, out_dir)
    except (FileNotFoundError, KeyError, ValueError) as error:
        raise click.ClickException(error.args[0] if error.args else str(error)) from error
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


@cli.command("datasets")
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
    type=click.Choice(["poyocap", "from_scratch", "inhibitory_ssl", "reverse_ssl", "mixed_ssl"]),
    default=(),
    help="Curriculum variant to write (repeatable). Default: all five.",
)
@click.option(
    "--criterion",
    type=click.Choice(["statistics", "cre_line"]),
    default="statistics",
    show_default=True,
    help="Classify neurons by their skewness/kurtosis, or by Cre line (the released code).",
)
@click.option(
    "--skewness-threshold",
    type=float,
    default=3.51,
    show_default=True,
    help="Largest predictable dF/F skewness.",
)
@click.option(
    "--kurtosis-threshold",
    type=float,
    default=22.62,
    show_default=True,
    help="Largest predictable dF/F kurtosis.",
)
@click.option(
    "--predictable-line",
    "predictable_lines",
    multiple=True,
    default=(),
    help="A predictable Cre line, allensdk spelling (repeatable). "
    "Default: Sst-IRES-Cre, Vip-IRES-Cre, Pvalb-IRES-Cre, Ntsr1-Cre_GN220.",
)
@click.option(
    "--min-units",
    type=int,
    default=1,
    show_default=True,
    help="Fewest selected neurons a session may contribute.",
)
@click.option(
    "--mixed-fraction",
    type=float,
    default=0.5,
    show_default=True,
    help="Fraction of each predictable line's subjects pretrained on in mixed_ssl.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the mixed_ssl subject split."
)
@click.option(
    "--movie-window",
    "movie_window_s",
    type=float,
    default=0.033,
    show_default=True,
    help="Window of the movie finetuning stage (s); must equal its model's sequence_length.",
)
@click.option(
    "--exclude-too-few/--refuse-too-few",
    default=False,
    show_default=True,
    help="Leave out sessions with fewer than --min-units selected neurons (recorded in "
    "curriculum.json) instead of refusing to write.",
)
@click.option(
    "--brainset-id",
    default="allen_brain_observatory_calcium",
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
    from poyocap_plugin.workflow import datasets
    from poyocap_plugin.workflow.stages import VARIANTS

    try:
        paths = datasets.write_dataset_configs(
            data_root,
            out_dir,
            brainset_id=brainset_id,
            variants=variants or tuple(VARIANTS),
            criterion=criterion,
            skewness_threshold=skewness_threshold,
            kurtosis_threshold=kurtosis_threshold,
            predictable_cre_lines=predictable_lines or PAPER_PREDICTABLE_CRE_LINES,
            min_units=min_units,
            mixed_fraction=mixed_fraction,
            seed=seed,
            on_too_few="exclude" if exclude_too_few else "error",
            movie_window_s=movie_window_s,
        )
    except (FileNotFoundError, KeyError, ValueError) as error:
        raise click.ClickException(error.args[0] if error.args else str(error)) from error
    for path in paths:
        click.echo(f"wrote {path}")
    click.echo(f"wrote {Path(out_dir) / 'curriculum.json'}")
    click.echo(f"use with: hydra.searchpath=[file://{Path(out_dir).resolve()}]")


@cli.command("simulate")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/raw"),
    show_default=True,
    help="brainsets raw root; files go to <out-dir>/allen_brain_observatory_calcium/"
    "ophys_experiment_data/<experiment_id>.nwb.",
)
@click.option(
    "--n-sessions", type=int, default=13, show_default=True, help="Number of sessions to write."
)
@click.option(
    "--cre-line",
    "cre_lines",
    multiple=True,
    default=(),
    help="Cre line, allensdk spelling (repeatable; sessions cycle through them). "
    "Default: all 13 lines.",
)
@click.option(
    "--session-type",
    "session_types",
    multiple=True,
    type=click.Choice(
        ["three_session_A", "three_session_B", "three_session_C", "three_session_C2"]
    ),
    default=("three_session_A",),
    show_default=True,
    help="Session type (repeatable; sessions cycle through them).",
)
@click.option("--n-rois", type=int, default=20, show_default=True, help="ROIs per session.")
@click.option(
    "--duration",
    type=click.Choice(["short", "full"]),
    default="short",
    show_default=True,
    help="short: 3 repeats per grating condition, ~9 min per three_session_A session; "
    "full: the real session lengths (~1 h).",
)
@click.option(
    "--movie-size",
    type=(int, int),
    default=(304, 608),
    show_default=True,
    metavar="HEIGHT WIDTH",
    help="Size (pixels) of natural movie one's template; the real movie is 304 x 608.",
)
@click.option(
    "--template-seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the movie templates, shared by all sessions.",
)
@click.option(
    "--eye-tracking/--no-eye-tracking",
    default=True,
    show_default=True,
    help="Write pupil position and size.",
)
@click.option(
    "--broken",
    type=click.Choice(["none", "truncated", "unsplittable_epochs"]),
    default="none",
    show_default=True,
    help="Write the last session broken: truncated (unreadable HDF5) or unsplittable_epochs "
    "(allensdk raises EpochSeparationException).",
)
@click.option(
    "--first-experiment-id",
    type=int,
    default=900_000_001,
    show_default=True,
    help="Experiment id of the first session; the others follow it.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sessions.")
def simulate_command(
    out_dir: Path,
    n_sessions: int,
    cre_lines: tuple[str, ...],
    session_types: tuple[str, ...],
    n_rois: int,
    duration: str,
    movie_size: tuple[int, int],
    template_seed: int,
    eye_tracking: bool,
    broken: str,
    first_experiment_id: int,
    seed: int,
) -> None:
    """Write simulated Allen Brain Observatory ophys sessions as Allen NWB files.

    The files have the 2016 Visual Coding layout that allensdk reads, so the
    allen_brain_observatory_calcium pipeline prepares them like downloaded ones. The
    predictable Cre lines (Sst, Vip, Pvalb, Ntsr1) fire densely with low dF/F skewness and
    kurtosis, the others sparsely with heavy tails; every unit is tuned to grating direction
    and temporal frequency and responds to natural movie one.

    \b
    Examples:
      poyocap simulate --out-dir data/raw
      poyocap simulate --out-dir data/raw --n-sessions 4 --cre-line Sst-IRES-Cre \\
          --cre-line Cux2-CreERT2 --n-rois 50 --duration full
      poyocap simulate --out-dir /tmp/raw --n-sessions 2 --movie-size 38 76 --broken truncated
      brainsets prepare allen_brain_observatory_calcium --raw-dir data/raw \\
          --processed-dir data/processed --use-raw-files
    """
    from poyocap_plugin.workflow import simulate

    layout = simulate.SessionLayout.full() if duration == "full" else simulate.SessionLayout()
    try:
        paths = simulate.simulate_sessions(
            out_dir=out_dir,
            n_sessions=n_sessions,
            cre_lines=cre_lines or simulate.CRE_LINES,
            session_types=session_types,
            n_rois=n_rois,
            layout=layout,
            movie_height=movie_size[0],
            movie_width=movie_size[1],
            template_seed=template_seed,
            eye_tracking=eye_tracking,
            broken=None if broken == "none" else broken,
            first_experiment_id=first_experiment_id,
            seed=seed,
        )
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from error
    for path in paths:
        click.echo(f"wrote {path}")
    click.echo(
        f"prepare with: brainsets prepare allen_brain_observatory_calcium --raw-dir {out_dir} "
        "--processed-dir <processed> --use-raw-files"
    )


@cli.command("render")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("renders"),
    show_default=True,
    help="Folder for the PNGs, one per recording.",
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Processed-data root, if not the one the run used.",
)
@click.option(
    "--split",
    type=click.Choice(["train", "valid", "test"]),
    default="test",
    show_default=True,
    help="Which split's frames to decode.",
)
@click.option("--frames", default=8, show_default=True, help="Frames per recording.")
def render_command(
    checkpoint: Path, out_dir: Path, data_root: Path | None, split: str, frames: int
) -> None:
    """Decode movie frames with a stage-2 CHECKPOINT; write true and decoded side by side.

    \b
    Examples:
      poyocap render runs/poyocap_finetune_movie/lightning_logs/version_0/checkpoints/last.ckpt
      poyocap render CKPT --out renders --split valid --frames 12
    """
    from poyocap_plugin.workflow.render import render_decoded_frames

    try:
        paths = render_decoded_frames(
            checkpoint, out_dir, data_root=data_root, split=split, frames_per_recording=frames
        )
    except (FileNotFoundError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    for path in paths:
        click.echo(path)


@cli.command("probe")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("probe"),
    show_default=True,
    help="Folder for probe.json.",
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Processed-data root, if not the one the run used.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Torch seed of the random-init baseline trunk. Default: the run's seed.",
)
@click.option(
    "--batch-size", type=int, default=32, show_default=True, help="Windows per forward pass."
)
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    help="Torch device of the trunks, e.g. cuda.",
)
def probe_command(
    checkpoint: Path,
    out_dir: Path,
    data_root: Path | None,
    seed: int | None,
    batch_size: int,
    device: str,
) -> None:
    """Linear-probe the trunk of a stage-1 CHECKPOINT on drifting-grating direction.

    One window per drifting-grating trial of the run's dataset; the mean of the frozen
    trunk's processed latents is the trial's feature. Logistic regressions are fit on the
    training split and scored on the test split, pooled over recordings and per
    recording, beside the same trunk at random initialisation, the trial's mean dF/F
    (per recording) and chance. Writes OUT/probe.json.

    \b
    Examples:
      poyocap probe runs/poyocap_pretrain/lightning_logs/version_0/checkpoints/last.ckpt
      poyocap probe CKPT --out reports/probe --data-root data/processed --device cuda
    """
    from poyocap_plugin.workflow.probe import probe_checkpoint

    try:
        result = probe_checkpoint(
            checkpoint, data_root=data_root, seed=seed, batch_size=batch_size, device=device
        )
    except (FileNotFoundError, KeyError, ValueError) as error:
        raise click.ClickException(error.args[0] if error.args else str(error)) from error
    click.echo(result.summary())
    click.echo(f"wrote {result.write(out_dir)}")


def _curriculum_options(command):
    """The options `curriculum` and `table3` share: data, run sizes, seeds."""
    options = [
        click.option(
            "--data-root",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
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
        click.option(
            "--sim-sessions",
            type=int,
            default=SimulationSettings.n_sessions,
            show_default=True,
            help="With --simulate: number of sessions.",
        ),
        click.option(
            "--sim-cre-line",
            "sim_cre_lines",
            multiple=True,
            default=("Sst-IRES-Cre", "Cux2-CreERT2", "Vip-IRES-Cre", "Rorb-IRES2-Cre"),
            show_default=True,
            help="With --simulate: a Cre line, allensdk spelling (repeatable; sessions cycle "
            "through them). Mix predictable (Sst, Vip, Pvalb, Ntsr1) and other lines.",
        ),
        click.option(
            "--sim-rois",
            type=int,
            default=SimulationSettings.n_rois,
            show_default=True,
            help="With --simulate: ROIs per session.",
        ),
        click.option(
            "--sim-dg-repeats",
            type=int,
            default=SimulationSettings.dg_repeats,
            show_default=True,
            help="With --simulate: repeats of each of the 40 drifting-grating conditions.",
        ),
        click.option(
            "--prepare-workers",
            type=int,
            default=1,
            show_default=True,
            help="With --simulate: `brainsets prepare -c N` (parallel Ray workers).",
        ),
        click.option(
            "--preset",
            type=click.Choice(["cpu", "paper"]),
            default="cpu",
            show_default=True,
            help="Run sizes: cpu (capoyo_48k, 16x32 frames, minutes on 2 cores) or paper "
            "(capoyo_114M, 128x256 frames, 50 + 25 epochs). The options below change it.",
        ),
        click.option(
            "--model", default=None, help="Model-size config, e.g. capoyo_1.2M. Default: preset's."
        ),
        click.option(
            "--pretrain-epochs", type=int, default=None, help="Stage-1 epochs. Default: preset's."
        ),
        click.option(
            "--finetune-epochs",
            type=int,
            default=None,
            help="Epochs of each stage-2 movie run. Default: preset's.",
        ),
        click.option(
            "--dg-epochs",
            type=int,
            default=None,
            help="Epochs of each stage-2 DG run. Default: preset's.",
        ),
        click.option(
            "--batch-size", type=int, default=None, help="Global batch size. Default: preset's."
        ),
        click.option(
            "--eval-batch-size",
            type=int,
            default=None,
            help="Validation/test batch size (train.py's eval_batch_size). Default: preset's.",
        ),
        click.option(
            "--base-lr",
            type=float,
            default=None,
            help="optim.base_lr (peak LR = base_lr x batch size). Default: preset's.",
        ),
        click.option(
            "--frame-size",
            type=(int, int, int),
            default=None,
            metavar="HEIGHT WIDTH STAGES",
            help="Decoded frame size (pixels) and UNet x2 stages, e.g. 16 32 4. Default: preset's.",
        ),
        click.option(
            "--num-workers", type=int, default=None, help="DataLoader workers. Default: preset's."
        ),
        click.option(
            "--override",
            "overrides",
            multiple=True,
            default=(),
            help="A Hydra override for every run (repeatable), e.g. gpus=4, nodes=2, "
            "wandb.enable=true.",
        ),
        click.option(
            "--launcher",
            default="",
            help="Command prefix of every training run, e.g. 'srun' inside a SLURM "
            "allocation (one task per GPU; Lightning reads SLURM's environment).",
        ),
        click.option(
            "--min-units",
            type=int,
            default=1,
            show_default=True,
            help="Fewest selected neurons a session may bring; sessions with fewer are left out.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _curriculum_inputs(kwargs: dict, **changes):
    """Data source, run settings and min_units of `curriculum` / `table3` from their options."""
    import logging
    import shlex

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    data_root, simulate_data = kwargs.pop("data_root"), kwargs.pop("simulate_data")
    sim_sessions, sim_rois = kwargs.pop("sim_sessions"), kwargs.pop("sim_rois")
    sim_dg_repeats = kwargs.pop("sim_dg_repeats")
    sim_cre_lines = tuple(kwargs.pop("sim_cre_lines"))
    prepare_workers = kwargs.pop("prepare_workers")
    if (data_root is None) == (not simulate_data):
        raise click.ClickException(
            "Give either --data-root DIR (a processed brainset) or --simulate."
        )
    simulation = None
    if simulate_data:
        try:
            simulation = SimulationSettings(
                n_sessions=sim_sessions,
                n_rois=sim_rois,
                dg_repeats=sim_dg_repeats,
                prepare_workers=prepare_workers,
                cre_lines=sim_cre_lines,
            )
        except ValueError as error:
            raise click.ClickException(str(error)) from error
    preset, overrides = kwargs.pop("preset"), tuple(kwargs.pop("overrides"))
    changes["launcher"] = tuple(shlex.split(kwargs.pop("launcher")))
    min_units = kwargs.pop("min_units")
    changes |= {k: v for k, v in kwargs.items() if v is not None}
    try:
        settings = CurriculumSettings.preset(preset, overrides=overrides, **changes)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    return data_root, simulation, settings, min_units


@cli.command("curriculum")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@_curriculum_options
@click.option("--seed", type=int, default=42, show_default=True, help="train.py seed of every run.")
@click.option(
    "--dg/--no-dg",
    default=True,
    show_default=True,
    help="Also run the DG-classification finetune (the DG-accuracy column).",
)
@click.option(
    "--stop-after",
    type=click.Choice(["pretrain", "finetune"]),
    default="finetune",
    show_default=True,
    help="pretrain: run stage 1 only (a later rerun goes on from there).",
)
def curriculum_command(out_dir: Path, seed: int, dg: bool, stop_after: str, **kwargs) -> None:
    """Run the POYO-CAP curriculum into OUT_DIR and write its report; rerun to resume.

    Data (--data-root, or --simulate: simulated sessions prepared with the real `brainsets
    prepare`), the dataset configs, stage 1 on the predictable neurons, stage 2 (movie
    frames, and DG direction) on the unpredictable ones from stage 1's best checkpoint, the
    same stage 2 from scratch, then OUT_DIR/report/report.md. Every run is `poyocap train`
    (torch_brain's stock train.py); its command line is logged. A finished step is not run
    again.

    \b
    Examples:
      poyocap curriculum runs/demo --simulate
      poyocap curriculum runs/demo --simulate --stop-after pretrain
      poyocap curriculum runs/allen --data-root data/processed --preset paper \\
          --override gpus=4 --override wandb.enable=true
    """
    from poyocap_plugin.workflow import curriculum

    data_root, simulation, settings, min_units = _curriculum_inputs(kwargs, dg=dg)
    try:
        result = curriculum.run_curriculum(
            out_dir,
            data_root=data_root,
            simulation=simulation,
            settings=settings,
            seed=seed,
            min_units=min_units,
            stop_after=stop_after,
        )
    except (FileNotFoundError, KeyError, ValueError, RuntimeError) as error:
        raise click.ClickException(error.args[0] if error.args else str(error)) from error
    for arm, stages in result.arms.items():
        for stage, run in stages.items():
            click.echo(f"{arm}/{stage}: best checkpoint {run.best_checkpoint}")
    metrics = {arm: arm_metrics(stages) for arm, stages in result.arms.items()}
    for arm, values in metrics.items():
        shown = ", ".join(f"{k} {v:.3f}" for k, v in values.items() if v is not None)
        click.echo(f"{arm}: {shown or 'stage 1 only'}")
    if result.report is not None:
        click.echo(f"report: {result.report}")


@cli.command("table3")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@_curriculum_options
@click.option(
    "--seed",
    "seeds",
    type=int,
    multiple=True,
    default=(0, 1, 2),
    show_default=True,
    help="train.py seed (repeatable); one run set per seed.",
)
@click.option(
    "--arm",
    "arms",
    multiple=True,
    type=click.Choice(["poyocap", "from_scratch", "inhibitory_ssl", "reverse_ssl", "mixed_ssl"]),
    default=(),
    help="A row of Table 3 (repeatable). Default: all five.",
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
          --override gpus=8
    """
    from poyocap_plugin.workflow.stages import TABLE3_ARMS
    from poyocap_plugin.workflow.table3 import run_table3

    data_root, simulation, settings, min_units = _curriculum_inputs(kwargs)
    try:
        _, path = run_table3(
            out_dir,
            data_root=data_root,
            simulation=simulation,
            settings=settings,
            seeds=seeds,
            arms=arms or TABLE3_ARMS,
            min_units=min_units,
        )
    except (FileNotFoundError, KeyError, ValueError, RuntimeError) as error:
        raise click.ClickException(error.args[0] if error.args else str(error)) from error
    click.echo(path.read_text())
    click.echo(f"table: {path}")


@cli.command("check", context_settings=dict(ignore_unknown_options=True, allow_extra_args=True))
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def check_command(overrides: tuple[str, ...]) -> None:
    """Check a training run's config as `poyocap train` would, without training.

    Takes the same arguments as `poyocap train`; exits with code 2 on a problem.

    \b
    Examples:
      poyocap check --config-name poyocap_pretrain data_root=data/processed
      poyocap check --config-name poyocap_finetune_movie data_root=data/processed \\
          "model.pretrained_trunk='runs/pretrain/.../epoch_epoch=49.ckpt'"
    """
    from poyocap_plugin.workflow.preflight import PreflightError, check_training_run

    try:
        train_py = _trainer.fetch_trainer()
        report = check_training_run(list(overrides), trainer_dir=train_py.parent)
    except PreflightError as error:
        raise _ConfigError(str(error)) from error
    except (RuntimeError, ValueError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from error
    if report is None:
        click.echo("not checked: the arguments use Hydra flags that are left to train.py")
    else:
        click.echo(f"ok: {report.summary()}")


def main() -> None:
    cli()
