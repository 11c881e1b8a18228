"""The features the linear probe is fit on, one vector per drifting-grating trial.

For a CAPOYO checkpoint of torch_brain's train.py: the trunk's processed latents
(:meth:`CAPOYO.encode`) of the trial's window, pooled into one vector (see
:data:`~.pooling.Pooling`: their mean, or all of them concatenated), the same for the
architecture at random initialisation, and the trial's mean dF/F per neuron after the run's
``eval_transforms`` (the raw-data baseline).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from poyocap_plugin.brainset import DG_READOUT
from poyocap_plugin.normalize import missing_at_mean
from poyocap_plugin.workflow.checkpoints import TrainCheckpoint
from poyocap_plugin.workflow.probe.pooling import Pooling, check_pooling, pool_latents

__all__ = [
    "SplitFeatures",
    "check_capoyo",
    "drifting_grating_spec",
    "load_trunks",
    "split_features",
    "torch_device",
    "trial_features",
]

logger = logging.getLogger(__name__)

_CAPOYO_TARGET = "poyocap_plugin.models.CAPOYO"
# the inputs of CAPOYO.encode, taken from what CAPOYO.tokenize returns
_ENCODE_INPUTS = (
    "input_unit_index",
    "input_timestamps",
    "input_values",
    "input_mask",
    "input_session_index",  # with model.input_token="sum" only
    "input_cre_line_index",  # with model.cre_line_embedding only
    "latent_index",
    "latent_timestamps",
)


@dataclass
class SplitFeatures:
    """One split's trials of one recording: labels, raw features, trunk features.

    Attributes:
        starts: Start time (s) of each trial's window, :math:`(N_{trials},)`.
        labels: Direction class per trial, :math:`(N_{trials},)` (int64).
        unit_ids: The neurons the model sees, :math:`(N_{units},)`.
        features: Per feature set, :math:`(N_{trials}, F)`: ``F = D`` or
            ``N_latent * D`` for the trunks (by the pooling), ``N_units`` for
            ``"raw_df_over_f"``.
    """

    starts: np.ndarray
    labels: np.ndarray
    unit_ids: np.ndarray
    features: dict[str, np.ndarray]


def torch_device(device: str) -> torch.device:
    """``device`` as a torch device, checked to be available here.

    Raises:
        ValueError: If it is not a torch device, or CUDA without CUDA.
    """
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device={device!r} is not a torch device ({error})") from error
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}, but CUDA is not available here; use device='cpu'")
    return parsed


def check_capoyo(run: TrainCheckpoint) -> None:
    """Check that the checkpoint's model is the plugin's CAPOYO.

    Raises:
        ValueError: If ``model._target_`` cannot be imported or is another model.
    """
    import hydra
    from omegaconf import OmegaConf

    from poyocap_plugin.models import CAPOYO

    target = OmegaConf.select(run.config, "model._target_")
    try:
        is_capoyo = target is not None and hydra.utils.get_class(target) is CAPOYO
    except (ImportError, ValueError) as error:
        raise ValueError(
            f"{run.path}: model._target_={target!r} cannot be imported ({error}); the probe "
            f"needs a {_CAPOYO_TARGET} checkpoint"
        ) from error
    if not is_capoyo:
        raise ValueError(
            f"{run.path} is not a CAPOYO checkpoint: model._target_={target!r}, expected "
            f"{_CAPOYO_TARGET!r}"
        )


def load_trunks(
    run: TrainCheckpoint, *, seed: int, device: torch.device
) -> dict[str, torch.nn.Module]:
    """The trunks probed: the checkpoint's model and the same architecture drawn afresh.

    The random-init model is built after ``torch.manual_seed(seed)``, as train.py builds
    its model just after seeding torch, and gets the pretrained model's vocabularies.

    Args:
        run: A CAPOYO checkpoint (see :func:`check_capoyo`).
        seed: The torch seed of the random-init model.
        device: Where both models go.

    Returns:
        ``{"pretrained": model, "random_init": model}``, both in eval mode on ``device``.

    Raises:
        ValueError: If the checkpoint holds no unit/session vocabulary.
    """
    pretrained = run.load_model()
    if pretrained.unit_emb.is_lazy() or pretrained.session_emb.is_lazy():
        raise ValueError(
            f"{run.path} holds no unit/session vocabulary (model.unit_emb.vocab): it was "
            "saved before train.py linked the model to its dataset"
        )
    return {
        "pretrained": pretrained.to(device),
        "random_init": run.initial_model(seed=seed, vocabularies_of=pretrained).to(device),
    }


def _probe_trials(
    dataset, recording_id: str, intervals, window_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Starts (s) and direction classes of the trials whose whole window lies in ``intervals``."""
    spec_key = drifting_grating_spec().value_key  # "drifting_gratings.orientation_id"
    table, label_key = spec_key.split(".")
    # the whole recording, read lazily, as torch_brain's get_sampling_intervals reads it
    data = dataset._get_data_object(recording_id)
    trials = getattr(data, table, None)
    if trials is None or not hasattr(trials, label_key):
        raise ValueError(
            f"recording {recording_id!r} has no {spec_key!r}: the probe needs "
            "drifting-grating trials"
        )
    starts = np.asarray(trials.start, dtype=np.float64)
    labels = np.asarray(getattr(trials, label_key), dtype=np.int64)
    interval_start = np.asarray(intervals.start, dtype=np.float64)
    interval_end = np.asarray(intervals.end, dtype=np.float64)
    which = np.searchsorted(interval_start, starts, side="right") - 1
    inside = (which >= 0) & (interval_end[np.maximum(which, 0)] >= starts + window_s)
    return starts[inside], labels[inside]


def drifting_grating_spec() -> Any:
    """The registered drifting-grating direction modality: its ``value_key`` and ``dim``."""
    from torch_brain.registry import MODALITY_REGISTRY

    return MODALITY_REGISTRY[DG_READOUT]


def split_features(
    dataset,
    recording_id: str,
    intervals,
    models: Mapping[str, torch.nn.Module],
    *,
    transforms: list[Any],
    window_s: float,
    batch_size: int,
    device: torch.device,
    pooling: Pooling = "mean",
) -> SplitFeatures:
    """The features of one recording's drifting-grating trials in one split.

    Args:
        dataset: The split's ``torch_brain.data.Dataset``.
        recording_id: The recording.
        intervals: Its sampling intervals in the split.
        models: The trunks, by feature-set name; ``"pretrained"`` also tokenizes.
        transforms: The run's ``eval_transforms``, applied to each window first.
        window_s: Window per trial (s), the model's ``sequence_length``.
        batch_size: Windows per forward pass.
        device: The models' device.
        pooling: How a window's processed latents become its trunk feature (see
            :data:`~.pooling.Pooling`).

    Returns:
        The labels, the neurons seen and the features of every trial of the split.

    Raises:
        ValueError: If ``pooling`` is unknown, no trial fits a window in the intervals,
            or the transforms keep different neurons in different windows.
    """
    from torch_brain.data import collate

    check_pooling(pooling)

    starts, labels = _probe_trials(dataset, recording_id, intervals, window_s)
    if len(starts) == 0:
        raise ValueError(
            f"recording {recording_id!r} has no drifting-grating trial in split "
            f"{dataset.split!r} that holds a whole window of model.sequence_length="
            f"{window_s} s inside its sampling intervals"
        )
    tokenizer = models["pretrained"]
    raw, trunk = [], {name: [] for name in models}
    unit_ids = None
    for first in range(0, len(starts), batch_size):
        samples = []
        for start in starts[first : first + batch_size]:
            sample = dataset.get(recording_id, start, start + window_s)
            for transform in transforms:
                sample = transform(sample)
            ids = np.asarray(sample.units.id)
            if unit_ids is None:
                unit_ids = ids
            elif not np.array_equal(ids, unit_ids):
                raise ValueError(
                    f"the eval_transforms keep different neurons in different windows of "
                    f"{recording_id!r} ({len(unit_ids)} vs {len(ids)}): the raw dF/F baseline "
                    "needs the same neurons in every window"
                )
            raw.append(missing_at_mean(sample.calcium_traces.df_over_f).mean(0))
            samples.append(tokenizer.tokenize(sample)["model_inputs"])
        batch = collate(
            [{key: inputs[key] for key in _ENCODE_INPUTS if key in inputs} for inputs in samples]
        )
        batch = {key: value.to(device) for key, value in batch.items()}
        with torch.no_grad():
            for name, model in models.items():
                latents = model.encode(**batch)
                trunk[name].append(pool_latents(latents, pooling).float().cpu().numpy())
    features = {name: np.concatenate(chunks) for name, chunks in trunk.items()}
    features["raw_df_over_f"] = np.stack(raw)
    return SplitFeatures(starts=starts, labels=labels, unit_ids=unit_ids, features=features)


def trial_features(
    run: TrainCheckpoint,
    models: Mapping[str, torch.nn.Module],
    *,
    root: Path,
    pooling: Pooling,
    batch_size: int,
    device: torch.device,
) -> dict[str, dict[str, SplitFeatures]]:
    """The features of every recording's drifting-grating trials, in the training and test
    splits of the run's dataset config (see :func:`split_features`).

    Args:
        run: The checkpoint whose dataset config, splits and ``eval_transforms`` are used.
        models: The trunks, by feature-set name; ``"pretrained"`` also tokenizes and gives
            the window length (its ``sequence_length``).
        root: The processed-data root.
        pooling, batch_size, device: as in :func:`split_features`.

    Returns:
        ``{split: {recording: features}}`` for the splits ``"train"`` and ``"test"``.
    """
    from torch_brain.data import Dataset

    window_s = float(models["pretrained"].sequence_length)
    transforms = run.eval_transforms()
    splits: dict[str, dict[str, SplitFeatures]] = {}
    for split in ("train", "test"):
        dataset = Dataset(root=str(root), config=run.config.dataset, split=split)
        # the windows are chosen inside this split's sampling intervals (see split_features)
        dataset.disable_data_leakage_check()
        sampling_intervals = dataset.get_sampling_intervals()
        splits[split] = {
            recording: split_features(
                dataset,
                recording,
                sampling_intervals[recording],
                models,
                transforms=transforms,
                window_s=window_s,
                batch_size=batch_size,
                device=device,
                pooling=pooling,
            )
            for recording in sorted(sampling_intervals)
        }
        logger.info(
            "%s: %d trials in %d recordings",
            split,
            sum(len(f.labels) for f in splits[split].values()),
            len(splits[split]),
        )
    return splits
