"""Scaling with model size: the curriculum and its baseline at several CAPOYO sizes.

POYO-CAP (Bae et al., ICLR 2026) reports that under its curriculum performance grows smoothly
and monotonically with model size while the baselines plateau. :func:`run_scaling` trains
:data:`~poyocap_plugin.workflow.stages.CURRICULUM_ARMS` at every size config over seeds
(resumable) and writes the means with their 95 % CIs to ``scaling.{json,csv,png,md}``.

.. note::
    A size's parameters are its trunk's (:mod:`.model_sizes`); the whole stage-2 count is
    ``model_parameters`` in ``scaling.json``. The paper does not say which parameters its
    sizes count.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import shlex
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from itertools import pairwise
from pathlib import Path

from poyocap_plugin.workflow.analyses.model_sizes import (
    CPU_SIZES,
    check_sizes,
    model_sizes,
    module_parameters,
    parameter_count,
    trunk_parameters,
)
from poyocap_plugin.workflow.analysis_results import CURVE_VERDICTS, result_path
from poyocap_plugin.workflow.arms import run_arms
from poyocap_plugin.workflow.baselines import BASELINE_TITLES, Baseline, arm_baselines
from poyocap_plugin.workflow.curriculum import write_curriculum_configs
from poyocap_plugin.workflow.files import write_atomically, write_text_atomically
from poyocap_plugin.workflow.runs import StageResult, arm_metrics
from poyocap_plugin.workflow.settings import CurriculumSettings
from poyocap_plugin.workflow.simulated_brainset import SimulationSettings, prepare_data
from poyocap_plugin.workflow.stages import ARMS, CURRICULUM_ARMS, METRICS
from poyocap_plugin.workflow.statistics import MeanCI, mean_ci95

__all__ = [
    "CPU_SIZES",
    "QUICK_SEEDS",
    "QUICK_SIZES",
    "ScalingPoint",
    "ScalingResult",
    "model_sizes",
    "parameter_count",
    "quick_settings",
    "run_scaling",
]

logger = logging.getLogger(__name__)

QUICK_SIZES: tuple[str, ...] = CPU_SIZES[:2]
"""The sizes of ``--quick``: the two that train in minutes on a CPU."""
QUICK_SEEDS: tuple[int, ...] = (0, 1)
"""The seeds of ``--quick``: two, the fewest that give a 95 % CI."""


def quick_settings(settings: CurriculumSettings) -> CurriculumSettings:
    """``--quick``: 1 epoch per stage, one validation per run; with :data:`QUICK_SIZES` and
    :data:`QUICK_SEEDS`, 12 runs (docs/analyses.md has their time on 2 CPU cores).

    One epoch, not more: about two thirds of a short run is fixed (start-up, one validation
    and the test pass over every frame), so each extra epoch adds less than a third of a run.
    """
    return replace(settings, pretrain_epochs=1, finetune_epochs=1, eval_epochs=None)


@dataclass(frozen=True)
class ScalingPoint:
    """One point of a scaling curve: one size, arm and metric over seeds.

    Attributes:
        size: The model-size config, e.g. ``capoyo_48k``.
        parameters: Its trunk's parameter count (:func:`parameter_count`).
        arm: A key of :data:`~poyocap_plugin.workflow.stages.ARMS`.
        metric: A key of :data:`~poyocap_plugin.workflow.stages.METRICS`.
        values: The test metric per seed (mean over test recordings), in seed order.
    """

    size: str
    parameters: int
    arm: str
    metric: str
    values: tuple[float, ...]

    @property
    def summary(self) -> MeanCI:
        """The mean over seeds with its 95 % Student-t interval (none with one seed)."""
        return mean_ci95(self.values)

    @property
    def mean(self) -> float:
        return self.summary.mean


#: a curve's verdict in scaling.md (in a word: CURVE_VERDICTS)
_VERDICT_SENTENCES = {
    True: "is monotonic: its mean rises at every larger size.",
    False: "is not monotonic: a larger size has an equal or lower mean.",
    None: "has one size: no curve to judge.",
}


def _short(baseline: Baseline) -> str:
    """``mean frame``, ``ridge``, ...: a baseline's name in a headline or legend."""
    return baseline.name.replace("_", " ")


@dataclass(frozen=True)
class ScalingResult:
    """What :func:`run_scaling` produced.

    Attributes:
        points: One per size, arm and metric, sizes by increasing parameter count.
        baselines: The baselines of each metric on the same test frames and trials
            (:func:`~poyocap_plugin.workflow.baselines.arm_baselines`).
        json_path, csv_path, figure_path, markdown_path: ``scaling.json``, ``scaling.csv``,
            ``scaling.png`` and ``scaling.md``.
    """

    points: tuple[ScalingPoint, ...]
    baselines: tuple[Baseline, ...]
    json_path: Path
    csv_path: Path
    figure_path: Path
    markdown_path: Path

    def curve(self, arm: str, metric: str) -> tuple[ScalingPoint, ...]:
        """The points of one arm and metric, by increasing parameter count."""
        return tuple(p for p in self.points if p.arm == arm and p.metric == metric)

    def monotonic(self, arm: str, metric: str) -> bool | None:
        """Whether the curve's means increase strictly with size; None below two sizes."""
        means = [p.mean for p in self.curve(arm, metric)]
        return None if len(means) < 2 else all(a < b for a, b in pairwise(means))

    def baselines_of(self, metric: str) -> tuple[Baseline, ...]:
        """The baselines scored by ``metric``, e.g. mean frame and ridge for movie SSIM."""
        return tuple(b for b in self.baselines if b.metric == metric)

    def headline(self) -> str:
        """E.g. ``movie SSIM (test), POYO-CAP: 0.250 -> 0.270 (monotonic); from scratch: ...;
        baselines: mean frame 0.171, ridge 0.388``."""
        parts = []
        for metric in dict.fromkeys(p.metric for p in self.points):
            curves = []
            for arm in dict.fromkeys(p.arm for p in self.points if p.metric == metric):
                means = " -> ".join(f"{p.mean:.3f}" for p in self.curve(arm, metric))
                verdict = CURVE_VERDICTS[self.monotonic(arm, metric)]
                curves.append(f"{ARMS[arm].title}: {means} ({verdict})")
            floors = [f"{_short(b)} {b.value:.3f}" for b in self.baselines_of(metric)]
            if floors:
                curves.append("baselines: " + ", ".join(floors))
            parts.append(f"{METRICS[metric]}, " + "; ".join(curves))
        return " | ".join(parts)


_Runs = dict[str, dict[tuple[str, int], dict[str, StageResult]]]  # {size: run_arms' result}


def _collect_points(
    runs: _Runs, parameters: dict[str, int], seeds: Sequence[int]
) -> tuple[ScalingPoint, ...]:
    """Per size, arm and metric the per-seed values; a metric no run reported is left out."""
    values = {
        (metric, size, arm): [arm_metrics(runs[size][arm, seed])[metric] for seed in seeds]
        for metric in METRICS
        for size in parameters
        for arm in CURRICULUM_ARMS
    }
    points = []
    for (metric, size, arm), per_seed in values.items():
        if all(v is None for key, vs in values.items() if key[0] == metric for v in vs):
            continue  # that stage did not run (DG with settings.dg off)
        if None in per_seed:
            raise ValueError(f"{size}/{arm}: a seed of {list(seeds)} has no {metric}: {per_seed}")
        points.append(ScalingPoint(size, parameters[size], arm, metric, tuple(per_seed)))
    return tuple(points)


def _summary(
    result: ScalingResult, runs: _Runs, counts: dict[str, dict[str, int]], **header: object
) -> dict:
    """``scaling.json``: ``header``; per size its counts, values, means, CIs and runs; verdicts."""
    summary: dict = header | {
        "sizes": {},
        "monotonic": {},
        "baselines": {b.name: {"metric": b.metric, "value": b.value} for b in result.baselines},
    }
    for size, by_task in runs.items():
        summary["sizes"][size] = {
            "parameters": trunk_parameters(counts[size]),
            "model_parameters": sum(counts[size].values()),  # frame decoder included
            "arms": {},
            "runs": [
                {"name": run.name, "command": shlex.join(run.command)}
                for by_stage in by_task.values()
                for run in by_stage.values()
            ],
        }
    for p in result.points:
        summary["sizes"][p.size]["arms"].setdefault(p.arm, {})[p.metric] = {
            "values": list(p.values),
            "mean": p.mean,
            "ci95_half_width": p.summary.half_width,
        }
        summary["monotonic"].setdefault(p.arm, {})[p.metric] = result.monotonic(p.arm, p.metric)
    return summary


def _csv(points: Sequence[ScalingPoint], seeds: Sequence[int]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["size", "parameters", "arm", "metric", "seed", "value"])
    for p in points:
        for seed, value in zip(seeds, p.values, strict=True):
            writer.writerow([p.size, p.parameters, p.arm, p.metric, seed, repr(value)])
    return out.getvalue()


def _markdown(result: ScalingResult, *, seeds: Sequence[int], simulated: bool) -> str:
    data = "simulated data (`poyocap simulate`)" if simulated else "the processed sessions"
    lines = [
        "# Scaling with model size\n",
        f"Test metrics, mean ± 95 % CI (Student t) over seeds {list(seeds)}, on {data}. "
        "Parameters: the trunk's (stage 1 -> stage 2), without the unit/session vocabularies "
        "and the frame decoder. The paper (POYO-CAP, ICLR 2026) reports that POYO-CAP scales "
        "smoothly and monotonically with size while its baselines plateau.",
    ]
    arms = list(dict.fromkeys(p.arm for p in result.points))
    for metric in dict.fromkeys(p.metric for p in result.points):
        lines += [
            f"\n## {METRICS[metric]}\n",
            "| size | parameters | " + " | ".join(ARMS[a].title for a in arms) + " |",
            "|---|---:|" + "---|" * len(arms),
        ]
        for size, parameters in dict.fromkeys((p.size, p.parameters) for p in result.points):
            cells = [str(p.summary) for p in result.points if (p.size, p.metric) == (size, metric)]
            lines.append(f"| {size} | {parameters:,} | " + " | ".join(cells) + " |")
        floors = [f"{BASELINE_TITLES[b.name]} {b.value:.3f}" for b in result.baselines_of(metric)]
        if floors:
            lines.append(
                "\nBaselines on the same test data (the smallest size's first POYO-CAP run's "
                "recordings and neurons): " + "; ".join(floors) + "."
            )
        lines.append("")
        for arm in arms:
            verdict = _VERDICT_SENTENCES[result.monotonic(arm, metric)]
            lines.append(f"- {ARMS[arm].title}: the {METRICS[metric]} curve {verdict}")
    lines.append(
        "\nCaveat: where neighbouring sizes' 95 % CIs overlap (or one seed gives none), "
        "monotonic means are not evidence of scaling, nor is a non-monotonic curve a plateau."
    )
    return "\n".join(lines) + "\n"


def _write_figure(result: ScalingResult, path: Path) -> None:
    """One panel per metric: mean ± 95 % CI per arm against trunk parameters (log axis)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics = list(dict.fromkeys(p.metric for p in result.points))
    figure = Figure(figsize=(5.0 * len(metrics), 4.0), dpi=100)
    FigureCanvasAgg(figure)
    for i, metric in enumerate(metrics):
        axes = figure.add_subplot(1, len(metrics), i + 1)
        for arm in dict.fromkeys(p.arm for p in result.points):
            curve = result.curve(arm, metric)
            x, y = [p.parameters for p in curve], [p.mean for p in curve]
            ci = [p.summary.half_width or 0.0 for p in curve]
            axes.errorbar(x, y, yerr=ci, marker="o", capsize=3, label=ARMS[arm].title)
        for baseline, style in zip(result.baselines_of(metric), ("--", ":"), strict=False):
            axes.axhline(baseline.value, color="grey", linestyle=style, label=_short(baseline))
        axes.set(xscale="log", xlabel="trunk parameters", ylabel=METRICS[metric])
        axes.set_title(f"{METRICS[metric]}: mean ± 95 % CI")
        axes.legend()
    figure.tight_layout()
    write_atomically(path, lambda partial: figure.savefig(partial, format="png"))


def run_scaling(
    out_dir: Path,
    *,
    data_root: Path | None = None,
    simulation: SimulationSettings | None = None,
    settings: CurriculumSettings | None = None,
    sizes: Sequence[str] = CPU_SIZES,
    seeds: Sequence[int] = (0, 1, 2),
    dg: bool = False,
    min_units: int = 1,
) -> ScalingResult:
    """Train POYO-CAP and its no-pretraining baseline at every size and seed; resumable.

    Steps: the data (given, or ``simulation`` prepared into ``<out_dir>/data``), the dataset
    configs once (``<out_dir>/configs``; they do not depend on the model size), then per
    size :func:`~poyocap_plugin.workflow.arms.run_arms` with ``model=<size>`` into
    ``<out_dir>/runs/<size>``, skipping every finished run.

    Args:
        out_dir: Where everything goes.
        data_root: An existing processed-data root; exclusive with ``simulation``.
        simulation: Simulate and prepare a dataset instead.
        settings: Run sizes (``model`` is replaced by each size); defaults to the ``cpu``
            preset; :func:`quick_settings` gives ``--quick``'s.
        sizes: Model-size configs (:func:`model_sizes`), each at most once.
        seeds: train.py seeds, each at most once.
        dg: Also run the DG stage-2 runs (``settings.dg`` is replaced). Off by default: the
            paper's scaling is movie decoding, and at 1.2M the DG runs would double a sweep.
        min_units: Fewest selected neurons a session may bring (others are left out).

    Raises:
        ValueError: Before any run, for no or repeated sizes or seeds, an unknown size, or
            neither or both of ``data_root`` and ``simulation``.
        RuntimeError: If a run fails (its log is named); finished runs are kept.
    """
    if not sizes or len(set(sizes)) != len(sizes):
        raise ValueError(f"sizes must name at least one model size, each once; got {sizes!r}")
    check_sizes(sizes)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must name at least one seed, each once; got {seeds!r}")
    if (data_root is None) == (simulation is None):
        raise ValueError(
            "give exactly one of data_root and simulation; "
            f"got data_root={data_root!r}, simulation={simulation!r}"
        )
    settings = replace(settings or CurriculumSettings.preset("cpu"), dg=dg)
    # one model per size, at the frame size the runs decode (its whole count is recorded too)
    frame_size = None if settings.frame_size is None else tuple(settings.frame_size)
    counts = {size: module_parameters(size, frame_size) for size in sizes}
    trunks = {size: trunk_parameters(count) for size, count in counts.items()}
    parameters = {size: trunks[size] for size in sorted(sizes, key=trunks.__getitem__)}
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    if simulation is not None:
        data_root = prepare_data(out_dir / "data", simulation)
    config_dir = write_curriculum_configs(
        data_root,
        out_dir / "configs",
        variants=sorted({ARMS[a].variant for a in CURRICULUM_ARMS}),
        settings=settings,
        min_units=min_units,
    )
    runs: _Runs = {}
    for i, (size, count) in enumerate(parameters.items(), start=1):
        logger.info("size %d/%d: %s (%s parameters)", i, len(parameters), size, f"{count:,}")
        runs[size] = run_arms(
            [(arm, seed) for seed in seeds for arm in CURRICULUM_ARMS],
            data_root=data_root,
            config_dir=config_dir,
            runs_dir=out_dir / "runs" / size,
            settings=replace(settings, model=size),
        )
    # every size and arm tests on the same frames and trials: one run's baselines serve all
    smallest = runs[next(iter(parameters))]
    _, baselines = arm_baselines(smallest[CURRICULUM_ARMS[0], seeds[0]], data_root=data_root)
    result = ScalingResult(
        points=_collect_points(runs, parameters, seeds),
        baselines=baselines,
        json_path=result_path(out_dir, "scaling"),
        csv_path=out_dir / "scaling.csv",
        figure_path=out_dir / "scaling.png",
        markdown_path=out_dir / "scaling.md",
    )
    summary = _summary(
        result,
        runs,
        counts,
        data_root=str(data_root),
        simulated=simulation is not None,
        seeds=list(seeds),
        settings={k: v for k, v in asdict(settings).items() if k != "model"},
    )
    write_text_atomically(result.json_path, json.dumps(summary, indent=2) + "\n")
    write_text_atomically(result.csv_path, _csv(result.points, seeds))
    _write_figure(result, result.figure_path)
    markdown = _markdown(result, seeds=seeds, simulated=simulation is not None)
    write_text_atomically(result.markdown_path, markdown)
    logger.info("scaling: %s; wrote %s", result.headline(), result.markdown_path)
    return result
