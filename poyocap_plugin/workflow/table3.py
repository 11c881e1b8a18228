"""Table 3 of POYO-CAP: the pretraining ablations over several seeds, mean and 95 % CI.

POYO-CAP (Bae et al., ICLR 2026), Table 3, compares POYO-CAP with finetuning from scratch
and three other pretraining diets, by test movie SSIM and DG accuracy (mean +- 95 % CI over
3 seeds). :func:`run_table3` reruns that comparison with the plugin's curriculum
(:func:`poyocap_plugin.workflow.arms.run_arms`, one arm per row, resumable) and
:func:`format_table3` prints it beside the paper's numbers.

.. note::
    The paper names its ablations without defining their partitions; the rows use the
    dataset variants of :mod:`poyocap_plugin.workflow.partitions` (our reading). The paper does not
    say how its CI is computed; we use the two-sided Student-t interval,
    ``t_{0.975, n-1} * s / sqrt(n)`` with the sample standard deviation ``s``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from poyocap_plugin.workflow.arms import run_arms
from poyocap_plugin.workflow.curriculum import write_curriculum_configs
from poyocap_plugin.workflow.files import write_text_atomically
from poyocap_plugin.workflow.runs import (
    StageResult,
    arm_metrics,
    recording_mean,
    recording_metrics,
)
from poyocap_plugin.workflow.settings import CurriculumSettings
from poyocap_plugin.workflow.simulated_brainset import SimulationSettings, prepare_data
from poyocap_plugin.workflow.stages import ARMS, METRICS, TABLE3_ARMS
from poyocap_plugin.workflow.statistics import PairedComparison, mean_ci95, paired

__all__ = [
    "Table3Row",
    "format_table3",
    "paired_with_scratch",
    "run_table3",
    "summarize_table3",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Table3Row:
    """One row of Table 3: per-seed values of one arm.

    Attributes:
        arm: A key of :data:`~poyocap_plugin.workflow.stages.TABLE3_ARMS`.
        movie_ssim: Test movie SSIM per seed (mean over recordings).
        dg_accuracy: Test DG accuracy per seed (mean over recordings); empty if not run.
        from_scratch: The paired reference: per metric, from scratch's per-seed value
            averaged over *this arm's* test recordings (from scratch tests on every
            recording); empty where from scratch did not run.
    """

    arm: str
    movie_ssim: tuple[float, ...]
    dg_accuracy: tuple[float, ...]
    from_scratch: Mapping[str, tuple[float, ...]] = field(default_factory=dict)


#: the arm every other arm is compared with
_REFERENCE_ARM = "from_scratch"


def _cell(values: Sequence[float]) -> str:
    return str(mean_ci95(values)) if values else "n/a"


def paired_with_scratch(
    rows: Sequence[Table3Row],
) -> dict[str, dict[str, PairedComparison | None]]:
    """Every other arm minus from scratch, per metric, paired by seed and test recording.

    Returns:
        ``{arm: {metric: comparison}}`` for every row with a from-scratch reference, a
        comparison None where either side lacks the metric or has fewer than two seeds.
    """
    comparisons: dict[str, dict[str, PairedComparison | None]] = {}
    for row in rows:
        if row.arm == _REFERENCE_ARM or not row.from_scratch:
            continue
        comparisons[row.arm] = {}
        for metric in METRICS:
            a, b = getattr(row, metric), row.from_scratch.get(metric, ())
            usable = len(a) == len(b) >= 2
            comparisons[row.arm][metric] = (
                paired(a, b, a=row.arm, b=_REFERENCE_ARM) if usable else None
            )
    return comparisons


def format_table3(rows: Sequence[Table3Row], *, simulated: bool) -> str:
    """Table 3 as Markdown: ours (mean ± 95 % CI over seeds) beside the paper's means.

    Args:
        rows: One per arm, in display order.
        simulated: The runs used simulated data; the table says so, since the paper's
            numbers come from the real Allen Brain Observatory sessions.

    Raises:
        ValueError: For an arm without a paper row.
    """
    seeds = sorted({len(r.movie_ssim) for r in rows} | {len(r.dg_accuracy) for r in rows} - {0})
    data = (
        "**simulated data** (`poyocap simulate`): a different dataset from the paper's, so "
        "only the ordering of the rows is comparable, not the values"
        if simulated
        else "the processed Allen Brain Observatory sessions under the run's data root"
    )
    lines = [
        f"Ours: mean ± 95 % CI (Student t) over {'/'.join(map(str, seeds)) or 0} seeds, on "
        f"{data}. Paper: POYO-CAP (ICLR 2026) Table 3, 3 seeds, real Allen data.",
        "",
        "| arm | movie SSIM (ours) | movie SSIM (paper) | DG accuracy (ours) "
        "| DG accuracy (paper) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        if row.arm not in TABLE3_ARMS:
            raise ValueError(f"arm {row.arm!r} has no row in Table 3 ({list(TABLE3_ARMS)})")
        paper_ssim, paper_dg = ARMS[row.arm].paper
        lines.append(
            f"| {ARMS[row.arm].title} | {_cell(row.movie_ssim)} | {paper_ssim:.3f} | "
            f"{_cell(row.dg_accuracy)} | {paper_dg:.3f} |"
        )
    comparisons = paired_with_scratch(rows)
    if any(c is not None for by_metric in comparisons.values() for c in by_metric.values()):
        lines += [
            "",
            f"Paired difference from {ARMS[_REFERENCE_ARM].title}, same seed and same test "
            "recordings (from scratch's score averaged over the arm's own test recordings; "
            "it trains on every neuron of every recording, the arm on its partition): mean "
            '± 95 % CI over seeds, paired t-test p ("not significant" where p >= 0.05).',
            "",
            "| arm | " + " | ".join(f"{label} − from scratch" for label in METRICS.values()) + " |",
            "|---" * (len(METRICS) + 1) + "|",
        ]
        for arm, by_metric in comparisons.items():
            cells = ["n/a" if c is None else str(c) for c in by_metric.values()]
            lines.append(f"| {ARMS[arm].title} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summarize_table3(rows: Sequence[Table3Row]) -> dict[str, dict[str, object]]:
    """Per arm and metric: the per-seed values, mean, CI half-width and the paper's mean, and
    (with two seeds or more) the paired difference from from scratch, its CI and p."""
    summary: dict[str, dict[str, object]] = {}
    comparisons = paired_with_scratch(rows)
    for row in rows:
        entry: dict[str, object] = {"label": ARMS[row.arm].title}
        for key, paper in zip(METRICS, ARMS[row.arm].paper, strict=True):
            values = getattr(row, key)
            stats = mean_ci95(values) if values else None
            record: dict[str, object] = {
                "values": list(values),
                "mean": None if stats is None else stats.mean,
                "ci95_half_width": None if stats is None else stats.half_width,
                "paper": paper,
            }
            comparison = comparisons.get(row.arm, {}).get(key)
            if comparison is not None:
                record["minus_from_scratch"] = {
                    "mean_difference": comparison.mean_difference.mean,
                    "ci95": list(comparison.mean_difference.ci95),
                    "p": comparison.p,
                }
            entry[key] = record
        summary[row.arm] = entry
    return summary


def _table3_row(
    arm: str,
    seeds: Sequence[int],
    runs: Mapping[tuple[str, int], dict[str, StageResult]],
    *,
    paired: bool,
) -> Table3Row:
    """One arm's row from its runs; with ``paired``, from scratch on the arm's recordings.

    Raises:
        ValueError: If a run logged no test value of its metric, or from scratch did not
            test on one of the arm's recordings.
    """
    values: dict[str, list[float]] = {metric: [] for metric in METRICS}
    scratch: dict[str, list[float]] = {metric: [] for metric in METRICS}
    for seed in seeds:
        logger.info("table3: %s seed %d: %s", arm, seed, arm_metrics(runs[arm, seed]))
        reference = recording_metrics(runs[_REFERENCE_ARM, seed]) if paired else {}
        for metric, by_recording in recording_metrics(runs[arm, seed]).items():
            if not by_recording:
                raise ValueError(f"{arm} seed {seed} logged no test {metric} per recording")
            values[metric].append(recording_mean(by_recording))
            if not paired:
                continue
            missing = sorted(set(by_recording) - set(reference[metric]))
            if missing:
                raise ValueError(
                    f"{_REFERENCE_ARM} seed {seed} has no test {metric} on {arm}'s recordings "
                    f"{missing}: the paired comparison needs it on every one"
                )
            scratch[metric].append(recording_mean({r: reference[metric][r] for r in by_recording}))
    return Table3Row(
        arm,
        tuple(values["movie_ssim"]),
        tuple(values["dg_accuracy"]),
        {metric: tuple(v) for metric, v in scratch.items() if v},
    )


def run_table3(
    out_dir: Path,
    *,
    data_root: Path | None = None,
    simulation: SimulationSettings | None = None,
    settings: CurriculumSettings | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    arms: Sequence[str] = TABLE3_ARMS,
    min_units: int = 1,
) -> tuple[list[Table3Row], Path]:
    """Run every arm for every seed (resumable) and write ``table3.md`` and ``table3.json``.

    Uses the curriculum's steps: the data (given, or simulated and prepared into
    ``<out_dir>/data``), the dataset configs of every variant, then
    :func:`~poyocap_plugin.workflow.arms.run_arms` for every (arm, seed) into
    ``<out_dir>/runs``, each run skipped when finished before.

    Args:
        out_dir: Where everything goes.
        data_root: An existing processed-data root; exclusive with ``simulation``.
        simulation: A :class:`~poyocap_plugin.workflow.simulated_brainset.SimulationSettings` to
            simulate.
        settings: A :class:`~poyocap_plugin.workflow.settings.CurriculumSettings`; ``dg`` must be
            on (the DG column). Defaults to the ``cpu`` preset.
        seeds: train.py seeds, one run set each.
        arms: The rows, keys of :data:`~poyocap_plugin.workflow.stages.TABLE3_ARMS`.
        min_units: Fewest selected neurons a session may bring (others are left out).

    Returns:
        The rows, and the path of ``table3.md``.

    Raises:
        ValueError: For an unknown arm, no seeds, or settings with ``dg`` off.
    """
    unknown = [a for a in arms if a not in TABLE3_ARMS]
    if unknown or not arms:
        raise ValueError(f"arms must be a non-empty subset of {list(TABLE3_ARMS)}, got {arms!r}")
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    if (data_root is None) == (simulation is None):
        raise ValueError(
            "give exactly one of data_root and simulation; "
            f"got data_root={data_root!r}, simulation={simulation!r}"
        )
    settings = settings or CurriculumSettings.preset("cpu")
    if not settings.dg:
        raise ValueError("Table 3 needs the DG column: CurriculumSettings.dg must be True")
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    if simulation is not None:
        data_root = prepare_data(out_dir / "data", simulation)
    variants = sorted({ARMS[a].variant for a in arms})
    config_dir = write_curriculum_configs(
        data_root, out_dir / "configs", variants=variants, settings=settings, min_units=min_units
    )
    runs = run_arms(
        [(arm, seed) for seed in seeds for arm in arms],
        data_root=data_root,
        config_dir=config_dir,
        runs_dir=out_dir / "runs",
        settings=settings,
    )
    rows = [_table3_row(arm, seeds, runs, paired=_REFERENCE_ARM in arms) for arm in arms]
    table = format_table3(rows, simulated=simulation is not None)
    path = out_dir / "table3.md"
    write_text_atomically(path, "# POYO-CAP Table 3, rerun\n\n" + table)
    write_text_atomically(
        out_dir / "table3.json",
        json.dumps(
            {
                "simulated": simulation is not None,
                "seeds": list(seeds),
                "arms": summarize_table3(rows),
            },
            indent=2,
        )
        + "\n",
    )
    logger.info("wrote %s", path)
    return rows, path
