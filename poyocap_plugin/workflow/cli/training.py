"""Training commands: ``trainer`` (fetch train.py), ``train`` (run it), ``check`` (preflight)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from poyocap_plugin.workflow import trainer as _trainer
from poyocap_plugin.workflow.cli._library import default_of, user_errors
from poyocap_plugin.workflow.preflight import PreflightError, check_training_run

__all__ = ["check_command", "train_command", "trainer_command"]

_TRAINER_ERRORS = (RuntimeError, ValueError, FileNotFoundError)
_PASS_THROUGH = dict(ignore_unknown_options=True, allow_extra_args=True)


class _ConfigError(click.ClickException):
    """A configuration the preflight rejected: exit code 2, like a usage error."""

    exit_code = 2

    def format_message(self) -> str:
        return f"configuration check failed, train.py was not started:\n{self.message}"


@contextmanager
def _config_errors() -> Iterator[None]:
    """Turn a PreflightError (a ValueError) into a _ConfigError before it is taken for another."""
    try:
        yield
    except PreflightError as error:
        raise _ConfigError(str(error)) from error


@click.command("trainer")
@click.option(
    "--sdist",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=default_of(_trainer.fetch_trainer, "sdist"),
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
    with user_errors(*_TRAINER_ERRORS):
        click.echo(_trainer.fetch_trainer(sdist=sdist))


@click.command("train", context_settings=_PASS_THROUGH)
@click.option(
    "--check/--no-check",
    default=default_of(_trainer.run_trainer, "check"),
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
    with user_errors(*_TRAINER_ERRORS), _config_errors():
        code = _trainer.run_trainer(list(overrides), check=check)
    raise SystemExit(code)


@click.command("check", context_settings=_PASS_THROUGH)
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
    with user_errors(*_TRAINER_ERRORS), _config_errors():
        train_py = _trainer.fetch_trainer()
        report = check_training_run(list(overrides), trainer_dir=train_py.parent)
    if report is None:
        click.echo("not checked: the arguments use Hydra flags that are left to train.py")
    else:
        click.echo(f"ok: {report.summary()}")
