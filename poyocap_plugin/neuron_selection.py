"""The neuron-selection rule: which neurons of a recording POYO-CAP keeps in a stage.

POYO-CAP (Bae et al., ICLR 2026) calls a neuron *predictable* when the skewness and the
kurtosis of its dF/F are both at or below the paper's thresholds
(:data:`~poyocap_plugin.brainset.PAPER_SKEWNESS_THRESHOLD`,
:data:`~poyocap_plugin.brainset.PAPER_KURTOSIS_THRESHOLD`), and shows the encoder predictable
neurons in pretraining and unpredictable ones in finetuning. :class:`NeuronSelection` holds
one such choice (population, criterion, thresholds, Cre lines, ``min_units``), validates it,
applies per-recording overrides from a dataset config (key :data:`CONFIG_KEY`) and turns a
recording's per-neuron statistics into a keep-mask. The transform that applies it to each
sample is :class:`poyocap_plugin.neuron_sampler.NeuronSampler`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from poyocap_plugin.brainset import (
    ALLEN_CRE_LINES,
    PAPER_KURTOSIS_THRESHOLD,
    PAPER_PREDICTABLE_CRE_LINES,
    PAPER_SKEWNESS_THRESHOLD,
)
from poyocap_plugin.predictability import predictable_mask, valid_statistics_mask

__all__ = ["CONFIG_KEY", "Criterion", "NeuronSelection", "Population"]

Population = Literal["predictable", "unpredictable", "all"]
Criterion = Literal["statistics", "cre_line"]

CONFIG_KEY = "neuron_selection"
"""Key of a recording's dataset ``config:`` that overrides the sampler's selection."""


@dataclass(frozen=True)
class NeuronSelection:
    """Which neurons of a recording to keep.

    A neuron is *predictable* under ``criterion="statistics"`` when its dF/F skewness and
    kurtosis are both at or below the thresholds, and under ``criterion="cre_line"`` when its
    Cre line is in ``predictable_cre_lines``. *Unpredictable* is the complement; *all* is
    their union. Under either criterion a neuron whose statistics are NaN (or flagged by
    ``units.stats_valid``) belongs to no population.

    Args:
        population: The neurons to keep.
        criterion: How a neuron is classified.
        skewness_threshold: Largest predictable skewness (``criterion="statistics"``).
        kurtosis_threshold: Largest predictable kurtosis (``criterion="statistics"``).
        predictable_cre_lines: Predictable lines, allensdk spelling (``criterion="cre_line"``).
        min_units: Fewest neurons a recording may keep; fewer is an error, never an empty
            sample.

    Raises:
        ValueError: On an unknown population, criterion or Cre line, a non-finite threshold,
            an empty line list, or ``min_units < 1``.
    """

    population: Population = "predictable"
    criterion: Criterion = "statistics"
    skewness_threshold: float = PAPER_SKEWNESS_THRESHOLD
    kurtosis_threshold: float = PAPER_KURTOSIS_THRESHOLD
    predictable_cre_lines: tuple[str, ...] = PAPER_PREDICTABLE_CRE_LINES
    min_units: int = 1

    def __post_init__(self) -> None:
        _check_choice("population", self.population, Population)
        _check_choice("criterion", self.criterion, Criterion)
        for name in ("skewness_threshold", "kurtosis_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")
            object.__setattr__(self, name, float(value))
        if isinstance(self.predictable_cre_lines, str):
            raise ValueError(
                "predictable_cre_lines must be a list of Cre lines, "
                f"got the string {self.predictable_cre_lines!r}"
            )
        lines = tuple(self.predictable_cre_lines)
        if not lines:
            raise ValueError("predictable_cre_lines must name at least one Cre line, got []")
        unknown = [line for line in lines if line not in ALLEN_CRE_LINES]
        if unknown:
            raise ValueError(
                f"predictable_cre_lines has unknown Cre lines {unknown!r}; "
                f"use the allensdk spelling, one of {list(ALLEN_CRE_LINES)}"
            )
        object.__setattr__(self, "predictable_cre_lines", lines)
        if isinstance(self.min_units, bool) or not isinstance(self.min_units, int):
            raise ValueError(f"min_units must be an integer, got {self.min_units!r}")
        if self.min_units < 1:
            raise ValueError(f"min_units must be at least 1, got {self.min_units!r}")

    def override(self, overrides: Mapping[str, Any], *, where: str) -> NeuronSelection:
        """A copy with some fields replaced, e.g. from a recording's dataset config.

        Args:
            overrides: Field names and values (a dict or an OmegaConf DictConfig).
            where: Names the source in error messages (e.g. the recording id).

        Raises:
            ValueError: On an unknown key or an invalid value.
        """
        if not isinstance(overrides, Mapping):
            raise ValueError(
                f"{where}: config.{CONFIG_KEY} must be a mapping of {_FIELDS}, got {overrides!r}"
            )
        unknown = sorted(set(overrides) - set(_FIELDS))
        if unknown:
            raise ValueError(
                f"{where}: config.{CONFIG_KEY} has unknown keys {unknown}; "
                f"allowed keys are {list(_FIELDS)}"
            )
        values = dict(overrides)
        if "predictable_cre_lines" in values and not isinstance(
            values["predictable_cre_lines"], str
        ):
            values["predictable_cre_lines"] = tuple(values["predictable_cre_lines"])
        try:
            return dataclasses.replace(self, **values)
        except ValueError as error:
            raise ValueError(f"{where}: config.{CONFIG_KEY}: {error}") from None

    def mask(
        self,
        *,
        skewness: np.ndarray,
        kurtosis: np.ndarray,
        stats_valid: np.ndarray | None = None,
        cre_line: np.ndarray | None = None,
    ) -> np.ndarray:
        """The neurons this selection keeps.

        Args:
            skewness: Per-neuron skewness of dF/F, shape :math:`(N,)`.
            kurtosis: Per-neuron kurtosis of dF/F, shape :math:`(N,)`.
            stats_valid: Per-neuron validity flag, shape :math:`(N,)`, bool, or None.
            cre_line: Per-neuron Cre line, shape :math:`(N,)`, str; required by
                ``criterion="cre_line"``.

        Returns:
            Boolean keep-mask of shape :math:`(N,)`.
        """
        valid = valid_statistics_mask(skewness, kurtosis, stats_valid)
        if self.population == "all":
            return valid
        if self.criterion == "statistics":
            predictable = predictable_mask(
                skewness,
                kurtosis,
                skewness_threshold=self.skewness_threshold,
                kurtosis_threshold=self.kurtosis_threshold,
            )
        else:
            if cre_line is None:
                raise ValueError("criterion='cre_line' needs each neuron's cre_line")
            predictable = np.isin(np.asarray(cre_line).astype(str), self.predictable_cre_lines)
        if self.population == "predictable":
            return valid & predictable
        return valid & ~predictable

    def describe(self) -> str:
        """A short human-readable description, used in messages and logs."""
        if self.criterion == "statistics":
            rule = (
                f"skewness <= {self.skewness_threshold} and kurtosis <= {self.kurtosis_threshold}"
            )
        else:
            rule = f"Cre line in {list(self.predictable_cre_lines)}"
        return f"{self.population} neurons (predictable: {rule})"

    def to_config(self) -> dict[str, Any]:
        """The selection as a plain dict for a dataset config's ``neuron_selection`` key."""
        config: dict[str, Any] = {"population": self.population, "criterion": self.criterion}
        if self.criterion == "statistics":
            config["skewness_threshold"] = self.skewness_threshold
            config["kurtosis_threshold"] = self.kurtosis_threshold
        else:
            config["predictable_cre_lines"] = list(self.predictable_cre_lines)
        config["min_units"] = self.min_units
        return config


_FIELDS = tuple(field.name for field in dataclasses.fields(NeuronSelection))


def _check_choice(name: str, value: object, choices: Any) -> None:
    allowed = get_args(choices)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
