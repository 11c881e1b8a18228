"""A small simulated Allen brainset, prepared through the real ``brainsets prepare`` CLI.

The demo's data: :mod:`poyocap_plugin.workflow.simulate` writes Allen-format NWB sessions, and the
plugin's ``allen_brain_observatory_calcium`` pipeline prepares them exactly as it prepares
downloaded ones (``brainsets prepare ... --use-raw-files``, in its isolated uv environment
with allensdk). Both steps are resumable (:mod:`poyocap_plugin.workflow.steps`).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from poyocap_plugin.brainset import BRAINSET_ID
from poyocap_plugin.workflow.settings import Preset
from poyocap_plugin.workflow.steps import run_logged, run_step

__all__ = ["SIMULATIONS", "SimulationSettings", "prepare_data"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulationSettings:
    """A small simulated Allen dataset, prepared through ``brainsets prepare``.

    Args:
        cre_lines: Cre lines (allensdk spelling), one per session in turn; include
            predictable (Sst, Vip, Pvalb, Ntsr1) and unpredictable lines.
        n_sessions: Number of sessions.
        n_rois: ROIs per session.
        nm1_repeats: Natural-movie-one repeats (>= 3: the last is test, the one before valid).
        dg_repeats: Repeats of each of the 40 drifting-grating conditions.
        movie_size: (height, width) of the simulated movie template (pixels).
        template_size: (height, width) the pipeline stores the template at (pixels).
        prepare_workers: ``brainsets prepare -c``: parallel Ray workers.
        seed: Seed of the sessions.
    """

    cre_lines: tuple[str, ...] = (
        "Sst-IRES-Cre",
        "Cux2-CreERT2",
        "Vip-IRES-Cre",
        "Rorb-IRES2-Cre",
    )
    n_sessions: int = 4
    n_rois: int = 100
    nm1_repeats: int = 3
    dg_repeats: int = 8
    movie_size: tuple[int, int] = (38, 76)
    template_size: tuple[int, int] = (16, 32)
    prepare_workers: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.nm1_repeats < 3:
            raise ValueError(
                f"SimulationSettings.nm1_repeats must be >= 3 (train, valid, test repeats), "
                f"got {self.nm1_repeats}"
            )
        if self.n_sessions < 2:
            raise ValueError(f"SimulationSettings.n_sessions must be >= 2, got {self.n_sessions}")


#: each preset's simulated set (``--simulate``): the demo's, or for ``study`` one Ntsr1
#: session more, so that POYO-CAP pretrains on other lines (Sst, Vip, Ntsr1) than
#: inhibitory-only SSL (Sst, Vip): on the demo's set those two arms are the same runs
SIMULATIONS: dict[Preset, SimulationSettings] = {
    "cpu": SimulationSettings(),
    "study": SimulationSettings(
        cre_lines=(
            "Sst-IRES-Cre",
            "Cux2-CreERT2",
            "Vip-IRES-Cre",
            "Rorb-IRES2-Cre",
            "Ntsr1-Cre_GN220",
        ),
        n_sessions=5,
    ),
    "paper": SimulationSettings(),
}


def prepare_data(out_dir: Path, simulation: SimulationSettings) -> Path:
    """Simulate Allen NWB sessions and prepare them with the real ``brainsets prepare`` CLI.

    Writes ``<out_dir>/raw`` (NWB files) and ``<out_dir>/processed`` (the brainset); each
    of the two steps is skipped on a rerun with the same settings.

    Args:
        out_dir: The data folder.
        simulation: What to simulate.

    Returns:
        The processed-data root.

    Raises:
        RuntimeError: If ``brainsets prepare`` fails (its log is named).
    """
    from poyocap_plugin.workflow import simulate

    out_dir = Path(out_dir).resolve()
    raw, processed = out_dir / "raw", out_dir / "processed"
    settings = asdict(simulation)

    def simulate_step() -> dict[str, Any]:
        # new settings: start from empty folders, or the old sessions would stay (and
        # `brainsets prepare` would skip the changed ones as already processed)
        for folder in (raw, processed):
            shutil.rmtree(folder, ignore_errors=True)
        paths = simulate.simulate_sessions(
            out_dir=raw,
            n_sessions=simulation.n_sessions,
            cre_lines=simulation.cre_lines,
            n_rois=simulation.n_rois,
            layout=simulate.SessionLayout(
                nm1_repeats=simulation.nm1_repeats, dg_repeats=simulation.dg_repeats
            ),
            movie_height=simulation.movie_size[0],
            movie_width=simulation.movie_size[1],
            seed=simulation.seed,
        )
        return {"nwb_files": [str(p) for p in paths]}

    run_step("simulate", raw, settings, simulate_step)

    brainsets = Path(sys.executable).parent / "brainsets"
    command = [
        str(brainsets) if brainsets.is_file() else "brainsets",
        "prepare",
        BRAINSET_ID,
        "--raw-dir",
        str(raw),
        "--processed-dir",
        str(processed),
        "--use-raw-files",
        "--template-size",
        *map(str, simulation.template_size),
        "-c",
        str(simulation.prepare_workers),
    ]

    def prepare_step() -> dict[str, Any]:
        logger.info("prepare: %s", shlex.join(command))
        env = dict(os.environ)
        # the pipeline's isolated environment is built with the uv beside this interpreter
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("RAY_AUTH_MODE", "disabled")
        run_logged(command, processed / "prepare.log", env=env)
        return {"processed": str(processed), "command": command}

    run_step(
        "prepare",
        processed / BRAINSET_ID / "prepare",
        {"command": command, **settings},
        prepare_step,
    )
    return processed
