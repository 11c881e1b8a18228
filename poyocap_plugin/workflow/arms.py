"""One arm of the comparison, run after run through torch_brain's stock trainer.

An arm (:data:`~poyocap_plugin.workflow.stages.ARMS`) is a dataset variant with or without
stage 1: its stage-1 run (if any) hands its best checkpoint to its stage-2 runs as
``model.pretrained_trunk``. Every run is a ``poyocap train`` subprocess (torch_brain
0.1.2's ``train.py``, unchanged) whose command line is logged before it starts and whose
done-marker (``done.json``) lets a rerun skip it. :func:`run_arms` runs the stages of
several (arm, seed) pairs, several runs at once; ``poyocap curriculum`` and ``poyocap
table3`` both go through it.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
import shutil
import sys
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Literal

from poyocap_plugin.brainset import BRAINSET_ID
from poyocap_plugin.workflow.runs import StageResult, find_run_outputs
from poyocap_plugin.workflow.settings import RELEASED_UNIT_DROPOUT, CurriculumSettings
from poyocap_plugin.workflow.stages import ARMS, STAGES, Stage
from poyocap_plugin.workflow.steps import MARKER_NAME, read_marker, run_logged, run_step

__all__ = ["data_fingerprint", "run_arms", "stage_command"]

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
    batch_size, base_lr = settings.stage_batch(stage)
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
        f"batch_size={batch_size}",
        f"num_workers={settings.num_workers}",
    ]
    if stage != "pretrain":
        command.append(f"eval_epochs={settings.eval_epochs or epochs}")
    if settings.eval_batch_size is not None:
        command.append(f"eval_batch_size={settings.eval_batch_size}")
    command.append(f"optim.base_lr={base_lr}")
    if settings.gpus * settings.nodes > 1:
        command += [f"gpus={settings.gpus}", f"nodes={settings.nodes}"]
    if settings.released_unit_dropout:
        command += [f"+unit_dropout.{key}={value}" for key, value in RELEASED_UNIT_DROPOUT.items()]
    if stage == "finetune_movie" and settings.perceptual:
        path = Path(str(settings.perceptual_weights)).resolve()
        command.append(f"model.frame_loss.perceptual_weights_path='{path}'")
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
            "scalars": run.scalars,
            "test_metrics": run.test_metrics,
        }

    start = time.monotonic()
    signature = {
        "command": command,
        "data": data_fingerprint(data_root),
        "dataset_config_sha256": hashlib.sha256(Path(dataset_config).read_bytes()).hexdigest(),
    }
    outputs = run_step(name, log_dir, signature, action)
    if "metrics_csv" in outputs:  # a marker written before runs logged to TensorBoard
        outputs["scalars"] = outputs.pop("metrics_csv")
    record = read_marker(log_dir) or {}
    for key in ("best_checkpoint", "last_checkpoint", "scalars"):
        if not Path(outputs[key]).exists():
            raise FileNotFoundError(
                f"{name}: {outputs[key]} recorded in {log_dir / MARKER_NAME} is gone; delete "
                "that marker to run the stage again"
            )
    return StageResult(
        name=name,
        command=tuple(command),
        best_checkpoint=Path(outputs["best_checkpoint"]),
        last_checkpoint=Path(outputs["last_checkpoint"]),
        scalars=Path(outputs["scalars"]),
        test_metrics=dict(outputs["test_metrics"]),
        wall_s=float(record.get("wall_s", time.monotonic() - start)),
    )


def _arm_stages(
    arm: str, settings: CurriculumSettings, stop_after: Literal["pretrain", "finetune"]
) -> tuple[Stage, ...]:
    """The stages one arm runs, stage 1 (if it pretrains) first."""
    if arm not in ARMS:
        raise ValueError(f"arm must be one of {list(ARMS)}, got {arm!r}")
    first: tuple[Stage, ...] = ("pretrain",) if ARMS[arm].pretrains else ()
    if stop_after == "pretrain":
        return first
    return first + (("finetune_movie", "finetune_dg") if settings.dg else ("finetune_movie",))


def _run_arm_stage(
    arm: str,
    seed: int,
    stage: Stage,
    trunk: Path | None,
    *,
    data_root: Path,
    config_dir: Path,
    runs_dir: Path,
    settings: CurriculumSettings,
) -> StageResult:
    """One stage of one arm and seed, into ``<runs_dir>/<arm>/seed_<seed>/<stage>``."""
    variant = ARMS[arm].variant
    log_dir = Path(runs_dir).resolve() / arm / f"seed_{seed}" / stage
    command = stage_command(
        stage,
        variant=variant,
        data_root=data_root,
        config_dir=config_dir,
        log_dir=log_dir,
        settings=settings,
        seed=seed,
        trunk=trunk,
    )
    return _run_stage(
        f"{arm}/seed_{seed}/{stage}",
        command,
        log_dir,
        data_root=data_root,
        dataset_config=Path(config_dir) / "dataset" / f"{variant}_{stage}.yaml",
        env=settings.run_environment(),
    )


def run_arms(
    tasks: Sequence[tuple[str, int]],
    *,
    settings: CurriculumSettings,
    stop_after: Literal["pretrain", "finetune"] = "finetune",
    **paths: Path,
) -> dict[tuple[str, int], dict[str, StageResult]]:
    """Every stage of every ``(arm, seed)``, ``settings.parallel_runs`` runs at a time.

    An arm's stage 1 (if it pretrains) hands its best checkpoint to its stage-2 runs
    (``model.pretrained_trunk``), which may then train side by side. Runs start in the
    order of ``tasks`` (all of an arm without stage 1 at its place), except that stage-2
    runs whose trunk just finished go first (they are on the longest chain). Each run goes
    to ``<runs_dir>/<arm>/seed_<seed>/<stage>`` and is skipped when its done-marker records
    the same command. After a failure no new run starts; the running ones finish (they
    stay resumable) and the first error is raised.

    Args:
        tasks: ``(arm, seed)`` pairs, arms keys of :data:`ARMS`.
        settings: Sizes, extra overrides and ``parallel_runs``.
        stop_after: ``"pretrain"`` runs stage 1 only.
        **paths: ``data_root``, ``config_dir`` (the dataset configs) and ``runs_dir``.

    Returns:
        ``{(arm, seed): {stage: run}}``, stages in the order they ran in a chain.

    Raises:
        ValueError: For an unknown arm.
        RuntimeError: If a run fails (its log is named).
    """
    tasks = list(dict.fromkeys(tasks))  # a pair given twice runs once
    stages = {task: _arm_stages(task[0], settings, stop_after) for task in tasks}
    # in the order of tasks, every run that needs no trunk (a chain's stage 1, or all of an
    # arm without one: a long from-scratch run queued last would run alone at the end); an
    # arm's stage-2 runs join (at the front) when its stage 1 is done
    ready = deque(
        (*task, stage)
        for task in tasks
        for stage in (stages[task][:1] if ARMS[task[0]].pretrains else stages[task])
    )
    results: dict[tuple[str, int], dict[str, StageResult]] = {task: {} for task in tasks}
    running: dict[Future[StageResult], tuple[str, int, Stage]] = {}
    error: BaseException | None = None
    with ThreadPoolExecutor(settings.parallel_runs) as pool:
        while running or (ready and error is None):
            while ready and error is None and len(running) < settings.parallel_runs:
                arm, seed, stage = ready.popleft()
                pretrain = results[arm, seed].get("pretrain")
                trunk = None if pretrain is None else pretrain.best_checkpoint
                future = pool.submit(
                    _run_arm_stage, arm, seed, stage, trunk, settings=settings, **paths
                )
                running[future] = (arm, seed, stage)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                arm, seed, stage = running.pop(future)
                try:
                    results[arm, seed][stage] = future.result()
                except BaseException as failure:  # noqa: BLE001 - re-raised below
                    logger.error("%s/seed_%d/%s failed: %s", arm, seed, stage, failure)
                    error = error or failure
                    continue
                if stage == "pretrain":
                    ready.extendleft((arm, seed, s) for s in reversed(stages[arm, seed][1:]))
    if error is not None:
        raise error
    return {task: {s: results[task][s] for s in stages[task]} for task in tasks}
