"""The curriculum's stages, dataset variants and arms: one table that every part reads.

POYO-CAP (Bae et al., ICLR 2026) trains in two stages; Table 3 compares arms, each a
dataset variant (which neurons of which sessions each stage sees) with or without stage 1.
The partitions, the dataset configs, the curriculum, Table 3, the report and the CLI take
names, configs, stimuli, readouts, metrics, titles and the paper's numbers from here.

.. note::
    The paper names its ablations without defining their partitions; the variants below
    are our reading (:mod:`poyocap_plugin.workflow.partitions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from poyocap_plugin.brainset import DG_READOUT, MOVIE_READOUT

__all__ = [
    "ARMS",
    "CURRICULUM_ARMS",
    "METRICS",
    "STAGES",
    "TABLE3_ARMS",
    "VARIANTS",
    "ArmSpec",
    "Stage",
    "StageSpec",
    "Variant",
]

Stage = Literal["pretrain", "finetune_movie", "finetune_dg"]
Variant = Literal["poyocap", "from_scratch", "inhibitory_ssl", "reverse_ssl", "mixed_ssl"]


@dataclass(frozen=True)
class StageSpec:
    """One training stage.

    Attributes:
        config_name: The shipped training config (``--config-name``).
        stimulus: The stimulus Interval its windows lie in.
        readout: The readout it is scored by.
        metric: The name of its test metric in results (None: scored by the probe).
        test_metric: The end of that metric's logged key, ``<metric repr>/test``.
        epochs_setting: The field of ``CurriculumSettings`` that sets its epochs.
        title: Its title in the report.
    """

    config_name: str
    stimulus: str
    readout: str
    metric: str | None
    test_metric: str | None
    epochs_setting: str
    title: str


STAGES: dict[Stage, StageSpec] = {
    "pretrain": StageSpec(
        config_name="poyocap_pretrain",
        stimulus="drifting_gratings",
        readout=DG_READOUT,
        metric=None,
        test_metric=None,
        epochs_setting="pretrain_epochs",
        title="stage 1: pretraining (DG accuracy)",
    ),
    "finetune_movie": StageSpec(
        config_name="poyocap_finetune_movie",
        stimulus="natural_movie_one",
        readout=MOVIE_READOUT,
        metric="movie_ssim",
        test_metric="MovieSSIM()/test",
        epochs_setting="finetune_epochs",
        title="stage 2: movie frames (SSIM)",
    ),
    "finetune_dg": StageSpec(
        config_name="poyocap_finetune_dg",
        stimulus="drifting_gratings",
        readout=DG_READOUT,
        metric="dg_accuracy",
        test_metric="MulticlassAccuracy()/test",
        epochs_setting="dg_epochs",
        title="stage 2: DG direction (accuracy)",
    ),
}

#: test metric name -> its label in tables
METRICS: dict[str, str] = {"movie_ssim": "movie SSIM (test)", "dg_accuracy": "DG accuracy (test)"}

#: variant -> what each stage trains on
VARIANTS: dict[Variant, str] = {
    "poyocap": "POYO-CAP: pretrain on the predictable neurons of the predictable lines, "
    "finetune on the unpredictable neurons of the other lines.",
    "from_scratch": "From scratch (Table 3, 'train on all'): no pretraining; every neuron of "
    "every line.",
    "inhibitory_ssl": "Inhibitory-only SSL (Table 3): pretrain on the predictable neurons of "
    "Sst, Vip and Pvalb; finetune as POYO-CAP.",
    "reverse_ssl": "Reverse SSL (Table 3): pretrain on the unpredictable neurons of the "
    "unpredictable lines, finetune on the predictable neurons of the predictable lines.",
    "mixed_ssl": "Mixed SSL (Table 3): pretrain on the unpredictable lines plus a fraction of "
    "the predictable lines' subjects; finetune on the other subjects of the predictable lines.",
}


@dataclass(frozen=True)
class ArmSpec:
    """One arm of the comparison: a dataset variant, with or without stage 1.

    Attributes:
        variant: The dataset variant its stages train on.
        pretrains: Whether stage 1 runs and hands its trunk to stage 2.
        title: Its row label.
        paper: Table 3's (movie SSIM, DG accuracy) means, or None if not a Table 3 row.
    """

    variant: Variant
    pretrains: bool
    title: str
    paper: tuple[float, float] | None


ARMS: dict[str, ArmSpec] = {
    "poyocap": ArmSpec("poyocap", True, "POYO-CAP", (0.593, 0.555)),
    # the curriculum's baseline: POYO-CAP's own stage-2 data, without the stage-1 trunk
    "poyocap_no_pretraining": ArmSpec("poyocap", False, "from scratch", None),
    "from_scratch": ArmSpec("from_scratch", False, "From scratch", (0.528, 0.492)),
    "inhibitory_ssl": ArmSpec("inhibitory_ssl", True, "Inhibitory-only SSL", (0.544, 0.537)),
    "reverse_ssl": ArmSpec("reverse_ssl", True, "Reverse SSL", (0.489, 0.213)),
    "mixed_ssl": ArmSpec("mixed_ssl", True, "Mixed SSL", (0.543, 0.313)),
}
#: the arms of ``poyocap curriculum``: POYO-CAP and its baseline
CURRICULUM_ARMS: tuple[str, ...] = ("poyocap", "poyocap_no_pretraining")
#: the rows of Table 3, in the paper's order
TABLE3_ARMS: tuple[str, ...] = tuple(a for a, spec in ARMS.items() if spec.paper is not None)
