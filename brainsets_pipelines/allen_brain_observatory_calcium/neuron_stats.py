"""Per-neuron predictability statistics of dF/F (POYO-CAP, Bae et al., ICLR 2026).

Definitions (scipy.stats, computed in float64 on the frames given, i.e. the training split):

* skewness: ``scipy.stats.skew(x, bias=True)``, the sample skewness
  :math:`m_3 / m_2^{3/2}` with biased central moments :math:`m_k`;
* kurtosis: ``scipy.stats.kurtosis(x, fisher=True, bias=True)``, the **Fisher (excess)**
  kurtosis :math:`m_4 / m_2^2 - 3` (0 for a Gaussian). These are scipy's defaults; the
  paper's thresholds are read as defined on this scale.
* Non-finite frames of a neuron are left out (scipy's ``nan_policy="omit"``). A neuron with
  fewer than :data:`MIN_FRAMES` finite frames, or a constant trace (where scipy's moments
  are undefined and it returns NaN), gets NaN statistics and ``stats_valid = False``.
* ``is_predictable``: ``stats_valid and skewness <= 3.51 and kurtosis <= 22.62``.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

SKEWNESS_THRESHOLD = 3.51
"""The paper's knee threshold on dF/F skewness."""
KURTOSIS_THRESHOLD = 22.62
"""The paper's knee threshold on dF/F (Fisher, excess) kurtosis."""
MIN_FRAMES = 4
"""Fewest finite frames a neuron needs for its statistics."""


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        # scipy warns about catastrophic cancellation on constant traces and returns NaN,
        # which is the documented outcome for them.
        warnings.simplefilter("ignore", RuntimeWarning)
        with np.errstate(all="ignore"):
            skewness = stats.skew(x, axis=0, bias=True)
            kurtosis = stats.kurtosis(x, axis=0, fisher=True, bias=True)
    return np.asarray(skewness, dtype=np.float64), np.asarray(kurtosis, dtype=np.float64)


def extract_predictability_stats(df_over_f: np.ndarray) -> dict[str, np.ndarray]:
    """Skewness, kurtosis and the predictability flag of every neuron.

    Args:
        df_over_f: dF/F on the frames to use, shape :math:`(F, N)`; NaN allowed.

    Returns:
        A dict of arrays of shape (N,): ``skewness`` and ``kurtosis`` (float64, NaN where
        undefined), ``stats_valid`` and ``is_predictable`` (bool).

    Raises:
        ValueError: If ``df_over_f`` is not 2-D.
    """
    x = np.asarray(df_over_f)
    if x.ndim != 2:
        raise ValueError(f"df_over_f must have shape (frames, neurons), got shape {x.shape}")
    n_units = x.shape[1]
    skewness = np.full(n_units, np.nan)
    kurtosis = np.full(n_units, np.nan)
    finite = np.isfinite(x)
    complete = finite.all(axis=0)
    if x.shape[0] >= MIN_FRAMES and complete.any():
        skewness[complete], kurtosis[complete] = _moments(x[:, complete].astype(np.float64))
    for unit in np.flatnonzero(~complete):
        values = x[finite[:, unit], unit].astype(np.float64)
        if len(values) >= MIN_FRAMES:
            s, k = _moments(values[:, None])
            skewness[unit], kurtosis[unit] = s[0], k[0]
    stats_valid = np.isfinite(skewness) & np.isfinite(kurtosis)
    is_predictable = (
        stats_valid
        & (np.nan_to_num(skewness, nan=np.inf) <= SKEWNESS_THRESHOLD)
        & (np.nan_to_num(kurtosis, nan=np.inf) <= KURTOSIS_THRESHOLD)
    )
    return {
        "skewness": skewness,
        "kurtosis": kurtosis,
        "stats_valid": stats_valid,
        "is_predictable": is_predictable,
    }
