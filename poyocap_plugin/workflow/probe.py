"""The linear probe of a stage-1 trunk: drifting-grating direction from frozen latents.

The standard self-supervised-learning evaluation: freeze the trunk of a CAPOYO stage-1
checkpoint, turn each drifting-grating trial into one feature vector, fit a logistic
regression on the training split's trials and score it on the test split's. The same is
done for the same architecture at random initialisation and for the trial's mean dF/F of
the neurons the model sees, so the pretrained number comes with its baselines.

.. note::
    POYO-CAP's stage 1 (``poyocap_pretrain``) adds the drifting-grating cross-entropy,
    weighted 0.01, to the masked-latent objective, on the training split's trials. The
    pretrained trunk has therefore seen training labels; the test trials stay held out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from poyocap_plugin.brainset import DG_READOUT
from poyocap_plugin.workflow.checkpoints import TrainCheckpoint, load_train_checkpoint

__all__ = [
    "PROBE_FEATURES",
    "ProbeResult",
    "RecordingProbe",
    "linear_probe_accuracy",
    "probe_checkpoint",
]

logger = logging.getLogger(__name__)

#: The feature sets probed: the checkpoint's trunk, the same trunk at random
#: initialisation, and each trial's mean dF/F per neuron (the raw-data baseline).
PROBE_FEATURES: tuple[str, ...] = ("pretrained", "random_init", "raw_df_over_f")
_TRUNK_FEATURES = PROBE_FEATURES[:2]
_CAPOYO_TARGET = "poyocap_plugin.models.CAPOYO"
# the inputs of CAPOYO.encode, taken from what CAPOYO.tokenize returns
_ENCODE_INPUTS = (
    "input_unit_index",
    "input_timestamps",
    "input_values",
    "input_mask",
    "latent_index",
    "latent_timestamps",
)
_MAX_ITER = 10_000  # lbfgs iterations of the logistic regression
_RANDOM_STATE = 0
_FEATURE_DESCRIPTION = (
    "trunk features: mean over the processed latents (CAPOYO.encode) of the window "
    "[trial start, trial start + model.sequence_length]; raw_df_over_f: mean dF/F per "
    "neuron over the same window, after the run's eval_transforms"
)
_CLASSIFIER_DESCRIPTION = (
    f"StandardScaler + LogisticRegression(max_iter={_MAX_ITER}, random_state={_RANDOM_STATE})"
)


def linear_probe_accuracy(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
) -> float:
    """Test accuracy of a logistic regression fit on standardised training features.

    Args:
        train_features: Features of shape :math:`(N_{train}, F)`.
        train_labels: Class labels of shape :math:`(N_{train},)`, integer.
        test_features: Features of shape :math:`(N_{test}, F)`.
        test_labels: Class labels of shape :math:`(N_{test},)`, integer.

    Returns:
        The fraction of test samples classified correctly.

    Raises:
        ValueError: If the shapes disagree, a split is empty, or the training labels hold
            fewer than two classes.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_features, test_features = np.asarray(train_features), np.asarray(test_features)
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    for name, features, labels in (
        ("train", train_features, train_labels),
        ("test", test_features, test_labels),
    ):
        if features.ndim != 2 or labels.shape != (len(features),) or len(features) == 0:
            raise ValueError(
                f"{name}_features must be (N, F) with N > 0 and {name}_labels (N,); got "
                f"{features.shape} and {labels.shape}"
            )
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f"train and test features differ in width: {train_features.shape[1]} vs "
            f"{test_features.shape[1]}"
        )
    classes = np.unique(train_labels)
    if len(classes) < 2:
        raise ValueError(
            f"train_labels must hold at least two classes to fit a classifier; got {classes}"
        )
    classifier = make_pipeline(
        StandardScaler(),
        LogisticRegression(max_iter=_MAX_ITER, random_state=_RANDOM_STATE),
    )
    classifier.fit(train_features, train_labels)
    return float(np.mean(classifier.predict(test_features) == test_labels))


@dataclass(frozen=True)
class RecordingProbe:
    """The probe fit and scored on one recording's trials alone.

    Attributes:
        n_units: Neurons the model sees in this recording (after ``eval_transforms``):
            the width of its ``raw_df_over_f`` features.
        n_train: Training-split trials.
        n_test: Test-split trials.
        accuracy: Test accuracy per feature set of :data:`PROBE_FEATURES`.
    """

    n_units: int
    n_train: int
    n_test: int
    accuracy: dict[str, float]


@dataclass(frozen=True)
class ProbeResult:
    """The linear probe of one checkpoint, beside its baselines.

    Attributes:
        checkpoint: The probed checkpoint.
        data_root: The processed-data root the trials came from.
        seed: The torch seed the random-init trunk was drawn with.
        window_s: Window per trial (s): the model's ``sequence_length``.
        n_classes: Drifting-grating direction classes.
        pooled: Test accuracy of one fit on every recording's trials, for
            ``"pretrained"`` and ``"random_init"`` (the trunks share one feature space; the
            recordings' neurons do not, so ``raw_df_over_f`` has no pooled fit).
        majority: Test accuracy of always answering the most frequent training class.
        per_recording: The probe of each recording, fit on that recording alone.
    """

    checkpoint: Path
    data_root: Path
    seed: int
    window_s: float
    n_classes: int
    pooled: dict[str, float]
    majority: float
    per_recording: dict[str, RecordingProbe]

    @property
    def chance(self) -> float:
        """Accuracy of guessing uniformly: ``1 / n_classes``."""
        return 1.0 / self.n_classes

    @property
    def n_train(self) -> int:
        """Training trials, all recordings."""
        return sum(r.n_train for r in self.per_recording.values())

    @property
    def n_test(self) -> int:
        """Test trials, all recordings."""
        return sum(r.n_test for r in self.per_recording.values())

    @property
    def per_recording_overall(self) -> dict[str, float]:
        """Per feature set, the test trials the per-recording fits got right, over all."""
        return {
            feature: sum(r.accuracy[feature] * r.n_test for r in self.per_recording.values())
            / self.n_test
            for feature in PROBE_FEATURES
        }

    def summary(self) -> str:
        """One line: pooled trunk accuracies, chance, and the per-recording fits."""
        pretrained, random_init = (self.pooled[f] for f in _TRUNK_FEATURES)
        overall = self.per_recording_overall
        return (
            f"probe: pretrained {pretrained:.2f}, random init {random_init:.2f} "
            f"({pretrained - random_init:+.2f}), chance {self.chance:.3f} (pooled test "
            f"accuracy, {self.n_test} test trials in {len(self.per_recording)} recordings); "
            f"per-recording fits: pretrained {overall['pretrained']:.2f}, random init "
            f"{overall['random_init']:.2f}, raw dF/F logistic {overall['raw_df_over_f']:.2f}"
        )

    def to_json(self) -> str:
        """The result as JSON text (the content of ``probe.json``)."""
        pretrained, random_init = (self.pooled[f] for f in _TRUNK_FEATURES)
        record = {
            "checkpoint": str(self.checkpoint),
            "data_root": str(self.data_root),
            "seed": self.seed,
            "window_s": self.window_s,
            "features": _FEATURE_DESCRIPTION,
            "classifier": _CLASSIFIER_DESCRIPTION,
            "n_classes": self.n_classes,
            "chance": self.chance,
            "majority_class": self.majority,
            "n_train_trials": self.n_train,
            "n_test_trials": self.n_test,
            "pooled": dict(self.pooled),
            "pooled_pretrained_minus_random_init": pretrained - random_init,
            "per_recording_overall": self.per_recording_overall,
            "per_recording": {
                recording: {
                    "n_units": probe.n_units,
                    "n_train_trials": probe.n_train,
                    "n_test_trials": probe.n_test,
                    **probe.accuracy,
                }
                for recording, probe in self.per_recording.items()
            },
        }
        return json.dumps(record, indent=2) + "\n"

    def write(self, out_dir: Path) -> Path:
        """Write ``probe.json`` into ``out_dir`` (created if missing); return its path."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "probe.json"
        path.write_text(self.to_json())
        return path


@dataclass
class _SplitFeatures:
    """One split's trials of one recording: labels, raw features, trunk features."""

    labels: np.ndarray
    unit_ids: np.ndarray
    features: dict[str, np.ndarray]


def _torch_device(device: str) -> torch.device:
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device={device!r} is not a torch device ({error})") from error
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}, but CUDA is not available here; use device='cpu'")
    return parsed


def _check_capoyo(run: TrainCheckpoint) -> None:
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


def _random_init_model(run: TrainCheckpoint, pretrained: torch.nn.Module, seed: int):
    """The checkpoint's architecture drawn afresh, with the pretrained model's vocabularies."""
    torch.manual_seed(seed)
    model = run.instantiate_model()
    for name in ("unit_emb", "session_emb"):
        vocab = getattr(pretrained, name).vocab
        # by index, without the padding word "NA" (index 0), which initialize_vocab adds
        getattr(model, name).initialize_vocab(sorted(vocab, key=vocab.get)[1:])
    return model.eval()


def _probe_trials(
    dataset, recording_id: str, intervals, window_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Starts (s) and direction classes of the trials whose whole window lies in ``intervals``."""
    spec_key = _dg_spec().value_key  # "drifting_gratings.orientation_id"
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


def _dg_spec():
    from torch_brain.registry import MODALITY_REGISTRY

    return MODALITY_REGISTRY[DG_READOUT]


def _split_features(
    dataset,
    recording_id: str,
    intervals,
    models: Mapping[str, torch.nn.Module],
    *,
    transforms: list[Any],
    window_s: float,
    batch_size: int,
    device: torch.device,
) -> _SplitFeatures:
    from torch_brain.data import collate

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
            raw.append(np.asarray(sample.calcium_traces.df_over_f, dtype=np.float64).mean(0))
            samples.append(tokenizer.tokenize(sample)["model_inputs"])
        batch = collate([{key: inputs[key] for key in _ENCODE_INPUTS} for inputs in samples])
        batch = {key: value.to(device) for key, value in batch.items()}
        with torch.no_grad():
            for name, model in models.items():
                trunk[name].append(model.encode(**batch).mean(dim=1).float().cpu().numpy())
    features = {name: np.concatenate(chunks) for name, chunks in trunk.items()}
    features["raw_df_over_f"] = np.stack(raw)
    return _SplitFeatures(labels=labels, unit_ids=unit_ids, features=features)


def probe_checkpoint(
    checkpoint: Path,
    *,
    data_root: Path | None = None,
    seed: int | None = None,
    batch_size: int = 32,
    device: str = "cpu",
) -> ProbeResult:
    """Linear-probe the trunk of a CAPOYO checkpoint on drifting-grating direction.

    The run's own dataset config, splits and ``eval_transforms`` (e.g. the neuron
    sampler) are rebuilt from the checkpoint. Each drifting-grating trial gives one window,
    ``[start, start + model.sequence_length]``, when that window lies inside the split's
    sampling intervals; its label is the trial's direction class (``orientation_id``).
    A window's feature is the mean over its processed latents (:meth:`CAPOYO.encode`).
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

    Returns:
        The accuracies of every feature set, pooled and per recording.

    Raises:
        FileNotFoundError: If ``checkpoint`` or the data root does not exist.
        KeyError: If the run's config lacks ``seed`` and none is given.
        ValueError: If the file is not a train.py checkpoint of a CAPOYO model, has no
            unit vocabulary, a recording has no usable drifting-grating trial in the
            training or test split, ``batch_size < 1``, or ``device`` is not a device
            available here.
    """
    from omegaconf import OmegaConf
    from torch_brain.data import Dataset

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    run = load_train_checkpoint(checkpoint, data_root=data_root)
    _check_capoyo(run)
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
    device = _torch_device(device)

    pretrained = run.load_model()
    if pretrained.unit_emb.is_lazy() or pretrained.session_emb.is_lazy():
        raise ValueError(
            f"{run.path} holds no unit/session vocabulary (model.unit_emb.vocab): it was "
            "saved before train.py linked the model to its dataset"
        )
    models = {
        "pretrained": pretrained.to(device),
        "random_init": _random_init_model(run, pretrained, seed).to(device),
    }
    window_s = float(pretrained.sequence_length)
    transforms = run.eval_transforms()

    splits: dict[str, dict[str, _SplitFeatures]] = {}
    for split in ("train", "test"):
        dataset = Dataset(root=str(root), config=config.dataset, split=split)
        # the windows are chosen inside this split's sampling intervals (_probe_trials)
        dataset.disable_data_leakage_check()
        sampling_intervals = dataset.get_sampling_intervals()
        splits[split] = {
            recording: _split_features(
                dataset,
                recording,
                sampling_intervals[recording],
                models,
                transforms=transforms,
                window_s=window_s,
                batch_size=batch_size,
                device=device,
            )
            for recording in sorted(sampling_intervals)
        }
        logger.info(
            "%s: %d trials in %d recordings",
            split,
            sum(len(f.labels) for f in splits[split].values()),
            len(splits[split]),
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

    def labels(split: dict[str, _SplitFeatures]) -> np.ndarray:
        return np.concatenate([split[recording].labels for recording in per_recording])

    def features(split: dict[str, _SplitFeatures], feature: str) -> np.ndarray:
        return np.concatenate([split[recording].features[feature] for recording in per_recording])

    train_labels, test_labels = labels(train), labels(test)
    pooled = {
        feature: linear_probe_accuracy(
            features(train, feature), train_labels, features(test, feature), test_labels
        )
        for feature in _TRUNK_FEATURES
    }
    classes, counts = np.unique(train_labels, return_counts=True)
    majority = float(np.mean(test_labels == classes[np.argmax(counts)]))
    return ProbeResult(
        checkpoint=run.path,
        data_root=root,
        seed=int(seed),
        window_s=window_s,
        n_classes=_dg_spec().dim,
        pooled=pooled,
        majority=majority,
        per_recording=per_recording,
    )
