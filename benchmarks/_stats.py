"""Summaries of learning figures across seeds."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def mean_ci(values: list[float]) -> dict:
    """Mean and 95 % Student-t interval (``ci95`` None for one value)."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return {"mean": mean, "ci95": None, "n": len(values)}
    half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values))
    return {"mean": mean, "ci95": [mean - half, mean + half], "n": len(values)}
