"""The linear probe of one checkpoint: features of each split, fit per recording and pooled."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from poyocap_plugin.workflow.checkpoints import load_train_checkpoint
from poyocap_plugin.workflow.probe.classifier import linear_probe_accuracy
from poyocap_plugin.workflow.probe.features import (
    SplitFeatures,
    check_capoyo,
    drifting_grating_spec,
    load_trunks,
    torch_device,
    trial_features,
)
from poyocap_plugin.workflow.probe.pooling import Pooling, check_pooling
from poyocap_plugin.workflow.probe.result import (
    PROBE_FEATURES,
    TRUNK_FEATURES,
    ProbeResult,
    RecordingProbe,
)

__all__ = ["probe_checkpoint"]


def probe_checkpoint(
    checkpoint: Path,
    *,
    data_root: Path | None = None,
    seed: int | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    pooling: Pooling = "mean",
) -> ProbeResult:
    """Linear-probe the trunk of a CAPOYO checkpoint on drifting-grating direction.

    The run's own dataset config, splits and ``eval_transforms`` (e.g. the neuron
    sampler) are rebuilt from the checkpoint. Each drifting-grating trial gives one window,
    ``[start, start + model.sequence_length]``, when that window lies inside the split's
    sampling intervals; its label is the trial's direction class (``orientation_id``).
    A window's trunk feature pools its processed latents (:meth:`CAPOYO.encode`) as
    ``pooling`` says: their mean, or every latent's features concatenated in order.
    Logistic regressions (standardised features) are fit on the training split's trials
    and scored on the test split's: once on every recording's trials together (pooled)
    and once per recording. Baselines on the same trials: the same architecture at random
    initialisation (``torch.manual_seed(seed)`` and then the model built as train.py builds
    it; with the run's seed these are the weights stage 1 started from, as train.py seeds
    torch just before building its model), each trial's mean dF/F per neuron (per
    recording only), the most frequent training class and chance.

    Args:
        checkpoint: A CAPOYO checkpoint of torch_brain's train.py: stage 1, or a stage-2
            run whose dataset samples drifting-grating trials.
        data_root: The processed-data root, if not the run's ``data_root``.
        seed: Seed of the random-init trunk; default the run's ``seed``.
        batch_size: Windows per forward pass.
        device: Torch device of both trunks, e.g. ``"cpu"`` or ``"cuda"``.
        pooling: How a window's processed latents become its trunk feature: ``"mean"``,
            their average, shape :math:`(D,)`; ``"latents"``, every latent's features in
            order, shape ``(N_latent * D,)`` (see :data:`~.pooling.Pooling`).

    Returns:
        The accuracies of every feature set, pooled and per recording.

    Raises:
        FileNotFoundError: If ``checkpoint`` or the data root does not exist.
        KeyError: If the run's config lacks ``seed`` and none is given.
        ValueError: If the file is not a train.py checkpoint of a CAPOYO model, has no
            unit vocabulary, a recording has no usable drifting-grating trial in the
            training or test split, ``batch_size < 1``, ``pooling`` is not one of
            :data:`~.pooling.POOLINGS`, or ``device`` is not a device available here.
    """
    from omegaconf import OmegaConf

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    check_pooling(pooling)
    run = load_train_checkpoint(checkpoint, data_root=data_root)
    check_capoyo(run)
    config = run.config
    root = Path(config.data_root)
    if not root.is_dir():
        source = "the data_root argument" if data_root is not None else f"{run.path}'s config"
        raise FileNotFoundError(
            f"data_root {root} (from {source}) does not exist: pass the processed-data root "
            "as data_root"
        )
    if seed is None:
        seed = OmegaConf.select(config, "seed")
        if seed is None:
            raise KeyError(f"{run.path}: the run's config has no seed (missing or null); pass seed")
    device = torch_device(device)

    models = load_trunks(run, seed=seed, device=device)
    splits = trial_features(
        run, models, root=root, pooling=pooling, batch_size=batch_size, device=device
    )
    train, test = splits["train"], splits["test"]

    per_recording = {}
    for recording in train:
        if not np.array_equal(train[recording].unit_ids, test[recording].unit_ids):
            raise ValueError(
                f"the eval_transforms keep different neurons of {recording!r} in the training "
                "and test splits: the raw dF/F baseline needs the same neurons in both"
            )
        accuracy = {
            feature: linear_probe_accuracy(
                train[recording].features[feature],
                train[recording].labels,
                test[recording].features[feature],
                test[recording].labels,
            )
            for feature in PROBE_FEATURES
        }
        per_recording[recording] = RecordingProbe(
            n_units=len(train[recording].unit_ids),
            n_train=len(train[recording].labels),
            n_test=len(test[recording].labels),
            accuracy=accuracy,
        )

    def labels(split: dict[str, SplitFeatures]) -> np.ndarray:
        return np.concatenate([split[recording].labels for recording in per_recording])

    def features(split: dict[str, SplitFeatures], feature: str) -> np.ndarray:
        return np.concatenate([split[recording].features[feature] for recording in per_recording])

    train_labels, test_labels = labels(train), labels(test)
    pooled = {
        feature: linear_probe_accuracy(
            features(train, feature), train_labels, features(test, feature), test_labels
        )
        for feature in TRUNK_FEATURES
    }
    classes, counts = np.unique(train_labels, return_counts=True)
    majority = float(np.mean(test_labels == classes[np.argmax(counts)]))
    return ProbeResult(
        checkpoint=run.path,
        data_root=root,
        seed=int(seed),
        window_s=float(models["pretrained"].sequence_length),
        pooling=pooling,
        n_classes=drifting_grating_spec().dim,
        pooled=pooled,
        majority=majority,
        per_recording=per_recording,
    )
