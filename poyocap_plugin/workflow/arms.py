"""One arm of the comparison, run after run through torch_brain's stock trainer.

An arm (:data:`~poyocap_plugin.workflow.stages.ARMS`) is a dataset variant with or without
stage 1: its stage-1 run (if any) hands its best checkpoint to its stage-2 runs as
``model.pretrained_trunk``. Every run is a ``poyocap train`` subprocess (torch_brain
0.1.2's ``train.py``, unchanged) whose command line is logged before it starts and whose
done-marker (``done.json``) lets a rerun skip it. :func:`run_arms` runs several (arm, seed)
chains at once; ``poyocap curriculum`` and ``poyocap table3`` both go through it.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from poyocap_plugin.brainset import BRAINSET_ID
from poyocap_plugin.workflow.runs import StageResult, find_run_outputs
from poyocap_plugin.workflow.settings import CurriculumSettings
from poyocap_plugin.workflow.stages import ARMS, STAGES, Stage
from poyocap_plugin.workflow.steps import MARKER_NAME, read_marker, run_logged, run_step

__all__ = ["data_fingerprint", "run_arm", "run_arms", "stage_command"]

logger = logging.getLogger(__name__)


def _poyocap_executable() -> str:
    candidate = Path(sys.executable).parent / "poyocap"
    if candidate.is_file():
        return str(candidate)
    found = shutil.which("poyocap")
    if found is None:
        raise FileNotFoundError(
            f"No `poyocap` executable beside {sys.executable} or on PATH: install the plugin "
            "(pip install poyocap-plugin) into the environment that runs the curriculum."
        )
    return found


def data_fingerprint(data_root: Path) -> dict[str, list[int]]:
    """Size and mtime (ns) of every processed session: a step reruns when the data changed."""
    return {
        path.name: [path.stat().st_size, path.stat().st_mtime_ns]
        for path in sorted((Path(data_root) / BRAINSET_ID).glob("*.h5"))
    }


def stage_command(
    stage: Stage,
    *,
    variant: str,
    data_root: Path,
    config_dir: Path,
    log_dir: Path,
    settings: CurriculumSettings,
    seed: int,
    trunk: Path | None,
) -> list[str]:
    """The ``poyocap train`` command line of one stage.

    Args:
        stage: ``pretrain``, ``finetune_movie`` or ``finetune_dg``.
        variant: The dataset variant (``dataset=<variant>_<stage>``).
        data_root: The processed-data root.
        config_dir: Where :func:`write_curriculum_configs` wrote the dataset configs.
        log_dir: The run's ``log_dir``.
        settings: Sizes and extra overrides.
        seed: train.py's ``seed``.
        trunk: A stage-1 checkpoint for ``model.pretrained_trunk``, or None.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {list(STAGES)}, got {stage!r}")
    spec = STAGES[stage]
    epochs = getattr(settings, spec.epochs_setting)
    command = [
        *settings.launcher,
        _poyocap_executable(),
        "train",
        "--config-name",
        spec.config_name,
        f"data_root={Path(data_root).resolve()}",
        f"log_dir={Path(log_dir).resolve()}",
        f"hydra.searchpath=[file://{Path(config_dir).resolve()}]",
        f"dataset={variant}_{stage}",
        f"model={settings.model}",
        f"seed={seed}",
        f"epochs={epochs}",
        f"batch_size={settings.batch_size}",
        f"num_workers={settings.num_workers}",
    ]
    if stage != "pretrain":
        command.append(f"eval_epochs={settings.eval_epochs or epochs}")
    if settings.eval_batch_size is not None:
        command.append(f"eval_batch_size={settings.eval_batch_size}")
    if settings.base_lr is not None:
        command.append(f"optim.base_lr={settings.base_lr}")
    if stage == "finetune_movie" and settings.frame_size is not None:
        height, width, num_stages = settings.frame_size
        command += [
            f"model.frame_decoder.height={height}",
            f"model.frame_decoder.width={width}",
            f"+model.frame_decoder.num_stages={num_stages}",
        ]
    if trunk is not None:
        # quoted: Lightning's checkpoint names hold '=', which Hydra's override parser rejects
        command.append(f"model.pretrained_trunk='{Path(trunk).resolve()}'")
    return command + list(settings.overrides)


def _run_stage(
    name: str,
    command: list[str],
    log_dir: Path,
    *,
    data_root: Path,
    dataset_config: Path,
    env: dict[str, str] | None,
) -> StageResult:
    """Run one stage unless its marker records the same command, data and dataset config."""

    def action() -> dict[str, Any]:
        logger.info("%s: %s", name, shlex.join(command))
        logger.info("%s: output in %s", name, log_dir / "train.log")
        run_logged(command, log_dir / "train.log", env=env)
        run = find_run_outputs(log_dir)
        return {
            "best_checkpoint": run.best_checkpoint,
            "last_checkpoint": run.last_checkpoint,
            "metrics_csv": run.metrics_csv,
            "test_metrics": run.test_metrics,
        }

    start = time.monotonic()
    signature = {
        "command": command,
        "data": data_fingerprint(data_root),
        "dataset_config_sha256": hashlib.sha256(Path(dataset_config).read_bytes()).hexdigest(),
    }
    outputs = run_step(name, log_dir, signature, action)
    record = read_marker(log_dir) or {}
    for key in ("best_checkpoint", "last_checkpoint", "metrics_csv"):
        if not Path(outputs[key]).is_file():
            raise FileNotFoundError(
                f"{name}: {outputs[key]} recorded in {log_dir / MARKER_NAME} is gone; delete "
                "that marker to run the stage again"
            )
    return StageResult(
        name=name,
        command=tuple(command),
        best_checkpoint=Path(outputs["best_checkpoint"]),
        last_checkpoint=Path(outputs["last_checkpoint"]),
        metrics_csv=Path(outputs["metrics_csv"]),
        test_metrics=dict(outputs["test_metrics"]),
        wall_s=float(record.get("wall_s", time.monotonic() - start)),
    )


def run_arm(
    arm: str,
    *,
    data_root: Path,
    config_dir: Path,
    runs_dir: Path,
    settings: CurriculumSettings,
    seed: int,
    stop_after: Literal["pretrain", "finetune"] = "finetune",
) -> dict[str, StageResult]:
    """Run one arm's stages for one seed: stage 1 (if the arm pretrains), then stage 2.

    Runs go to ``<runs_dir>/<arm>/seed_<seed>/<stage>``; each is skipped when its
    done-marker records the same command.

    Args:
        arm: A key of :data:`ARMS`.
        data_root: The processed-data root.
        config_dir: Where the dataset configs are (:func:`write_curriculum_configs`).
        runs_dir: Root of the runs.
        settings: Sizes and extra overrides.
        seed: train.py's seed.
        stop_after: ``"pretrain"`` runs stage 1 only.

    Returns:
        The finished runs by stage name.

    Raises:
        ValueError: For an unknown arm.
        RuntimeError: If a run fails (its log is named).
    """
    if arm not in ARMS:
        raise ValueError(f"arm must be one of {list(ARMS)}, got {arm!r}")
    variant, pretrains = ARMS[arm].variant, ARMS[arm].pretrains
    folder = Path(runs_dir).resolve() / arm / f"seed_{seed}"
    common = dict(
        variant=variant, data_root=data_root, config_dir=config_dir, settings=settings, seed=seed
    )

    def run(stage: Stage, trunk: Path | None) -> StageResult:
        log_dir = folder / stage
        return _run_stage(
            f"{arm}/seed_{seed}/{stage}",
            stage_command(stage, log_dir=log_dir, trunk=trunk, **common),
            log_dir,
            data_root=data_root,
            dataset_config=Path(config_dir) / "dataset" / f"{variant}_{stage}.yaml",
            env=settings.run_environment(),
        )

    results: dict[str, StageResult] = {}
    trunk = None
    if pretrains:
        results["pretrain"] = run("pretrain", None)
        trunk = results["pretrain"].best_checkpoint
    if stop_after == "pretrain":
        return results
    for stage in ("finetune_movie", "finetune_dg") if settings.dg else ("finetune_movie",):
        results[stage] = run(stage, trunk)
    return results


def run_arms(
    tasks: Sequence[tuple[str, int]], *, settings: CurriculumSettings, **common: Any
) -> dict[tuple[str, int], dict[str, StageResult]]:
    """:func:`run_arm` for every ``(arm, seed)``, ``settings.parallel_runs`` at a time.

    Tasks start in the given order. After a failure no new task starts; the running ones
    finish (their runs stay resumable) and the first failed task's error is raised.
    """
    failed = threading.Event()

    def chain(arm: str, seed: int) -> dict[str, StageResult] | None:
        if failed.is_set():
            return None
        try:
            return run_arm(arm, seed=seed, settings=settings, **common)
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(settings.parallel_runs) as pool:
        futures = {task: pool.submit(chain, *task) for task in tasks}
    for future in futures.values():
        future.result()  # raises the first failed task's error
    return {task: future.result() for task, future in futures.items()}
