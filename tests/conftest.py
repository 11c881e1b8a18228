"""Shared fixtures: registry isolation and tiny processed calcium sessions."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch_brain.registry as registry
from temporaldata import ArrayDict, Data, Interval, RegularTimeSeries

BRAINSET_ID = "allen_brain_observatory_calcium"


@pytest.fixture
def isolated_registry():
    """Snapshot torch_brain's modality registry (both dicts) and restore it afterwards."""
    modalities = dict(registry.MODALITY_REGISTRY)
    ids = dict(registry._ID_TO_MODALITY)
    yield registry
    registry.MODALITY_REGISTRY.clear()
    registry.MODALITY_REGISTRY.update(modalities)
    registry._ID_TO_MODALITY.clear()
    registry._ID_TO_MODALITY.update(ids)


def _split_trials(trials: Interval, rng: np.random.Generator) -> dict[str, Interval]:
    order = rng.permutation(len(trials))
    n_train, n_valid = int(0.7 * len(trials)), int(0.1 * len(trials))
    parts = {
        "train": order[:n_train],
        "valid": order[n_train : n_train + n_valid],
        "test": order[n_train + n_valid :],
    }
    return {
        name: Interval(start=trials.start[np.sort(i)], end=trials.end[np.sort(i)])
        for name, i in parts.items()
    }


def write_calcium_session(
    root: Path,
    *,
    session_id: str,
    n_units: int = 12,
    n_trials: int = 30,
    sampling_rate_hz: float = 30.0,
    seed: int = 0,
) -> Path:
    """Write one tiny processed session in the plugin's data layout (DESIGN contract 7).

    Drifting-grating trials last 2 s with 1 s gaps; each unit prefers one direction class,
    so the orientation is decodable.
    """
    rng = np.random.default_rng(seed)
    starts = np.arange(n_trials) * 3.0 + 1.0
    trials = Interval(start=starts, end=starts + 2.0)
    orientation = rng.integers(0, 8, n_trials)
    duration_s = float(starts[-1] + 3.0)

    n_frames = int(duration_s * sampling_rate_hz)
    t = np.arange(n_frames) / sampling_rate_hz
    preferred = np.arange(n_units) % 8
    drive = np.zeros((n_frames, n_units), dtype=np.float32)
    for start, end, direction in zip(trials.start, trials.end, orientation, strict=True):
        frames = (t >= start) & (t < end)
        drive[frames] = (preferred == direction).astype(np.float32)
    df_over_f = drive + 0.1 * rng.standard_normal((n_frames, n_units)).astype(np.float32)

    grating = Interval(
        start=trials.start,
        end=trials.end,
        timestamps=(trials.start + trials.end) / 2,
        orientation_id=orientation.astype(np.int64),
        temporal_frequency_id=rng.integers(0, 5, n_trials).astype(np.int64),
        timekeys=["start", "end", "timestamps"],
    )
    splits = _split_trials(trials, rng)
    data = Data(
        brainset=Data(id=BRAINSET_ID),
        subject=Data(id=f"mouse_{session_id}", cre_line="Cux2-CreERT2"),
        session=Data(id=session_id),
        units=ArrayDict(
            id=np.array([f"roi_{i}" for i in range(n_units)]),
            skewness=rng.uniform(0.5, 6.0, n_units),
            kurtosis=rng.uniform(1.0, 40.0, n_units),
        ),
        calcium_traces=RegularTimeSeries(
            df_over_f=df_over_f, sampling_rate=sampling_rate_hz, domain_start=0.0
        ),
        drifting_gratings=grating,
        train_domain=splits["train"],
        valid_domain=splits["valid"],
        test_domain=splits["test"],
        domain=Interval(start=np.array([0.0]), end=np.array([n_frames / sampling_rate_hz])),
    )
    path = root / BRAINSET_ID / f"{session_id}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        data.to_hdf5(f)
    return path


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> Path:
    """A processed-data root with two tiny calcium sessions."""
    root = tmp_path_factory.mktemp("processed")
    for i in range(2):
        write_calcium_session(root, session_id=f"90000{i}", seed=i)
    return root
