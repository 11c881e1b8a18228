"""What the linear probe of a checkpoint found: accuracies per feature set, beside baselines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from poyocap_plugin.workflow.files import write_text_atomically
from poyocap_plugin.workflow.probe.classifier import CLASSIFIER_DESCRIPTION
from poyocap_plugin.workflow.probe.pooling import POOLING_DESCRIPTIONS, Pooling

__all__ = ["PROBE_FEATURES", "TRUNK_FEATURES", "ProbeResult", "RecordingProbe"]

#: The feature sets probed: the checkpoint's trunk, the same trunk at random
#: initialisation, and each trial's mean dF/F per neuron (the raw-data baseline).
PROBE_FEATURES: tuple[str, ...] = ("pretrained", "random_init", "raw_df_over_f")
#: The feature sets that share one feature space across recordings (the trunks').
TRUNK_FEATURES: tuple[str, ...] = PROBE_FEATURES[:2]


def _feature_description(pooling: Pooling) -> str:
    """The feature sets probed with ``pooling``, in words, for ``probe.json``."""
    return (
        f"trunk features: {POOLING_DESCRIPTIONS[pooling]} of the window "
        "[trial start, trial start + model.sequence_length]; raw_df_over_f: mean dF/F per "
        "neuron over the same window, after the run's eval_transforms"
    )


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
        pooling: How each window's processed latents became its trunk feature (see
            :data:`~.pooling.Pooling`).
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
    pooling: Pooling
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
        """One line: pooled trunk accuracies, chance, the per-recording fits, the pooling."""
        pretrained, random_init = (self.pooled[f] for f in TRUNK_FEATURES)
        overall = self.per_recording_overall
        return (
            f"probe: pretrained {pretrained:.2f}, random init {random_init:.2f} "
            f"({pretrained - random_init:+.2f}), chance {self.chance:.3f} (pooled test "
            f"accuracy, {self.n_test} test trials in {len(self.per_recording)} recordings); "
            f"per-recording fits: pretrained {overall['pretrained']:.2f}, random init "
            f"{overall['random_init']:.2f}, raw dF/F logistic {overall['raw_df_over_f']:.2f}; "
            f"trunk features: pooling={self.pooling!r}"
        )

    def to_json(self) -> str:
        """The result as JSON text (the content of ``probe.json``)."""
        pretrained, random_init = (self.pooled[f] for f in TRUNK_FEATURES)
        record = {
            "checkpoint": str(self.checkpoint),
            "data_root": str(self.data_root),
            "seed": self.seed,
            "window_s": self.window_s,
            "pooling": self.pooling,
            "features": _feature_description(self.pooling),
            "classifier": CLASSIFIER_DESCRIPTION,
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
        return write_text_atomically(Path(out_dir) / "probe.json", self.to_json())
