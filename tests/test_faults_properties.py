"""Data-path properties under random input (hypothesis): the pipeline's splits, and the
pipeline's statistics feeding the neuron sampler.

* ``split.py``: for random trial counts, repeat counts and layouts, the train / valid / test
  labels partition the trials and repeats with POYO-CAP's sizes, and the split domains are
  sorted, pairwise disjoint and cover exactly the trials and repeats.
* ``neuron_stats.py`` -> ``NeuronSampler``: for random traces with all-NaN and constant
  neurons, whatever the population, thresholds and ``min_units``, the sampler never hands
  an all-NaN or constant trace to the model, keeps units and traces aligned, and never
  returns an empty population silently.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from temporaldata import ArrayDict, Data, RegularTimeSeries

from poyocap_plugin.neuron_sampler import NeuronSampler

from conftest import load_pipeline_module

split = load_pipeline_module("split")
neuron_stats = load_pipeline_module("neuron_stats")

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True)


@SETTINGS
@given(n_trials=st.integers(min_value=0, max_value=700), seed=st.integers(0, 2**31 - 1))
def test_trial_split_partitions_with_paper_sizes(n_trials, seed):
    labels = split.split_trials(n_trials, seed=seed)
    assert labels.shape == (n_trials,)
    assert set(labels.tolist()) <= set(split.SPLITS)
    counts = [int((labels == s).sum()) for s in split.SPLITS]
    n_train = round(0.7 * n_trials)
    n_valid = min(round(0.1 * n_trials), n_trials - n_train)
    assert counts == [n_train, n_valid, n_trials - n_train - n_valid]
    assert np.array_equal(labels, split.split_trials(n_trials, seed=seed))


@SETTINGS
@given(
    n_repeats=st.integers(min_value=0, max_value=12),
    per_repeat=st.integers(min_value=1, max_value=6),
    seed=st.integers(0, 2**16),
)
def test_repeat_split_last_is_test_second_last_is_valid(n_repeats, per_repeat, seed):
    repeat = np.random.default_rng(seed).permutation(np.repeat(np.arange(n_repeats), per_repeat))
    if n_repeats < 3:
        with pytest.raises(ValueError, match=f"at least 3 repeats, got {n_repeats}"):
            split.split_repeats(repeat)
        return
    labels = split.split_repeats(repeat)
    assert set(repeat[labels == "test"].tolist()) == {n_repeats - 1}
    assert set(repeat[labels == "valid"].tolist()) == {n_repeats - 2}
    assert set(repeat[labels == "train"].tolist()) == set(range(n_repeats - 2))


@SETTINGS
@given(
    n_trials=st.integers(min_value=0, max_value=60),
    n_repeats=st.integers(min_value=3, max_value=10),
    frames_per_repeat=st.integers(min_value=1, max_value=8),
    seed=st.integers(0, 2**16),
)
def test_split_domains_are_disjoint_and_cover_trials_and_repeats(
    n_trials, n_repeats, frames_per_repeat, seed
):
    rng = np.random.default_rng(seed)
    # Trials with random durations and gaps, then the movie block after them.
    durations = rng.uniform(0.5, 3.0, n_trials)
    gaps = rng.uniform(0.0, 1.0, n_trials)
    trial_start = np.cumsum(np.concatenate([[0.0], (durations + gaps)[:-1]]))[:n_trials]
    trial_end = trial_start + durations
    frame = 1.0 / 30.0
    first_frame = (trial_end.max() if n_trials else 0.0) + 1.0
    n_frames = n_repeats * frames_per_repeat
    # Presentation bounds are 2P timestamps, as in the pipeline: one frame ends exactly
    # where the next starts.
    times_2p = first_frame + np.arange(n_frames + 1) * frame
    frame_start = times_2p[:-1]
    repeat = np.repeat(np.arange(n_repeats), frames_per_repeat)
    repeats = split.repeat_intervals(frame_start, times_2p[1:], repeat)
    domains = split.build_split_domains(
        [
            (trial_start, trial_end, split.split_trials(n_trials, seed=seed)),
            (repeats.start, repeats.end, split.split_repeats(repeats.repeat)),
        ]
    )
    for domain in domains.values():
        assert domain.is_sorted() and domain.is_disjoint()
    union_start = np.concatenate([d.start for d in domains.values()])
    union_end = np.concatenate([d.end for d in domains.values()])
    order = np.argsort(union_start)
    assert np.all(union_end[order][:-1] <= union_start[order][1:])  # pairwise disjoint
    covered = np.sort(np.concatenate([trial_start, repeats.start]))
    assert np.allclose(np.sort(union_start), covered)  # every trial and repeat, once
    assert (union_end - union_start).sum() == pytest.approx(
        (trial_end - trial_start).sum() + (repeats.end - repeats.start).sum()
    )
    # Every 2P frame time lies in at most one split.
    times = np.arange(0.0, frame_start[-1] + 1.0, frame / 2)
    masks = [split.frames_in_domain(times, d) for d in domains.values()]
    assert int(np.sum(masks, axis=0).max()) <= 1
    assert np.all(masks[2][(times >= repeats.start[-1]) & (times < repeats.end[-1])])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    n_units=st.integers(min_value=1, max_value=12),
    n_frames=st.integers(min_value=1, max_value=60),
    population=st.sampled_from(["predictable", "unpredictable", "all"]),
    skewness_threshold=st.floats(min_value=-2.0, max_value=8.0),
    kurtosis_threshold=st.floats(min_value=-3.0, max_value=40.0),
    min_units=st.integers(min_value=1, max_value=4),
    seed=st.integers(0, 2**16),
)
def test_sampler_on_pipeline_statistics_never_passes_nan_or_constant_traces(
    n_units, n_frames, population, skewness_threshold, kurtosis_threshold, min_units, seed
):
    rng = np.random.default_rng(seed)
    df_over_f = rng.exponential(size=(n_frames, n_units)) ** rng.uniform(0.5, 3.0, n_units)
    kind = rng.choice(["ok", "nan", "constant", "some_nan"], n_units, p=[0.55, 0.15, 0.15, 0.15])
    df_over_f[:, kind == "nan"] = np.nan
    df_over_f[:, kind == "constant"] = 0.3
    df_over_f[: n_frames // 3, kind == "some_nan"] = np.nan
    df_over_f = df_over_f.astype(np.float32)
    stats = neuron_stats.extract_predictability_stats(df_over_f)
    data = Data(
        session=Data(id="b/s"),
        units=ArrayDict(
            id=np.array([f"u{i}" for i in range(n_units)]),
            skewness=stats["skewness"],
            kurtosis=stats["kurtosis"],
            stats_valid=stats["stats_valid"],
        ),
        calcium_traces=RegularTimeSeries(df_over_f=df_over_f, sampling_rate=30.0, domain_start=0.0),
        domain="auto",
    )
    sampler = NeuronSampler(
        population=population,
        skewness_threshold=skewness_threshold,
        kurtosis_threshold=kurtosis_threshold,
        min_units=min_units,
    )
    try:
        out = sampler(data)
    except ValueError as error:
        assert f"fewer than min_units={min_units}" in str(error)
        return
    kept = out.calcium_traces.df_over_f
    assert len(out.units.id) == kept.shape[1] >= min_units
    columns = [int(u[1:]) for u in out.units.id]
    np.testing.assert_array_equal(kept, df_over_f[:, columns])
    assert not np.isin(kind[columns], ["nan", "constant"]).any()
    for column in kept.T:
        finite = column[np.isfinite(column)]
        assert len(finite) >= neuron_stats.MIN_FRAMES and np.ptp(finite) > 0
