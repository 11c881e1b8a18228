"""Neuron predictability: stored per-neuron statistics, knee thresholds and Cre-line partitions.

POYO-CAP (Bae et al., ICLR 2026) calls a neuron *predictable* when the skewness and the
kurtosis of its dF/F are both at or below thresholds found by knee detection (Kneedle,
Satopaa et al. 2011) across the 13 Cre lines of the Allen Brain Observatory (the paper's
values are :data:`~poyocap_plugin.brainset.PAPER_SKEWNESS_THRESHOLD` and
:data:`~poyocap_plugin.brainset.PAPER_KURTOSIS_THRESHOLD`).
At Cre-line level that selects Sst, Vip, Pvalb and Ntsr1 for pretraining.

The ``allen_brain_observatory_calcium`` pipeline stores each neuron's statistics in
``units.skewness``, ``units.kurtosis`` and ``units.stats_valid``; this module reads them back
across a brainset, summarises them per Cre line and finds knee thresholds; the report built
from them lives in :mod:`poyocap_plugin.workflow.predictability_report`. The rule itself,
:func:`predictable_mask`, is shared with :class:`poyocap_plugin.neuron_sampler.NeuronSampler`.

.. note::
    The released POYO-CAP code never computes these statistics: it hard-codes the four Cre
    lines. We follow the paper and also offer the line list as a criterion.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from temporaldata import Data

from poyocap_plugin._moved import moved_names
from poyocap_plugin.brainset import BRAINSET_ID, PAPER_KURTOSIS_THRESHOLD, PAPER_SKEWNESS_THRESHOLD

__all__ = [
    "BrainsetStatistics",
    "knee_threshold",
    "predictable_mask",
    "read_unit_statistics",
    "summarize_cre_lines",
    "valid_statistics_mask",
]

#: moved public names (issue 13): importing one says where it went
__getattr__ = moved_names(
    __name__,
    {
        "ALLEN_CRE_LINES": "poyocap_plugin.brainset.ALLEN_CRE_LINES",
        "PAPER_PREDICTABLE_CRE_LINES": "poyocap_plugin.brainset.PAPER_PREDICTABLE_CRE_LINES",
    },
)

logger = logging.getLogger(__name__)


_UNIT_COLUMNS = ("skewness", "kurtosis")
_STIMULI = ("drifting_gratings", "natural_movie_one")


def valid_statistics_mask(
    skewness: np.ndarray, kurtosis: np.ndarray, stats_valid: np.ndarray | None = None
) -> np.ndarray:
    """Neurons whose statistics can be used: both finite, and ``stats_valid`` where given.

    Args:
        skewness: Skewness of each neuron's dF/F, shape :math:`(N,)`.
        kurtosis: Kurtosis of each neuron's dF/F, shape :math:`(N,)`.
        stats_valid: The pipeline's per-neuron validity flag, shape :math:`(N,)`, bool, or
            None when the recording does not store one.

    Returns:
        Boolean mask of shape :math:`(N,)`.
    """
    valid = np.isfinite(np.asarray(skewness, dtype=np.float64)) & np.isfinite(
        np.asarray(kurtosis, dtype=np.float64)
    )
    if stats_valid is not None:
        valid &= np.asarray(stats_valid, dtype=bool)
    return valid


def predictable_mask(
    skewness: np.ndarray,
    kurtosis: np.ndarray,
    *,
    skewness_threshold: float = PAPER_SKEWNESS_THRESHOLD,
    kurtosis_threshold: float = PAPER_KURTOSIS_THRESHOLD,
) -> np.ndarray:
    """The paper's rule: skewness <= threshold **and** kurtosis <= threshold; NaN is False.

    Args:
        skewness: Skewness of each neuron's dF/F, shape :math:`(N,)`.
        kurtosis: Kurtosis of each neuron's dF/F, shape :math:`(N,)`.
        skewness_threshold: Largest predictable skewness.
        kurtosis_threshold: Largest predictable kurtosis.

    Returns:
        Boolean mask of shape :math:`(N,)`.
    """
    skewness = np.asarray(skewness, dtype=np.float64)
    kurtosis = np.asarray(kurtosis, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (skewness <= skewness_threshold) & (kurtosis <= kurtosis_threshold)


@dataclass(frozen=True)
class BrainsetStatistics:
    """Per-neuron statistics and per-session metadata of one processed brainset.

    Attributes:
        units: One row per neuron: ``session_id``, ``subject_id``, ``cre_line`` (the
            neuron's ``units["cre_line"]``, else the session's), ``unit_id``, ``skewness``,
            ``kurtosis``, ``stats_valid``.
        sessions: One row per session, indexed by ``session_id``: ``subject_id``,
            ``cre_line``, ``n_units``, ``has_drifting_gratings``, ``has_natural_movie_one``.
    """

    units: pd.DataFrame
    sessions: pd.DataFrame


def _brainset_files(data_root: Path, brainset_id: str) -> list[Path]:
    folder = Path(data_root) / brainset_id
    if not folder.is_dir():
        raise FileNotFoundError(
            f"No brainset folder {folder}. Prepare the data first, e.g. "
            f"`brainsets prepare {brainset_id} --local ... --processed-dir {data_root}`."
        )
    files = sorted(folder.glob("*.h5"))
    if not files:
        raise FileNotFoundError(f"{folder} holds no processed sessions (*.h5).")
    return files


def _attribute(data: Data, path: Path, dotted: str) -> object:
    try:
        return data.get_nested_attribute(dotted)
    except AttributeError as error:
        raise KeyError(
            f"{path} has no {dotted!r}. Process it with the plugin's "
            f"{BRAINSET_ID} pipeline, which stores it."
        ) from error


def _read_session(path: Path) -> tuple[dict, pd.DataFrame]:
    with h5py.File(path, "r") as f:
        data = Data.from_hdf5(f, lazy=True)
        session_id = str(_attribute(data, path, "session.id"))
        if session_id != path.stem:
            raise ValueError(
                f"{path} has session.id {session_id!r}, not its file stem {path.stem!r}; "
                "torch_brain matches recordings to metrics by that name. Re-run prepare."
            )
        units = _attribute(data, path, "units")
        columns = set(units.keys())
        missing = [c for c in ("id", *_UNIT_COLUMNS) if c not in columns]
        if missing:
            raise KeyError(
                f"{path}: units has no {missing} (it has {sorted(columns)}). Process it with "
                f"the plugin's {BRAINSET_ID} pipeline, which stores per-neuron statistics."
            )
        n_units = len(units.id)
        stats_valid = (
            np.asarray(units.stats_valid, dtype=bool)
            if "stats_valid" in columns
            else np.ones(n_units, dtype=bool)
        )
        session = {
            "session_id": session_id,
            "subject_id": str(_attribute(data, path, "subject.id")),
            "cre_line": str(_attribute(data, path, "subject.cre_line")),
            "n_units": n_units,
            **{f"has_{name}": name in data.keys() for name in _STIMULI},
        }
        table = pd.DataFrame(
            {
                "session_id": session_id,
                "subject_id": session["subject_id"],
                "cre_line": (
                    np.asarray(units.cre_line).astype(str)
                    if "cre_line" in columns
                    else session["cre_line"]
                ),
                "unit_id": np.asarray(units.id).astype(str),
                "skewness": np.asarray(units.skewness, dtype=np.float64),
                "kurtosis": np.asarray(units.kurtosis, dtype=np.float64),
                "stats_valid": stats_valid,
            }
        )
    return session, table


def read_unit_statistics(data_root: Path, *, brainset_id: str = BRAINSET_ID) -> BrainsetStatistics:
    """Read every neuron's stored statistics from ``<data_root>/<brainset_id>/*.h5``.

    Only the ``units`` columns and a few attributes are read (lazily), not the traces.

    Args:
        data_root: The processed-data root (the trainer's ``data_root``).
        brainset_id: The brainset folder.

    Returns:
        The per-neuron and per-session tables, sessions in file-name order.

    Raises:
        FileNotFoundError: If the folder is missing or holds no ``.h5`` file.
        KeyError: If a session lacks ``units["skewness"]``/``units["kurtosis"]``, ``session.id``,
            ``subject.id`` or ``subject.cre_line`` (the message names the file).
        ValueError: If a file's ``session.id`` differs from its file stem.
    """
    files = _brainset_files(Path(data_root), brainset_id)
    sessions, tables = [], []
    for i, path in enumerate(files, start=1):
        session, table = _read_session(path)
        sessions.append(session)
        tables.append(table)
        if i % 50 == 0 or i == len(files):
            logger.info("read neuron statistics of %d/%d sessions", i, len(files))
    return BrainsetStatistics(
        units=pd.concat(tables, ignore_index=True),
        sessions=pd.DataFrame(sessions).set_index("session_id"),
    )


def knee_threshold(values: Sequence[float]) -> float | None:
    """The Kneedle knee of the ascending curve of ``values``, or None if it has none.

    ``values`` are sorted in ascending order and treated as a convex, increasing curve over
    their rank; the knee is the last value before the curve bends upwards (Kneedle with
    ``curve="convex", direction="increasing", online=True`` from the ``kneed`` package). With
    one aggregate value per Cre line, the lines at or below the knee are the predictable
    ones.

    Args:
        values: One number per item (e.g. the median skewness of each Cre line); NaNs are
            ignored.

    Returns:
        The knee value, or None with fewer than 3 finite values or no knee.
    """
    from kneed import KneeLocator  # heavy import, only needed for the report

    y = np.sort(np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64))
    if len(y) < 3 or y[0] == y[-1]:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        knee = KneeLocator(
            np.arange(len(y)), y, curve="convex", direction="increasing", online=True
        ).knee
    return None if knee is None else float(y[int(knee)])


def summarize_cre_lines(
    units: pd.DataFrame,
    *,
    skewness_threshold: float = PAPER_SKEWNESS_THRESHOLD,
    kurtosis_threshold: float = PAPER_KURTOSIS_THRESHOLD,
) -> pd.DataFrame:
    """Per Cre line: counts, median and spread of the statistics, fraction predictable.

    Args:
        units: The per-neuron table of :func:`read_unit_statistics`.
        skewness_threshold: Skewness threshold of the per-neuron rule.
        kurtosis_threshold: Kurtosis threshold of the per-neuron rule.

    Returns:
        One row per Cre line (sorted by name): ``n_sessions``, ``n_units``, ``n_valid``
        (finite, valid statistics), ``skewness_median``, ``skewness_q25``,
        ``skewness_q75``, the same three for kurtosis, and ``fraction_predictable`` (of the
        valid neurons, under the given thresholds; NaN without valid neurons).
    """
    rows = []
    for line, group in units.groupby("cre_line", sort=True):
        valid = valid_statistics_mask(group["skewness"], group["kurtosis"], group["stats_valid"])
        skew, kurt = group["skewness"][valid].to_numpy(), group["kurtosis"][valid].to_numpy()
        row = {
            "cre_line": line,
            "n_sessions": group["session_id"].nunique(),
            "n_units": len(group),
            "n_valid": int(valid.sum()),
        }
        for name, values in (("skewness", skew), ("kurtosis", kurt)):
            q25, q50, q75 = np.quantile(values, [0.25, 0.5, 0.75]) if len(values) else (np.nan,) * 3
            row |= {f"{name}_median": q50, f"{name}_q25": q25, f"{name}_q75": q75}
        predictable = predictable_mask(
            skew,
            kurt,
            skewness_threshold=skewness_threshold,
            kurtosis_threshold=kurtosis_threshold,
        )
        row["fraction_predictable"] = float(predictable.mean()) if len(skew) else np.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index("cre_line")
