"""Pure extraction helpers: allensdk's arrays and tables in, temporaldata objects out.

Nothing here imports allensdk, so the helpers run (and are tested) in any environment with
numpy, pandas and temporaldata. Times are seconds on the 2-photon clock; allensdk's stimulus
tables count in 2-photon frame indices, which :func:`_frame_times` maps through the dF/F
timestamps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from temporaldata import ArrayDict, Interval, IrregularTimeSeries, RegularTimeSeries

DG_TEMPORAL_FREQUENCIES_HZ = (1.0, 2.0, 4.0, 8.0, 15.0)
DG_DIRECTION_STEP_DEG = 45.0
SG_ORIENTATIONS_DEG = (0.0, 30.0, 60.0, 90.0, 120.0, 150.0)
SG_SPATIAL_FREQUENCIES_CPD = (0.02, 0.04, 0.08, 0.16, 0.32)
SG_PHASES_CYCLES = (0.0, 0.25, 0.5, 0.75)


def extract_calcium_traces(timestamps: np.ndarray, traces: np.ndarray) -> RegularTimeSeries:
    """dF/F as a regular time series.

    Args:
        timestamps: 2-photon frame times (s), shape (T,).
        traces: dF/F as allensdk returns it, shape (N, T).

    Returns:
        ``RegularTimeSeries`` with ``df_over_f`` of shape (T, N), float32, sampled at
        1 / mean frame interval (Hz), starting at ``timestamps[0]``.

    Raises:
        ValueError: If shapes disagree or a frame interval strays more than half a frame from
            the median (dropped frames), naming the largest deviation.
    """
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if traces.ndim != 2 or traces.shape[1] != len(timestamps):
        raise ValueError(
            f"dF/F traces must be (n_rois, {len(timestamps)}) to match the timestamps, "
            f"got {traces.shape}"
        )
    if len(timestamps) < 2:
        raise ValueError(f"need at least 2 frames, got {len(timestamps)}")
    step = np.diff(timestamps)
    median = float(np.median(step))
    deviation = float(np.abs(step - median).max())
    if median <= 0 or deviation > 0.5 * median:
        raise ValueError(
            f"2-photon clock is not regular: frame intervals deviate from the median "
            f"{median * 1e3:.2f} ms by up to {deviation * 1e3:.2f} ms"
        )
    return RegularTimeSeries(
        df_over_f=np.ascontiguousarray(traces.T, dtype=np.float32),
        sampling_rate=float(1.0 / step.mean()),
        domain_start=float(timestamps[0]),
    )


def extract_units(roi_ids: np.ndarray, masks: np.ndarray, cre_line: str) -> ArrayDict:
    """Units with their Cre line and ROI geometry.

    Args:
        roi_ids: ROI ids, shape (N,).
        masks: ROI masks over the imaging plane, shape (N, H, W), bool.
        cre_line: The session's Cre line (allensdk spelling, e.g. ``"Sst-IRES-Cre"``).

    Returns:
        ArrayDict with ``id`` (str), ``cre_line`` (str), ``imaging_plane_xy`` (N, 2): mask
        centroid (x, y) in pixels, ``imaging_plane_area`` (pixels), ``imaging_plane_width``
        and ``imaging_plane_height`` (bounding box, pixels); float64 unless stated.
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3 or len(masks) != len(roi_ids):
        raise ValueError(f"masks must be ({len(roi_ids)}, H, W), got {masks.shape}")
    area = masks.sum(axis=(1, 2)).astype(np.float64)
    rows, cols = masks.any(axis=2), masks.any(axis=1)  # (N, H), (N, W)
    safe = np.maximum(area, 1.0)
    y = (masks.sum(axis=2) * np.arange(masks.shape[1])).sum(axis=1) / safe
    x = (masks.sum(axis=1) * np.arange(masks.shape[2])).sum(axis=1) / safe

    def extent(hit: np.ndarray) -> np.ndarray:
        first = hit.argmax(axis=1)
        last = hit.shape[1] - 1 - hit[:, ::-1].argmax(axis=1)
        return np.where(hit.any(axis=1), last - first + 1, 0).astype(np.float64)

    return ArrayDict(
        id=np.asarray(roi_ids).astype(str),
        cre_line=np.full(len(roi_ids), cre_line),
        imaging_plane_xy=np.stack([x, y], axis=1),
        imaging_plane_area=area,
        imaging_plane_width=extent(cols),
        imaging_plane_height=extent(rows),
    )


def _frame_times(
    start_frame: np.ndarray, end_frame: np.ndarray, timestamps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Times (s) of table frame indices (a presentation within one 2-photon frame: start == end)."""
    last = len(timestamps) - 1
    start_frame = np.asarray(start_frame, dtype=np.int64)
    end_frame = np.asarray(end_frame, dtype=np.int64)
    if len(start_frame) and (start_frame.min() < 0 or start_frame.max() > last):
        raise ValueError(
            f"stimulus frames {start_frame.min()}..{start_frame.max()} fall outside the "
            f"{len(timestamps)} 2-photon frames"
        )
    start = timestamps[start_frame]
    end = timestamps[np.clip(end_frame, 0, last)]
    return start.astype(np.float64), end.astype(np.float64)


def _interval(start: np.ndarray, end: np.ndarray, **columns: np.ndarray) -> Interval:
    order = np.argsort(start, kind="stable")
    return Interval(
        start=start[order],
        end=end[order],
        timestamps=((start + end) / 2)[order],
        timekeys=["start", "end", "timestamps"],
        **{k: np.asarray(v)[order] for k, v in columns.items()},
    )


def _class_ids(values: np.ndarray, classes: tuple[float, ...], name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    ids = np.array(
        [int(np.argmin(np.abs(np.asarray(classes) - v))) for v in values], dtype=np.int64
    )
    bad = np.abs(np.asarray(classes)[ids] - values) > 1e-6 if len(values) else np.zeros(0, bool)
    if bad.any():
        raise ValueError(
            f"unexpected {name} {float(values[bad][0])!r}; expected one of {list(classes)}"
        )
    return ids


def extract_drifting_gratings(table: pd.DataFrame, timestamps: np.ndarray) -> Interval:
    """Drifting-grating trials, blank sweeps dropped.

    Args:
        table: allensdk's table: ``temporal_frequency`` (Hz), ``orientation`` (drift direction,
            degrees), ``blank_sweep``, ``start``, ``end`` (2-photon frame indices).
        timestamps: 2-photon frame times (s).

    Returns:
        Interval sorted by start with ``timestamps`` (mid-point, a time key),
        ``orientation_id`` (int64, direction / 45, 0..7), ``temporal_frequency_id`` (int64,
        index in 1, 2, 4, 8, 15 Hz), ``direction`` (degrees) and ``temporal_frequency`` (Hz).

    Raises:
        ValueError: On a direction that is not a multiple of 45 degrees or an unknown
            temporal frequency, naming the value.
    """
    blank = table["blank_sweep"].to_numpy(dtype=np.float64) == 1.0
    blank |= table["orientation"].isna().to_numpy() | table["temporal_frequency"].isna().to_numpy()
    shown = table.loc[~blank]
    direction = shown["orientation"].to_numpy(dtype=np.float64)
    frequency = shown["temporal_frequency"].to_numpy(dtype=np.float64)
    steps = direction / DG_DIRECTION_STEP_DEG
    if np.any(np.abs(steps - np.round(steps)) > 1e-6):
        bad = float(direction[np.abs(steps - np.round(steps)) > 1e-6][0])
        raise ValueError(f"unexpected drifting-grating direction {bad!r} degrees; expected k * 45")
    start, end = _frame_times(shown["start"].to_numpy(), shown["end"].to_numpy(), timestamps)
    return _interval(
        start,
        end,
        orientation_id=(np.round(steps).astype(np.int64) % 8),
        temporal_frequency_id=_class_ids(
            frequency, DG_TEMPORAL_FREQUENCIES_HZ, "temporal frequency"
        ),
        direction=direction,
        temporal_frequency=frequency,
    )


def extract_static_gratings(table: pd.DataFrame, timestamps: np.ndarray) -> Interval:
    """Static-grating flashes (blanks dropped) with orientation, spatial-frequency and phase ids."""
    shown = table.dropna(subset=["orientation", "spatial_frequency", "phase"])
    start, end = _frame_times(shown["start"].to_numpy(), shown["end"].to_numpy(), timestamps)
    orientation = shown["orientation"].to_numpy(dtype=np.float64)
    frequency = shown["spatial_frequency"].to_numpy(dtype=np.float64)
    phase = shown["phase"].to_numpy(dtype=np.float64)
    return _interval(
        start,
        end,
        orientation_id=_class_ids(orientation, SG_ORIENTATIONS_DEG, "static-grating orientation"),
        spatial_frequency_id=_class_ids(frequency, SG_SPATIAL_FREQUENCIES_CPD, "spatial frequency"),
        phase_id=_class_ids(phase, SG_PHASES_CYCLES, "static-grating phase"),
        orientation=orientation,
        spatial_frequency=frequency,
        phase=phase,
    )


def extract_frame_presentations(table: pd.DataFrame, timestamps: np.ndarray) -> Interval:
    """One interval per presented template frame (movies, scenes, sparse noise).

    Args:
        table: allensdk's table with ``frame``, ``start``, ``end`` and, for movies, ``repeat``.
        timestamps: 2-photon frame times (s).

    Returns:
        Interval sorted by start with ``timestamps`` (mid-point, a time key), ``frame``
        (int64 template index; -1 is the blank of natural scenes) and, for movies,
        ``repeat`` (int64). Presentations of zero length (end frame = start frame: shown
        between two 2-photon frames) are left out: no 2-photon frame saw them, and each
        would be a second target in its neighbour's window.
    """
    start, end = _frame_times(table["start"].to_numpy(), table["end"].to_numpy(), timestamps)
    shown = end > start
    columns = {"frame": table["frame"].to_numpy().astype(np.int64)[shown]}
    if "repeat" in table.columns:
        columns["repeat"] = table["repeat"].to_numpy().astype(np.int64)[shown]
    return _interval(start[shown], end[shown], **columns)


def extract_epochs(epoch_table: pd.DataFrame, timestamps: np.ndarray) -> dict[str, Interval]:
    """Stimulus blocks from allensdk's epoch table, as ``{"<stimulus>_domain": Interval}``."""
    epochs = {}
    for stimulus, rows in epoch_table.groupby("stimulus"):
        start, end = _frame_times(rows["start"].to_numpy(), rows["end"].to_numpy(), timestamps)
        order = np.argsort(start)
        epochs[f"{stimulus}_domain"] = Interval(start=start[order], end=end[order])
    return epochs


def extract_running(speed: np.ndarray, timestamps: np.ndarray) -> IrregularTimeSeries:
    """Running speed (cm/s) as ``running_speed`` of shape (n, 1); NaN samples dropped."""
    speed = np.asarray(speed, dtype=np.float64).reshape(-1)
    timestamps = np.asarray(timestamps, dtype=np.float64)
    keep = np.isfinite(speed) & np.isfinite(timestamps)
    return IrregularTimeSeries(
        timestamps=timestamps[keep], running_speed=speed[keep, None], domain="auto"
    )


def extract_pupil(
    timestamps: np.ndarray, location_deg: np.ndarray, size: np.ndarray
) -> IrregularTimeSeries:
    """Pupil ``location`` (azimuth, altitude in degrees, (n, 2)) and ``size`` (pixels, (n,)).

    Samples where any value is NaN (blinks) are dropped.
    """
    location_deg = np.asarray(location_deg, dtype=np.float64)
    size = np.asarray(size, dtype=np.float64).reshape(-1)
    keep = np.isfinite(location_deg).all(axis=1) & np.isfinite(size) & np.isfinite(timestamps)
    return IrregularTimeSeries(
        timestamps=np.asarray(timestamps, dtype=np.float64)[keep],
        location=location_deg[keep],
        size=size[keep],
        domain="auto",
    )


def cre_line_from_metadata(metadata: dict, session_id: str) -> str:
    """The Cre line as allensdk reports it (``"Cux2-CreERT2/wt"`` becomes ``"Cux2-CreERT2"``)."""
    value = metadata.get("cre_line")
    if not value:
        raise ValueError(
            f"session {session_id}: the NWB file has no genotype, so no Cre line "
            f"(metadata cre_line={value!r})"
        )
    return str(value).split("/")[0]


def donor_from_metadata(metadata: dict, session_id: str) -> str:
    """The mouse, Allen's donor (``specimen_name``, e.g. ``"Cux2-CreERT2;Camk2a-tTA;Ai93-308148"``).

    The subject of the brainset: an experiment container is one imaging plane, and one
    mouse may have several, so containers cannot keep the stages' animals apart.
    """
    value = metadata.get("specimen_name")
    if not value:
        raise ValueError(
            f"session {session_id}: the NWB file has no /general/specimen_name, so no donor "
            f"(mouse) to use as the subject (metadata specimen_name={value!r})"
        )
    return str(value)


# --------------------------------------------------------------------------------------------
