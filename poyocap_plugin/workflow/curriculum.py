"""The POYO-CAP curriculum as one resumable job, run through torch_brain's stock trainer.

POYO-CAP (Bae et al., ICLR 2026) trains in two stages: stage 1 pretrains a calcium POYO+
encoder on the predictable neurons, stage 2 finetunes it on the unpredictable ones to decode
natural-movie-one frames (and, for Table 3's DG column, drifting-grating direction). This
module joins the plugin's pieces into that job:

1. data: an existing processed root, or simulated Allen NWB sessions
   (:mod:`poyocap_plugin.workflow.simulate`) prepared through the real ``brainsets prepare`` CLI;
2. the dataset configs (:func:`poyocap_plugin.workflow.datasets.write_dataset_configs`);
3. every training run as a ``poyocap train`` subprocess (torch_brain 0.1.2's ``train.py``,
   unchanged), stage 1 first, its best checkpoint handed to stage 2 as
   ``model.pretrained_trunk``;
4. the from-scratch baseline: the same stage-2 runs without a trunk.

Every step writes a done-marker (``done.json``) after it succeeds, holding what it produced
and the command that produced it. A rerun skips a step whose marker records the same
command; a step that failed or was interrupted has no marker and runs again. Every stage's
full command line is logged before it runs, so it can be rerun by hand.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from poyocap_plugin.brainset import BRAINSET_ID
from poyocap_plugin.workflow.runs import find_run_outputs
from poyocap_plugin.workflow.simulated_brainset import SimulationSettings, prepare_data
from poyocap_plugin.workflow.steps import MARKER_NAME, read_marker, run_logged, run_step

__all__ = [
    "ARMS",
    "Arm",
    "CurriculumResult",
    "CurriculumSettings",
    "StageResult",
    "arm_metrics",
    "run_arm",
    "run_curriculum",
    "stage_command",
    "write_curriculum_configs",
]

logger = logging.getLogger(__name__)


Arm = Literal[
    "poyocap",
    "poyocap_no_pretraining",
    "from_scratch",
    "inhibitory_ssl",
    "reverse_ssl",
    "mixed_ssl",
]
#: arm -> (dataset variant, whether stage 1 runs and hands its trunk on). ``from_scratch``
#: is Table 3's "train on all" variant; ``poyocap_no_pretraining`` is the curriculum's
#: baseline: POYO-CAP's own stage-2 data, without the stage-1 trunk.
ARMS: dict[str, tuple[str, bool]] = {
    "poyocap": ("poyocap", True),
    "poyocap_no_pretraining": ("poyocap", False),
    "from_scratch": ("from_scratch", False),
    "inhibitory_ssl": ("inhibitory_ssl", True),
    "reverse_ssl": ("reverse_ssl", True),
    "mixed_ssl": ("mixed_ssl", True),
}
_CONFIGS = {
    "pretrain": "poyocap_pretrain",
    "finetune_movie": "poyocap_finetune_movie",
    "finetune_dg": "poyocap_finetune_dg",
}
Preset = Literal["cpu", "paper"]


@dataclass(frozen=True)
class CurriculumSettings:
    """How the training runs are sized; each field becomes one Hydra override.

    Args:
        model: The model-size config (``model=<name>``), e.g. ``capoyo_48k`` (CPU) or
            ``capoyo_114M`` (the paper's width and depth).
        pretrain_epochs: Epochs of stage 1.
        finetune_epochs: Epochs of the stage-2 movie runs.
        dg_epochs: Epochs of the stage-2 DG runs (cheap: one window per DG trial).
        batch_size: Global batch size (windows), split across GPUs by train.py.
        eval_batch_size: Batch size of validation and testing (train.py's
            ``eval_batch_size``); None uses ``batch_size``.
        base_lr: ``optim.base_lr`` (train.py's peak LR is base_lr x batch_size); None keeps
            each stage config's paper value.
        frame_size: Decoded movie frame (height, width) in pixels, with the UNet's number of
            x2 upsampling stages; None keeps the config's 128 x 256.
        num_workers: DataLoader workers per process.
        dg: Also run the DG-classification finetune (Table 3's DG-accuracy column).
        overrides: More Hydra overrides for every run, e.g. ``("gpus=4", "nodes=2")`` or
            ``("wandb.enable=true",)``.
        launcher: A command prefix for every training run, e.g. ``("srun",)`` inside a
            SLURM allocation: the curriculum itself runs once, each stage runs as one task
            per GPU and Lightning sets up DDP from SLURM's environment.
    """

    model: str = "capoyo_48k"
    pretrain_epochs: int = 6
    finetune_epochs: int = 3
    dg_epochs: int = 16
    batch_size: int = 16
    eval_batch_size: int | None = 64
    base_lr: float | None = 2e-4
    frame_size: tuple[int, int, int] | None = (16, 32, 4)
    num_workers: int = 0
    dg: bool = True
    overrides: tuple[str, ...] = ()
    launcher: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("pretrain_epochs", "finetune_epochs", "dg_epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"CurriculumSettings.{name} must be an int >= 1, got {value!r}")
        if self.num_workers < 0:
            raise ValueError(f"CurriculumSettings.num_workers must be >= 0, got {self.num_workers}")
        if self.frame_size is not None and len(self.frame_size) != 3:
            raise ValueError(
                "CurriculumSettings.frame_size must be (height, width, num_stages) or None, "
                f"got {self.frame_size!r}"
            )
        for override in self.overrides:
            if "=" not in override:
                raise ValueError(f"override {override!r} is not a Hydra KEY=VALUE override")

    @classmethod
    def preset(cls, name: Preset, **changes: Any) -> CurriculumSettings:
        """``cpu``: the demo size (minutes on 2 cores); ``paper``: the paper's settings.

        Args:
            name: ``"cpu"`` or ``"paper"``.
            **changes: Fields to change from the preset.

        Raises:
            ValueError: For an unknown preset name.
        """
        if name == "cpu":
            base = cls()
        elif name == "paper":
            base = cls(
                model="capoyo_114M",
                pretrain_epochs=50,
                finetune_epochs=25,
                dg_epochs=25,
                batch_size=32,
                eval_batch_size=None,
                base_lr=None,
                frame_size=None,
                num_workers=4,
            )
        else:
            raise ValueError(f"preset must be 'cpu' or 'paper', got {name!r}")
        return replace(base, **changes)


@dataclass(frozen=True)
class StageResult:
    """One finished training run, as recorded in its done-marker.

    Attributes:
        name: ``<arm>/seed_<seed>/<stage>``.
        command: The full command line that ran it.
        best_checkpoint, last_checkpoint, metrics_csv: As :class:`RunOutputs`.
        test_metrics: Test metrics of the best checkpoint, by logged name.
        wall_s: Wall time of the run (s).
    """

    name: str
    command: tuple[str, ...]
    best_checkpoint: Path
    last_checkpoint: Path
    metrics_csv: Path
    test_metrics: dict[str, float]
    wall_s: float


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


def _data_fingerprint(data_root: Path) -> dict[str, list[int]]:
    """Size and mtime (ns) of every processed session: a step reruns when the data changed."""
    return {
        path.name: [path.stat().st_size, path.stat().st_mtime_ns]
        for path in sorted((Path(data_root) / BRAINSET_ID).glob("*.h5"))
    }


def write_curriculum_configs(
    data_root: Path, out_dir: Path, *, variants: Sequence[str], min_units: int = 1
) -> Path:
    """Write the dataset configs of ``variants`` into ``out_dir`` (skipped when unchanged).

    Sessions with fewer than ``min_units`` selected neurons are left out (recorded in
    ``curriculum.json``), rather than failing the job.

    Returns:
        ``out_dir``, the folder to put on Hydra's search path.
    """
    from poyocap_plugin.workflow.datasets import write_dataset_configs

    out_dir = Path(out_dir).resolve()
    signature = {
        "data_root": str(data_root),
        "data": _data_fingerprint(data_root),
        "variants": sorted(variants),
        "min_units": min_units,
    }

    def action() -> dict[str, Any]:
        paths = write_dataset_configs(
            data_root,
            out_dir,
            variants=sorted(variants),
            min_units=min_units,
            on_too_few="exclude",
        )
        return {"configs": [str(p) for p in paths]}

    run_step("dataset configs", out_dir, signature, action)
    return out_dir


def stage_command(
    stage: str,
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
    if stage not in _CONFIGS:
        raise ValueError(f"stage must be one of {sorted(_CONFIGS)}, got {stage!r}")
    epochs = {
        "pretrain": settings.pretrain_epochs,
        "finetune_movie": settings.finetune_epochs,
        "finetune_dg": settings.dg_epochs,
    }
    command = [
        *settings.launcher,
        _poyocap_executable(),
        "train",
        "--config-name",
        _CONFIGS[stage],
        f"data_root={Path(data_root).resolve()}",
        f"log_dir={Path(log_dir).resolve()}",
        f"hydra.searchpath=[file://{Path(config_dir).resolve()}]",
        f"dataset={variant}_{stage}",
        f"model={settings.model}",
        f"seed={seed}",
        f"epochs={epochs[stage]}",
        f"batch_size={settings.batch_size}",
        f"num_workers={settings.num_workers}",
    ]
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
    name: str, command: list[str], log_dir: Path, *, data_root: Path, dataset_config: Path
) -> StageResult:
    """Run one stage unless its marker records the same command, data and dataset config."""

    def action() -> dict[str, Any]:
        logger.info("%s: %s", name, shlex.join(command))
        logger.info("%s: output in %s", name, log_dir / "train.log")
        run_logged(command, log_dir / "train.log")
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
        "data": _data_fingerprint(data_root),
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
        raise ValueError(f"arm must be one of {sorted(ARMS)}, got {arm!r}")
    variant, pretrains = ARMS[arm]
    folder = Path(runs_dir).resolve() / arm / f"seed_{seed}"
    common = dict(
        variant=variant, data_root=data_root, config_dir=config_dir, settings=settings, seed=seed
    )
    results: dict[str, StageResult] = {}
    trunk = None
    if pretrains:
        log_dir = folder / "pretrain"
        command = stage_command("pretrain", log_dir=log_dir, trunk=None, **common)
        results["pretrain"] = _run_stage(
            f"{arm}/seed_{seed}/pretrain",
            command,
            log_dir,
            data_root=data_root,
            dataset_config=Path(config_dir) / "dataset" / f"{variant}_pretrain.yaml",
        )
        trunk = results["pretrain"].best_checkpoint
    if stop_after == "pretrain":
        return results
    for stage in ("finetune_movie", "finetune_dg") if settings.dg else ("finetune_movie",):
        log_dir = folder / stage
        command = stage_command(stage, log_dir=log_dir, trunk=trunk, **common)
        results[stage] = _run_stage(
            f"{arm}/seed_{seed}/{stage}",
            command,
            log_dir,
            data_root=data_root,
            dataset_config=Path(config_dir) / "dataset" / f"{variant}_{stage}.yaml",
        )
    return results


def _mean_metric(metrics: dict[str, float], suffix: str) -> float | None:
    values = [v for k, v in metrics.items() if k.startswith(BRAINSET_ID) and k.endswith(suffix)]
    return sum(values) / len(values) if values else None


def arm_metrics(results: dict[str, StageResult]) -> dict[str, float | None]:
    """Movie SSIM and DG accuracy of an arm: test metrics averaged over recordings.

    Returns:
        ``{"movie_ssim": ..., "dg_accuracy": ...}``, None where the stage did not run.
    """
    movie = results.get("finetune_movie")
    dg = results.get("finetune_dg")
    return {
        "movie_ssim": movie and _mean_metric(movie.test_metrics, "MovieSSIM()/test"),
        "dg_accuracy": dg and _mean_metric(dg.test_metrics, "MulticlassAccuracy()/test"),
    }


@dataclass(frozen=True)
class CurriculumResult:
    """What :func:`run_curriculum` produced.

    Attributes:
        data_root: The processed-data root trained on.
        simulated: Whether the data was simulated.
        arms: Finished runs by arm and stage (``poyocap``, ``poyocap_no_pretraining``).
        report: The Markdown report, or None when stopped after stage 1.
    """

    data_root: Path
    simulated: bool
    arms: dict[str, dict[str, StageResult]] = field(default_factory=dict)
    report: Path | None = None


def run_curriculum(
    out_dir: Path,
    *,
    data_root: Path | None = None,
    simulation: SimulationSettings | None = None,
    settings: CurriculumSettings | None = None,
    seed: int = 42,
    min_units: int = 1,
    stop_after: Literal["pretrain", "finetune"] = "finetune",
) -> CurriculumResult:
    """Run the whole curriculum into ``out_dir`` and write its report; resumable.

    Steps: the data (``data_root`` as given, or ``simulation`` simulated and prepared into
    ``<out_dir>/data``), the dataset configs (``<out_dir>/configs``), POYO-CAP's stage 1 and
    stage 2 (``<out_dir>/runs/poyocap``), the baseline without pretraining
    (``<out_dir>/runs/poyocap_no_pretraining``), and the report
    (``<out_dir>/report/report.md``). A rerun skips every finished step.

    Args:
        out_dir: Where everything goes.
        data_root: An existing processed-data root; exclusive with ``simulation``.
        simulation: Simulate and prepare a dataset instead.
        settings: Run sizes; defaults to the ``cpu`` preset.
        seed: train.py's seed for every run.
        min_units: Fewest selected neurons a session may bring (others are left out).
        stop_after: ``"pretrain"`` stops after stage 1 (no report).

    Raises:
        ValueError: If neither or both of ``data_root`` and ``simulation`` are given.
        FileNotFoundError: If ``data_root`` holds no processed sessions.
        RuntimeError: If a step fails; its log is named and the finished steps are kept.
    """
    from poyocap_plugin.workflow.report import write_curriculum_report

    if (data_root is None) == (simulation is None):
        raise ValueError(
            "give exactly one of data_root (a processed brainset) and simulation "
            f"(simulate one); got data_root={data_root!r}, simulation={simulation!r}"
        )
    settings = settings or CurriculumSettings.preset("cpu")
    out_dir = Path(out_dir).resolve()
    if simulation is not None:
        data_root = prepare_data(out_dir / "data", simulation)
    data_root = Path(data_root).resolve()
    if not any((data_root / BRAINSET_ID).glob("*.h5")):
        raise FileNotFoundError(
            f"No processed sessions in {data_root / BRAINSET_ID}: prepare them with "
            f"`brainsets prepare {BRAINSET_ID} --raw-dir R --processed-dir {data_root}`"
        )
    config_dir = write_curriculum_configs(
        data_root, out_dir / "configs", variants=["poyocap"], min_units=min_units
    )
    result = CurriculumResult(data_root=data_root, simulated=simulation is not None)
    runs_dir = out_dir / "runs"
    for arm in ("poyocap", "poyocap_no_pretraining"):
        result.arms[arm] = run_arm(
            arm,
            data_root=data_root,
            config_dir=config_dir,
            runs_dir=runs_dir,
            settings=settings,
            seed=seed,
            stop_after=stop_after,
        )
        if stop_after == "pretrain":
            return result
    report = write_curriculum_report(
        out_dir / "report",
        data_root=data_root,
        simulated=result.simulated,
        cap=result.arms["poyocap"],
        baseline=result.arms["poyocap_no_pretraining"],
        settings=asdict(settings) | {"seed": seed},
    )
    return replace(result, report=report)
