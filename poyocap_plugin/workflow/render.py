"""Pictures of the runs: decoded movie frames beside the true ones, and training curves."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch

from poyocap_plugin.brainset import MOVIE_READOUT
from poyocap_plugin.frame_layout import unflatten_frames
from poyocap_plugin.workflow.baselines import MovieBaselines
from poyocap_plugin.workflow.checkpoints import load_train_checkpoint
from poyocap_plugin.workflow.files import write_atomically
from poyocap_plugin.workflow.scalars import read_scalars
from poyocap_plugin.workflow.stages import STAGES

__all__ = [
    "Split",
    "plot_training_curves",
    "render_decoded_frames",
    "render_ridge_frames",
    "shown_windows",
]

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


def shown_windows(n_windows: int, frames_per_recording: int) -> np.ndarray:
    """Indices of the windows a figure shows: ``frames_per_recording`` spread evenly.

    Args:
        n_windows: How many windows the recording's split holds, in time order.
        frames_per_recording: How many to show (fewer when windows are fewer).

    Returns:
        Sorted, distinct indices into the windows.
    """
    spread = np.linspace(0, n_windows - 1, frames_per_recording).round().astype(int)
    return np.unique(spread)


def _write_grid(true, decoded, *, height: int, width: int, title: str, path: Path) -> Path:
    """Write a PNG of ``true`` frames (top row) over ``decoded`` ones (bottom row).

    Both are of shape :math:`(N, H W)` or :math:`(N, H, W)`, grey levels in [0, 255].
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    true, decoded = torch.as_tensor(true), torch.as_tensor(decoded)
    figure, axes = plt.subplots(2, len(true), figsize=(2.2 * len(true), 2.6), squeeze=False)
    for column in range(len(true)):
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
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    write_atomically(path, functools.partial(figure.savefig, format="png", dpi=100))
    plt.close(figure)
    logger.info("Wrote %s", path)
    return path


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
        chosen = starts[shown_windows(len(starts), frames_per_recording)]
        batch = collate(
            [dataset[DatasetIndex(recording_id, s, s + model.sequence_length)] for s in chosen]
        )
        with torch.no_grad():
            decoded = model(**batch["model_inputs"])[MOVIE_READOUT]
        true = batch["target_values"][MOVIE_READOUT]
        path = out_dir / f"{recording_id.split('/')[-1]}.png"
        title = f"{recording_id} ({split})"
        written.append(
            _write_grid(true, decoded, height=height, width=width, title=title, path=path)
        )
    return written


def render_ridge_frames(
    movie: MovieBaselines, out_dir: Path, *, frames_per_recording: int = 8
) -> list[Path]:
    """Write, per test recording, a PNG grid of true (top) and ridge-decoded (bottom) frames.

    The layout is :func:`render_decoded_frames`'s, and so are the windows shown
    (:func:`shown_windows` of the test split's windows in time order): both figures have
    the same true frames on top.

    Args:
        movie: A movie run's baselines, with the ridge decoder's frames of every test
            window (:func:`poyocap_plugin.workflow.baselines.evaluate_movie_baselines`).
        out_dir: Where the PNGs go, one per recording (``<session>.png``).
        frames_per_recording: How many frames to show per recording.

    Returns:
        The PNG paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for recording_id, recording in movie.ridge_frames.items():
        if len(recording.true) == 0:
            continue
        shown = shown_windows(len(recording.true), frames_per_recording)
        written.append(
            _write_grid(
                recording.true[shown],
                recording.decoded[shown],
                height=movie.height,
                width=movie.width,
                title=f"{recording_id} (test)",
                path=out_dir / f"{recording_id.split('/')[-1]}.png",
            )
        )
    return written


def plot_training_curves(runs: Mapping[str, Mapping[str, Path]], path: Path) -> Path:
    """Plot training loss and validation metric per stage, one line per arm; write a PNG.

    Args:
        runs: ``{arm label: {stage: a run's scalars}}`` (``StageResult.scalars``); stages
            are ``pretrain``, ``finetune_movie``, ``finetune_dg``.
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
            series = read_scalars(stage_runs[stage])
            for row, key in enumerate(("train_loss", "average_val_metric")):
                if series.get(key):
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
