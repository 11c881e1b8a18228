"""Pictures of the runs: decoded movie frames beside the true ones, and training curves."""

from __future__ import annotations

import csv
import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch

from poyocap_plugin.brainset import MOVIE_READOUT
from poyocap_plugin.frame_layout import unflatten_frames
from poyocap_plugin.workflow.checkpoints import load_train_checkpoint
from poyocap_plugin.workflow.files import write_atomically
from poyocap_plugin.workflow.stages import STAGES

__all__ = ["Split", "plot_training_curves", "render_decoded_frames"]

Split = Literal["train", "valid", "test"]
"""The brainset splits (each session's ``<split>_domain``)."""

logger = logging.getLogger(__name__)


def _load_run(checkpoint: Path, data_root: Path | None):
    """Rebuild the model and the evaluation transform of a train.py checkpoint."""
    from torch_brain.transforms import Compose

    run = load_train_checkpoint(checkpoint, data_root=data_root)
    model = run.instantiate_model()
    readouts = getattr(getattr(model, "readout", None), "readout_specs", {})
    if MOVIE_READOUT not in readouts:
        raise ValueError(
            f"{checkpoint} is not a movie-decoding model: it has no {MOVIE_READOUT!r} "
            f"readout (it has {sorted(readouts)})"
        )
    model.load_state_dict(dict(run.state_dict))
    model.eval()
    return model, run.config, Compose([*run.eval_transforms(), model.tokenize])


def render_decoded_frames(
    checkpoint: Path,
    out_dir: Path,
    *,
    data_root: Path | None = None,
    split: Split = "test",
    frames_per_recording: int = 8,
) -> list[Path]:
    """Write, per recording, a PNG grid of true (top) and decoded (bottom) movie frames.

    The frames are ``frames_per_recording`` windows spread evenly over the recording's
    ``split``, decoded by the model of a stage-2 checkpoint written by train.py (its
    model, dataset and evaluation transforms are rebuilt from the checkpoint's config).

    Args:
        checkpoint: a stage-2 (movie) checkpoint of torch_brain's train.py.
        out_dir: where the PNGs go, one per recording (``<session>.png``).
        data_root: the processed-data root, if not the one the run used.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        frames_per_recording: how many frames to show per recording.

    Returns:
        The PNG paths.

    Raises:
        FileNotFoundError: if ``checkpoint`` does not exist.
        ValueError: if it is not a movie-decoding checkpoint of train.py.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torch_brain.data import Dataset, collate
    from torch_brain.data.dataset import DatasetIndex

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    if split not in get_args(Split):
        raise ValueError(f"split must be one of {get_args(Split)}; got {split!r}")
    model, cfg, transform = _load_run(checkpoint, data_root)
    dataset = Dataset(root=cfg.data_root, config=cfg.dataset, split=split, transform=transform)
    dataset.disable_data_leakage_check()
    # the size the run decoded at, from its config (the model was built from it)
    height, width = int(cfg.model.frame_decoder.height), int(cfg.model.frame_decoder.width)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    written = []
    for recording_id, intervals in dataset.get_sampling_intervals().items():
        starts = np.asarray(intervals.start)
        if len(starts) == 0:
            continue
        chosen = starts[np.linspace(0, len(starts) - 1, frames_per_recording).round().astype(int)]
        chosen = np.unique(chosen)
        batch = collate(
            [dataset[DatasetIndex(recording_id, s, s + model.sequence_length)] for s in chosen]
        )
        with torch.no_grad():
            decoded = model(**batch["model_inputs"])[MOVIE_READOUT]
        true = batch["target_values"][MOVIE_READOUT]
        figure, axes = plt.subplots(2, len(chosen), figsize=(2.2 * len(chosen), 2.6), squeeze=False)
        for column in range(len(chosen)):
            for row, (label, frames) in enumerate((("true", true), ("decoded", decoded))):
                axis = axes[row, column]
                image = unflatten_frames(
                    frames[column : column + 1], height=height, width=width, name=label
                )[0]
                axis.imshow(image.numpy(), cmap="gray", vmin=0, vmax=255)
                axis.set_xticks([])
                axis.set_yticks([])
                if column == 0:
                    axis.set_ylabel(label)
        figure.suptitle(f"{recording_id} ({split})", fontsize=9)
        figure.tight_layout()
        path = out_dir / f"{recording_id.split('/')[-1]}.png"
        write_atomically(path, functools.partial(figure.savefig, format="png", dpi=100))
        plt.close(figure)
        written.append(path)
        logger.info("Wrote %s", path)
    return written


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
    write_atomically(path, functools.partial(figure.savefig, format="png", dpi=100))
    return path
