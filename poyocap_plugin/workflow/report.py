"""The curriculum's report: results beside baselines, with honest statistics, and figures.

:func:`write_curriculum_report` gathers what a curriculum run produced into one folder:
``report.md`` and ``summary.json``, both built from one :class:`CurriculumSummary`:
POYO-CAP and the arm without pretraining over every seed, the baselines on the same test
frames and trials (:mod:`poyocap_plugin.workflow.baselines`) and, with two seeds or more,
the paired comparison (:mod:`poyocap_plugin.workflow.statistics`). One seed gives values
only: a difference between two single runs is no gain. The folder also holds the
predictability figure (:mod:`poyocap_plugin.workflow.predictability_report`), movie frames
decoded by both arms and by the ridge baseline beside the true ones, and the training curves
(:mod:`poyocap_plugin.workflow.render`).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poyocap_plugin.workflow import predictability_report
from poyocap_plugin.workflow.analysis_results import analyses_section
from poyocap_plugin.workflow.baselines import (
    BASELINE_METRICS,
    BASELINE_TITLES,
    Baseline,
    arm_baselines,
)
from poyocap_plugin.workflow.files import write_text_atomically
from poyocap_plugin.workflow.probe import probe_checkpoint
from poyocap_plugin.workflow.render import (
    plot_training_curves,
    render_decoded_frames,
    render_ridge_frames,
)
from poyocap_plugin.workflow.runs import StageResult, arm_metrics
from poyocap_plugin.workflow.stages import ARMS, CURRICULUM_ARMS, METRICS, STAGES
from poyocap_plugin.workflow.statistics import MeanCI, PairedComparison, mean_ci95, paired

__all__ = [
    "CurriculumSummary",
    "answer",
    "results_table",
    "summarize_curriculum",
    "write_curriculum_report",
    "write_summary",
]

logger = logging.getLogger(__name__)

#: metric -> the stage that logs it
_METRIC_STAGE = {spec.metric: stage for stage, spec in STAGES.items() if spec.metric is not None}
_CAP, _SCRATCH = CURRICULUM_ARMS


@dataclass(frozen=True)
class CurriculumSummary:
    """The curriculum's results: every arm's test metrics per seed, and the baselines.

    Attributes:
        metrics: ``{arm: {seed: {metric: value}}}``, a value None where its stage did
            not run; arms are keys of :data:`~poyocap_plugin.workflow.stages.ARMS`, metrics
            keys of :data:`~poyocap_plugin.workflow.stages.METRICS`.
        baselines: The baselines on the same test frames and trials.
    """

    metrics: dict[str, dict[int, dict[str, float | None]]]
    baselines: tuple[Baseline, ...]

    def seeds(self, metric: str, *arms: str) -> list[int]:
        """The seeds, sorted, at which every one of ``arms`` has a value of ``metric``."""
        common = set.intersection(*(set(self.metrics.get(arm, {})) for arm in arms))
        return sorted(
            s for s in common if all(self.metrics[a][s][metric] is not None for a in arms)
        )

    def values(self, arm: str, metric: str) -> MeanCI | None:
        """``arm``'s ``metric`` over its seeds (None if never run)."""
        seeds = self.seeds(metric, arm)
        return mean_ci95([self.metrics[arm][s][metric] for s in seeds]) if seeds else None

    def comparison(self, metric: str, a: str = _CAP, b: str = _SCRATCH) -> PairedComparison | None:
        """``a - b`` paired over the seeds both ran; None with fewer than two."""
        seeds = self.seeds(metric, a, b)
        if len(seeds) < 2:
            return None
        a_values = [self.metrics[a][s][metric] for s in seeds]
        return paired(a_values, [self.metrics[b][s][metric] for s in seeds], a=a, b=b)

    def baseline(self, name: str) -> float | None:
        return next((b.value for b in self.baselines if b.name == name), None)

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        """The ``summary.json`` record (schema in docs/curriculum.md)."""
        comparisons = []
        for metric in METRICS:
            comparison = self.comparison(metric)
            if comparison is not None:
                difference = comparison.mean_difference
                comparisons.append(
                    {
                        "metric": metric,
                        "a": comparison.a,
                        "b": comparison.b,
                        "mean_difference": difference.mean,
                        "ci95": list(difference.ci95),
                        "p": comparison.p,
                    }
                )
        return {
            "metrics": [
                {"arm": arm, "seed": seed, "stage": _METRIC_STAGE[metric], "metric": metric}
                | {"value": value}
                for arm, by_seed in self.metrics.items()
                for seed, values in sorted(by_seed.items())
                for metric, value in values.items()
                if value is not None
            ],
            "baselines": [
                {"name": b.name, "metric": b.metric, "value": b.value} for b in self.baselines
            ],
            "comparisons": comparisons,
        }


def summarize_curriculum(
    runs: Mapping[str, Mapping[int, Mapping[str, StageResult]]], baselines: tuple[Baseline, ...]
) -> CurriculumSummary:
    """The summary of ``{arm: {seed: {stage: run}}}`` (test metrics by :func:`arm_metrics`)."""
    return CurriculumSummary(
        metrics={
            arm: {int(seed): arm_metrics(dict(stages)) for seed, stages in by_seed.items()}
            for arm, by_seed in runs.items()
        },
        baselines=tuple(baselines),
    )


def _cell(value: MeanCI | float | None) -> str:
    return "n/a" if value is None else (str(value) if isinstance(value, MeanCI) else f"{value:.3f}")


def _seeds_phrase(summary: CurriculumSummary) -> str:
    seeds = sorted(set().union(*(set(s) for s in summary.metrics.values())))
    return (
        f"seed {seeds[0]}"
        if len(seeds) == 1
        else f"{len(seeds)} seeds ({', '.join(map(str, seeds))})"
    )


def results_table(summary: CurriculumSummary, *, simulated: bool) -> str:
    """The report's table as Markdown: one row per decoder, one column per metric.

    POYO-CAP and from scratch show the value of one seed, or mean ± 95 % CI over seeds;
    with two seeds or more a row gives their paired difference, its CI and p. The
    baselines (scored on the same test data) and the paper's Table 3 follow.
    """
    metrics = list(METRICS)
    where = "real Allen data, not this dataset" if simulated else "real Allen data, 3 seeds"
    lines = [
        "| | " + " | ".join(METRICS[m] for m in metrics) + " |",
        "|---" * (len(metrics) + 1) + "|",
    ]

    def row(label: str, cells: list[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    for arm in CURRICULUM_ARMS:
        row(ARMS[arm].title, [_cell(summary.values(arm, m)) for m in metrics])
    comparisons = {m: summary.comparison(m) for m in metrics}
    if any(comparisons.values()):
        seeds = max(len(c.differences) for c in comparisons.values() if c is not None)
        row(
            f"{ARMS[_CAP].title} − {ARMS[_SCRATCH].title} (paired, {seeds} seeds)",
            [_cell(None) if c is None else str(c) for c in comparisons.values()],
        )
    for name, title in BASELINE_TITLES.items():  # "—": not a baseline of that metric
        value = _cell(summary.baseline(name))
        row(title, [value if BASELINE_METRICS[name] == m else "—" for m in metrics])
    for arm in (_CAP, "from_scratch"):
        row(f"paper {ARMS[arm].title} ({where})", [f"{v:.3f}" for v in ARMS[arm].paper])
    return "\n".join(lines) + "\n"


def answer(summary: CurriculumSummary) -> str:
    """The report's first paragraph: did the curriculum help here, and how sure are we?"""
    cap, scratch = ARMS[_CAP].title, ARMS[_SCRATCH].title
    facts = []
    for metric, label in METRICS.items():
        if summary.values(_CAP, metric) is None:
            continue
        baselines = [
            f"{BASELINE_TITLES[b.name]} {b.value:.3f}"
            for b in summary.baselines
            if b.metric == metric
        ]
        facts.append(
            f"{label}: {cap} {_cell(summary.values(_CAP, metric))}, {scratch} "
            f"{_cell(summary.values(_SCRATCH, metric))}"
            + (f" ({'; '.join(baselines)})" if baselines else "")
        )
    comparisons = {m: summary.comparison(m) for m in METRICS}
    verdicts = []
    for metric, comparison in comparisons.items():
        if comparison is None:
            continue
        difference = comparison.mean_difference
        low, high = difference.ci95
        if not comparison.significant:
            verdict = "no significant difference"
        else:
            verdict = "helped" if difference.mean > 0 else "hurt"
        p = "p n/a" if comparison.p is None else f"p = {comparison.p:.3f}"
        verdicts.append(
            f"on {METRICS[metric]}, {verdict}: {cap} − {scratch} = {difference.mean:+.3f} "
            f"(95 % CI {low:+.3f} to {high:+.3f}, paired t-test over "
            f"{len(comparison.differences)} seeds, {p})"
        )
    question = "**Did the curriculum help here, and how sure are we?** "
    if not verdicts:
        return (
            f"{question}{_seeds_phrase(summary).capitalize()} cannot tell: a difference between "
            "two single runs mixes any effect of pretraining with seed-to-seed noise of unknown "
            "size, so no gain is claimed. Values: "
            + "; ".join(facts)
            + ". Run several seeds for a paired comparison."
        )
    return f"{question}Pretraining " + "; ".join(verdicts) + ". Values: " + "; ".join(facts) + "."


def write_summary(summary: CurriculumSummary, path: Path) -> Path:
    """Write ``summary.to_json()`` to ``path`` (atomically)."""
    return write_text_atomically(path, json.dumps(summary.to_json(), indent=2) + "\n")


def _by_seed(runs: Mapping, seed: Any, name: str) -> dict[int, Mapping[str, StageResult]]:
    """``{seed: {stage: run}}`` from either that or one seed's ``{stage: run}``."""
    if all(key in STAGES for key in runs):  # one seed's runs by stage
        if seed is None:
            raise ValueError(f"{name}'s runs are one seed's, but settings has no 'seed'")
        runs = {seed: runs}
    by_seed = {int(s): stages for s, stages in runs.items()}
    missing = [s for s, stages in by_seed.items() if "finetune_movie" not in stages]
    if not by_seed or missing:
        raise KeyError(f"{name} has no finetune_movie run to report (seeds {missing or 'none'})")
    return by_seed


def write_curriculum_report(
    report_dir: Path,
    *,
    data_root: Path,
    simulated: bool,
    cap: Mapping[Any, Any],
    baseline: Mapping[Any, Any],
    settings: Mapping[str, Any],
    frames_per_recording: int = 6,
) -> Path:
    """Write ``report.md``, ``summary.json`` and the figures into ``report_dir``.

    The baselines are computed on the test frames and trials of POYO-CAP's first seed's
    stage-2 runs (the arm without pretraining finetunes on the same data); the decoded
    frames (the ridge decoder's on the same test frames), the training curves and the
    probe show the first seed.

    Args:
        report_dir: The report folder (created if needed).
        data_root: The processed-data root trained on (for the predictability figure).
        simulated: The data was simulated (labelled so in the report).
        cap: POYO-CAP's runs by seed, then stage (``{seed: {stage: StageResult}}``); one
            seed's runs by stage are taken as the seed ``settings["seed"]``.
        baseline: The same for the arm without pretraining (no ``pretrain``).
        settings: The run settings, listed in the report.
        frames_per_recording: Decoded frames shown per test recording.

    Returns:
        The path of ``report.md``.

    Raises:
        KeyError: If a seed of ``cap`` or ``baseline`` lacks its ``finetune_movie`` run.
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    runs = {
        _CAP: _by_seed(cap, settings.get("seed"), ARMS[_CAP].title),
        _SCRATCH: _by_seed(baseline, settings.get("seed"), ARMS[_SCRATCH].title),
    }
    first = {arm: by_seed[min(by_seed)] for arm, by_seed in runs.items()}
    cap, baseline = first[_CAP], first[_SCRATCH]
    movie, baselines = arm_baselines(cap, data_root=data_root)
    summary = summarize_curriculum(runs, baselines)
    write_summary(summary, report_dir / "summary.json")

    predictability = predictability_report.write_report(
        predictability_report.predictability_report(data_root), report_dir / "predictability"
    )
    frames = {
        label: render_decoded_frames(
            stages["finetune_movie"].best_checkpoint,
            report_dir / "frames" / folder,
            frames_per_recording=frames_per_recording,
        )
        for label, folder, stages in (
            ("POYO-CAP", "poyocap", cap),
            ("from scratch", "from_scratch", baseline),
        )
    }
    frames["ridge regression"] = render_ridge_frames(
        movie, report_dir / "frames" / "ridge", frames_per_recording=frames_per_recording
    )
    curves = plot_training_curves(
        {
            "POYO-CAP": {s: r.scalars for s, r in cap.items()},
            "from scratch": {s: r.scalars for s, r in baseline.items()},
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
        "prepare`): a **different dataset** from the paper's, so compare POYO-CAP with "
        "from scratch and the baselines, not with the paper"
        if simulated
        else "processed Allen Brain Observatory sessions"
    )
    statistics = (
        "mean ± 95 % CI (Student t) over the seeds, and their paired difference with its "
        '95 % CI and paired t-test p ("not significant" where p >= 0.05)'
        if summary.comparison("movie_ssim") is not None
        else "one seed's values: a difference between two single runs is not a gain"
    )
    lines = [
        "# POYO-CAP curriculum report",
        "",
        answer(summary),
        "",
        f"Data: {data}, from `{data_root}`.",
        "",
        "POYO-CAP: stage 1 on the predictable neurons of the predictable lines, its best "
        "checkpoint as the trunk of stage 2 on the unpredictable neurons of the other lines. "
        "From scratch: the same stage-2 runs (same data, seed and settings) without the trunk. "
        "Test metrics of each run's best checkpoint, averaged over the test recordings, "
        f"{_seeds_phrase(summary)}: {statistics}. Baselines: fit on the training split and "
        "scored by the same metric on the same test frames, trials and neurons, averaged "
        "over the same recordings (`poyocap_plugin.workflow.baselines`). Every number is "
        "also in [summary.json](summary.json).",
        "",
        results_table(summary, simulated=simulated),
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
    lines += analyses_section(report_dir.parent, data_root, rel)
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
    for by_seed in runs.values():
        for run in (run for stages in by_seed.values() for run in stages.values()):
            lines += [
                f"- **{run.name}** ({run.wall_s:.0f} s), best checkpoint `{run.best_checkpoint}`:",
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
