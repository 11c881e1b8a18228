"""Partitions of the POYO-CAP curriculum: which sessions, and which of their neurons, each
stage of each variant trains on.

POYO-CAP (Bae et al., ICLR 2026) trains in two stages on disjoint animals. Sessions are
assigned by their subject's Cre line (the paper's predictable lines Sst, Vip, Pvalb, Ntsr1
vs the other nine), neurons by :class:`~poyocap_plugin.neuron_sampler.NeuronSelection`.
Variants (``pretrain`` population -> ``finetune`` population):

* ``poyocap``: predictable neurons of the predictable lines -> unpredictable neurons of the
  other lines.
* ``from_scratch``: no pretraining; finetunes on every neuron of every line ("train on all").
* ``inhibitory_ssl``: predictable neurons of Sst, Vip, Pvalb only -> as ``poyocap``.
* ``reverse_ssl``: unpredictable neurons of the unpredictable lines -> predictable neurons of
  the predictable lines.
* ``mixed_ssl``: as ``reverse_ssl``, plus the predictable neurons of a fraction
  (``mixed_fraction``) of the predictable lines' subjects in pretraining; the other subjects
  of those lines are finetuned on.

.. note::
    The paper names the Table 3 ablations without defining their partitions; the above is
    our reading. :mod:`poyocap_plugin.workflow.datasets` writes each partition as a dataset config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from poyocap_plugin.brainset import (
    INHIBITORY_CRE_LINES,
    PAPER_KURTOSIS_THRESHOLD,
    PAPER_PREDICTABLE_CRE_LINES,
    PAPER_SKEWNESS_THRESHOLD,
)
from poyocap_plugin.neuron_sampler import Criterion, NeuronSelection, Population
from poyocap_plugin.predictability import BrainsetStatistics
from poyocap_plugin.workflow.stages import STAGES, VARIANTS, Stage, Variant

__all__ = [
    "TooFew",
    "CurriculumPlan",
    "SessionGroup",
    "StagePlan",
    "dataset_config_name",
    "plan_curriculum",
]

TooFew = Literal["error", "exclude"]


def dataset_config_name(variant: Variant, stage: Stage) -> str:
    """The config's name in the ``dataset`` group, e.g. ``poyocap_pretrain``."""
    return f"{variant}_{stage}"


@dataclass(frozen=True)
class SessionGroup:
    """Sessions that contribute the same population.

    Attributes:
        sessions: Session ids (file stems), sorted.
        selection: The neurons each session contributes.
        n_selected: Number of selected neurons per session, in ``sessions`` order.
    """

    sessions: tuple[str, ...]
    selection: NeuronSelection
    n_selected: tuple[int, ...]


@dataclass(frozen=True)
class StagePlan:
    """The sessions of one (variant, stage) dataset config.

    Attributes:
        variant: The curriculum variant.
        stage: The stage.
        groups: Session groups, one per population.
        subjects: Subject ids of all sessions, sorted.
        excluded: Sessions of the stage's lines left out, with the reason.
    """

    variant: str
    stage: str
    groups: tuple[SessionGroup, ...]
    subjects: tuple[str, ...]
    excluded: dict[str, str]

    @property
    def name(self) -> str:
        return dataset_config_name(self.variant, self.stage)


@dataclass(frozen=True)
class CurriculumPlan:
    """Every dataset config to write, and the settings that produced them."""

    stages: tuple[StagePlan, ...]
    settings: dict[str, Any]


def _check_plan_args(
    variants: Sequence[str],
    predictable_cre_lines: Sequence[str],
    mixed_fraction: float,
    on_too_few: str,
) -> None:
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise ValueError(
            f"variants must be a non-empty subset of {list(VARIANTS)}, got {variants!r}"
        )
    if not 0.0 < mixed_fraction < 1.0:
        raise ValueError(f"mixed_fraction must be in (0, 1), got {mixed_fraction!r}")
    if on_too_few not in get_args(TooFew):
        raise ValueError(f"on_too_few must be one of {list(get_args(TooFew))}, got {on_too_few!r}")
    not_predictable = [line for line in INHIBITORY_CRE_LINES if line not in predictable_cre_lines]
    if "inhibitory_ssl" in variants and not_predictable:
        raise ValueError(
            f"inhibitory_ssl pretrains on {list(INHIBITORY_CRE_LINES)}, but {not_predictable} "
            f"are not in predictable_cre_lines={list(predictable_cre_lines)}; add them or "
            "leave out the inhibitory_ssl variant"
        )


def _split_subjects(
    sessions, lines: Sequence[str], fraction: float, seed: int
) -> tuple[set[str], set[str]]:
    """Split the subjects of ``lines`` per line: ``round(fraction * n)`` go to the first set.

    A line with two or more subjects gives at least one to each side; a line with one
    subject gives it to the second set.
    """
    rng = np.random.default_rng(seed)
    first: set[str] = set()
    second: set[str] = set()
    for line in sorted(lines):
        subjects = np.array(sorted(set(sessions["subject_id"][sessions["cre_line"] == line])))
        if len(subjects) == 0:
            continue
        subjects = subjects[rng.permutation(len(subjects))]
        k = (
            0
            if len(subjects) == 1
            else int(np.clip(round(fraction * len(subjects)), 1, len(subjects) - 1))
        )
        first.update(subjects[:k].tolist())
        second.update(subjects[k:].tolist())
    return first, second


def _count_selected(table, selection: NeuronSelection) -> int:
    return int(
        selection.mask(
            skewness=table["skewness"].to_numpy(),
            kurtosis=table["kurtosis"].to_numpy(),
            stats_valid=table["stats_valid"].to_numpy(),
            cre_line=table["cre_line"].to_numpy(),
        ).sum()
    )


def _plan_stage(
    variant: str,
    stage: str,
    side: list[tuple[set[str], Population]],
    stats: BrainsetStatistics,
    units_by_session: dict,
    base: NeuronSelection,
    too_few: list[str],
    on_too_few: str,
) -> StagePlan:
    """Plan one stage; sessions with too few neurons are excluded and appended to ``too_few``
    (the caller raises on them unless it was asked to exclude them)."""
    sessions, stimulus, name = (
        stats.sessions,
        STAGES[stage].stimulus,
        dataset_config_name(variant, stage),
    )
    groups, excluded = [], {}
    for session_ids, population in side:
        selection = dataclasses.replace(base, population=population)
        kept, counts = [], []
        for session_id in sorted(session_ids):
            if not sessions.at[session_id, f"has_{stimulus}"]:
                excluded[session_id] = f"no {stimulus}"
                continue
            table = units_by_session[session_id]
            n = _count_selected(table, selection)
            if n < base.min_units:
                excluded[session_id] = (
                    f"{n} of {len(table)} neurons are {population}, min_units={base.min_units}"
                )
                too_few.append(f"  {name}: session {session_id!r}: {excluded[session_id]}")
                continue
            kept.append(session_id)
            counts.append(n)
        if kept:
            groups.append(SessionGroup(tuple(kept), selection, tuple(counts)))
    if not groups and (on_too_few == "exclude" or not any(f"  {name}:" in t for t in too_few)):
        raise ValueError(
            f"{name} would hold no session: the brainset has no session of its Cre lines "
            f"showing {stimulus} with enough neurons (left out: {excluded or 'none'}). Leave the "
            f"variant {variant!r} out (variants=..., `poyocap datasets --variant`) or add sessions."
        )
    subjects = sorted({sessions["subject_id"][s] for g in groups for s in g.sessions})
    return StagePlan(variant, stage, tuple(groups), tuple(subjects), excluded)


def plan_curriculum(
    stats: BrainsetStatistics,
    *,
    variants: Sequence[Variant] = tuple(VARIANTS),
    criterion: Criterion = "statistics",
    skewness_threshold: float = PAPER_SKEWNESS_THRESHOLD,
    kurtosis_threshold: float = PAPER_KURTOSIS_THRESHOLD,
    predictable_cre_lines: Sequence[str] = PAPER_PREDICTABLE_CRE_LINES,
    min_units: int = 1,
    mixed_fraction: float = 0.5,
    seed: int = 0,
    on_too_few: TooFew = "error",
) -> CurriculumPlan:
    """Decide which sessions, and which of their neurons, each dataset config holds.

    Sessions are assigned by their subject's Cre line (``predictable_cre_lines`` vs the rest),
    so pretraining and finetuning never share a subject; this is checked. A stage keeps only
    sessions that show its stimulus (DG for ``pretrain`` and ``finetune_dg``, NM1 for
    ``finetune_movie``). Every kept session must have at least ``min_units`` selected
    neurons.

    Args:
        stats: The brainset's statistics, from
            :func:`~poyocap_plugin.predictability.read_unit_statistics`.
        variants: The variants to plan.
        criterion: How neurons are classified (see :class:`NeuronSelection`).
        skewness_threshold: Largest predictable skewness.
        kurtosis_threshold: Largest predictable kurtosis.
        predictable_cre_lines: Lines whose sessions are pretrained on (``poyocap``), and the
            neuron-level line list under ``criterion="cre_line"``.
        min_units: Fewest selected neurons a session may contribute.
        mixed_fraction: Fraction of each predictable line's subjects pretrained on in
            ``mixed_ssl``, in (0, 1).
        seed: Seed of the ``mixed_ssl`` subject split.
        on_too_few: ``"error"`` refuses to plan when a session has fewer than ``min_units``
            selected neurons; ``"exclude"`` leaves such sessions out and records them.

    Returns:
        The plan.

    Raises:
        ValueError: On invalid arguments, sessions with too few selected neurons
            (``on_too_few="error"``, listing them all), a stage without sessions, or a
            subject in both pretraining and finetuning.
    """
    base = NeuronSelection(
        criterion=criterion,
        skewness_threshold=skewness_threshold,
        kurtosis_threshold=kurtosis_threshold,
        predictable_cre_lines=tuple(predictable_cre_lines),
        min_units=min_units,
    )
    _check_plan_args(variants, predictable_cre_lines, mixed_fraction, on_too_few)
    sessions = stats.sessions
    units_by_session = dict(tuple(stats.units.groupby("session_id", sort=False)))
    in_predictable = sessions["cre_line"].isin(predictable_cre_lines)
    predictable_ids = set(sessions.index[in_predictable])
    unpredictable_ids = set(sessions.index[~in_predictable])
    inhibitory_ids = set(sessions.index[sessions["cre_line"].isin(INHIBITORY_CRE_LINES)])
    mixed_pre_subjects, _ = _split_subjects(sessions, predictable_cre_lines, mixed_fraction, seed)
    mixed_pre_ids = {s for s in predictable_ids if sessions["subject_id"][s] in mixed_pre_subjects}

    # (variant, side) -> [(session ids, population)]
    sides: dict[str, dict[str, list[tuple[set[str], Population]]]] = {
        "poyocap": {
            "pretrain": [(predictable_ids, "predictable")],
            "finetune": [(unpredictable_ids, "unpredictable")],
        },
        "from_scratch": {"finetune": [(set(sessions.index), "all")]},
        "inhibitory_ssl": {
            "pretrain": [(inhibitory_ids, "predictable")],
            "finetune": [(unpredictable_ids, "unpredictable")],
        },
        "reverse_ssl": {
            "pretrain": [(unpredictable_ids, "unpredictable")],
            "finetune": [(predictable_ids, "predictable")],
        },
        "mixed_ssl": {
            "pretrain": [(unpredictable_ids, "unpredictable"), (mixed_pre_ids, "predictable")],
            "finetune": [(predictable_ids - mixed_pre_ids, "predictable")],
        },
    }

    stages: list[StagePlan] = []
    too_few: list[str] = []
    for variant in variants:
        for stage in STAGES:
            side = "pretrain" if stage == "pretrain" else "finetune"
            if side in sides[variant]:
                plan = _plan_stage(
                    variant,
                    stage,
                    sides[variant][side],
                    stats,
                    units_by_session,
                    base,
                    too_few,
                    on_too_few,
                )
                stages.append(plan)
    if too_few and on_too_few == "error":
        raise ValueError(
            f"{len(too_few)} session(s) have fewer than min_units={min_units} selected neurons; "
            "a training run would fail on them. Lower min_units, or pass "
            "on_too_few='exclude' (`poyocap datasets --exclude-too-few`) to leave them out:\n"
            + "\n".join(too_few)
        )
    for variant in variants:
        pre = {
            s for p in stages if p.variant == variant and p.stage == "pretrain" for s in p.subjects
        }
        fine = {
            s for p in stages if p.variant == variant and p.stage != "pretrain" for s in p.subjects
        }
        if pre & fine:
            raise ValueError(
                f"Variant {variant!r}: subjects {sorted(pre & fine)} would be in both pretraining "
                "and finetuning; each subject's sessions must share one Cre line "
                "(check subject.cre_line in those sessions)."
            )
    settings = {
        "criterion": criterion,
        "skewness_threshold": float(skewness_threshold),
        "kurtosis_threshold": float(kurtosis_threshold),
        "predictable_cre_lines": list(predictable_cre_lines),
        "inhibitory_cre_lines": list(INHIBITORY_CRE_LINES),
        "min_units": min_units,
        "mixed_fraction": mixed_fraction,
        "seed": seed,
        "on_too_few": on_too_few,
    }
    return CurriculumPlan(tuple(stages), settings)
