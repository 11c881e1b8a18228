"""The stage-1 objective of a checkpoint, on a fixed set of held-out windows.

The loss landscape and the Fisher information both evaluate the masked-latent
reconstruction loss (stage 1's self-supervised term, as train.py computes it:
``readout_specs[masked_latent_reconstruction].loss_fn(output, target, weights)``) away
from training: on windows of the run's own dataset config, in a split it did not train
on, with its ``eval_transforms`` (the neuron sampler: the population it pretrains on).
The drifting-grating cross-entropy (weight 0.01 in stage 1) is left out: it needs labels,
and the paper's analyses are of the masked reconstruction.

Windows tile each recording's sampling intervals of the split from their start, one
``model.sequence_length`` after another; when there are more than asked for, evenly
spaced ones are kept, so the same call always gives the same windows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from poyocap_plugin.brainset import MASKED_LATENT_READOUT
from poyocap_plugin.workflow.checkpoints import TrainCheckpoint

__all__ = [
    "HeldOutWindows",
    "held_out_windows",
    "masked_latent_loss",
    "mean_loss",
    "parameters_named",
    "VOCABULARY_MODULES",
    "loss_parameter_names",
]

#: the modules sized by the neurons and sessions a run saw (see loss_parameter_names)
VOCABULARY_MODULES = ("unit_emb.", "session_emb.")


@dataclass(frozen=True)
class HeldOutWindows:
    """Tokenized windows of one split, for one model's vocabularies.

    Attributes:
        split: The split they come from.
        starts: ``(recording, start_s)`` of each window.
        samples: ``model.tokenize`` of each window, in ``starts`` order.
    """

    split: str
    starts: tuple[tuple[str, float], ...]
    samples: tuple[dict[str, Any], ...]

    def __len__(self) -> int:
        return len(self.samples)

    def batches(self, batch_size: int) -> Iterator[dict[str, Any]]:
        """The windows collated ``batch_size`` at a time, in order."""
        from torch_brain.data import collate

        for first in range(0, len(self.samples), batch_size):
            yield collate(list(self.samples[first : first + batch_size]))


def _tile(intervals, window_s: float) -> list[float]:
    starts = []
    for start, end in zip(np.asarray(intervals.start), np.asarray(intervals.end), strict=True):
        count = int(np.floor((end - start) / window_s + 1e-9))
        starts += [float(start) + k * window_s for k in range(count)]
    return starts


def held_out_windows(
    run: TrainCheckpoint,
    model: torch.nn.Module,
    *,
    root: Path,
    split: str = "valid",
    max_windows: int = 64,
) -> HeldOutWindows:
    """The run's windows of ``split``, transformed and tokenized by ``model``.

    Args:
        run: The stage-1 checkpoint whose dataset config and ``eval_transforms`` are used.
        model: A model with the run's vocabularies (its ``tokenize`` and window length).
        root: The processed-data root.
        split: ``"valid"`` or ``"test"`` (the run trained on ``"train"``).
        max_windows: At most this many windows, evenly spaced over all of them.

    Raises:
        ValueError: For ``max_windows < 1``, a training split, or a split without one
            whole window.
    """
    from torch_brain.data import Dataset

    if max_windows < 1:
        raise ValueError(f"max_windows must be >= 1, got {max_windows!r}")
    if split not in ("valid", "test"):
        raise ValueError(f"split must be 'valid' or 'test' (held out), got {split!r}")
    window_s = float(model.sequence_length)
    dataset = Dataset(root=str(root), config=run.config.dataset, split=split)
    dataset.disable_data_leakage_check()  # windows lie inside this split's intervals
    intervals = dataset.get_sampling_intervals()
    starts = [(rec, t) for rec in sorted(intervals) for t in _tile(intervals[rec], window_s)]
    if not starts:
        raise ValueError(
            f"{run.path}: split {split!r} holds no whole window of {window_s} s in its "
            "sampling intervals"
        )
    if len(starts) > max_windows:
        keep = np.linspace(0, len(starts) - 1, max_windows).round().astype(int)
        starts = [starts[i] for i in keep]
    transforms = run.eval_transforms()
    samples = []
    for recording, start in starts:
        sample = dataset.get(recording, start, start + window_s)
        for transform in transforms:
            sample = transform(sample)
        samples.append(model.tokenize(sample))
    return HeldOutWindows(split=split, starts=tuple(starts), samples=tuple(samples))


def masked_latent_loss(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    """Stage 1's masked-latent reconstruction loss of ``model`` on a collated ``batch``.

    Raises:
        ValueError: If the model does not reconstruct masked latents (no masking).
    """
    if getattr(model, "masking", None) is None:
        raise ValueError(
            "the model has no latent masking (model.masking is None): it is not a stage-1 "
            "model, and has no masked-latent loss"
        )
    device = next(model.parameters()).device
    inputs = {
        k: v.to(device) if torch.is_tensor(v) else v for k, v in batch["model_inputs"].items()
    }
    output = model(**inputs)
    spec = model.readout.readout_specs[MASKED_LATENT_READOUT]
    return spec.loss_fn(
        output[MASKED_LATENT_READOUT],
        batch["target_values"][MASKED_LATENT_READOUT].to(device),
        batch["target_weights"][MASKED_LATENT_READOUT].to(device),
    )


def mean_loss(model: torch.nn.Module, windows: HeldOutWindows, *, batch_size: int = 32) -> float:
    """The masked-latent loss averaged over ``windows`` (each batch weighted by its size)."""
    total = 0.0
    with torch.no_grad():
        for first, batch in zip(
            range(0, len(windows), batch_size), windows.batches(batch_size), strict=True
        ):
            size = min(batch_size, len(windows) - first)
            total += float(masked_latent_loss(model, batch)) * size
    return total / len(windows)


def loss_parameter_names(model: torch.nn.Module, windows: HeldOutWindows) -> list[str]:
    """The names of the parameters the masked-latent loss moves, shared across populations.

    Left out: the unit and session embeddings, sized by the neurons and sessions a run saw
    (two populations' models share every other parameter), and whatever the loss does not
    reach (the decoder and readout heads that only the drifting-grating term trains), found
    from the gradient of the first window's loss.

    Raises:
        ValueError: If the loss reaches no shared parameter.
    """
    named = [
        (name, parameter)
        for name, parameter in model.named_parameters()
        if parameter.requires_grad and not name.startswith(VOCABULARY_MODULES)
    ]
    loss = masked_latent_loss(model, next(windows.batches(1)))
    gradients = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    reached = [name for (name, _), g in zip(named, gradients, strict=True) if g is not None]
    if not reached:
        raise ValueError("the masked-latent loss reaches no parameter outside the vocabularies")
    return reached


def parameters_named(model: torch.nn.Module, names: Sequence[str]) -> list[torch.nn.Parameter]:
    """``model``'s parameters of those ``names``, in that order (e.g. another point of the
    same architecture's training)."""
    by_name = dict(model.named_parameters())
    return [by_name[name] for name in names]
