"""The curriculum's report: a Markdown summary with its metrics table and figures.

:func:`write_curriculum_report` gathers what a curriculum run produced into one folder:
``report.md`` (POYO-CAP and the baseline without pretraining side by side, with the
paper's Table 3 numbers, the command line of every stage), the predictability figure
(:mod:`poyocap_plugin.workflow.predictability_report`), decoded movie frames beside the true ones
(:mod:`poyocap_plugin.workflow.render`) and the training curves read from each run's
``metrics.csv``. Figures use matplotlib's Agg canvas.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from poyocap_plugin.workflow import predictability_report
from poyocap_plugin.workflow.files import write_atomically, write_text_atomically
from poyocap_plugin.workflow.probe import probe_checkpoint
from poyocap_plugin.workflow.render import render_decoded_frames
from poyocap_plugin.workflow.runs import arm_metrics
from poyocap_plugin.workflow.stages import ARMS, METRICS, STAGES

__all__ = ["metrics_table", "plot_training_curves", "write_curriculum_report"]

logger = logging.getLogger(__name__)


def _format(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _relative(cap: float | None, baseline: float | None) -> str:
    if cap is None or baseline is None or not baseline:
        return "n/a"
    if not (math.isfinite(cap) and math.isfinite(baseline)):
        return "n/a"
    return f"{100.0 * (cap - baseline) / abs(baseline):+.1f} %"


def metrics_table(
    cap: Mapping[str, float | None], baseline: Mapping[str, float | None], *, simulated: bool
) -> str:
    """The report's metrics table as Markdown: POYO-CAP beside the baseline, and the paper.

    Args:
        cap: ``{"movie_ssim": ..., "dg_accuracy": ...}`` of POYO-CAP (None: not run).
        baseline: The same for the baseline without pretraining.
        simulated: The runs used simulated data: the paper columns are then labelled as
            coming from a different dataset.

    Example::

        >>> print(metrics_table({"movie_ssim": 0.6, "dg_accuracy": None},
        ...                     {"movie_ssim": 0.5, "dg_accuracy": None}, simulated=True)
        ...       .splitlines()[2])
        | movie SSIM (test) | 0.600 | 0.500 | +20.0 % | 0.593 | 0.528 |
    """
    paper_cap, paper_scratch = ARMS["poyocap"].paper, ARMS["from_scratch"].paper
    where = "real Allen data, not this dataset" if simulated else "real Allen data, 3 seeds"
    lines = [
        f"| metric | POYO-CAP | from scratch | CAP vs scratch | paper POYO-CAP ({where}) "
        f"| paper from scratch ({where}) |",
        "|---|---|---|---|---|---|",
    ]
    for column, (key, label) in enumerate(METRICS.items()):
        lines.append(
            f"| {label} | {_format(cap.get(key))} | {_format(baseline.get(key))} | "
            f"{_relative(cap.get(key), baseline.get(key))} | {paper_cap[column]:.3f} | "
            f"{paper_scratch[column]:.3f} |"
        )
    return "\n".join(lines) + "\n"


def _read_columns(metrics_csv: Path, keys: tuple[str, ...]) -> dict[str, list[tuple[float, float]]]:
    """(step, value) pairs of each of ``keys`` from a Lightning ``metrics.csv``."""
    series: dict[str, list[tuple[float, float]]] = {k: [] for k in keys}
    with Path(metrics_csv).open(newline="") as f:
        for row in csv.DictReader(f):
            for key in keys:
                if row.get(key) not in (None, ""):
                    series[key].append((float(row["step"]), float(row[key])))
    return series


def plot_training_curves(runs: Mapping[str, Mapping[str, Path]], path: Path) -> Path:
    """Plot training loss and validation metric per stage, one line per arm; write a PNG.

    Args:
        runs: ``{arm label: {stage: metrics.csv}}``; stages are ``pretrain``,
            ``finetune_movie``, ``finetune_dg``.
        path: The PNG to write.

    Returns:
        ``path``.

    Raises:
        ValueError: If ``runs`` holds no stage.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    stages = [s for s in STAGES if any(s in stages for stages in runs.values())]
    if not stages:
        raise ValueError(f"no run to plot: {runs!r}")
    figure = Figure(figsize=(4.2 * len(stages), 6.0))
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, len(stages), squeeze=False)
    for column, stage in enumerate(stages):
        for label, stage_runs in runs.items():
            if stage not in stage_runs:
                continue
            series = _read_columns(stage_runs[stage], ("train_loss", "average_val_metric"))
            for row, key in enumerate(("train_loss", "average_val_metric")):
                if series[key]:
                    steps, values = zip(*series[key], strict=True)
                    axes[row, column].plot(
                        steps, values, marker="o" if row else None, markersize=3, label=label
                    )
        axes[0, column].set_title(STAGES[stage].title, fontsize=9)
        axes[0, column].set_ylabel("training loss")
        axes[1, column].set_ylabel("validation metric")
        axes[1, column].set_xlabel("step")
        for row in range(2):
            axes[row, column].legend(fontsize=7)
    figure.tight_layout()
    _save(figure, path)
    return path


def _save(figure, path: Path) -> None:
    write_atomically(path, lambda partial: figure.savefig(partial, format="png", dpi=100))


def write_curriculum_report(
    report_dir: Path,
    *,
    data_root: Path,
    simulated: bool,
    cap: Mapping[str, Any],
    baseline: Mapping[str, Any],
    settings: Mapping[str, Any],
    frames_per_recording: int = 6,
) -> Path:
    """Write ``report.md`` and its figures into ``report_dir``; return the Markdown path.

    Args:
        report_dir: The report folder (created if needed).
        data_root: The processed-data root trained on (for the predictability figure).
        simulated: The data was simulated (labelled so in the report).
        cap: POYO-CAP's runs by stage, :class:`~poyocap_plugin.workflow.curriculum.StageResult`.
        baseline: The baseline's runs by stage (no ``pretrain``).
        settings: The run settings, listed in the report.
        frames_per_recording: Decoded frames shown per test recording.

    Raises:
        KeyError: If ``cap`` or ``baseline`` lacks its ``finetune_movie`` run.
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    for name, runs in (("POYO-CAP", cap), ("from scratch", baseline)):
        if "finetune_movie" not in runs:
            raise KeyError(f"{name} has no finetune_movie run to report (stages: {list(runs)})")

    predictability = predictability_report.write_report(
        predictability_report.predictability_report(data_root), report_dir / "predictability"
    )
    frames = {
        label: render_decoded_frames(
            runs["finetune_movie"].best_checkpoint,
            report_dir / "frames" / folder,
            frames_per_recording=frames_per_recording,
        )
        for label, folder, runs in (
            ("POYO-CAP", "poyocap", cap),
            ("from scratch", "from_scratch", baseline),
        )
    }
    curves = plot_training_curves(
        {
            "POYO-CAP": {s: r.metrics_csv for s, r in cap.items()},
            "from scratch": {s: r.metrics_csv for s, r in baseline.items()},
        },
        report_dir / "training_curves.png",
    )

    probe = None
    if "pretrain" in cap:  # the trunk as stage 1 left it, against the same trunk untrained
        probe = probe_checkpoint(cap["pretrain"].last_checkpoint, data_root=data_root)
        probe.write(report_dir / "probe")

    def rel(path: Path) -> str:
        return os.path.relpath(path, report_dir)

    data = (
        "simulated Allen-format sessions (`poyocap simulate`, prepared with `brainsets "
        "prepare`): a **different dataset** from the paper's, so compare the two columns "
        "with each other, not with the paper"
        if simulated
        else "processed Allen Brain Observatory sessions"
    )
    lines = [
        "# POYO-CAP curriculum report",
        "",
        f"Data: {data}, from `{data_root}`.",
        "",
        "POYO-CAP: stage 1 on the predictable neurons of the predictable lines, its best "
        "checkpoint as the trunk of stage 2 on the unpredictable neurons of the other lines. "
        "From scratch: the same stage-2 runs (same data, seed and settings) without the trunk. "
        "Test metrics of each run's best checkpoint, averaged over the test recordings.",
        "",
        metrics_table(arm_metrics(cap), arm_metrics(baseline), simulated=simulated),
    ]
    if probe is not None:
        lines += [
            "## Stage-1 trunk: linear probe of the drifting-grating direction",
            "",
            "A logistic regression on each DG trial's mean processed latent, fitted on the "
            "training trials of the pretraining sessions and scored on their test trials "
            "(`poyocap probe`):",
            "",
            f"    {probe.summary()}",
            "",
            f"Details: [{rel(report_dir / 'probe' / 'probe.json')}]"
            f"({rel(report_dir / 'probe' / 'probe.json')})",
            "",
        ]
    lines += [
        "## Decoded frames (test split; top: true, bottom: decoded)",
        "",
    ]
    for label, paths in frames.items():
        lines.append(f"**{label}**")
        lines.append("")
        lines += [f"![{label} {p.stem}]({rel(p)})" for p in paths]
        lines.append("")
    lines += [
        "## Training curves",
        "",
        f"![training curves]({rel(curves)})",
        "",
        "## Neuron predictability",
        "",
        f"![predictability]({rel(predictability['figure'])})",
        "",
        f"Per-line table: [{rel(predictability['lines_csv'])}]({rel(predictability['lines_csv'])})",
        "",
        "## Runs",
        "",
        "Each stage's command line (rerun any of them by hand), wall time and best checkpoint:",
        "",
    ]
    for label, runs in (("POYO-CAP", cap), ("from scratch", baseline)):
        for stage, run in runs.items():
            lines += [
                f"- **{label}, {stage}** ({run.wall_s:.0f} s), best checkpoint "
                f"`{run.best_checkpoint}`:",
                "",
                f"  ```bash\n  {shlex.join(run.command)}\n  ```",
                "",
            ]
    lines += ["## Settings", ""]
    lines += [f"- `{key}`: `{value}`" for key, value in settings.items()]
    path = report_dir / "report.md"
    write_text_atomically(path, "\n".join(lines) + "\n")
    logger.info("wrote %s", path)
    return path
