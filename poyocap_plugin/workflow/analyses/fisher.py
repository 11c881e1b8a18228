r"""Fisher information per data point: the trace of the empirical Fisher of a loss.

POYO-CAP (Table 2) reports that predictable neurons carry 1.93x more Fisher information
per data point than unpredictable ones (64.51 vs 33.47), without defining it further. We
use the trace of the empirical Fisher information matrix of the per-sample loss
:math:`\ell_i(\theta)` (a negative log-likelihood up to scale),

.. math::

    \operatorname{tr} \hat F(\theta) = \frac{1}{N} \sum_{i=1}^{N}
        \lVert \nabla_\theta \ell_i(\theta) \rVert^2,

the mean squared norm of the per-sample gradients: how strongly one data point pulls on
the parameters. Its 95 % CI is the Student-t interval of that mean over the samples. For
stage 1, a sample is one held-out window and :math:`\ell_i` its masked-latent loss
(:mod:`.objective`), and :math:`\theta` the parameters two populations' models share (not
the unit/session vocabularies, which differ in size).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from poyocap_plugin.workflow.analyses.objective import (
    held_out_windows,
    loss_parameter_names,
    masked_latent_loss,
    parameters_named,
)
from poyocap_plugin.workflow.analyses.populations import (
    POPULATIONS,
    Stage1Run,
    stage1_runs,
    trajectory,
)
from poyocap_plugin.workflow.analysis_results import result_path
from poyocap_plugin.workflow.files import write_atomically, write_text_atomically
from poyocap_plugin.workflow.probe.features import torch_device
from poyocap_plugin.workflow.settings import CurriculumSettings
from poyocap_plugin.workflow.simulated_brainset import SimulationSettings
from poyocap_plugin.workflow.statistics import MeanCI, mean_ci95

__all__ = [
    "PAPER_FISHER_RATIO",
    "POINTS",
    "FisherResult",
    "PopulationFisher",
    "per_sample_squared_gradient_norms",
    "run_fisher",
]

logger = logging.getLogger(__name__)


def per_sample_squared_gradient_norms(
    loss_of_sample: Callable[[int], torch.Tensor],
    parameters: Sequence[torch.nn.Parameter],
    n_samples: int,
) -> np.ndarray:
    r""":math:`\lVert \nabla_\theta \ell_i \rVert^2` for :math:`i = 0 .. N-1`.

    Args:
        loss_of_sample: The scalar loss of sample ``i``.
        parameters: :math:`\theta`; a parameter the loss does not reach contributes 0.
        n_samples: :math:`N`.

    Returns:
        The squared gradient norms, :math:`(N,)`; their mean is the empirical Fisher trace.

    Raises:
        ValueError: For ``n_samples < 1``, no parameters, or a non-finite loss (naming
            the sample).
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples!r}")
    parameters = list(parameters)
    if not parameters:
        raise ValueError("no parameters to take the gradient with respect to")
    norms = np.empty(n_samples)
    for i in range(n_samples):
        loss = loss_of_sample(i)
        if not torch.isfinite(loss):
            raise ValueError(f"the loss of sample {i} is {float(loss.detach())}")
        gradients = torch.autograd.grad(loss, parameters, allow_unused=True)
        norms[i] = sum(float(g.pow(2).sum()) for g in gradients if g is not None)
        if (i + 1) % max(1, n_samples // 4) == 0:
            logger.info("per-sample gradients: %d/%d", i + 1, n_samples)
    return norms


@dataclass(frozen=True)
class PopulationFisher:
    """One population's squared per-window gradient norms at each parameter point.

    Attributes:
        population: A key of :data:`~.populations.POPULATIONS`, or a given checkpoint's name.
        run: Its stage-1 run.
        squared_norms: ``{"trained": (N,), "initial": (N,)}``: at the final weights and at
            the weights stage 1 started from.
        starts: ``(recording, start_s)`` of each window.
    """

    population: str
    run: Stage1Run
    squared_norms: dict[str, np.ndarray]
    starts: tuple[tuple[str, float], ...]

    def trace(self, point: str) -> MeanCI:
        """The empirical Fisher trace per data point at ``point``, with its 95 % CI."""
        return mean_ci95(self.squared_norms[point].tolist())


@dataclass(frozen=True)
class FisherResult:
    """Both populations' Fisher information and the files written."""

    populations: dict[str, PopulationFisher]
    files: dict[str, Path]

    def ratio(self, point: str) -> float | None:
        """Fisher trace predictable / unpredictable at ``point``; None without both."""
        if set(_RATIO) - set(self.populations):
            return None
        high, low = (self.populations[p].trace(point).mean for p in _RATIO)
        return high / low if low > 0 else None

    def headline(self) -> str:
        parts = []
        for point in POINTS:
            traces = ", ".join(f"{p} {f.trace(point)}" for p, f in self.populations.items())
            ratio = self.ratio(point)
            parts.append(
                f"{point}: {traces}"
                + ("" if ratio is None else f"; predictable / unpredictable = {ratio:.3g}x")
            )
        return f"Fisher information per data point (paper: {PAPER_FISHER_RATIO:g}x): " + " | ".join(
            parts
        )


#: POYO-CAP, Table 2: predictable neurons carry 1.93x the Fisher information per data point
PAPER_FISHER_RATIO = 1.93
#: where the Fisher trace is taken: the final stage-1 weights, and the initial ones
POINTS = ("trained", "initial")
#: the ratio's numerator and denominator
_RATIO = tuple(POPULATIONS)


def run_fisher(
    out_dir: Path,
    *,
    data_root: Path | None = None,
    simulation: SimulationSettings | None = None,
    settings: CurriculumSettings | None = None,
    checkpoints: Mapping[str, Path] | None = None,
    seed: int = 0,
    max_windows: int = 128,
    device: str = "cpu",
    min_units: int = 1,
) -> FisherResult:
    """Train (or reuse) stage 1 on each population; its Fisher trace per held-out window.

    Writes ``fisher.json`` (traces, CIs, ratios), ``fisher.csv`` (one row per window and
    point) and ``fisher.png`` (the traces with their CIs) into ``out_dir``.

    Args:
        out_dir: Where data (when simulated), configs, runs and results go.
        data_root, simulation: The data, exactly one (see :func:`~.populations.pretrain_runs`).
        settings: Run sizes; default the ``cpu`` preset.
        checkpoints: Stage-1 checkpoints to read instead of training, by population name
            (see :func:`~.populations.stage1_runs`).
        seed: train.py's seed.
        max_windows: Held-out (validation-split) windows per population, one sample each.
        device: Torch device of the gradients.
        min_units: Fewest selected neurons a session may bring.
    """
    target = torch_device(device)
    out_dir = Path(out_dir).resolve()
    data_root, runs = stage1_runs(
        out_dir,
        checkpoints=checkpoints,
        data_root=data_root,
        simulation=simulation,
        settings=settings,
        seed=seed,
        min_units=min_units,
    )
    populations = {}
    for population, run in runs.items():
        final, (initial, trained) = trajectory(run, data_root=data_root, endpoints_only=True)
        windows = held_out_windows(final, trained, root=data_root, max_windows=max_windows)
        names = loss_parameter_names(trained, windows)
        samples = list(windows.batches(1))
        norms = {}
        for point, model in zip(POINTS, (trained, initial), strict=True):
            model = model.to(target)
            logger.info("%s, %s weights: %d windows", population, point, len(samples))
            norms[point] = per_sample_squared_gradient_norms(
                functools.partial(_window_loss, model, samples),
                parameters_named(model, names),
                len(samples),
            )
        populations[population] = PopulationFisher(population, run, norms, windows.starts)
    result = FisherResult(populations, files={})
    result = replace(result, files=_write(out_dir, result, data_root))
    logger.info("%s", result.headline())
    return result


def _window_loss(model: torch.nn.Module, samples: list, i: int) -> torch.Tensor:
    return masked_latent_loss(model, samples[i])


def _write(out_dir: Path, result: FisherResult, data_root: Path) -> dict[str, Path]:
    files = {
        "json": result_path(out_dir, "fisher"),
        "csv": out_dir / "fisher.csv",
        "png": out_dir / "fisher.png",
    }
    record = {
        "data_root": str(data_root),
        "definition": "mean over held-out windows of the squared norm of the per-window "
        "gradient of the masked-latent loss, over the parameters both populations share "
        "(docs/analyses.md)",
        "paper_ratio": PAPER_FISHER_RATIO,
        "ratio_predictable_over_unpredictable": {point: result.ratio(point) for point in POINTS},
        "populations": {
            p: {
                "checkpoint": str(f.run.checkpoint),
                "command": f.run.command,
                "n_windows": len(f.starts),
                **{
                    point: {
                        "trace": f.trace(point).mean,
                        "ci95": f.trace(point).ci95,
                        "median": float(np.median(f.squared_norms[point])),
                    }
                    for point in POINTS
                },
            }
            for p, f in result.populations.items()
        },
    }
    write_text_atomically(files["json"], json.dumps(record, indent=2) + "\n")
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["population", "point", "recording", "start_s", "squared_gradient_norm"])
    for p, f in result.populations.items():
        for point in POINTS:
            for (recording, start), value in zip(f.starts, f.squared_norms[point], strict=True):
                writer.writerow([p, point, recording, f"{start:.4f}", f"{value:.8g}"])
    write_text_atomically(files["csv"], table.getvalue())
    write_atomically(files["png"], functools.partial(_plot, result))
    return files


def _plot(result: FisherResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(POINTS), figsize=(4.5 * len(POINTS), 3.8))
    for axis, point in zip(axes, POINTS, strict=True):
        names = list(result.populations)
        traces = [result.populations[p].trace(point) for p in names]
        errors = [t.half_width or 0.0 for t in traces]
        axis.bar(
            names,
            [t.mean for t in traces],
            yerr=errors,
            capsize=6,
            color=[f"C{i}" for i in range(len(names))],
        )
        ratio = result.ratio(point)
        axis.set_title(f"{point} weights" + ("" if ratio is None else f": ratio {ratio:.3g}x"))
        axis.set_ylabel("Fisher trace per window (mean ± 95 % CI)")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)
