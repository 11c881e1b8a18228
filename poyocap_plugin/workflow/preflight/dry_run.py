"""The preflight's dry run: plugin transforms check their data, then one batch goes through.

Two steps of train.py that need the data itself. A transform that can check at set-up what
it would otherwise find at its first sample (the neuron sampler's selection on every
recording, the movie template's presence and size) implements :class:`DatasetCheck`, and
:func:`check_transforms` calls it on every transform that does, without knowing their
classes. :func:`run_first_batch` then pushes two training windows through the transforms,
the model's tokenizer, ``collate``, the forward pass and each readout's ``loss_fn``, as
train.py's ``training_step`` does, and feeds the outputs to the dataset config's metrics,
as its evaluator will.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from poyocap_plugin.workflow.preflight.config_checks import INPUT_ERRORS, error_message
from poyocap_plugin.workflow.preflight.result import PreflightError

__all__ = ["DatasetCheck", "check_transforms", "run_first_batch"]

_N_SAMPLE_WINDOWS = 2  # windows pushed through tokenize -> collate -> forward -> loss


@runtime_checkable
class DatasetCheck(Protocol):
    """A transform that checks a whole dataset at set-up, before its first sample.

    ``check_dataset`` raises the error the transform would raise at its first sample
    (``ValueError``, ``KeyError``, ``FileNotFoundError``, ...), naming the recording, the
    file or the config key, and returns anything (e.g. per-recording counts) or None. The
    plugin's :class:`~poyocap_plugin.neuron_sampler.NeuronSampler` and
    :class:`~poyocap_plugin.movie.MovieFrameTargets` implement it.
    """

    def check_dataset(self, dataset: Any) -> object:
        """Check every recording of ``dataset`` (a ``torch_brain.data.Dataset``)."""
        ...


def check_transforms(transforms: Iterable[Any], dataset: Any, key: str) -> None:
    """Call ``check_dataset(dataset)`` on every transform that implements :class:`DatasetCheck`.

    Args:
        transforms: The instantiated ``train_transforms`` or ``eval_transforms``.
        dataset: The split's ``torch_brain.data.Dataset``.
        key: The config key of ``transforms``, for messages.

    Raises:
        PreflightError: Naming ``key``, the transform's class and the transform's message.
    """
    for transform in transforms:
        if not isinstance(transform, DatasetCheck):
            continue
        try:
            transform.check_dataset(dataset)
        except INPUT_ERRORS as error:
            raise PreflightError(
                f"{key} ({type(transform).__name__}): {error_message(error)}"
            ) from error


def _sample_windows(intervals: dict[str, Any], length: float) -> list[tuple[str, float, float]]:
    windows = []
    for recording_id in sorted(intervals):
        interval = intervals[recording_id]
        for start, end in zip(interval.start, interval.end, strict=True):
            if end - start >= length:
                windows.append((recording_id, float(start), float(start) + length))
                break
        if len(windows) == _N_SAMPLE_WINDOWS:
            break
    return windows


def run_first_batch(
    cfg: Any,
    model: Any,
    dataset: Any,
    intervals: dict[str, Any],
    transforms: list[Any],
    *,
    metrics: dict[str, list[tuple[str, Any]]] | None = None,
) -> dict[str, float]:
    """Push two training windows through train.py's ``training_step`` path, without a step.

    The batch's outputs and targets are also fed to the dataset config's metrics, as the
    evaluator will feed them at the first validation (a metric configured for other frames
    or classes fails here, not after an epoch of training).

    Args:
        cfg: The composed config (for messages).
        model: The instantiated model, its vocabularies initialised.
        dataset: The training split's ``torch_brain.data.Dataset``.
        intervals: Its sampling intervals by recording id.
        transforms: The instantiated ``train_transforms``.
        metrics: Per readout, the instantiated metrics with their config keys.

    Returns:
        Each readout's loss on the batch.

    Raises:
        PreflightError: If no interval holds a window, a transform, the tokenizer, the
            forward pass, a loss or a metric fails, or a loss is not finite.
    """
    import torch
    from torch_brain.data import collate
    from torch_brain.transforms import Compose

    windows = _sample_windows(intervals, float(model.sequence_length))
    if not windows:
        raise PreflightError(
            f"dataset: no training interval is as long as model.sequence_length="
            f"{model.sequence_length} s, so train.py's RandomFixedWindowSampler has nothing "
            "to sample; shorten the window or check the sampling_intervals_modifier"
        )
    transform = Compose([*transforms, model.tokenize])
    samples = []
    for recording_id, start, end in windows:
        try:
            samples.append(transform(dataset.get(recording_id, start, end)))
        except INPUT_ERRORS as error:
            raise PreflightError(
                f"train_transforms + model.tokenize on {recording_id} [{start:.3f}, {end:.3f}] "
                f"s: {type(error).__name__}: {error_message(error)}"
            ) from error
    batch = collate(samples)
    losses = {}
    try:
        model.train()
        with torch.no_grad():
            outputs = model(**batch["model_inputs"], unpack_output=False)
            for name, output in outputs.items():
                spec = model.readout.readout_specs[name]
                weights = batch["target_weights"].get(name)
                loss = spec.loss_fn(
                    output, batch["target_values"][name], 1.0 if weights is None else weights
                )
                losses[name] = float(loss)
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as error:
        raise PreflightError(
            f"model ({cfg.model.get('_target_')}) on the first batch: "
            f"{type(error).__name__}: {error_message(error)}"
        ) from error
    for name, output in outputs.items():
        for key, metric in (metrics or {}).get(name, []):
            try:
                metric.update(output, batch["target_values"][name])
            except (ValueError, TypeError, RuntimeError, IndexError) as error:
                raise PreflightError(
                    f"{key} on the first batch's {name} outputs: {type(error).__name__}: "
                    f"{error_message(error)}"
                ) from error
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    if bad:
        raise PreflightError(
            f"the first batch gives non-finite losses {bad}: check the recordings' dF/F for "
            "NaN (units with stats_valid=False) and the neuron selection"
        )
    return losses
