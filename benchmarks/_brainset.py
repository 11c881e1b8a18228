"""The simulated brainset every benchmark reads: sessions, dataset configs and windows.

The sessions are in the plugin's processed layout (DESIGN contract 7): drifting-grating
trials (2 s on, 1 s off), then natural movie one (``movie_repeats`` repeats of
``movie_frames`` frames, one 2-photon frame each), per-neuron statistics (about half the
neurons predictable), train/valid/test domains, and the brainset's NM1 template. Both the
stock and the plugin paths read these files through torch_brain 0.1.2's lazy ``Dataset``,
and both draw the same windows from the same sampler.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np
import torch
from temporaldata import ArrayDict, Data, Interval, RegularTimeSeries
from torch_brain.data import Dataset
from torch_brain.data.sampler import RandomFixedWindowSampler

from poyocap_plugin.brainset import (
    BRAINSET_ID,
    DG_READOUT,
    MOVIE_READOUT,
    MOVIE_WINDOW_S,
    TEMPLATE_RELATIVE_PATH,
)
from poyocap_plugin.movie import TEMPLATE_DATASET

SAMPLING_RATE_HZ = 30.0
STAGE1_WINDOW_S = 1.9  # poyocap_pretrain.yaml: model.sequence_length
STAGE2_WINDOW_S = MOVIE_WINDOW_S  # poyocap_finetune_movie.yaml: one 2-photon frame
TRIAL_S, GAP_S = 2.0, 1.0

_DG_MODIFIER = """
    sampling_intervals_modifier: |
      sampling_intervals = sampling_intervals & data.drifting_gratings.coalesce(0.3)"""
_NM1_MODIFIER = f"""
    sampling_intervals_modifier: |
      from poyocap_plugin.frame_windows import frame_sampling_intervals
      sampling_intervals = frame_sampling_intervals(
          data, sampling_intervals, window_s={STAGE2_WINDOW_S})"""
# (stage, path) -> (sampling modifier, readout); stock stage 2 decodes the NM1 frame index
# (torch_brain's own natural_movie_one_frame), the plugin decodes its image.
READOUTS = {
    ("stage1", "stock"): (_DG_MODIFIER, DG_READOUT),
    ("stage1", "plugin"): (_DG_MODIFIER, DG_READOUT),
    ("stage2", "stock"): (_NM1_MODIFIER, "natural_movie_one_frame"),
    ("stage2", "plugin"): (_NM1_MODIFIER, MOVIE_READOUT),
}


def write_brainset(
    root: Path,
    *,
    sessions: int,
    units: int,
    trials: int,
    movie_repeats: int,
    movie_frames: int,
    frame_size: tuple[int, int],
    seed: int,
) -> None:
    """Write ``sessions`` processed sessions and the NM1 template under ``root``."""
    rng = np.random.default_rng(seed)
    frame_s = 1.0 / SAMPLING_RATE_HZ
    for s in range(sessions):
        start = 1.0 + (TRIAL_S + GAP_S) * np.arange(trials)
        dg = Interval(
            start=start,
            end=start + TRIAL_S,
            timestamps=start + TRIAL_S / 2,
            orientation_id=rng.integers(0, 8, trials),
            timekeys=["start", "end", "timestamps"],
        )
        movie_start = (
            start[-1] + TRIAL_S + GAP_S + frame_s * np.arange(movie_repeats * movie_frames)
        )
        nm1 = Interval(
            start=movie_start,
            end=movie_start + frame_s,
            timestamps=movie_start + frame_s / 2,
            frame=np.tile(np.arange(movie_frames), movie_repeats).astype(np.int64),
            repeat=np.repeat(np.arange(movie_repeats), movie_frames).astype(np.int64),
            timekeys=["start", "end", "timestamps"],
        )
        duration_s = float(movie_start[-1] + 1.0)
        n_frames = int(duration_s * SAMPLING_RATE_HZ)
        order = rng.permutation(trials)
        cut, n_valid = int(0.7 * trials), trials // 10
        movie_train = Interval(start=movie_start[0:1], end=movie_start[-1:] + frame_s)
        domains = {
            name: Interval(start=start[np.sort(i)], end=start[np.sort(i)] + TRIAL_S)
            for name, i in (
                ("train", order[:cut]),
                ("valid", order[cut : cut + n_valid]),
                ("test", order[cut + n_valid :]),
            )
        }
        domains["train"] = domains["train"] | movie_train  # every movie frame trains here
        data = Data(
            brainset=Data(id=BRAINSET_ID),
            subject=Data(id=f"mouse_{s}", cre_line="Sst-IRES-Cre"),
            session=Data(id=str(800_000 + s)),
            units=ArrayDict(
                id=np.array([f"roi_{i}" for i in range(units)]),
                skewness=rng.uniform(0.0, 7.0, units),
                kurtosis=rng.uniform(0.0, 45.0, units),
                stats_valid=np.ones(units, dtype=bool),
                cre_line=np.full(units, "Sst-IRES-Cre"),
            ),
            calcium_traces=RegularTimeSeries(
                df_over_f=rng.standard_normal((n_frames, units)).astype(np.float32),
                sampling_rate=SAMPLING_RATE_HZ,
                domain_start=0.0,
            ),
            drifting_gratings=dg,
            natural_movie_one=nm1,
            **{f"{name}_domain": domain for name, domain in domains.items()},
            domain=Interval(start=np.array([0.0]), end=np.array([n_frames / SAMPLING_RATE_HZ])),
        )
        path = root / BRAINSET_ID / f"{800_000 + s}.h5"
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            data.to_hdf5(f)
    template = root / TEMPLATE_RELATIVE_PATH
    template.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(template, "w") as f:
        f[TEMPLATE_DATASET] = rng.integers(0, 256, (movie_frames, *frame_size), dtype=np.uint8)


def open_dataset(root: Path, *, stage: str, path: str) -> Dataset:
    """torch_brain's lazy ``Dataset`` over the brainset, configured for one stage and path."""
    modifier, readout = READOUTS[(stage, path)]
    config = root / f"{stage}_{path}.yaml"
    config.write_text(
        f"- selection:\n    - brainset: {BRAINSET_ID}\n  config:{modifier}\n"
        f"    multitask_readout:\n      - readout_id: {readout}\n        metrics: []\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 0.1.2's Dataset, as train.py
        return Dataset(str(root), config=str(config), split="train")


def sample_windows(dataset: Dataset, *, window_s: float, count: int, seed: int) -> list:
    """The first ``count`` windows of the stock trainer's training sampler."""
    sampler = RandomFixedWindowSampler(
        sampling_intervals=dataset.get_sampling_intervals(),
        window_length=window_s,
        generator=torch.Generator().manual_seed(seed),
    )
    windows = list(sampler)[:count]
    if len(windows) < count:
        raise ValueError(f"the brainset has {len(windows)} windows of {window_s} s, not {count}")
    return windows
