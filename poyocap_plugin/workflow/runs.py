"""Where a run of the stock trainer left its checkpoints and metrics.

torch_brain's ``train.py`` hands ``log_dir`` to Lightning as ``default_root_dir``. With
W&B disabled, Lightning's default logger writes ``<log_dir>/lightning_logs/version_<n>/``
holding its metrics file (TensorBoard events, or ``metrics.csv`` without TensorBoard:
:mod:`~poyocap_plugin.workflow.scalars`) and ``checkpoints/``. The stitch evaluator logs
each metric as ``<recording>/<readout>/<metric>/<val|test>`` and their mean as
``average_test_metric``.

train.py keeps two kinds of checkpoint: the best one by ``average_val_metric``
(``epoch=E-step=S.ckpt``) and one per evaluated epoch (``epoch_epoch=EE.ckpt``). Lightning's
``last.ckpt`` there is refreshed only together with the best one, so the state at the end
of training is the newest per-epoch checkpoint, not ``last.ckpt``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from poyocap_plugin.brainset import BRAINSET_ID
from poyocap_plugin.workflow.scalars import find_scalars, read_scalars, tag
from poyocap_plugin.workflow.stages import STAGES

__all__ = [
    "RunOutputs",
    "StageResult",
    "arm_metrics",
    "epoch_checkpoints",
    "find_run_outputs",
    "recording_mean",
    "recording_metrics",
]

_VERSION = re.compile(r"version_(\d+)$")
# ModelCheckpoint's default name for the monitored (best) checkpoint: epoch=E-step=S.ckpt
_BEST = re.compile(r"epoch=\d+-step=\d+\.ckpt$")
# train.py's per-epoch ModelCheckpoint(filename="epoch_{epoch:02d}")
_PER_EPOCH = re.compile(r"epoch_epoch=(\d+)\.ckpt$")


@dataclass(frozen=True)
class RunOutputs:
    """The artefacts of one training run.

    Attributes:
        run_dir: ``<log_dir>/lightning_logs/version_<n>``.
        best_checkpoint: the checkpoint with the highest ``average_val_metric``.
        last_checkpoint: the newest per-epoch checkpoint: the state at the end of
            training, and the one to resume from with ``ckpt_path``.
        scalars: where its logged scalars are: ``run_dir`` (TensorBoard event files) or its
            ``metrics.csv`` (:func:`~poyocap_plugin.workflow.scalars.read_scalars`).
        test_metrics: the test metrics, by logged name.
    """

    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    scalars: Path
    test_metrics: dict[str, float]


def _read_test_metrics(scalars: Path) -> dict[str, float]:
    return {
        key: series[-1][1]
        for key, series in read_scalars(scalars).items()
        if key.endswith(("/test", "_test_metric"))
    }


def _per_epoch(checkpoints: Path) -> list[Path]:
    numbered = [
        (int(m.group(1)), path)
        for path in checkpoints.glob("*.ckpt")
        if (m := _PER_EPOCH.search(path.name))
    ]
    return [path for _, path in sorted(numbered)]


def epoch_checkpoints(checkpoints: Path) -> list[Path]:
    """train.py's per-epoch checkpoints in ``checkpoints``, in epoch order.

    Raises:
        FileNotFoundError: If there is none.
    """
    paths = _per_epoch(Path(checkpoints))
    if not paths:
        raise FileNotFoundError(f"No per-epoch checkpoint (epoch_epoch=NN.ckpt) in {checkpoints}")
    return paths


def find_run_outputs(log_dir: Path) -> RunOutputs:
    """Locate the newest run under ``log_dir`` and read its test metrics.

    Raises:
        FileNotFoundError: if ``log_dir`` holds no run, or the run has no checkpoint or
            no metrics file, naming what is missing.
        ValueError: if the run logged no test metrics, or a non-finite one.
    """
    log_dir = Path(log_dir)
    versions = [
        (int(m.group(1)), path)
        for path in (log_dir / "lightning_logs").glob("version_*")
        if (m := _VERSION.search(path.name))
    ]
    if not versions:
        raise FileNotFoundError(
            f"No run under {log_dir / 'lightning_logs'}: was the trainer run with "
            f"log_dir={log_dir}?"
        )
    run_dir = max(versions)[1]
    checkpoints = run_dir / "checkpoints"
    best = sorted(p for p in checkpoints.glob("*.ckpt") if _BEST.search(p.name))
    per_epoch = _per_epoch(checkpoints)
    scalars = find_scalars(run_dir)
    if scalars is None:
        raise FileNotFoundError(
            f"Run {run_dir} has no metrics file (TensorBoard events or metrics.csv)"
        )
    if not best or not per_epoch:
        raise FileNotFoundError(
            f"Run {run_dir} lacks a {'best' if not best else 'per-epoch'} checkpoint in "
            f"{checkpoints}"
        )
    test_metrics = _read_test_metrics(scalars)
    if not test_metrics or not all(math.isfinite(v) for v in test_metrics.values()):
        raise ValueError(
            f"Run {run_dir} has no finite test metrics in {scalars}: "
            f"{test_metrics!r}. Did the run finish its test stage?"
        )
    return RunOutputs(
        run_dir=run_dir,
        best_checkpoint=best[-1],
        last_checkpoint=per_epoch[-1],
        scalars=scalars,
        test_metrics=test_metrics,
    )


@dataclass(frozen=True)
class StageResult:
    """One finished training run, as recorded in its done-marker.

    Attributes:
        name: ``<arm>/seed_<seed>/<stage>``.
        command: The full command line that ran it.
        best_checkpoint, last_checkpoint, scalars: As :class:`RunOutputs`.
        test_metrics: Test metrics of the best checkpoint, by logged name.
        wall_s: Wall time of the run (s).
    """

    name: str
    command: tuple[str, ...]
    best_checkpoint: Path
    last_checkpoint: Path
    scalars: Path
    test_metrics: dict[str, float]
    wall_s: float


def _recording(key: str) -> str:
    # <brainset>/<recording>/<readout>/<metric>/test
    return key.split("/")[1]


def recording_metrics(results: dict[str, StageResult]) -> dict[str, dict[str, float]]:
    """Movie SSIM and DG accuracy of an arm per test recording.

    Returns:
        ``{"movie_ssim": {recording: value}, "dg_accuracy": {...}}``, empty where the stage
        did not run.
    """
    return {
        spec.metric: (
            {
                _recording(key): value
                for key, value in results[stage].test_metrics.items()
                # tags on both sides: runs recorded from metrics.csv keep the raw names
                if key.startswith(BRAINSET_ID) and tag(key).endswith(tag(spec.test_metric))
            }
            if stage in results
            else {}
        )
        for stage, spec in STAGES.items()
        if spec.metric is not None
    }


def arm_metrics(results: dict[str, StageResult]) -> dict[str, float | None]:
    """Movie SSIM and DG accuracy of an arm: test metrics averaged over recordings.

    Returns:
        ``{"movie_ssim": ..., "dg_accuracy": ...}``, None where the stage did not run.
    """
    return {
        metric: recording_mean(by_recording)
        for metric, by_recording in recording_metrics(results).items()
    }


def recording_mean(by_recording: Mapping[str, float]) -> float | None:
    """The mean of a metric's per-recording values; None without any."""
    return sum(by_recording.values()) / len(by_recording) if by_recording else None
