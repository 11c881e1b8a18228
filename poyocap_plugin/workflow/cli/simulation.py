"""The ``simulate`` command: write simulated Allen ophys sessions as Allen NWB files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from poyocap_plugin.brainset import BRAINSET_ID, NWB_SUBDIR
from poyocap_plugin.workflow import simulate
from poyocap_plugin.workflow.cli._library import choices_of, default_of, user_errors
from poyocap_plugin.workflow.simulate.session import Breakage

__all__ = ["BROKEN_CHOICES", "DURATIONS", "simulate_command"]

#: --duration -> the SessionLayout it simulates
DURATIONS = {"short": simulate.SessionLayout, "full": simulate.SessionLayout.full}
#: --broken: "none" (simulate_sessions's ``broken=None``) or a Breakage
_NOT_BROKEN = "none"
BROKEN_CHOICES = (_NOT_BROKEN, *choices_of(Breakage))


def _default(name: str) -> Any:
    """The default of the wrapped function's parameter ``name``."""
    return default_of(simulate.simulate_sessions, name)


_DEFAULT_CRE_LINES = _default("cre_lines")
_SHORT, _FULL = DURATIONS["short"](), DURATIONS["full"]()


@click.command("simulate")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/raw"),
    show_default=True,
    help=f"brainsets raw root; files go to <out-dir>/{BRAINSET_ID}/{NWB_SUBDIR}/"
    "<experiment_id>.nwb.",
)
@click.option(
    "--n-sessions",
    type=int,
    default=_default("n_sessions"),
    show_default=True,
    help="Number of sessions to write.",
)
@click.option(
    "--cre-line",
    "cre_lines",
    multiple=True,
    default=_DEFAULT_CRE_LINES,
    help="Cre line, allensdk spelling (repeatable; sessions cycle through them). "
    f"Default: all {len(_DEFAULT_CRE_LINES)} lines.",
)
@click.option(
    "--session-type",
    "session_types",
    multiple=True,
    type=click.Choice(simulate.SESSION_TYPES),
    default=_default("session_types"),
    show_default=True,
    help="Session type (repeatable; sessions cycle through them).",
)
@click.option(
    "--n-rois", type=int, default=_default("n_rois"), show_default=True, help="ROIs per session."
)
@click.option(
    "--duration",
    type=click.Choice(tuple(DURATIONS)),
    default="short",
    show_default=True,
    help=f"short: {_SHORT.dg_repeats} repeats per grating condition, ~9 min per "
    f"three_session_A session; full: the real session lengths ({_FULL.dg_repeats} repeats, "
    "~1 h).",
)
@click.option(
    "--movie-size",
    type=(int, int),
    default=(_default("movie_height"), _default("movie_width")),
    show_default=True,
    metavar="HEIGHT WIDTH",
    help="Size (pixels) of natural movie one's template; the real movie is "
    f"{simulate.NM1_HEIGHT_PX} x {simulate.NM1_WIDTH_PX}.",
)
@click.option(
    "--template-seed",
    type=int,
    default=_default("template_seed"),
    show_default=True,
    help="Seed of the movie templates, shared by all sessions.",
)
@click.option(
    "--eye-tracking/--no-eye-tracking",
    default=_default("eye_tracking"),
    show_default=True,
    help="Write pupil position and size.",
)
@click.option(
    "--broken",
    type=click.Choice(BROKEN_CHOICES),
    default=_default("broken") or _NOT_BROKEN,
    show_default=True,
    help="Write the last session broken: truncated (unreadable HDF5) or unsplittable_epochs "
    "(allensdk raises EpochSeparationException).",
)
@click.option(
    "--first-experiment-id",
    type=int,
    default=_default("first_experiment_id"),
    show_default=True,
    help="Experiment id of the first session; the others follow it.",
)
@click.option(
    "--seed", type=int, default=_default("seed"), show_default=True, help="Seed of the sessions."
)
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
    with user_errors(ValueError, OSError):
        paths = simulate.simulate_sessions(
            out_dir=out_dir,
            n_sessions=n_sessions,
            cre_lines=cre_lines,
            session_types=session_types,
            n_rois=n_rois,
            layout=DURATIONS[duration](),
            movie_height=movie_size[0],
            movie_width=movie_size[1],
            template_seed=template_seed,
            eye_tracking=eye_tracking,
            broken=None if broken == _NOT_BROKEN else broken,
            first_experiment_id=first_experiment_id,
            seed=seed,
        )
    for path in paths:
        click.echo(f"wrote {path}")
    click.echo(
        f"prepare with: brainsets prepare {BRAINSET_ID} --raw-dir {out_dir} "
        "--processed-dir <processed> --use-raw-files"
    )
