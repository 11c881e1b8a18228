"""The ``poyocap`` command: each subcommand wraps one library function."""

from __future__ import annotations

from pathlib import Path

import click

from poyocap_plugin import trainer as _trainer
from poyocap_plugin.runs import find_run_outputs


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
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def train_command(overrides: tuple[str, ...]) -> None:
    """Run the stock torch_brain POYO+ train.py, unchanged, with Hydra OVERRIDES.

    Everything after `train` goes to train.py as it is. The plugin's configs are on
    Hydra's search path and its modalities are registered before train.py starts.

    \b
    Examples:
      poyocap train --config-name poyocap_smoke data_root=data/processed
      poyocap train --config-name poyocap_smoke epochs=5 num_workers=2
    """
    try:
        code = _trainer.run_trainer(list(overrides))
    except (RuntimeError, ValueError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from error
    raise SystemExit(code)


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
    click.echo(f"last checkpoint: {run.last_checkpoint}")
    click.echo(f"metrics:         {run.metrics_csv}")
    for name, value in sorted(run.test_metrics.items()):
        click.echo(f"  {name} = {value:.4f}")


def main() -> None:
    cli()
