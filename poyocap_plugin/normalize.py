"""Put every neuron's dF/F on one scale: a torch_brain transform."""

from __future__ import annotations

import numpy as np
from temporaldata import Data

__all__ = ["NormalizeDfOverF", "missing_at_mean"]

_MIN_STD = 1e-6  # floor of a neuron's standard deviation (a nearly constant trace)


def missing_at_mean(df_over_f: np.ndarray) -> np.ndarray:
    """Z-scored dF/F with each missing value at its neuron's mean (0), as float64: the
    features of the linear baselines and probes, which cannot leave a value out."""
    return np.nan_to_num(np.asarray(df_over_f, dtype=np.float64), nan=0.0)


class NormalizeDfOverF:
    r"""Z-score each neuron's dF/F with its training-split mean and standard deviation.

    The lines differ tenfold in event size (the predictable lines' events are a few
    percent dF/F, the others' near 1), and a model's shared value embedding sees them on
    one scale only after this. The statistics are the ones the
    ``allen_brain_observatory_calcium`` pipeline stores per unit (``units.df_over_f_mean``,
    ``units.df_over_f_std``, on the training split's frames), so nothing about the
    validation or test frames leaks in. Missing values (NaN) stay missing, and so do the
    values of a neuron without statistics (its ``stats_valid`` is False): CAPOYO's
    tokenizer leaves them out of the input tokens. A model whose tokenizer cannot take NaN
    (torch_brain's ``CalciumPOYOPlus``) needs ``fill_missing``, e.g. 0.0, the neuron's mean.

    Place it first in ``train_transforms`` and ``eval_transforms``, before any transform
    that drops neurons, so that the columns of ``calcium_traces.df_over_f`` still match
    ``units``. Returns the ``Data`` it was given, changed.

    Args:
        fill_missing: The z-scored value that replaces each missing one; None keeps NaN.

    Raises:
        KeyError: for a recording prepared without the per-unit statistics, naming it and
            the command that adds them.
        ValueError: if the trace's columns do not match the units.
    """

    def __init__(self, fill_missing: float | None = None) -> None:
        self.fill_missing = fill_missing

    def __call__(self, data: Data) -> Data:
        units = data.units
        missing = [key for key in ("df_over_f_mean", "df_over_f_std") if key not in units.keys()]
        if missing:
            raise KeyError(
                f"Recording {getattr(data.session, 'id', '?')!r} has no units.{missing[0]}: "
                "it was prepared by an older pipeline; prepare it again with `brainsets "
                "prepare allen_brain_observatory_calcium ... --reprocess`"
            )
        df_over_f = np.asarray(data.calcium_traces.df_over_f, dtype=np.float32)
        mean = np.asarray(units.df_over_f_mean, dtype=np.float32)
        if df_over_f.shape[1:] != mean.shape:
            raise ValueError(
                f"calcium_traces.df_over_f has {df_over_f.shape[1]} columns but there are "
                f"{len(mean)} units: put NormalizeDfOverF before transforms that drop neurons"
            )
        std = np.maximum(np.asarray(units.df_over_f_std, dtype=np.float32), _MIN_STD)
        with np.errstate(invalid="ignore"):
            normalized = (df_over_f - mean) / std
        if self.fill_missing is not None:
            normalized = np.nan_to_num(normalized, nan=self.fill_missing)
        data.calcium_traces.df_over_f = normalized.astype(np.float32)
        return data
