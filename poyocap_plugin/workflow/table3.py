"""Table 3 of POYO-CAP: the pretraining ablations over several seeds, mean and 95 % CI.

POYO-CAP (Bae et al., ICLR 2026), Table 3, compares POYO-CAP with finetuning from scratch
and three other pretraining diets, by test movie SSIM and DG accuracy (mean +- 95 % CI over
3 seeds). :func:`run_table3` reruns that comparison with the plugin's curriculum
(:func:`poyocap_plugin.workflow.curriculum.run_arm`, one arm per row, resumable) and
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
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from poyocap_plugin.workflow.curriculum import run_arm, write_curriculum_configs
from poyocap_plugin.workflow.files import write_text_atomically
from poyocap_plugin.workflow.runs import arm_metrics
from poyocap_plugin.workflow.settings import CurriculumSettings
from poyocap_plugin.workflow.simulated_brainset import SimulationSettings, prepare_data
from poyocap_plugin.workflow.stages import ARMS, TABLE3_ARMS

__all__ = [
    "Table3Row",
    "format_table3",
    "mean_ci",
    "run_table3",
    "summarize_table3",
]

logger = logging.getLogger(__name__)


def mean_ci(values: Sequence[float], *, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the two-sided Student-t confidence interval.

    The half-width is ``t_{(1+confidence)/2, n-1} * s / sqrt(n)``, ``s`` the sample standard
    deviation (``ddof=1``). With one value the half-width is NaN (no spread to estimate).

    Example::

        >>> mean, half = mean_ci([0.5, 0.6, 0.7])
        >>> round(mean, 3), round(half, 3)
        (0.6, 0.248)

    Args:
        values: The per-seed values; finite.
        confidence: The coverage, in (0, 1).

    Raises:
        ValueError: If ``values`` is empty or holds a non-finite value, or ``confidence``
            is outside (0, 1).
    """
    from scipy import stats

    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_ci needs at least one value, got none")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"mean_ci needs finite values, got {values!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return mean, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(stats.t.ppf((1.0 + confidence) / 2.0, n - 1)) * sd / math.sqrt(n)


@dataclass(frozen=True)
class Table3Row:
    """One row of Table 3: per-seed values of one arm.

    Attributes:
        arm: A key of :data:`~poyocap_plugin.workflow.stages.TABLE3_ARMS`.
        movie_ssim: Test movie SSIM per seed (mean over recordings).
        dg_accuracy: Test DG accuracy per seed (mean over recordings); empty if not run.
    """

    arm: str
    movie_ssim: tuple[float, ...]
    dg_accuracy: tuple[float, ...]


def _cell(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    mean, half = mean_ci(values)
    return f"{mean:.3f}" if math.isnan(half) else f"{mean:.3f} ± {half:.3f}"


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
    return "\n".join(lines) + "\n"


def summarize_table3(rows: Sequence[Table3Row]) -> dict[str, dict[str, object]]:
    """Per arm: the per-seed values, mean and CI half-width of both metrics, and the paper's."""
    summary: dict[str, dict[str, object]] = {}
    for row in rows:
        paper_ssim, paper_dg = ARMS[row.arm].paper
        entry: dict[str, object] = {"label": ARMS[row.arm].title}
        for key, values, paper in (
            ("movie_ssim", row.movie_ssim, paper_ssim),
            ("dg_accuracy", row.dg_accuracy, paper_dg),
        ):
            mean, half = mean_ci(values) if values else (math.nan, math.nan)
            entry[key] = {
                "values": list(values),
                "mean": None if math.isnan(mean) else mean,
                "ci95_half_width": None if math.isnan(half) else half,
                "paper": paper,
            }
        summary[row.arm] = entry
    return summary


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
    :func:`~poyocap_plugin.workflow.curriculum.run_arm` per (arm, seed) into
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
    rows = []
    for arm in arms:
        ssim, accuracy = [], []
        for seed in seeds:
            results = run_arm(
                arm,
                data_root=data_root,
                config_dir=config_dir,
                runs_dir=out_dir / "runs",
                settings=settings,
                seed=seed,
            )
            metrics = arm_metrics(results)
            ssim.append(metrics["movie_ssim"])
            accuracy.append(metrics["dg_accuracy"])
            logger.info("table3: %s seed %d: %s", arm, seed, metrics)
        rows.append(Table3Row(arm, tuple(ssim), tuple(accuracy)))
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
