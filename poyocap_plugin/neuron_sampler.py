"""The neuron sampler: a torch_brain transform that keeps one population of neurons.

POYO-CAP (Bae et al., ICLR 2026) shows the encoder different neurons in each stage:
predictable ones in pretraining, unpredictable ones in finetuning, and the Table 3
ablations swap or mix them. :class:`NeuronSampler` makes that choice part of torch_brain's
data path: listed in both ``train_transforms`` and ``eval_transforms`` of the stock trainer,
it drops every other neuron from ``data.units`` **and** from the matching columns of
``calcium_traces.df_over_f`` (torch_brain's ``UnitFilter`` rejects a ``RegularTimeSeries``,
and ``UnitDropout`` masks only the traces).

The rule itself, :class:`~poyocap_plugin.neuron_selection.NeuronSelection`, lives in
:mod:`poyocap_plugin.neuron_selection`; it and its ``CONFIG_KEY``, ``Criterion`` and
``Population`` are re-exported here, where shipped configs and saved runs name them. Each
recording's dataset config may override the stage's choice under the key
``neuron_selection``; :meth:`NeuronSampler.check_dataset` verifies every recording of a
``torch_brain.data.Dataset`` at set-up, before the first step.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from temporaldata import Data, RegularTimeSeries

from poyocap_plugin.brainset import (
    BRAINSET_ID,
    PAPER_KURTOSIS_THRESHOLD,
    PAPER_PREDICTABLE_CRE_LINES,
    PAPER_SKEWNESS_THRESHOLD,
)
from poyocap_plugin.neuron_selection import CONFIG_KEY, Criterion, NeuronSelection, Population

__all__ = [
    "CONFIG_KEY",
    "Criterion",
    "NeuronSampler",
    "NeuronSelection",
    "Population",
]

logger = logging.getLogger(__name__)


def _recording_id(data: Data) -> str:
    session = getattr(data, "session", None)
    return str(getattr(session, "id", "<recording without session.id>"))


def _unit_column(units: Any, name: str, recording: str, *, required: bool) -> np.ndarray | None:
    if name in units.keys():
        return np.asarray(getattr(units, name))
    if not required:
        return None
    raise KeyError(
        f"Recording {recording!r}: units has no {name!r} column (it has "
        f"{sorted(units.keys())}). Process the session with the plugin's "
        f"{BRAINSET_ID} pipeline, which stores per-neuron statistics."
    )


class NeuronSampler:
    """Keeps one population of neurons in every sample (a torch_brain transform).

    POYO-CAP (Bae et al., ICLR 2026) pretrains on predictable neurons (dF/F skewness and
    kurtosis at or below :data:`~poyocap_plugin.brainset.PAPER_SKEWNESS_THRESHOLD` and
    :data:`~poyocap_plugin.brainset.PAPER_KURTOSIS_THRESHOLD`) and finetunes on
    unpredictable ones. This transform selects the population from the per-neuron columns
    the plugin's pipeline stores in ``data.units`` (``skewness``, ``kurtosis``,
    ``stats_valid``, ``cre_line``), then masks ``data.units`` and the columns of ``field``
    together, keeping their order, so units and traces stay aligned. Put it first, before
    ``UnitDropout(field="calcium_traces.df_over_f")`` and the model's ``tokenize``, in both
    ``train_transforms`` and ``eval_transforms``.

    The constructor sets the stage's selection. A recording's dataset config may override
    any field of it under ``neuron_selection``, e.g.
    ``config: {neuron_selection: {population: unpredictable}}``.

    .. note::
        The released POYO-CAP code selects whole sessions by a hard-coded Cre-line list;
        this follows the paper's per-neuron rule (``criterion="statistics"``), and offers
        the line list as ``criterion="cre_line"``.

    The transform changes ``data`` in place and returns it. It draws no random numbers. It
    remembers each recording's keep-mask and reuses it for a sample whose ``units.id`` are
    the same, so the statistics are read once per recording and worker.

    Args:
        population: ``"predictable"``, ``"unpredictable"`` or ``"all"``.
        criterion: ``"statistics"`` (per-neuron thresholds) or ``"cre_line"`` (a line list).
        skewness_threshold: Largest predictable skewness of dF/F.
        kurtosis_threshold: Largest predictable kurtosis of dF/F.
        predictable_cre_lines: Predictable Cre lines (allensdk spelling), for
            ``criterion="cre_line"``; defaults to the paper's Sst, Vip, Pvalb, Ntsr1.
        min_units: Fewest neurons a recording may keep. A recording with fewer raises
            ValueError naming it and the counts; it never yields an empty sample.
        field: The ``RegularTimeSeries`` attribute whose columns are the units, as a dotted
            path.

    Raises:
        ValueError: On an invalid selection (see :class:`NeuronSelection`) or a ``field``
            that is not ``"<time series>.<attribute>"``.

    Example::

        >>> sampler = NeuronSampler(population="unpredictable")
        >>> transform = Compose([sampler, UnitDropout(field="calcium_traces.df_over_f"),
        ...                      model.tokenize])
    """

    def __init__(
        self,
        *,
        population: Population = "predictable",
        criterion: Criterion = "statistics",
        skewness_threshold: float = PAPER_SKEWNESS_THRESHOLD,
        kurtosis_threshold: float = PAPER_KURTOSIS_THRESHOLD,
        predictable_cre_lines: Sequence[str] = PAPER_PREDICTABLE_CRE_LINES,
        min_units: int = 1,
        field: str = "calcium_traces.df_over_f",
    ) -> None:
        if isinstance(predictable_cre_lines, str):
            raise ValueError(
                "predictable_cre_lines must be a list of Cre lines, "
                f"got the string {predictable_cre_lines!r}"
            )
        self.selection = NeuronSelection(
            population=population,
            criterion=criterion,
            skewness_threshold=skewness_threshold,
            kurtosis_threshold=kurtosis_threshold,
            predictable_cre_lines=tuple(predictable_cre_lines),
            min_units=min_units,
        )
        parts = field.split(".") if isinstance(field, str) else []
        if len(parts) != 2 or not all(parts):
            raise ValueError(
                f"field must be '<time series>.<attribute>', e.g. "
                f"'calcium_traces.df_over_f', got {field!r}"
            )
        self.field = field
        # (recording, selection) -> (unit ids, keep-mask) of the last sample seen; reused
        # only when a sample carries exactly the same unit ids (see __call__).
        self._masks: dict[tuple[str, NeuronSelection], tuple[np.ndarray, np.ndarray]] = {}

    def __repr__(self) -> str:
        return f"NeuronSampler({self.selection!r}, field={self.field!r})"

    def selection_for(self, config: Mapping[str, Any] | None, *, recording: str) -> NeuronSelection:
        """The selection for one recording: the stage's, with its config's overrides.

        Args:
            config: The recording's dataset ``config`` (``data.config``), or None.
            recording: The recording id, for error messages.
        """
        if not isinstance(config, Mapping) or CONFIG_KEY not in config:
            return self.selection
        return self.selection.override(config[CONFIG_KEY], where=f"Recording {recording!r}")

    def unit_mask(
        self, units: Any, *, config: Mapping[str, Any] | None, recording: str
    ) -> np.ndarray:
        """The keep-mask over one recording's units; checks ``min_units``.

        Args:
            units: The recording's ``units`` (``ArrayDict`` or its lazy twin) with
                ``skewness``, ``kurtosis`` and, where present, ``stats_valid`` and
                ``cre_line`` columns.
            config: The recording's dataset ``config``, or None.
            recording: The recording id, for error messages.

        Returns:
            Boolean mask of shape :math:`(N,)`.

        Raises:
            KeyError: If ``units`` lacks a column the selection needs.
            ValueError: If fewer than ``min_units`` neurons are selected.
        """
        selection = self.selection_for(config, recording=recording)
        mask = selection.mask(
            skewness=_unit_column(units, "skewness", recording, required=True),
            kurtosis=_unit_column(units, "kurtosis", recording, required=True),
            stats_valid=_unit_column(units, "stats_valid", recording, required=False),
            cre_line=_unit_column(
                units, "cre_line", recording, required=selection.criterion == "cre_line"
            ),
        )
        n_selected = int(mask.sum())
        if n_selected < selection.min_units:
            raise ValueError(
                f"Recording {recording!r} has {n_selected} of {len(mask)} neurons selected as "
                f"{selection.describe()}, fewer than min_units={selection.min_units}. Remove it "
                "from the dataset config (exclude_sessions), choose another population for it "
                f"(config.{CONFIG_KEY}), or lower min_units; `poyocap datasets` checks every "
                "recording when it writes the curriculum's configs."
            )
        return mask

    def __call__(self, data: Data) -> Data:
        """Keep the selected neurons in ``data.units`` and in the columns of ``field``.

        Args:
            data: A sample (a window of one recording); ``field`` has shape :math:`(T, N)`
                with its columns in ``data.units`` order.

        Returns:
            ``data``, changed in place: ``units`` and ``field`` hold the :math:`N_{sel}`
            selected neurons, in their original order; ``field`` has shape
            :math:`(T, N_{sel})`.

        Raises:
            KeyError: If ``data.units`` lacks a needed column.
            ValueError: If fewer than ``min_units`` neurons are selected, or ``field`` has
                a column count different from ``len(data.units)``.
            TypeError: If ``field`` is not a ``RegularTimeSeries`` attribute.
        """
        recording = _recording_id(data)
        config = getattr(data, "config", None)
        ids = np.asarray(data.units.id)  # tokenize reads them anyway; loaded once
        key = (recording, self.selection_for(config, recording=recording))
        cached = self._masks.get(key)
        if cached is not None and np.array_equal(cached[0], ids):
            mask = cached[1]
        else:
            mask = self.unit_mask(data.units, config=config, recording=recording)
            self._masks[key] = (ids, mask)
        series_name, attribute = self.field.split(".")
        series = getattr(data, series_name)
        if not isinstance(series, RegularTimeSeries):
            raise TypeError(
                f"NeuronSampler masks the columns of a RegularTimeSeries; {series_name!r} of "
                f"recording {recording!r} is a {type(series).__name__}"
            )
        values = getattr(series, attribute)
        if values.ndim != 2 or values.shape[1] != len(mask):
            raise ValueError(
                f"Recording {recording!r}: {self.field} has shape {values.shape} but "
                f"units has {len(mask)} neurons; its columns must be the units, in order"
            )
        if mask.all():  # nothing to drop: skip copying the units and the traces
            return data
        data.units = data.units.select_by_mask(mask)
        setattr(series, attribute, values[:, mask])
        return data

    def check_dataset(self, dataset: Any) -> dict[str, int]:
        """Check every recording of a torch_brain ``Dataset`` before training starts.

        Applies the selection (with each recording's ``neuron_selection`` override) to the
        full ``units`` of every recording the dataset holds, so a recording with too few
        neurons fails here, at set-up, rather than at the step that first samples it.
        ``poyocap datasets`` and the preflight of ``poyocap train`` call it (the preflight
        on every transform that has a ``check_dataset`` method).

        Args:
            dataset: A ``torch_brain.data.Dataset`` (0.1.2), e.g. the trainer's
                ``Dataset(root, config=..., split="train")``.

        Returns:
            The number of selected neurons by recording id.

        Raises:
            ValueError: Listing every recording with fewer than ``min_units`` selected
                neurons, with the counts.
        """
        counts: dict[str, int] = {}
        problems: list[str] = []
        for recording_id, entry in dataset.recording_dict.items():
            # torch_brain 0.1.2 exposes a recording's full lazy Data only through this method.
            units = dataset._get_data_object(recording_id).units
            try:
                mask = self.unit_mask(units, config=entry["config"], recording=recording_id)
                counts[recording_id] = int(mask.sum())
            except ValueError as error:
                problems.append(str(error))
        if problems:
            raise ValueError(
                f"{len(problems)} of {len(dataset.recording_dict)} recordings have too few "
                "selected neurons:\n" + "\n".join(problems)
            )
        logger.info(
            "neuron selection checked on %d recordings: %d to %d neurons each",
            len(counts),
            min(counts.values(), default=0),
            max(counts.values(), default=0),
        )
        return counts
