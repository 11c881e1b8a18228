r"""The masked-reconstruction loss landscape of each population, and how rough it is.

POYO-CAP (Fig. 2) projects the stage-1 loss onto two principal directions of training and
finds the predictable neurons' surface smooth and the unpredictable neurons' rugged. Here,
for each population (:data:`~.populations.POPULATIONS`), stage 1 is trained (or its runs
reused), and the masked-latent loss of held-out windows (:mod:`.objective`) is evaluated
on a grid :math:`\theta^* + a\,d_1 + b\,d_2` around the final weights :math:`\theta^*`:

* ``directions="pca"`` (default): :math:`d_1, d_2` are the first two right singular
  vectors of the trajectory :math:`[\theta_t - \theta^*]_t` (initial weights and every
  epoch's checkpoint), as Li et al. (2018) plot optimisation paths; the grid covers both
  populations' paths (the same extent, in parameter-space units, for both).
* ``directions="random"``: filter-normalised Gaussian directions (Li et al., 2018): each
  row of each weight matrix scaled to that row's norm in :math:`\theta^*`, vectors (biases,
  norms) left out; the grid spans :math:`[-1, 1]^2`.

Only the parameters both populations' models share move (not the unit/session
vocabularies, sized by each population). The roughness of each surface is
:func:`~.roughness.laplacian_roughness` (and :func:`~.roughness.local_minima`); the
headline is its ratio, unpredictable over predictable, beside the paper's 138x.
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
from typing import Literal, get_args

import numpy as np
import torch

from poyocap_plugin.workflow.analyses.objective import (
    held_out_windows,
    loss_parameter_names,
    mean_loss,
    parameters_named,
)
from poyocap_plugin.workflow.analyses.populations import (
    POPULATIONS,
    Stage1Run,
    stage1_runs,
    trajectory,
)
from poyocap_plugin.workflow.analyses.roughness import laplacian_roughness, local_minima
from poyocap_plugin.workflow.analysis_results import result_path
from poyocap_plugin.workflow.files import write_atomically, write_text_atomically
from poyocap_plugin.workflow.probe.features import torch_device
from poyocap_plugin.workflow.settings import CurriculumSettings
from poyocap_plugin.workflow.simulated_brainset import SimulationSettings

__all__ = [
    "PAPER_ROUGHNESS_RATIO",
    "Directions",
    "LandscapeResult",
    "PopulationLandscape",
    "filter_normalised_directions",
    "loss_surface",
    "run_landscape",
    "trajectory_directions",
]

logger = logging.getLogger(__name__)

Directions = Literal["pca", "random"]

#: POYO-CAP, Fig. 2: the unpredictable neurons' landscape is "138x rougher"
PAPER_ROUGHNESS_RATIO = 138.0
# the PCA grid reaches this far beyond the farthest point of either trajectory
_MARGIN = 1.25


def _flat(parameters: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.detach().flatten().double().cpu() for p in parameters])


def trajectory_directions(
    points: Sequence[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    r"""The first two principal directions of a trajectory that ends at its last point.

    Args:
        points: Flat parameter vectors in training order, the last one :math:`\theta^*`.

    Returns:
        :math:`d_1, d_2` (unit vectors), each point's coordinates along them
        :math:`(T, 2)`, and the fraction of the trajectory's squared length each explains.

    Raises:
        ValueError: With fewer than three points (two directions need two steps).
    """
    if len(points) < 3:
        raise ValueError(
            f"a trajectory of {len(points)} points has fewer than two directions: train "
            "stage 1 for at least 2 epochs"
        )
    offsets = torch.stack(list(points)) - points[-1]
    _, singular, basis = torch.linalg.svd(offsets, full_matrices=False)
    d1, d2 = basis[0], basis[1]
    coordinates = (offsets @ torch.stack((d1, d2)).T).numpy()
    explained = (singular[:2] ** 2 / (singular**2).sum()).numpy()
    return d1, d2, coordinates, explained


def filter_normalised_directions(
    parameters: Sequence[torch.Tensor], *, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two random directions, each row of each matrix scaled to the parameter's row norm
    (Li et al., 2018); 1-D parameters get no component.

    Args:
        parameters: The parameters the directions move, in order.
        seed: Seed of the Gaussian draws.
    """
    generator = torch.Generator().manual_seed(seed)
    directions = []
    for _ in range(2):
        chunks = []
        for parameter in parameters:
            value = parameter.detach().double().cpu()
            if value.dim() <= 1:
                chunks.append(torch.zeros(value.numel(), dtype=torch.float64))
                continue
            draw = torch.randn(value.shape, generator=generator, dtype=torch.float64)
            rows, draws = value.flatten(1), draw.flatten(1)
            scale = rows.norm(dim=1, keepdim=True) / draws.norm(dim=1, keepdim=True).clamp_min(
                1e-12
            )
            chunks.append((draws * scale).flatten())
        directions.append(torch.cat(chunks))
    return directions[0], directions[1]


def _assign(parameters: Sequence[torch.nn.Parameter], flat: torch.Tensor) -> None:
    first = 0
    for parameter in parameters:
        count = parameter.numel()
        parameter.copy_(flat[first : first + count].view_as(parameter).to(parameter))
        first += count


def loss_surface(
    parameters: Sequence[torch.nn.Parameter],
    directions: tuple[torch.Tensor, torch.Tensor],
    coordinates: np.ndarray,
    evaluate: Callable[[], float],
) -> np.ndarray:
    r"""``evaluate()`` at :math:`\theta^* + a\,d_1 + b\,d_2` for every ``a, b`` in
    ``coordinates``; the parameters are put back to :math:`\theta^*` afterwards.

    Returns:
        The surface, ``surface[i, j]`` at ``(coordinates[i], coordinates[j])``.
    """
    centre = _flat(parameters).to(parameters[0].device)
    d1, d2 = directions
    surface = np.empty((len(coordinates), len(coordinates)))
    try:
        with torch.no_grad():
            for i, a in enumerate(coordinates):
                for j, b in enumerate(coordinates):
                    _assign(parameters, centre + float(a) * d1 + float(b) * d2)
                    surface[i, j] = evaluate()
                logger.info("loss surface: row %d/%d", i + 1, len(coordinates))
    finally:
        with torch.no_grad():
            _assign(parameters, centre)
    return surface


@dataclass(frozen=True)
class PopulationLandscape:
    """One population's surface.

    Attributes:
        population: A key of :data:`~.populations.POPULATIONS`, or a given checkpoint's name.
        run: Its stage-1 run; its end point is the grid's centre.
        coordinates: The grid's coordinates along each direction.
        surface: The loss, ``surface[i, j]`` at ``(coordinates[i], coordinates[j])``.
        path: The trajectory's coordinates :math:`(T, 2)` (``pca`` only).
        explained: The fraction of the trajectory each direction explains (``pca`` only).
        n_windows: Held-out windows the loss is averaged over.
    """

    population: str
    run: Stage1Run
    coordinates: np.ndarray
    surface: np.ndarray
    path: np.ndarray | None
    explained: np.ndarray | None
    n_windows: int

    @property
    def roughness(self) -> float:
        return laplacian_roughness(self.surface)

    @property
    def local_minima(self) -> int:
        return local_minima(self.surface)


@dataclass(frozen=True)
class LandscapeResult:
    """Both populations' surfaces and the files written."""

    directions: Directions
    landscapes: dict[str, PopulationLandscape]
    files: dict[str, Path]

    @property
    def roughness_ratio(self) -> float | None:
        """Roughness unpredictable / predictable; None without both, or a flat predictable."""
        smooth_name, rough_name = POPULATIONS
        if {smooth_name, rough_name} - set(self.landscapes):
            return None
        smooth = self.landscapes[smooth_name].roughness
        return self.landscapes[rough_name].roughness / smooth if smooth > 0 else None

    def headline(self) -> str:
        parts = [
            f"{p}: roughness {land.roughness:.3g}, {land.local_minima} local minima"
            for p, land in self.landscapes.items()
        ]
        ratio = self.roughness_ratio
        if ratio is not None:
            parts.append(
                f"unpredictable / predictable = {ratio:.3g}x (paper: {PAPER_ROUGHNESS_RATIO:g}x)"
            )
        return f"loss landscape ({self.directions} directions): " + "; ".join(parts)


def run_landscape(
    out_dir: Path,
    *,
    data_root: Path | None = None,
    simulation: SimulationSettings | None = None,
    settings: CurriculumSettings | None = None,
    checkpoints: Mapping[str, Path] | None = None,
    seed: int = 0,
    directions: Directions = "pca",
    steps: int = 15,
    max_windows: int = 64,
    batch_size: int = 32,
    device: str = "cpu",
    min_units: int = 1,
) -> LandscapeResult:
    """Train (or reuse) stage 1 on each population and map its loss around the end point.

    Writes ``landscape.json`` (roughness, minima, the surfaces), ``landscape.csv`` (one
    row per grid point) and ``landscape.png`` (each surface in 3-D above its contours and
    the training path) into ``out_dir``.

    Args:
        out_dir: Where data (when simulated), configs, runs and results go.
        data_root, simulation: The data, exactly one (see :func:`~.populations.pretrain_runs`).
        settings: Run sizes; default the ``cpu`` preset.
        checkpoints: Stage-1 checkpoints to read instead of training, by population name
            (see :func:`~.populations.stage1_runs`).
        seed: train.py's seed (and the random directions').
        directions: ``"pca"`` or ``"random"`` (module doc).
        steps: Grid points per direction (odd keeps the centre on the grid).
        max_windows: Held-out (validation-split) windows the loss averages over.
        batch_size: Windows per forward pass.
        device: Torch device of the loss evaluations.
        min_units: Fewest selected neurons a session may bring.

    Raises:
        ValueError: For unknown directions, ``steps < 3``, or a run of fewer than 2 epochs.
    """
    if directions not in get_args(Directions):
        raise ValueError(f"directions must be one of {get_args(Directions)}, got {directions!r}")
    if steps < 3:
        raise ValueError(f"steps must be >= 3 (a Laplacian needs neighbours), got {steps!r}")
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
    prepared = {}
    for population, run in runs.items():
        # random directions need only the end point; the path is the PCA's input
        final, models = trajectory(run, data_root=data_root, endpoints_only=directions != "pca")
        windows = held_out_windows(final, models[-1], root=data_root, max_windows=max_windows)
        names = loss_parameter_names(models[-1], windows)
        points = [_flat(parameters_named(m, names)) for m in models]
        model = models[-1].to(target)
        prepared[population] = (model, windows, parameters_named(model, names), points)

    paths, explained, basis = {}, {}, {}
    for population, (_, _, parameters, points) in prepared.items():
        if directions == "pca":
            d1, d2, paths[population], explained[population] = trajectory_directions(points)
        else:
            d1, d2 = filter_normalised_directions(parameters, seed=seed)
        basis[population] = (d1.to(target), d2.to(target))
    extent = _MARGIN * max(np.abs(p).max() for p in paths.values()) if paths else 1.0
    coordinates = np.linspace(-extent, extent, steps)

    landscapes = {}
    for population, (model, windows, parameters, _) in prepared.items():
        logger.info(
            "%s: loss on %d held-out windows, %d x %d grid", population, len(windows), steps, steps
        )
        surface = loss_surface(
            parameters,
            basis[population],
            coordinates,
            functools.partial(mean_loss, model, windows, batch_size=batch_size),
        )
        landscapes[population] = PopulationLandscape(
            population=population,
            run=runs[population],
            coordinates=coordinates,
            surface=surface,
            path=paths.get(population),
            explained=explained.get(population),
            n_windows=len(windows),
        )
    result = LandscapeResult(directions, landscapes, files={})
    result = replace(result, files=_write(out_dir, result, data_root))
    logger.info("%s", result.headline())
    return result


def _write(out_dir: Path, result: LandscapeResult, data_root: Path) -> dict[str, Path]:
    files = {
        "json": result_path(out_dir, "landscape"),
        "csv": out_dir / "landscape.csv",
        "png": out_dir / "landscape.png",
    }
    landscapes = result.landscapes
    record = {
        "data_root": str(data_root),
        "directions": result.directions,
        "roughness_definition": "mean squared discrete Laplacian / range^2 (docs/analyses.md)",
        "paper_roughness_ratio": PAPER_ROUGHNESS_RATIO,
        "roughness_ratio": result.roughness_ratio,
        "populations": {
            p: {
                "checkpoint": str(land.run.checkpoint),
                "command": land.run.command,
                "roughness": land.roughness,
                "local_minima": land.local_minima,
                "n_windows": land.n_windows,
                "loss_min": float(land.surface.min()),
                "loss_max": float(land.surface.max()),
                "explained": None if land.explained is None else land.explained.tolist(),
                "coordinates": land.coordinates.tolist(),
                "surface": land.surface.tolist(),
                "path": None if land.path is None else land.path.tolist(),
            }
            for p, land in landscapes.items()
        },
    }
    write_text_atomically(files["json"], json.dumps(record, indent=2) + "\n")
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["population", "a", "b", "loss"])
    for p, land in landscapes.items():
        for i, a in enumerate(land.coordinates):
            for j, b in enumerate(land.coordinates):
                writer.writerow([p, f"{a:.6g}", f"{b:.6g}", f"{land.surface[i, j]:.8g}"])
    write_text_atomically(files["csv"], table.getvalue())
    write_atomically(files["png"], functools.partial(_plot, landscapes, result.directions))
    return files


def _plot(landscapes: dict[str, PopulationLandscape], directions: Directions, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = len(landscapes)
    figure = plt.figure(figsize=(5 * columns, 8.4))
    for k, (population, land) in enumerate(landscapes.items()):
        a, b = np.meshgrid(land.coordinates, land.coordinates, indexing="ij")
        above = figure.add_subplot(2, columns, 1 + k, projection="3d")
        above.plot_surface(a, b, land.surface, cmap="viridis", linewidth=0)
        above.set_title(f"{population}: roughness {land.roughness:.3g}, {land.local_minima} minima")
        above.set_zlabel("masked-latent loss (held out)")
        axis = figure.add_subplot(2, columns, 1 + columns + k)
        filled = axis.contourf(a, b, land.surface, levels=20, cmap="viridis")
        axis.contour(a, b, land.surface, levels=20, colors="white", linewidths=0.4)
        if land.path is not None:
            axis.plot(land.path[:, 0], land.path[:, 1], "o-", color="red", ms=3, label="training")
            axis.legend(loc="upper right", fontsize=8)
        for view in (above, axis):
            view.set_xlabel(f"{directions} direction 1")
            view.set_ylabel(f"{directions} direction 2")
        figure.colorbar(filled, ax=axis, label="masked-latent loss (held out)")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)
