"""Result commands: ``summary`` (a run's outputs), ``render`` (decoded frames), ``probe``."""

from __future__ import annotations

from pathlib import Path

import click

from poyocap_plugin.workflow.cli._library import (
    choices_of,
    default_of,
    parameter_choices,
    user_errors,
)
from poyocap_plugin.workflow.probe import Pooling, probe_checkpoint
from poyocap_plugin.workflow.render import render_decoded_frames
from poyocap_plugin.workflow.runs import find_run_outputs

__all__ = ["RENDER_SPLITS", "probe_command", "render_command", "summary_command"]

#: the splits ``render_decoded_frames`` accepts (it checks them; the library has no Literal)
RENDER_SPLITS = parameter_choices(render_decoded_frames, "split")


@click.command("summary")
@click.argument("log_dir", type=click.Path(file_okay=False, path_type=Path))
def summary_command(log_dir: Path) -> None:
    """Print where the newest run under LOG_DIR put its checkpoints, and its test metrics.

    \b
    Examples:
      poyocap summary runs/poyocap_smoke
    """
    with user_errors(FileNotFoundError, ValueError):
        run = find_run_outputs(log_dir)
    click.echo(f"best checkpoint: {run.best_checkpoint}")
    click.echo(f"last checkpoint: {run.last_checkpoint}  (resume with ckpt_path=...)")
    click.echo(f"metrics:         {run.scalars}")
    for name, value in sorted(run.test_metrics.items()):
        click.echo(f"  {name} = {value:.4f}")


@click.command("render")
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
    default=default_of(render_decoded_frames, "data_root"),
    help="Processed-data root, if not the one the run used.",
)
@click.option(
    "--split",
    type=click.Choice(RENDER_SPLITS),
    default=default_of(render_decoded_frames, "split"),
    show_default=True,
    help="Which split's frames to decode.",
)
@click.option(
    "--frames",
    type=int,
    default=default_of(render_decoded_frames, "frames_per_recording"),
    show_default=True,
    help="Frames per recording.",
)
def render_command(
    checkpoint: Path, out_dir: Path, data_root: Path | None, split: str, frames: int
) -> None:
    """Decode movie frames with a stage-2 CHECKPOINT; write true and decoded side by side.

    \b
    Examples:
      poyocap render runs/poyocap_finetune_movie/lightning_logs/version_0/checkpoints/last.ckpt
      poyocap render CKPT --out renders --split valid --frames 12
    """
    with user_errors(FileNotFoundError, ValueError):
        paths = render_decoded_frames(
            checkpoint, out_dir, data_root=data_root, split=split, frames_per_recording=frames
        )
    for path in paths:
        click.echo(path)


@click.command("probe")
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
    default=default_of(probe_checkpoint, "data_root"),
    help="Processed-data root, if not the one the run used.",
)
@click.option(
    "--seed",
    type=int,
    default=default_of(probe_checkpoint, "seed"),
    help="Torch seed of the random-init baseline trunk. Default: the run's seed.",
)
@click.option(
    "--batch-size",
    type=int,
    default=default_of(probe_checkpoint, "batch_size"),
    show_default=True,
    help="Windows per forward pass.",
)
@click.option(
    "--device",
    default=default_of(probe_checkpoint, "device"),
    show_default=True,
    help="Torch device of the trunks, e.g. cuda.",
)
@click.option(
    "--pooling",
    type=click.Choice(choices_of(Pooling)),
    default=default_of(probe_checkpoint, "pooling"),
    show_default=True,
    help="A trial's trunk feature: the mean of its window's processed latents (mean), or "
    "every latent's features in order, concatenated (latents).",
)
def probe_command(
    checkpoint: Path,
    out_dir: Path,
    data_root: Path | None,
    seed: int | None,
    batch_size: int,
    device: str,
    pooling: str,
) -> None:
    """Linear-probe the trunk of a stage-1 CHECKPOINT on drifting-grating direction.

    One window per drifting-grating trial of the run's dataset; the frozen trunk's processed
    latents of the window, pooled as --pooling says, are the trial's feature. Logistic
    regressions are fit on the training split and scored on the test split, pooled over
    recordings and per recording, beside the same trunk at random initialisation, the
    trial's mean dF/F (per recording) and chance. Writes OUT/probe.json.

    \b
    Examples:
      poyocap probe runs/poyocap_pretrain/lightning_logs/version_0/checkpoints/last.ckpt
      poyocap probe CKPT --out reports/probe --data-root data/processed --device cuda
      poyocap probe CKPT --out reports/probe_latents --pooling latents
    """
    with user_errors(FileNotFoundError, KeyError, ValueError):
        result = probe_checkpoint(
            checkpoint,
            data_root=data_root,
            seed=seed,
            batch_size=batch_size,
            device=device,
            pooling=pooling,
        )
    click.echo(result.summary())
    click.echo(f"wrote {result.write(out_dir)}")
