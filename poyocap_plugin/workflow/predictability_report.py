"""The predictability report: per-Cre-line summary, knee vs paper thresholds, JSON/CSV/PNG.

What ``poyocap predictability`` computes and writes from a processed brainset's stored
per-neuron statistics (:mod:`poyocap_plugin.predictability`): the per-line table, the
Kneedle thresholds across Cre lines beside the paper's 3.51 / 22.62 (POYO-CAP, Bae et al.,
ICLR 2026), the lines each set of thresholds calls predictable, and a skewness-vs-kurtosis
scatter plot (matplotlib, Agg canvas, no pyplot).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from poyocap_plugin.brainset import (
    BRAINSET_ID,
    PAPER_KURTOSIS_THRESHOLD,
    PAPER_PREDICTABLE_CRE_LINES,
    PAPER_SKEWNESS_THRESHOLD,
)
from poyocap_plugin.predictability import (
    knee_threshold,
    predictable_mask,
    read_unit_statistics,
    summarize_cre_lines,
    valid_statistics_mask,
)
from poyocap_plugin.workflow.files import write_atomically

__all__ = [
    "PredictabilityReport",
    "plot_predictability",
    "predictability_report",
    "write_report",
]

logger = logging.getLogger(__name__)


def _predictable_lines(lines: pd.DataFrame, skewness: float | None, kurtosis: float | None):
    if skewness is None or kurtosis is None:
        return None
    keep = predictable_mask(
        lines.skewness_median.to_numpy(),
        lines.kurtosis_median.to_numpy(),
        skewness_threshold=skewness,
        kurtosis_threshold=kurtosis,
    )
    return tuple(lines.index[keep])


@dataclass(frozen=True)
class PredictabilityReport:
    """What ``poyocap predictability`` reports about a brainset.

    Attributes:
        lines: Per-Cre-line summary (:func:`summarize_cre_lines`, paper thresholds), with
            a bool column ``predictable_line``: median skewness and median kurtosis both at
            or below the paper's thresholds.
        units: The per-neuron table, with a bool column ``predictable`` (paper thresholds).
        knee_skewness: Kneedle knee of the per-line median skewness, or None.
        knee_kurtosis: Kneedle knee of the per-line median kurtosis, or None.
        paper_skewness: The paper's skewness threshold (3.51).
        paper_kurtosis: The paper's kurtosis threshold (22.62).
        predictable_lines_paper: Lines whose medians are within the paper's thresholds.
        predictable_lines_knee: Lines whose medians are within the knee thresholds, or None
            when a knee was not found.
    """

    lines: pd.DataFrame
    units: pd.DataFrame
    knee_skewness: float | None
    knee_kurtosis: float | None
    paper_skewness: float
    paper_kurtosis: float
    predictable_lines_paper: tuple[str, ...]
    predictable_lines_knee: tuple[str, ...] | None

    def to_dict(self) -> dict:
        """The report as JSON-serialisable data (NaN becomes None)."""

        def clean(value):
            if isinstance(value, float | np.floating):
                return None if not math.isfinite(value) else float(value)
            if isinstance(value, np.integer):
                return int(value)
            if isinstance(value, np.bool_):
                return bool(value)
            return value

        lines = {
            line: {key: clean(value) for key, value in row.items()}
            for line, row in self.lines.to_dict(orient="index").items()
        }
        return {
            "n_sessions": int(self.units["session_id"].nunique()),
            "n_units": len(self.units),
            "thresholds": {
                "paper": {"skewness": self.paper_skewness, "kurtosis": self.paper_kurtosis},
                "knee": {"skewness": self.knee_skewness, "kurtosis": self.knee_kurtosis},
            },
            "predictable_lines": {
                "paper_list": list(PAPER_PREDICTABLE_CRE_LINES),
                "paper_thresholds": list(self.predictable_lines_paper),
                "knee_thresholds": (
                    None
                    if self.predictable_lines_knee is None
                    else list(self.predictable_lines_knee)
                ),
            },
            "cre_lines": lines,
        }


def predictability_report(
    data_root: Path, *, brainset_id: str = BRAINSET_ID
) -> PredictabilityReport:
    """Summarise a processed brainset's neuron predictability and re-derive the thresholds.

    The knee thresholds come from :func:`knee_threshold` over the per-line **median**
    skewness and kurtosis of the valid neurons (one point per Cre line, as the paper
    describes).

    Args:
        data_root: The processed-data root.
        brainset_id: The brainset folder.

    Returns:
        The report.

    Raises:
        FileNotFoundError, KeyError, ValueError: As :func:`read_unit_statistics`.
    """
    stats = read_unit_statistics(data_root, brainset_id=brainset_id)
    lines = summarize_cre_lines(stats.units)
    knee_skewness = knee_threshold(lines.skewness_median.tolist())
    knee_kurtosis = knee_threshold(lines.kurtosis_median.tolist())
    lines["predictable_line"] = predictable_mask(
        lines.skewness_median.to_numpy(), lines.kurtosis_median.to_numpy()
    )
    units = stats.units.copy()
    units["predictable"] = predictable_mask(units["skewness"], units["kurtosis"]) & (
        valid_statistics_mask(units["skewness"], units["kurtosis"], units["stats_valid"])
    )
    logger.info(
        "knee thresholds: skewness %s, kurtosis %s (paper: %s, %s)",
        knee_skewness,
        knee_kurtosis,
        PAPER_SKEWNESS_THRESHOLD,
        PAPER_KURTOSIS_THRESHOLD,
    )
    return PredictabilityReport(
        lines=lines,
        units=units,
        knee_skewness=knee_skewness,
        knee_kurtosis=knee_kurtosis,
        paper_skewness=PAPER_SKEWNESS_THRESHOLD,
        paper_kurtosis=PAPER_KURTOSIS_THRESHOLD,
        predictable_lines_paper=_predictable_lines(
            lines, PAPER_SKEWNESS_THRESHOLD, PAPER_KURTOSIS_THRESHOLD
        ),
        predictable_lines_knee=_predictable_lines(lines, knee_skewness, knee_kurtosis),
    )


def plot_predictability(report: PredictabilityReport):
    """Scatter of skewness vs kurtosis per valid neuron, coloured by Cre line.

    The paper's thresholds are dashed lines, the knee thresholds (when found) dotted ones;
    each line's label gives its value. Axes are logarithmic, since kurtosis spans orders
    of magnitude (symmetric-log where a value is not positive).

    Args:
        report: The report to draw.

    Returns:
        A ``matplotlib.figure.Figure`` (built without pyplot, so no GUI backend is used).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    units = report.units
    valid = valid_statistics_mask(units["skewness"], units["kurtosis"], units["stats_valid"])
    figure = Figure(figsize=(10.0, 6.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    palette = [f"C{i}" for i in range(10)] + ["black", "tab:olive", "navy"]
    for i, (line, group) in enumerate(units[valid].groupby("cre_line", sort=True)):
        marker = "^" if line in report.predictable_lines_paper else "o"
        axes.scatter(
            group["skewness"],
            group["kurtosis"],
            s=8,
            alpha=0.6,
            marker=marker,
            color=palette[i % len(palette)],
            label=f"{line} (n={len(group)})",
        )
    thresholds = [("paper", report.paper_skewness, report.paper_kurtosis, "--", "red")]
    if report.knee_skewness is not None and report.knee_kurtosis is not None:
        thresholds.append(("knee", report.knee_skewness, report.knee_kurtosis, ":", "blue"))
    for name, skewness, kurtosis, style, color in thresholds:
        axes.axvline(
            skewness, linestyle=style, color=color, label=f"{name} skewness = {skewness:.2f}"
        )
        axes.axhline(
            kurtosis, linestyle=style, color=color, label=f"{name} kurtosis = {kurtosis:.2f}"
        )
    for set_scale, values in (
        (axes.set_xscale, units["skewness"][valid]),
        (axes.set_yscale, units["kurtosis"][valid]),
    ):
        if len(values) and (values > 0).all():
            set_scale("log")
        else:
            set_scale("symlog", linthresh=1.0)
    axes.set_xlabel("skewness of dF/F")
    axes.set_ylabel("kurtosis of dF/F")
    axes.set_title(
        f"{int(valid.sum())} neurons, {units['session_id'].nunique()} sessions "
        "(triangles: the paper's predictable lines)"
    )
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    figure.tight_layout()
    return figure


ReportFile = Literal["json", "lines_csv", "units_csv", "figure"]


def write_report(report: PredictabilityReport, out_dir: Path) -> dict[ReportFile, Path]:
    """Write ``predictability.json``, ``cre_lines.csv``, ``units.csv`` and ``predictability.png``.

    Each file is written under a temporary name and renamed, so none is ever half-written.

    Args:
        report: The report.
        out_dir: Folder to write into (created if needed).

    Returns:
        The written paths by kind.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[ReportFile, Path] = {
        "json": out_dir / "predictability.json",
        "lines_csv": out_dir / "cre_lines.csv",
        "units_csv": out_dir / "units.csv",
        "figure": out_dir / "predictability.png",
    }
    write_atomically(
        paths["json"], lambda p: p.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    )
    write_atomically(paths["lines_csv"], lambda p: report.lines.to_csv(p))
    write_atomically(paths["units_csv"], lambda p: report.units.to_csv(p, index=False))
    figure = plot_predictability(report)
    write_atomically(paths["figure"], lambda p: figure.savefig(p, format="png"))
    logger.info("wrote the predictability report to %s", out_dir)
    return paths
