"""Train / valid / test splits of one session, as POYO-CAP defines them.

* Drifting gratings: 70 / 10 / 20 % of the (non-blank) trials, drawn by a seeded permutation.
  Split sizes are ``round(0.7 n)`` and ``round(0.1 n)``; the test split takes the rest
  (600 trials give 420 / 60 / 120).
* Natural movie one: by repeat. The last repeat is the test split, the one before it the
  validation split, all earlier ones the training split (10 repeats: 0-7 / 8 / 9).

A split's domain is the union of its trials' and repeats' intervals. Intervals are half-open,
[start, end), so a repeat that ends where the next one starts does not overlap it.
"""

from __future__ import annotations

import numpy as np
from temporaldata import Interval

SPLITS = ("train", "valid", "test")
DG_RATIOS = (0.7, 0.1, 0.2)


def split_trials(
    n_trials: int, *, seed: int, ratios: tuple[float, float, float] = DG_RATIOS
) -> np.ndarray:
    """Assign ``n_trials`` trials to the splits at random.

    Args:
        n_trials: Number of trials.
        seed: Seed of the permutation (POYO-CAP uses 42 for every session).
        ratios: Fractions of the train, valid and test splits; they must sum to 1.

    Returns:
        The split name of every trial, shape (n_trials,), a str array.

    Raises:
        ValueError: If ``n_trials`` is negative or ``ratios`` do not sum to 1.

    Example::

        >>> labels = split_trials(600, seed=42)
        >>> [int((labels == s).sum()) for s in SPLITS]
        [420, 60, 120]
    """
    if n_trials < 0:
        raise ValueError(f"n_trials must be non-negative, got {n_trials!r}")
    if len(ratios) != 3 or abs(sum(ratios) - 1.0) > 1e-9 or min(ratios) < 0:
        raise ValueError(
            f"ratios must be three non-negative fractions summing to 1, got {ratios!r}"
        )
    n_train = int(round(ratios[0] * n_trials))
    n_valid = min(int(round(ratios[1] * n_trials)), n_trials - n_train)
    order = np.random.default_rng(seed).permutation(n_trials)
    labels = np.empty(n_trials, dtype="<U5")
    labels[order[:n_train]] = "train"
    labels[order[n_train : n_train + n_valid]] = "valid"
    labels[order[n_train + n_valid :]] = "test"
    return labels


def split_repeats(repeat: np.ndarray) -> np.ndarray:
    """Assign movie presentations to the splits by repeat: last = test, second last = valid.

    Args:
        repeat: Repeat index of every presentation, shape (N,), int, counted from 0.

    Returns:
        The split name of every presentation, shape (N,), a str array.

    Raises:
        ValueError: If the movie is shown fewer than 3 times.
    """
    repeat = np.asarray(repeat)
    n_repeats = int(repeat.max()) + 1 if len(repeat) else 0
    if n_repeats < 3:
        raise ValueError(
            f"splitting a movie by repeat needs at least 3 repeats, got {n_repeats} "
            f"(repeat indices {np.unique(repeat).tolist()})"
        )
    labels = np.full(len(repeat), "train", dtype="<U5")
    labels[repeat == n_repeats - 2] = "valid"
    labels[repeat == n_repeats - 1] = "test"
    return labels


def repeat_intervals(start: np.ndarray, end: np.ndarray, repeat: np.ndarray) -> Interval:
    """One interval per repeat, from its first presentation's start to its last one's end (s).

    Args:
        start: Start of every presentation (s), shape (N,).
        end: End of every presentation (s), shape (N,).
        repeat: Repeat index of every presentation, shape (N,).

    Returns:
        An Interval sorted by start, with a ``repeat`` (int64) column.
    """
    repeats = np.unique(repeat)
    first = np.array([start[repeat == r].min() for r in repeats], dtype=np.float64)
    last = np.array([end[repeat == r].max() for r in repeats], dtype=np.float64)
    order = np.argsort(first)
    return Interval(start=first[order], end=last[order], repeat=repeats[order].astype(np.int64))


def _is_disjoint(start: np.ndarray, end: np.ndarray) -> bool:
    order = np.argsort(start, kind="stable")
    return bool(np.all(end[order][:-1] <= start[order][1:]))


def build_split_domains(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> dict[str, Interval]:
    """Union, per split, the intervals of several stimuli.

    Args:
        parts: For every stimulus, ``(start, end, labels)``: interval bounds (s), shape (K,),
            and the split name of each interval, shape (K,).

    Returns:
        ``{"train": Interval, "valid": Interval, "test": Interval}``, each sorted.

    Raises:
        ValueError: If two intervals overlap, within or across splits (a leak).
    """
    domains = {}
    all_start, all_end = [], []
    for split in SPLITS:
        start = np.concatenate([s[labels == split] for s, _, labels in parts] + [np.zeros(0)])
        end = np.concatenate([e[labels == split] for _, e, labels in parts] + [np.zeros(0)])
        order = np.argsort(start, kind="stable")
        domains[split] = Interval(
            start=start[order].astype(np.float64), end=end[order].astype(np.float64)
        )
        all_start.append(start)
        all_end.append(end)
    if not _is_disjoint(np.concatenate(all_start), np.concatenate(all_end)):
        raise ValueError(
            "split intervals overlap: the train, valid and test domains must be disjoint "
            "(check that no stimulus presentations overlap in time)"
        )
    return domains


def frames_in_domain(timestamps: np.ndarray, domain: Interval) -> np.ndarray:
    """Which frames fall inside ``domain``, an Interval of half-open [start, end) pieces.

    Args:
        timestamps: Frame times (s), shape (T,), sorted.
        domain: Sorted, disjoint intervals.

    Returns:
        Boolean mask of shape (T,).
    """
    timestamps = np.asarray(timestamps)
    first = np.searchsorted(timestamps, domain.start, side="left")
    stop = np.searchsorted(timestamps, domain.end, side="left")
    change = np.zeros(len(timestamps) + 1, dtype=np.int64)
    np.add.at(change, first, 1)
    np.add.at(change, stop, -1)
    return np.cumsum(change[:-1]) > 0
