r"""One sampling window per natural-movie frame, for stage-2 finetuning.

POYO-CAP decodes each natural-movie-one frame from the 2-photon frame recorded while it
was shown. torch_brain's samplers draw windows of ``model.sequence_length`` from a
recording's sampling intervals; with this module's intervals every window holds exactly
one movie frame's midpoint and exactly one 2-photon frame.

A dataset config asks for it in its ``sampling_intervals_modifier``, which torch_brain's
``Dataset`` runs with ``data``, ``sampling_intervals`` and ``split`` defined::

    sampling_intervals_modifier: |
      from poyocap_plugin.frame_windows import frame_sampling_intervals
      sampling_intervals = frame_sampling_intervals(data, sampling_intervals, window_s=0.033)

``window_s`` must equal the model's ``sequence_length``.
"""

from __future__ import annotations

import numpy as np
from temporaldata import Data, Interval

__all__ = ["frame_sampling_intervals"]

# The window opens this fraction of its length before the frame's onset, so that the
# 2-photon frame at the onset is inside it even when the recording's regular time grid
# and the stimulus clock disagree by a few milliseconds.
_LEAD_FRACTION = 0.25
# Intervals exceed the window by this fraction, so that rounding never makes one shorter
# than the window (the samplers drop short intervals silently).
_SLACK_FRACTION = 1e-6


def frame_sampling_intervals(
    data: Data, sampling_intervals: Interval, *, window_s: float
) -> Interval:
    r"""Sampling intervals of one window per natural-movie-one frame of the split.

    A frame shown from :math:`t_0` to :math:`t_1` (midpoint :math:`t_m`) whose midpoint
    lies in ``sampling_intervals`` gets the interval starting at
    :math:`t_0 - w / 4` and lasting :math:`w` (plus a hair), where :math:`w` is
    ``window_s``. Its windows therefore contain the frame's midpoint (targets are the
    frames whose midpoint lies in the window) and, with :math:`w` shorter than a 2-photon
    frame, exactly the 2-photon frame at the onset.

    Args:
        data: a whole recording with ``natural_movie_one`` (start, end, timestamps) and
            ``calcium_traces`` (a regular time series).
        sampling_intervals: the split's intervals (e.g. ``train_domain``).
        window_s: window length (s); the model's ``sequence_length``.

    Returns:
        Sorted, disjoint intervals, one per selected frame.

    Raises:
        ValueError: if ``window_s`` is not shorter than a 2-photon frame, or too short to
            reach the midpoint of a movie frame.
    """
    frame_period_s = 1.0 / float(data.calcium_traces.sampling_rate)
    movie = data.natural_movie_one
    start = np.asarray(movie.start, dtype=np.float64)
    midpoint = np.asarray(movie.timestamps, dtype=np.float64)
    lead_s = _LEAD_FRACTION * window_s
    if not window_s < frame_period_s:
        raise ValueError(
            f"window_s={window_s} s must be shorter than one 2-photon frame "
            f"({frame_period_s:.5f} s at {1 / frame_period_s:.3f} Hz) to hold exactly one"
        )
    longest_half = float(np.max(midpoint - start, initial=0.0))
    if longest_half + lead_s >= window_s:
        raise ValueError(
            f"window_s={window_s} s is too short to reach the midpoint of movie frames "
            f"lasting up to {2 * longest_half:.5f} s; use at least "
            f"{(longest_half / (1 - _LEAD_FRACTION)):.5f} s"
        )
    # sampling intervals are sorted and disjoint: find the one each midpoint may lie in
    lo = np.asarray(sampling_intervals.start, dtype=np.float64)
    hi = np.asarray(sampling_intervals.end, dtype=np.float64)
    candidate = np.searchsorted(lo, midpoint, side="right") - 1
    inside = (candidate >= 0) & (midpoint < hi[np.maximum(candidate, 0)])
    onset = np.unique(start[inside])
    window_start = onset - lead_s
    return Interval(
        start=window_start,
        end=window_start + window_s * (1.0 + _SLACK_FRACTION),
    )
