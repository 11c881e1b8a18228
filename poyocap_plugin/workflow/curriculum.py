"""The POYO-CAP curriculum as one resumable job, run through torch_brain's stock trainer.

POYO-CAP (Bae et al., ICLR 2026) trains in two stages: stage 1 pretrains a calcium POYO+
encoder on the predictable neurons, stage 2 finetunes it on the unpredictable ones to decode
natural-movie-one frames (and, for Table 3's DG column, drifting-grating direction). This
module joins the plugin's pieces into that job:

1. data: an existing processed root, or simulated Allen NWB sessions
   (:mod:`poyocap_plugin.workflow.simulate`) prepared through the real ``brainsets prepare`` CLI;
2. the dataset configs (:func:`poyocap_plugin.workflow.datasets.write_dataset_configs`);
3. every training run as a ``poyocap train`` subprocess (torch_brain 0.1.2's ``train.py``,
   unchanged; :mod:`poyocap_plugin.workflow.arms`), stage 1 first, its best checkpoint
   handed to stage 2 as ``model.pretrained_trunk``;
4. the from-scratch baseline: the same stage-2 runs without a trunk;
5. steps 3 and 4 once per seed (``seed, seed + 1, ...``), and one report over all seeds.

Every step writes a done-marker (``done.json``) after it succeeds, holding what it produced
and the command that produced it. A rerun skips a step whose marker records the same
command; a step that failed or was interrupted has no marker and runs again. Every stage's
full command line is logged before it runs, so it can be rerun by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from poyocap_plugin.brainset import BRAINSET_ID
from poyocap_plugin.workflow.arms import data_fingerprint, run_arms
from poyocap_plugin.workflow.datasets import write_dataset_configs
from poyocap_plugin.workflow.report import write_curriculum_report
from poyocap_plugin.workflow.runs import StageResult
from poyocap_plugin.workflow.settings import CurriculumSettings
from poyocap_plugin.workflow.simulated_brainset import SimulationSettings, prepare_data
from poyocap_plugin.workflow.stages import ARMS, CURRICULUM_ARMS
from poyocap_plugin.workflow.steps import run_step

__all__ = ["CurriculumResult", "run_curriculum", "write_curriculum_configs"]

logger = logging.getLogger(__name__)


def write_curriculum_configs(
    data_root: Path,
    out_dir: Path,
    *,
    variants: Sequence[str],
    settings: CurriculumSettings,
    min_units: int = 1,
) -> Path:
    """Write the dataset configs of ``variants`` into ``out_dir`` (skipped when unchanged).

    Sessions with fewer than ``min_units`` selected neurons are left out (recorded in
    ``curriculum.json``), rather than failing the job. The movie stage's metric scores
    frames of the size the runs decode (``settings.frame_height_width``).

    Returns:
        ``out_dir``, the folder to put on Hydra's search path.
    """
    out_dir = Path(out_dir).resolve()
    signature = {
        "data_root": str(data_root),
        "data": data_fingerprint(data_root),
        "variants": sorted(variants),
        "min_units": min_units,
        "frame_height_width": list(settings.frame_height_width),
        "pretrain_every_trial": settings.pretrain_every_trial,
    }

    def action() -> dict[str, Any]:
        paths = write_dataset_configs(
            data_root,
            out_dir,
            variants=sorted(variants),
            min_units=min_units,
            on_too_few="exclude",
            frame_height=settings.frame_height_width[0],
            frame_width=settings.frame_height_width[1],
            pretrain_every_trial=settings.pretrain_every_trial,
        )
        return {"configs": [str(p) for p in paths]}

    run_step("dataset configs", out_dir, signature, action)
    return out_dir


@dataclass(frozen=True)
class CurriculumResult:
    """What :func:`run_curriculum` produced.

    Attributes:
        data_root: The processed-data root trained on.
        simulated: Whether the data was simulated.
        seeds: train.py's seeds, the configured one first (``seed, seed + 1, ...``).
        arms: Finished runs by arm, seed and stage (``{arm: {seed: {stage: run}}}``, arms
            ``poyocap`` and ``poyocap_no_pretraining``).
        report: The Markdown report, or None when stopped after stage 1.
    """

    data_root: Path
    simulated: bool
    seeds: tuple[int, ...] = ()
    arms: dict[str, dict[int, dict[str, StageResult]]] = field(default_factory=dict)
    report: Path | None = None


def run_curriculum(
    out_dir: Path,
    *,
    data_root: Path | None = None,
    simulation: SimulationSettings | None = None,
    settings: CurriculumSettings | None = None,
    seed: int = 42,
    n_seeds: int = 1,
    min_units: int = 1,
    stop_after: Literal["pretrain", "finetune"] = "finetune",
) -> CurriculumResult:
    """Run the whole curriculum into ``out_dir`` and write its report; resumable.

    Steps: the data (``data_root`` as given, or ``simulation`` simulated and prepared into
    ``<out_dir>/data``), the dataset configs (``<out_dir>/configs``), then for every seed
    POYO-CAP's stage 1 and stage 2 (``<out_dir>/runs/poyocap/seed_<s>``) and the baseline
    without pretraining (``<out_dir>/runs/poyocap_no_pretraining/seed_<s>``), and the report
    of all seeds (``<out_dir>/report/report.md``). A rerun skips every finished step, so
    raising ``n_seeds`` later runs only the new seeds.

    Args:
        out_dir: Where everything goes.
        data_root: An existing processed-data root; exclusive with ``simulation``.
        simulation: Simulate and prepare a dataset instead.
        settings: Run sizes; defaults to the ``cpu`` preset.
        seed: train.py's seed of the first seed's runs.
        n_seeds: How many seeds to run every arm with: ``seed, seed + 1, ...,
            seed + n_seeds - 1``. With two or more the report gives 95 % CIs and paired
            t-tests over them.
        min_units: Fewest selected neurons a session may bring (others are left out).
        stop_after: ``"pretrain"`` stops after stage 1 of every seed (no report).

    Raises:
        ValueError: If neither or both of ``data_root`` and ``simulation`` are given, or
            ``n_seeds`` is below 1.
        FileNotFoundError: If ``data_root`` holds no processed sessions.
        RuntimeError: If a step fails; its log is named and the finished steps are kept.
    """
    if (data_root is None) == (simulation is None):
        raise ValueError(
            "give exactly one of data_root (a processed brainset) and simulation "
            f"(simulate one); got data_root={data_root!r}, simulation={simulation!r}"
        )
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or n_seeds < 1:
        raise ValueError(f"n_seeds must be an int >= 1 (seeds to run), got {n_seeds!r}")
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
        data_root,
        out_dir / "configs",
        variants=sorted({ARMS[a].variant for a in CURRICULUM_ARMS}),
        settings=settings,
        min_units=min_units,
    )
    seeds = tuple(range(seed, seed + n_seeds))
    result = CurriculumResult(data_root=data_root, simulated=simulation is not None, seeds=seeds)
    # stage 1 is the first arm's: stopping after it runs that arm only
    arms = CURRICULUM_ARMS[:1] if stop_after == "pretrain" else CURRICULUM_ARMS
    # runs start seed by seed (parallel runs may overlap seeds)
    runs = run_arms(
        [(arm, run_seed) for run_seed in seeds for arm in arms],
        data_root=data_root,
        config_dir=config_dir,
        runs_dir=out_dir / "runs",
        settings=settings,
        stop_after=stop_after,
    )
    for (arm, run_seed), stages in runs.items():
        result.arms.setdefault(arm, {})[run_seed] = stages
    if stop_after == "pretrain":
        return result
    # the report's settings list one seed as `seed` (as before --seeds), several as `seeds`
    listed = {"seed": seed} if n_seeds == 1 else {"seeds": list(seeds)}
    report = write_curriculum_report(
        out_dir / "report",
        data_root=data_root,
        simulated=result.simulated,
        cap=result.arms[CURRICULUM_ARMS[0]],
        baseline=result.arms[CURRICULUM_ARMS[1]],
        settings=asdict(settings) | listed,
    )
    return replace(result, report=report)
