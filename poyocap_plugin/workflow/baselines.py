"""Baselines on the same test frames and trials as a stage-2 run, scored by the same metric.

A number means little without a floor and a simple decoder beside it. For a stage-2 run of
torch_brain's train.py, the run's own dataset config, splits and ``eval_transforms`` are
rebuilt from its checkpoint, as train.py evaluates it, so the baselines see the same
recordings, the same neurons (after the neuron sampler) and the same test windows:

- movie (``finetune_movie``): one window per natural-movie-one frame
  (:func:`poyocap_plugin.frame_windows.frame_sampling_intervals`), its one 2-photon
  frame's dF/F and the frame shown (:class:`poyocap_plugin.movie.MovieFrameTargets`).
  ``mean_frame``: every test frame decoded as the mean of the recording's training
  frames. ``ridge``: a ridge regression from the 2-photon frame's dF/F to the pixels
  (scikit-learn ``RidgeCV`` on standardised dF/F, alpha by cross-validation over contiguous
  blocks of the training frames), clipped to [0, 255]. Both are scored with
  :class:`poyocap_plugin.metrics.MovieSSIM` at the run's frame size; the ridge decoder's
  frames are kept for the report's figures (:func:`evaluate_movie_baselines`).
- drifting gratings (``finetune_dg``): every trial that overlaps the split's sampling
  intervals (the trials train.py's stitch evaluator scores). ``chance``: one over the
  number of directions. ``logistic``: the linear probe's logistic regression
  (:func:`poyocap_plugin.workflow.probe.linear_probe_accuracy`) on each trial's mean dF/F
  per neuron over the trial.

Every baseline is fit and scored per recording (the recordings' neurons differ) and
averaged over the test recordings, as :func:`poyocap_plugin.workflow.runs.arm_metrics`
averages the model's per-recording test metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from poyocap_plugin.brainset import MOVIE_READOUT
from poyocap_plugin.metrics import PIXEL_DATA_RANGE, MovieSSIM
from poyocap_plugin.normalize import missing_at_mean
from poyocap_plugin.workflow.checkpoints import TrainCheckpoint, load_train_checkpoint
from poyocap_plugin.workflow.probe import linear_probe_accuracy
from poyocap_plugin.workflow.probe.features import drifting_grating_spec
from poyocap_plugin.workflow.runs import StageResult

__all__ = [
    "BASELINE_METRICS",
    "BASELINE_TITLES",
    "RIDGE_ALPHAS",
    "RIDGE_FOLDS",
    "Baseline",
    "DecodedFrames",
    "MovieBaselines",
    "MovieFrames",
    "arm_baselines",
    "dg_baselines",
    "evaluate_movie_baselines",
    "mean_frame_decoder",
    "movie_ssim",
    "ridge_decoder",
]

logger = logging.getLogger(__name__)

#: baseline name -> the metric it is scored by (a key of ``stages.METRICS``)
BASELINE_METRICS: dict[str, str] = {
    "mean_frame": "movie_ssim",
    "ridge": "movie_ssim",
    "chance": "dg_accuracy",
    "logistic": "dg_accuracy",
}
#: baseline name -> its row label in the report
BASELINE_TITLES: dict[str, str] = {
    "mean_frame": "mean frame (training split)",
    "ridge": "ridge regression on the 2-photon frame's dF/F",
    "chance": "chance",
    "logistic": "logistic regression on each trial's mean dF/F",
}
#: the ridge penalties RidgeCV chooses among (on standardised dF/F)
RIDGE_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-3, 6, 19))
#: contiguous cross-validation folds of the training frames that choose the penalty
RIDGE_FOLDS = 10

_MOVIE_INTERVAL = "natural_movie_one"  # the stimulus Interval; its frames carry ``image``


@dataclass(frozen=True)
class Baseline:
    """One baseline's test score, averaged over the test recordings.

    Attributes:
        name: A key of :data:`BASELINE_METRICS`.
        value: Its test score.
    """

    name: str
    value: float

    def __post_init__(self) -> None:
        if self.name not in BASELINE_METRICS:
            raise ValueError(f"baseline {self.name!r} is not one of {list(BASELINE_METRICS)}")

    @property
    def metric(self) -> str:
        return BASELINE_METRICS[self.name]


@dataclass(frozen=True)
class MovieFrames:
    """One recording's movie windows in one split.

    Attributes:
        activity: Each window's 2-photon frame, dF/F per neuron after the run's
            ``eval_transforms``, of shape :math:`(N, U)`.
        frames: The movie frame shown, grey levels in [0, 255], of shape :math:`(N, H W)`.
    """

    activity: np.ndarray
    frames: np.ndarray


@dataclass(frozen=True)
class DecodedFrames:
    """One recording's test windows: the movie frames shown and a decoder's frames of them.

    Attributes:
        true: The movie frames, in the order of the split's windows, of shape :math:`(N, H W)`.
        decoded: The decoded frames, the same shape and order.
    """

    true: np.ndarray
    decoded: np.ndarray


@dataclass(frozen=True)
class MovieBaselines:
    """A movie run's baselines and the ridge decoder's test frames.

    Attributes:
        baselines: ``mean_frame`` and ``ridge``, averaged over the test recordings.
        ridge_frames: ``{recording: DecodedFrames}``, every test window of each recording.
        height, width: The run's frame size (pixels).
    """

    baselines: tuple[Baseline, ...]
    ridge_frames: dict[str, DecodedFrames]
    height: int
    width: int


def movie_ssim(decoded: np.ndarray, true: np.ndarray, *, height: int, width: int) -> float:
    r"""Mean SSIM over frames, by the metric train.py logs (:class:`MovieSSIM`).

    Args:
        decoded: Decoded frames of shape :math:`(N, H W)` or :math:`(N, H, W)`, in [0, 255].
        true: The true frames, the same shape.
        height, width: The frame size (pixels).
    """
    metric = MovieSSIM(height=height, width=width)
    metric.update(torch.as_tensor(np.asarray(decoded)), torch.as_tensor(np.asarray(true)))
    return float(metric.compute())


def mean_frame_decoder(train_frames: np.ndarray, n_frames: int) -> np.ndarray:
    r"""``n_frames`` copies of the mean training frame, shape :math:`(n_{frames}, H W)`."""
    mean = np.asarray(train_frames, dtype=np.float64).mean(axis=0)
    return np.broadcast_to(mean, (n_frames, *mean.shape)).copy()


def ridge_decoder(
    train_activity: np.ndarray, train_frames: np.ndarray, test_activity: np.ndarray
) -> np.ndarray:
    r"""Frames decoded by a ridge regression from dF/F to pixels, clipped to [0, 255].

    ``StandardScaler`` then ``RidgeCV(alphas=RIDGE_ALPHAS)``, one alpha for every pixel,
    chosen by :data:`RIDGE_FOLDS`-fold cross-validation (mean squared error) on the
    training frames in time order (contiguous folds, unshuffled).

    Args:
        train_activity: Training dF/F of shape :math:`(N_{train}, U)`.
        train_frames: Training frames of shape :math:`(N_{train}, P)`.
        test_activity: Test dF/F of shape :math:`(N_{test}, U)`.

    Returns:
        Decoded test frames of shape :math:`(N_{test}, P)`.

    Raises:
        ValueError: If the shapes disagree or the training split is empty.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_activity, test_activity = np.asarray(train_activity), np.asarray(test_activity)
    train_frames = np.asarray(train_frames, dtype=np.float64)
    if (
        train_activity.ndim != 2
        or train_frames.ndim != 2
        or len(train_activity) != len(train_frames)
        or len(train_activity) < 2
        or test_activity.ndim != 2
        or test_activity.shape[1] != train_activity.shape[1]
    ):
        raise ValueError(
            "ridge_decoder needs train_activity (N, U) with N >= 2, train_frames (N, P) and "
            f"test_activity (M, U); got {train_activity.shape}, {train_frames.shape} and "
            f"{test_activity.shape}"
        )
    # contiguous folds: neighbouring frames are alike, so leave-one-out would pick too
    # small a penalty (it measured ridge below the mean frame on the demo's data)
    folds = KFold(n_splits=min(RIDGE_FOLDS, len(train_activity)), shuffle=False)
    ridge = RidgeCV(alphas=RIDGE_ALPHAS, cv=folds, scoring="neg_mean_squared_error")
    model = make_pipeline(StandardScaler(), ridge)
    model.fit(train_activity, train_frames)
    return np.clip(model.predict(test_activity), 0.0, PIXEL_DATA_RANGE)


def _split_dataset(run: TrainCheckpoint, split: str):
    from torch_brain.data import Dataset

    dataset = Dataset(root=str(run.config.data_root), config=run.config.dataset, split=split)
    # windows are chosen inside this split's sampling intervals only
    dataset.disable_data_leakage_check()
    return dataset


def movie_split(run: TrainCheckpoint, split: str) -> dict[str, MovieFrames]:
    """Every recording's movie windows in ``split``, as train.py's evaluation sees them.

    One window ``[start, start + model.sequence_length]`` per sampling interval (one per
    movie frame), passed through the run's ``eval_transforms``.

    Raises:
        ValueError: If a window holds other than one 2-photon frame and one movie frame.
    """
    dataset = _split_dataset(run, split)
    window_s = float(run.config.model.sequence_length)
    transforms = run.eval_transforms()
    recordings = {}
    for recording_id, intervals in sorted(dataset.get_sampling_intervals().items()):
        activity, frames = [], []
        for start in np.asarray(intervals.start, dtype=np.float64):
            sample = dataset.get(recording_id, start, start + window_s)
            for transform in transforms:
                sample = transform(sample)
            df_over_f = missing_at_mean(sample.calcium_traces.df_over_f)
            image = np.asarray(getattr(sample, _MOVIE_INTERVAL).image, dtype=np.float64)
            if len(df_over_f) != 1 or len(image) != 1:
                raise ValueError(
                    f"recording {recording_id!r}, {split} window at {start:.4f} s: expected one "
                    f"2-photon frame and one movie frame, got {len(df_over_f)} and {len(image)}"
                )
            activity.append(df_over_f[0])
            frames.append(image[0])
        if activity:
            recordings[recording_id] = MovieFrames(np.stack(activity), np.stack(frames))
    return recordings


def _overlapping(trials, intervals) -> np.ndarray:
    """Mask of the trials that overlap any of the (sorted, disjoint) ``intervals``."""
    start = np.asarray(trials.start, dtype=np.float64)
    end = np.asarray(trials.end, dtype=np.float64)
    lo = np.asarray(intervals.start, dtype=np.float64)
    hi = np.asarray(intervals.end, dtype=np.float64)
    last_before_end = np.searchsorted(lo, end, side="left") - 1  # last interval starting < end
    return (last_before_end >= 0) & (hi[np.maximum(last_before_end, 0)] > start)


def dg_split(run: TrainCheckpoint, split: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    r"""Every recording's drifting-grating trials in ``split``: mean dF/F and direction.

    Returns:
        ``{recording: (features, labels)}``: each trial's mean dF/F per neuron over
        ``[start, end)``, after the run's ``eval_transforms``, shape :math:`(N, U)`, and
        its direction class, shape :math:`(N,)`.
    """
    spec = drifting_grating_spec()
    table, label_key = spec.value_key.split(".")  # drifting_gratings.orientation_id
    dataset = _split_dataset(run, split)
    transforms = run.eval_transforms()
    recordings = {}
    for recording_id, intervals in sorted(dataset.get_sampling_intervals().items()):
        trials = getattr(dataset._get_data_object(recording_id), table)
        chosen = _overlapping(trials, intervals)
        features = []
        for start, end in zip(
            np.asarray(trials.start)[chosen], np.asarray(trials.end)[chosen], strict=True
        ):
            sample = dataset.get(recording_id, float(start), float(end))
            for transform in transforms:
                sample = transform(sample)
            features.append(missing_at_mean(sample.calcium_traces.df_over_f).mean(0))
        if features:
            labels = np.asarray(getattr(trials, label_key), dtype=np.int64)[chosen]
            recordings[recording_id] = (np.stack(features), labels)
    return recordings


def _paired_splits(train: dict, test: dict, what: str, checkpoint: Path) -> list[str]:
    if not test:
        raise ValueError(f"{checkpoint}: the run's dataset config has no test {what}")
    missing = sorted(set(test) - set(train))
    if missing:
        raise ValueError(f"{checkpoint}: test recordings {missing} have no training {what}")
    return sorted(test)


def evaluate_movie_baselines(checkpoint: Path, *, data_root: Path | None = None) -> MovieBaselines:
    """``mean_frame`` and ``ridge`` movie SSIM on a movie run's test frames, and the frames.

    Args:
        checkpoint: A ``finetune_movie`` checkpoint of train.py (its config is used, not
            its weights).
        data_root: The processed-data root, if not the run's.

    Raises:
        ValueError: If the run does not decode movie frames, or a test recording has no
            training frames.
    """
    run = load_train_checkpoint(checkpoint, data_root=data_root)
    if MOVIE_READOUT not in run.config.model.get("readouts", {}):
        raise ValueError(f"{checkpoint} is not a movie run: it has no {MOVIE_READOUT!r} readout")
    size = {
        "height": int(run.config.model.frame_decoder.height),
        "width": int(run.config.model.frame_decoder.width),
    }
    train, test = movie_split(run, "train"), movie_split(run, "test")
    scores: dict[str, list[float]] = {"mean_frame": [], "ridge": []}
    ridge_frames = {}
    for recording in _paired_splits(train, test, "movie frames", checkpoint):
        fit, scored = train[recording], test[recording]
        mean_frame = mean_frame_decoder(fit.frames, len(scored.frames))
        ridge = ridge_decoder(fit.activity, fit.frames, scored.activity)
        ridge_frames[recording] = DecodedFrames(scored.frames, ridge)
        scores["mean_frame"].append(movie_ssim(mean_frame, scored.frames, **size))
        scores["ridge"].append(movie_ssim(ridge, scored.frames, **size))
        logger.info(
            "movie baselines, %s (%d training, %d test frames): mean frame %.3f, ridge %.3f",
            recording,
            len(fit.frames),
            len(scored.frames),
            scores["mean_frame"][-1],
            scores["ridge"][-1],
        )
    baselines = tuple(Baseline(name, float(np.mean(values))) for name, values in scores.items())
    return MovieBaselines(baselines, ridge_frames, **size)


def dg_baselines(checkpoint: Path, *, data_root: Path | None = None) -> list[Baseline]:
    """``chance`` and ``logistic`` DG accuracy on a DG run's test trials.

    Args:
        checkpoint: A ``finetune_dg`` checkpoint of train.py (its config is used, not its
            weights).
        data_root: The processed-data root, if not the run's.

    Raises:
        ValueError: If a test recording has no training trials, or the training trials
            of a recording hold fewer than two directions.
    """
    run = load_train_checkpoint(checkpoint, data_root=data_root)
    train, test = dg_split(run, "train"), dg_split(run, "test")
    accuracies = []
    for recording in _paired_splits(train, test, "drifting-grating trials", checkpoint):
        accuracies.append(linear_probe_accuracy(*train[recording], *test[recording]))
        logger.info("DG baselines, %s: logistic %.3f", recording, accuracies[-1])
    return [
        Baseline("chance", 1.0 / drifting_grating_spec().dim),
        Baseline("logistic", float(np.mean(accuracies))),
    ]


def arm_baselines(
    stages: Mapping[str, StageResult], *, data_root: Path | None = None
) -> tuple[MovieBaselines | None, tuple[Baseline, ...]]:
    """The baselines of the stage-2 runs of one arm and seed: movie and DG, where each ran.

    Every arm of a curriculum tests on the same frames and trials, so one arm's runs serve all.

    Args:
        stages: ``{stage: result}`` of one arm and seed, as
            :func:`~poyocap_plugin.workflow.arms.run_arms` returns them.
        data_root: The processed-data root, if not the runs'.

    Returns:
        The movie run's evaluation (None without one: it holds the ridge decoder's frames)
        and every baseline.
    """
    movie, baselines = None, []
    if "finetune_movie" in stages:
        checkpoint = stages["finetune_movie"].best_checkpoint
        movie = evaluate_movie_baselines(checkpoint, data_root=data_root)
        baselines += movie.baselines
    if "finetune_dg" in stages:
        baselines += dg_baselines(stages["finetune_dg"].best_checkpoint, data_root=data_root)
    return movie, tuple(baselines)
