"""The ``poyocap`` command: a click group whose subcommands each wrap one library function.

One module per command group, as brainsets' ``_cli`` does:

- :mod:`.simulation`: ``simulate``
- :mod:`.data`: ``predictability``, ``datasets``
- :mod:`.training`: ``trainer``, ``train``, ``check``
- :mod:`.results`: ``summary``, ``render``, ``probe``
- :mod:`.experiments`: ``curriculum``, ``table3``
- :mod:`.analyses`: ``analyze landscape``, ``analyze fisher``, ``analyze scaling``

Defaults and choices come from the library (:mod:`._library`).
"""

from __future__ import annotations

import click

from poyocap_plugin.workflow.cli.analyses import analyze_group
from poyocap_plugin.workflow.cli.data import datasets_command, predictability_command
from poyocap_plugin.workflow.cli.experiments import curriculum_command, table3_command
from poyocap_plugin.workflow.cli.results import probe_command, render_command, summary_command
from poyocap_plugin.workflow.cli.simulation import simulate_command
from poyocap_plugin.workflow.cli.training import check_command, train_command, trainer_command

__all__ = ["cli", "main"]


@click.group()
@click.version_option(package_name="poyocap-plugin")
def cli() -> None:
    """POYO-CAP on torch_brain: simulate and prepare Allen calcium data, run the curriculum
    through torch_brain's stock POYO+ trainer."""


for _command in (
    trainer_command,
    train_command,
    summary_command,
    predictability_command,
    datasets_command,
    simulate_command,
    render_command,
    probe_command,
    curriculum_command,
    table3_command,
    check_command,
    analyze_group,
):
    cli.add_command(_command)


def main() -> None:
    """The ``poyocap`` console script."""
    cli()
