"""Stage 1 on each population: the runs the landscape and Fisher analyses look at.

A population is trained on by one arm's stage 1 (:data:`POPULATIONS`): the predictable
neurons of the predictable lines by POYO-CAP's, the unpredictable neurons of the other
lines by reverse SSL's. Both go through the stock trainer with the curriculum's settings
(:func:`~poyocap_plugin.workflow.arms.run_arms`, ``stop_after="pretrain"``), into
``<out_dir>/runs``, resumable: a second analysis in the same folder reuses them. Or the
user gives the stage-1 checkpoints, of any populations or dataset configs
(:func:`stage1_runs`), and nothing is trained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from poyocap_plugin.workflow.arms import run_arms
from poyocap_plugin.workflow.checkpoints import TrainCheckpoint, load_train_checkpoint
from poyocap_plugin.workflow.curriculum import write_curriculum_configs
from poyocap_plugin.workflow.runs import StageResult, epoch_checkpoints
from poyocap_plugin.workflow.settings import CurriculumSettings
from poyocap_plugin.workflow.simulated_brainset import SimulationSettings, prepare_data
from poyocap_plugin.workflow.stages import ARMS

__all__ = ["POPULATIONS", "Stage1Run", "pretrain_runs", "stage1_runs", "trajectory"]

#: population -> the arm whose stage 1 trains on it
POPULATIONS: dict[str, str] = {"predictable": "poyocap", "unpredictable": "reverse_ssl"}


@dataclass(frozen=True)
class Stage1Run:
    """A population's stage-1 run as the analyses read it.

    Attributes:
        checkpoint: Its end point; train.py's per-epoch checkpoints lie beside it.
        command: The command line that trained it; None for a checkpoint the user gave.
    """

    checkpoint: Path
    command: tuple[str, ...] | None


def stage1_runs(
    out_dir: Path,
    *,
    checkpoints: Mapping[str, Path] | None = None,
    data_root: Path | None = None,
    simulation: SimulationSettings | None = None,
    settings: CurriculumSettings | None = None,
    seed: int,
    min_units: int = 1,
) -> tuple[Path, dict[str, Stage1Run]]:
    """Each population's stage-1 run: the given checkpoints, or :func:`pretrain_runs`'.

    Args:
        out_dir: Where the data (when simulated), configs and runs go.
        checkpoints: ``{population name: a stage-1 checkpoint of train.py}``, any names and
            dataset configs; nothing is trained. Needs the ``data_root`` they were trained on.
        data_root, simulation, settings, seed, min_units: As :func:`pretrain_runs`.

    Returns:
        The processed-data root and ``{population: run}``.

    Raises:
        FileNotFoundError: For a given checkpoint that does not exist.
        ValueError: For checkpoints without ``data_root``, or as :func:`pretrain_runs`.
    """
    if not checkpoints:
        data_root, runs = pretrain_runs(
            out_dir,
            data_root=data_root,
            simulation=simulation,
            settings=settings,
            seed=seed,
            min_units=min_units,
        )
        # the last epoch's checkpoint: the end of the path the per-epoch ones draw
        return data_root, {
            p: Stage1Run(epoch_checkpoints(r.last_checkpoint.parent)[-1], r.command)
            for p, r in runs.items()
        }
    if data_root is None or simulation is not None:
        raise ValueError(
            "given checkpoints need the data_root they were trained on (not simulated data); "
            f"got data_root={data_root!r}"
        )
    missing = {p: str(c) for p, c in checkpoints.items() if not Path(c).is_file()}
    if missing:
        raise FileNotFoundError(f"stage-1 checkpoints not found: {missing}")
    return Path(data_root), {p: Stage1Run(Path(c).resolve(), None) for p, c in checkpoints.items()}


def pretrain_runs(
    out_dir: Path,
    *,
    data_root: Path | None = None,
    simulation: SimulationSettings | None = None,
    settings: CurriculumSettings | None = None,
    seed: int,
    populations: Sequence[str] = tuple(POPULATIONS),
    min_units: int = 1,
) -> tuple[Path, dict[str, StageResult]]:
    """Stage 1 on each population (skipped where done before).

    Args:
        out_dir: Where the data (when simulated), configs and runs go.
        data_root: A processed-data root; exclusive with ``simulation``.
        simulation: Settings of simulated data to prepare into ``<out_dir>/data``.
        settings: The run sizes (``dg`` and the stage-2 fields are not used); default the
            ``cpu`` preset.
        seed: train.py's seed.
        populations: Keys of :data:`POPULATIONS`.
        min_units: Fewest selected neurons a session may bring.

    Returns:
        The processed-data root and ``{population: stage-1 run}``.

    Raises:
        ValueError: For an unknown population, or not exactly one of ``data_root`` and
            ``simulation``.
    """
    unknown = [p for p in populations if p not in POPULATIONS]
    if unknown or not populations:
        raise ValueError(
            f"populations must be a non-empty subset of {list(POPULATIONS)}, got {populations!r}"
        )
    if (data_root is None) == (simulation is None):
        raise ValueError(
            "give exactly one of data_root and simulation; "
            f"got data_root={data_root!r}, simulation={simulation!r}"
        )
    settings = settings or CurriculumSettings.preset("cpu")
    out_dir = Path(out_dir).resolve()
    if simulation is not None:
        data_root = prepare_data(out_dir / "data", simulation)
    arms = [POPULATIONS[p] for p in populations]
    config_dir = write_curriculum_configs(
        data_root,
        out_dir / "configs",
        variants=sorted({ARMS[a].variant for a in arms}),
        settings=settings,
        min_units=min_units,
    )
    results = run_arms(
        [(arm, seed) for arm in arms],
        data_root=data_root,
        config_dir=config_dir,
        runs_dir=out_dir / "runs",
        settings=settings,
        stop_after="pretrain",
    )
    return data_root, {p: results[POPULATIONS[p], seed]["pretrain"] for p in populations}


def trajectory(
    run: Stage1Run, *, data_root: Path, endpoints_only: bool = False
) -> tuple[TrainCheckpoint, list[torch.nn.Module]]:
    """A stage-1 run's models from its initial weights through each epoch's checkpoint
    to its end point (the per-epoch checkpoints beside it, up to it).

    Args:
        run: The stage-1 run.
        data_root: The processed-data root.
        endpoints_only: Only the initial and the final model.

    Returns:
        The final checkpoint (config, vocabularies) and the models in training order,
        the last one the state at the end of training, all in eval mode.

    Raises:
        FileNotFoundError: If the run kept no per-epoch checkpoint (only the end point
            needs none).
    """
    end = run.checkpoint.resolve()
    if endpoints_only:
        paths = [end]
    else:
        paths = [p.resolve() for p in epoch_checkpoints(end.parent)]
        paths = paths[: paths.index(end) + 1] if end in paths else [*paths, end]
    final = load_train_checkpoint(paths[-1], data_root=data_root)
    earlier = [load_train_checkpoint(p, data_root=data_root).load_model() for p in paths[:-1]]
    models = [*earlier, final.load_model()]
    start = final.initial_model(seed=int(final.config.seed), vocabularies_of=models[-1])
    return final, [start, *models]
