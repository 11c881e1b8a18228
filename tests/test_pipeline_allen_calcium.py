"""Tests for the allen_brain_observatory_calcium brainsets pipeline.

The pure helpers (split.py, extract.py, neuron_stats.py, nm1_template.py) are imported from
the repository's pipeline folder and tested on hand-built arrays. The slow tests run the real
``brainsets prepare`` CLI, which builds the pipeline's isolated uv environment with allensdk
inside, on sessions written by ``poyocap_plugin.workflow.simulate``, and check every processed file
against the simulator's ground truth.
"""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from temporaldata import Data, Interval

from poyocap_plugin.workflow.simulate import (
    SessionLayout,
    natural_movie_one_template,
    nwb_path,
    simulate_session,
)

from conftest import BRAINSET_ID, PIPELINE_DIR, load_pipeline_module

SKEWNESS_THRESHOLD, KURTOSIS_THRESHOLD = 3.51, 22.62


split = load_pipeline_module("split")
extract = load_pipeline_module("extract")
neuron_stats = load_pipeline_module("neuron_stats")
nm1_template = load_pipeline_module("nm1_template")


# --------------------------------------------------------------------------------------------
# split.py
# --------------------------------------------------------------------------------------------


def test_split_trials_proportions_and_seed():
    """600 trials split 420/60/120, each trial once; the seed fixes the assignment."""
    labels = split.split_trials(600, seed=42)
    assert [int((labels == s).sum()) for s in split.SPLITS] == [420, 60, 120]
    assert np.array_equal(labels, split.split_trials(600, seed=42))
    assert not np.array_equal(labels, split.split_trials(600, seed=43))
    assert [int((split.split_trials(7, seed=0) == s).sum()) for s in split.SPLITS] == [5, 1, 1]


def test_split_trials_rejects_bad_ratios():
    with pytest.raises(ValueError, match="ratios must be three non-negative fractions"):
        split.split_trials(10, seed=0, ratios=(0.5, 0.5, 0.5))


def test_split_repeats_last_two_repeats_are_valid_and_test():
    repeat = np.repeat(np.arange(10), 900)
    labels = split.split_repeats(repeat)
    assert set(repeat[labels == "train"]) == set(range(8))
    assert set(repeat[labels == "valid"]) == {8}
    assert set(repeat[labels == "test"]) == {9}
    with pytest.raises(ValueError, match="at least 3 repeats, got 2"):
        split.split_repeats(np.repeat([0, 1], 5))


def test_repeat_intervals_span_each_repeat():
    start = np.arange(6, dtype=float)
    repeats = split.repeat_intervals(start, start + 1, np.array([0, 0, 1, 1, 2, 2]))
    assert repeats.start.tolist() == [0.0, 2.0, 4.0]
    assert repeats.end.tolist() == [2.0, 4.0, 6.0]
    assert repeats.repeat.tolist() == [0, 1, 2]


def test_build_split_domains_sorted_disjoint_and_leak_check():
    trials = (np.array([5.0, 0.0, 10.0]), np.array([7.0, 2.0, 12.0]))
    repeats = (np.array([20.0, 30.0, 40.0]), np.array([30.0, 40.0, 50.0]))
    domains = split.build_split_domains(
        [
            (*trials, np.array(["test", "train", "valid"])),
            (*repeats, np.array(["train", "valid", "test"])),
        ]
    )
    assert domains["train"].start.tolist() == [0.0, 20.0]
    assert domains["valid"].start.tolist() == [10.0, 30.0]
    assert domains["test"].start.tolist() == [5.0, 40.0]
    for domain in domains.values():
        assert domain.is_sorted() and domain.is_disjoint()
    with pytest.raises(ValueError, match="split intervals overlap"):
        split.build_split_domains(
            [(np.array([0.0, 1.0]), np.array([2.0, 3.0]), np.array(["train", "test"]))]
        )


def test_frames_in_domain_is_half_open():
    timestamps = np.arange(10, dtype=float)
    domain = Interval(start=np.array([1.0, 5.0]), end=np.array([3.0, 6.5]))
    mask = split.frames_in_domain(timestamps, domain)
    assert np.flatnonzero(mask).tolist() == [1, 2, 5, 6]


# --------------------------------------------------------------------------------------------
# neuron_stats.py
# --------------------------------------------------------------------------------------------


def test_predictability_stats_equal_scipy():
    """Skewness and Fisher kurtosis (biased) equal scipy's, computed in float64."""
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [rng.normal(size=(500, 3)), rng.exponential(size=(500, 2)) ** 3], axis=1
    ).astype(np.float32)
    result = neuron_stats.extract_predictability_stats(x)
    np.testing.assert_allclose(result["skewness"], stats.skew(x.astype(np.float64), axis=0))
    np.testing.assert_allclose(
        result["kurtosis"], stats.kurtosis(x.astype(np.float64), axis=0, fisher=True, bias=True)
    )
    assert result["stats_valid"].all()
    expected = (result["skewness"] <= SKEWNESS_THRESHOLD) & (
        result["kurtosis"] <= KURTOSIS_THRESHOLD
    )
    assert np.array_equal(result["is_predictable"], expected)
    assert result["is_predictable"][:3].all() and not result["is_predictable"][3:].any()


def test_predictability_stats_nan_and_constant_traces():
    """NaN frames are omitted; constant, empty or all-NaN traces give NaN and invalid flags."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4))
    x[:5, 0] = np.nan  # a few NaN frames: statistics on the rest
    x[:, 1] = 0.25  # constant
    x[:, 2] = np.nan  # all NaN
    x[3:, 3] = np.nan  # only 3 finite frames
    result = neuron_stats.extract_predictability_stats(x)
    np.testing.assert_allclose(result["skewness"][0], stats.skew(x[5:, 0]))
    np.testing.assert_allclose(result["kurtosis"][0], stats.kurtosis(x[5:, 0]))
    assert result["stats_valid"].tolist() == [True, False, False, False]
    assert np.isnan(result["skewness"][1:]).all() and np.isnan(result["kurtosis"][1:]).all()
    assert result["is_predictable"].tolist() == [True, False, False, False]
    # the normalisation statistics: of the finite frames; NaN with too few of them
    np.testing.assert_allclose(result["df_over_f_mean"][:2], [x[5:, 0].mean(), 0.25])
    np.testing.assert_allclose(result["df_over_f_std"][:2], [x[5:, 0].std(), 0.0])
    assert np.isnan(result["df_over_f_mean"][2:]).all()
    assert np.isnan(result["df_over_f_std"][2:]).all()


def test_predictability_stats_rejects_1d():
    with pytest.raises(ValueError, match=r"shape \(frames, neurons\), got shape \(5,\)"):
        neuron_stats.extract_predictability_stats(np.zeros(5))


# --------------------------------------------------------------------------------------------
# extract.py
# --------------------------------------------------------------------------------------------


def test_extract_drifting_gratings_drops_blanks_and_maps_classes():
    timestamps = np.arange(400) / 30.0
    table = pd.DataFrame(
        {
            "temporal_frequency": [2.0, np.nan, 15.0, 1.0],
            "orientation": [315.0, np.nan, 0.0, 90.0],
            "blank_sweep": [0.0, 1.0, 0.0, 0.0],
            "start": [100, 10, 200, 300],
            "end": [160, 70, 260, 360],
        }
    )
    dg = extract.extract_drifting_gratings(table, timestamps)
    assert dg.orientation_id.tolist() == [7, 0, 2]
    assert dg.temporal_frequency_id.tolist() == [1, 4, 0]
    assert dg.direction.tolist() == [315.0, 0.0, 90.0]
    np.testing.assert_allclose(dg.start, timestamps[[100, 200, 300]])
    np.testing.assert_allclose(
        dg.timestamps, (timestamps[[100, 200, 300]] + timestamps[[160, 260, 360]]) / 2
    )
    assert "timestamps" in dg.timekeys()
    bad = table.assign(orientation=[10.0, np.nan, 0.0, 90.0])
    with pytest.raises(ValueError, match="direction 10.0 degrees"):
        extract.extract_drifting_gratings(bad, timestamps)
    bad = table.assign(temporal_frequency=[3.0, np.nan, 15.0, 1.0])
    with pytest.raises(ValueError, match="unexpected temporal frequency 3.0"):
        extract.extract_drifting_gratings(bad, timestamps)


def test_extract_frame_presentations_leaves_zero_length_frames_out():
    timestamps = np.arange(10) / 30.0
    table = pd.DataFrame(
        {"frame": [0, 1, 0, 1], "start": [2, 3, 5, 5], "end": [3, 3, 5, 7], "repeat": [0, 0, 1, 1]}
    )
    movie = extract.extract_frame_presentations(table, timestamps)
    np.testing.assert_allclose(movie.start, [2 / 30, 5 / 30])
    np.testing.assert_allclose(movie.end, [3 / 30, 7 / 30])
    assert movie.frame.tolist() == [0, 1] and movie.repeat.tolist() == [0, 1]
    with pytest.raises(ValueError, match="fall outside the 10 2-photon frames"):
        extract.extract_frame_presentations(table.assign(start=[2, 3, 5, 12]), timestamps)


def test_extract_calcium_traces_shapes_and_clock_check():
    timestamps = 2.0 + np.arange(100) / 30.0
    traces = np.arange(300, dtype=np.float64).reshape(3, 100)
    calcium = extract.extract_calcium_traces(timestamps, traces)
    assert calcium.df_over_f.shape == (100, 3) and calcium.df_over_f.dtype == np.float32
    assert calcium.domain.start[0] == 2.0
    assert calcium.sampling_rate == pytest.approx(30.0)
    gappy = timestamps.copy()
    gappy[50:] += 0.1
    with pytest.raises(ValueError, match="clock is not regular"):
        extract.extract_calcium_traces(gappy, traces)
    with pytest.raises(ValueError, match=r"must be \(n_rois, 100\)"):
        extract.extract_calcium_traces(timestamps, traces.T)


def test_extract_units_geometry():
    masks = np.zeros((2, 20, 30), dtype=bool)
    masks[0, 2:5, 10:14] = True  # 3 rows x 4 columns
    masks[1, 10, 20] = True
    units = extract.extract_units(np.array([11, 12]), masks, "Sst-IRES-Cre")
    assert units.id.tolist() == ["11", "12"]
    assert units.cre_line.tolist() == ["Sst-IRES-Cre"] * 2
    np.testing.assert_allclose(units.imaging_plane_xy, [[11.5, 3.0], [20.0, 10.0]])
    assert units.imaging_plane_area.tolist() == [12.0, 1.0]
    assert units.imaging_plane_width.tolist() == [4.0, 1.0]
    assert units.imaging_plane_height.tolist() == [3.0, 1.0]


def test_cre_line_from_metadata():
    assert extract.cre_line_from_metadata({"cre_line": "Cux2-CreERT2/wt"}, "1") == "Cux2-CreERT2"
    with pytest.raises(ValueError, match="session 7: the NWB file has no genotype"):
        extract.cre_line_from_metadata({"cre_line": None}, "7")


def test_donor_from_metadata_is_the_specimen_not_the_container():
    metadata = {
        "specimen_name": "Cux2-CreERT2;Camk2a-tTA;Ai93-308148",
        "experiment_container_id": 5,
    }
    assert extract.donor_from_metadata(metadata, "1") == "Cux2-CreERT2;Camk2a-tTA;Ai93-308148"
    with pytest.raises(ValueError, match="session 7: the NWB file has no /general/specimen_name"):
        extract.donor_from_metadata({"experiment_container_id": 5}, "7")


# --------------------------------------------------------------------------------------------
# nm1_template.py and the manifest
# --------------------------------------------------------------------------------------------


def test_template_stored_once_and_checked(tmp_path):
    movie = natural_movie_one_template(seed=0, height=38, width=76)
    path = nm1_template.store_or_check_template(
        tmp_path, movie, height=19, width=38, session_id="1"
    )
    assert path == tmp_path / "templates" / "natural_movie_one.h5"
    with h5py.File(path, "r") as f:
        assert f["frames"].shape == (900, 19, 38) and f["frames"].dtype == np.uint8
        assert f.attrs["resample"] == "LANCZOS"
        assert np.array_equal(
            f["frames"][10], nm1_template.downsample_template(movie[10:11], height=19, width=38)[0]
        )
    nm1_template.store_or_check_template(tmp_path, movie, height=19, width=38, session_id="2")
    other = natural_movie_one_template(seed=1, height=38, width=76)
    with pytest.raises(ValueError, match="session 3: its natural_movie_one template"):
        nm1_template.store_or_check_template(tmp_path, other, height=19, width=38, session_id="3")
    with pytest.raises(ValueError, match="--template-size asks for 20x40"):
        nm1_template.store_or_check_template(tmp_path, movie, height=20, width=40, session_id="4")


def test_default_manifest_is_the_papers_433_experiments():
    pipeline = load_pipeline_module("pipeline")
    ids = pipeline.read_session_ids(pipeline.SESSION_IDS_FILE)
    assert len(ids) == len(set(ids)) == 433
    assert all(len(i) == 9 for i in ids)


def test_find_raw_files(tmp_path):
    pipeline = load_pipeline_module("pipeline")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "12.nwb").touch()
    (tmp_path / "34.nwb").touch()
    (tmp_path / "notes.nwb").touch()
    assert pipeline.find_raw_files(tmp_path) == {
        "12": tmp_path / "a/12.nwb",
        "34": tmp_path / "34.nwb",
    }
    (tmp_path / "12.nwb").touch()
    with pytest.raises(ValueError, match="experiment 12 has two files"):
        pipeline.find_raw_files(tmp_path)


# --------------------------------------------------------------------------------------------
# The real `brainsets prepare` CLI (slow: builds the isolated uv environment with allensdk)
# --------------------------------------------------------------------------------------------

MOVIE_HW = (76, 152)
TEMPLATE_HW = (38, 76)
GOOD_SESSIONS = [  # (experiment id, Cre line, session type, eye tracking, donor)
    (900000101, "Cux2-CreERT2", "three_session_A", True, 1),
    (900000102, "Sst-IRES-Cre", "three_session_A", True, None),
    (900000103, "Rbp4-Cre_KL100", "three_session_A", False, None),
    (900000104, "Vip-IRES-Cre", "three_session_A", True, None),
    (900000105, "Pvalb-IRES-Cre", "three_session_B", True, None),
    (900000106, "Cux2-CreERT2", "three_session_C", True, 1),  # 101's mouse, another plane
]
BROKEN_SESSIONS = {
    900000107: "unsplittable_epochs",
    900000108: "truncated",
    900000109: "other_movie",  # processed last (-c 1 runs the manifest in order)
}


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def _prepare(*args: str, raw: Path, processed: Path) -> subprocess.CompletedProcess:
    command = [
        str(Path(sys.executable).parent / "brainsets"),
        "prepare",
        *args,
        "--raw-dir",
        str(raw),
        "--processed-dir",
        str(processed),
    ]
    return subprocess.run(
        command, env=_environment(), capture_output=True, text=True, timeout=900, check=False
    )


def _installed_pipeline_dir() -> Path:
    import brainsets_pipelines

    for root in brainsets_pipelines.__path__:
        candidate = Path(root) / BRAINSET_ID
        if (candidate / "pipeline.py").exists() and PIPELINE_DIR != candidate:
            return candidate
    pytest.fail(f"{BRAINSET_ID} is not installed in brainsets_pipelines; run `pip install .`")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Simulate 9 sessions (3 broken), run `brainsets prepare ... -c 1` once, keep the truth."""
    installed = _installed_pipeline_dir()
    stale = [
        p.name
        for p in PIPELINE_DIR.glob("*.py")
        if not filecmp.cmp(p, installed / p.name, shallow=False)
    ]
    if stale:
        pytest.fail(
            f"the installed pipeline ({installed}) differs from the repository in {stale}; "
            "reinstall with `pip install --no-deps --force-reinstall .`"
        )
    raw = tmp_path_factory.mktemp("raw")
    processed = tmp_path_factory.mktemp("processed")
    movie = natural_movie_one_template(seed=0, height=MOVIE_HW[0], width=MOVIE_HW[1])
    truth = {}
    for experiment_id, cre_line, session_type, eye, donor in GOOD_SESSIONS:
        truth[str(experiment_id)] = simulate_session(
            path=nwb_path(raw, experiment_id),
            experiment_id=experiment_id,
            cre_line=cre_line,
            session_type=session_type,
            n_rois=30,
            layout=SessionLayout(dg_repeats=2),
            nm1_template=movie,
            eye_tracking=eye,
            donor=donor,
            seed=3,
        )
    for experiment_id, breakage in BROKEN_SESSIONS.items():
        other = breakage == "other_movie"
        simulate_session(
            path=nwb_path(raw, experiment_id),
            experiment_id=experiment_id,
            cre_line="Emx1-IRES-Cre",
            n_rois=5,
            layout=SessionLayout(dg_repeats=1),
            nm1_template=natural_movie_one_template(seed=1, height=MOVIE_HW[0], width=MOVIE_HW[1])
            if other
            else movie,
            broken=None if other else breakage,
        )
    result = _prepare(
        BRAINSET_ID,
        "-c",
        "1",
        "--use-raw-files",
        "--template-size",
        str(TEMPLATE_HW[0]),
        str(TEMPLATE_HW[1]),
        raw=raw,
        processed=processed,
    )
    return {
        "raw": raw,
        "processed": processed,
        "root": processed / BRAINSET_ID,
        "result": result,
        "truth": truth,
        "movie": movie,
    }


def _load_session(prepared, session_id: str) -> Data:
    with h5py.File(prepared["root"] / f"{session_id}.h5", "r") as f:
        return Data.from_hdf5(f, lazy=False)


@pytest.mark.slow
def test_prepare_fails_broken_sessions_alone(prepared):
    """Broken sessions fail with their id and cause; all the others are written, atomically."""
    result, root = prepared["result"], prepared["root"]
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "3 manifest items failed" in output
    assert sorted(p.stem for p in root.glob("*.h5")) == sorted(prepared["truth"])
    assert not list(root.rglob("*.partial"))
    logs = root / "pipeline_logs"
    epochs = (logs / "900000107.err").read_text()
    assert "session 900000107: allensdk cannot split the stimulus epochs" in epochs
    assert "EpochSeparationException" in epochs
    truncated = (logs / "900000108.err").read_text()
    assert "session 900000108: cannot read" in truncated and "truncated" in truncated
    movie = (logs / "900000109.err").read_text()
    assert "session 900000109: its natural_movie_one template" in movie


@pytest.mark.slow
def test_prepared_sessions_match_the_simulation(prepared):
    """Metadata, traces, units and labels equal the simulator's ground truth."""
    for session_id, truth in prepared["truth"].items():
        data = _load_session(prepared, session_id)
        assert data.brainset.id == BRAINSET_ID
        assert data.session.id == session_id
        assert data.session.session_type == truth.session_type
        assert data.subject.cre_line == truth.cre_line
        assert data.subject.id == truth.specimen_name
        assert data.device.target_area.startswith("VIS") and data.device.imaging_depth > 0

        calcium = data.calcium_traces
        assert calcium.df_over_f.shape == (truth.n_frames, truth.n_rois)
        assert calcium.df_over_f.dtype == np.float32
        assert np.array_equal(calcium.df_over_f, truth.dff)
        assert calcium.sampling_rate == pytest.approx(30.0, rel=1e-3)
        assert calcium.domain.start[0] == truth.timestamps[0]

        units = data.units
        assert units.id.tolist() == truth.roi_ids.astype(str).tolist()
        assert set(units.cre_line.tolist()) == {truth.cre_line}
        assert units.imaging_plane_xy.shape == (truth.n_rois, 2)
        assert ((units.imaging_plane_area > 50) & (units.imaging_plane_area < 600)).all()
        assert units.skewness.dtype == np.float64 and units.is_predictable.dtype == bool

        ts = truth.timestamps
        movie = truth.schedule.tables["natural_movie_one"]
        nm1 = data.natural_movie_one
        movie_frames = np.asarray(movie.frame_duration)
        assert nm1.frame.tolist() == list(movie.data)
        assert nm1.repeat.tolist() == np.repeat(np.arange(10), 900).tolist()
        np.testing.assert_array_equal(nm1.start, ts[movie_frames[:, 0]])
        assert "timestamps" in nm1.timekeys()

        if truth.session_type == "three_session_A":
            table = truth.schedule.tables["drifting_gratings"]
            rows, frames = np.asarray(table.data), np.asarray(table.frame_duration)
            shown = rows[:, 2] == 0
            dg = data.drifting_gratings
            assert dg.orientation_id.tolist() == (rows[shown, 1] / 45).astype(int).tolist()
            frequency_id = np.searchsorted([1.0, 2.0, 4.0, 8.0, 15.0], rows[shown, 0])
            assert dg.temporal_frequency_id.tolist() == frequency_id.tolist()
            np.testing.assert_array_equal(dg.start, ts[frames[shown, 0]])
            np.testing.assert_array_equal(dg.end, ts[frames[shown, 1]])
            np.testing.assert_allclose(dg.timestamps, (dg.start + dg.end) / 2)
        else:
            assert not hasattr(data, "drifting_gratings")
        assert hasattr(data, "pupil") == truth.eye_tracking
        assert data.running.running_speed.shape[1] == 1
        assert data.natural_movie_one_domain.start[0] == ts[movie_frames[0, 0]]


@pytest.mark.slow
def test_two_containers_of_one_mouse_are_one_subject(prepared):
    subjects = {s: _load_session(prepared, s).subject.id for s in prepared["truth"]}
    assert subjects["900000101"] == subjects["900000106"] == "Cux2-CreERT2;simulated-1"
    assert len(set(subjects.values())) == len(subjects) - 1


def _split_of(times: np.ndarray, domains: dict[str, Interval]) -> np.ndarray:
    """The split whose domain holds each time ("" for none)."""
    labels = np.full(len(times), "", dtype="<U5")
    for name, domain in domains.items():
        labels[split.frames_in_domain(times, domain)] = name
    return labels


@pytest.mark.slow
def test_prepared_splits(prepared):
    """Splits are sorted and disjoint: DG 70/10/20 by trial, NM1 repeats 0-7 / 8 / 9."""
    for session_id, truth in prepared["truth"].items():
        data = _load_session(prepared, session_id)
        domains = {s: getattr(data, f"{s}_domain") for s in ("train", "valid", "test")}
        for domain in domains.values():
            assert domain.is_sorted() and domain.is_disjoint()
        union_start = np.concatenate([d.start for d in domains.values()])
        union_end = np.concatenate([d.end for d in domains.values()])
        order = np.argsort(union_start)
        assert (union_end[order][:-1] <= union_start[order][1:]).all()

        nm1 = data.natural_movie_one
        labels = _split_of(nm1.timestamps, domains)
        assert set(nm1.repeat[labels == "train"]) == set(range(8))
        assert set(nm1.repeat[labels == "valid"]) == {8}
        assert set(nm1.repeat[labels == "test"]) == {9}
        if truth.session_type == "three_session_A":
            labels = _split_of(data.drifting_gratings.timestamps, domains)
            n = len(labels)
            counts = [int((labels == s).sum()) for s in ("train", "valid", "test")]
            assert counts == [round(0.7 * n), round(0.1 * n), n - round(0.7 * n) - round(0.1 * n)]


@pytest.mark.slow
def test_prepared_statistics_equal_scipy_on_training_frames(prepared):
    """Stored skewness/kurtosis equal scipy's on the dF/F frames inside train_domain."""
    for session_id in prepared["truth"]:
        data = _load_session(prepared, session_id)
        calcium = data.calcium_traces
        t = calcium.timestamps
        train = data.train_domain
        inside = np.zeros(len(t), dtype=bool)
        for start, end in zip(train.start, train.end, strict=True):
            inside |= (t >= start) & (t < end)
        frames = calcium.df_over_f[inside].astype(np.float64)
        np.testing.assert_allclose(data.units.skewness, stats.skew(frames, axis=0), rtol=1e-6)
        np.testing.assert_allclose(
            data.units.kurtosis, stats.kurtosis(frames, axis=0, fisher=True, bias=True), rtol=1e-6
        )
        assert data.units.stats_valid.all()
        expected = (data.units.skewness <= SKEWNESS_THRESHOLD) & (
            data.units.kurtosis <= KURTOSIS_THRESHOLD
        )
        assert np.array_equal(data.units.is_predictable, expected)


@pytest.mark.slow
def test_prepared_populations_separate_per_cre_line(prepared):
    """Median stored statistics are under both thresholds only for the predictable lines."""
    for session_id, truth in prepared["truth"].items():
        data = _load_session(prepared, session_id)
        skewness = np.median(data.units.skewness)
        kurtosis = np.median(data.units.kurtosis)
        if truth.predictable_line:
            assert skewness <= SKEWNESS_THRESHOLD and kurtosis <= KURTOSIS_THRESHOLD, truth.cre_line
        else:
            assert skewness > SKEWNESS_THRESHOLD and kurtosis > KURTOSIS_THRESHOLD, truth.cre_line


@pytest.mark.slow
def test_prepared_template_stored_once(prepared):
    """One LANCZOS-downsampled template, outside the *.h5 glob, equal to the simulated movie's."""
    root = prepared["root"]
    path = root / "templates" / "natural_movie_one.h5"
    assert list((root / "templates").iterdir()) == [path]
    expected = nm1_template.downsample_template(
        prepared["movie"], height=TEMPLATE_HW[0], width=TEMPLATE_HW[1]
    )
    with h5py.File(path, "r") as f:
        assert f["frames"].shape == (900, *TEMPLATE_HW)
        assert np.array_equal(f["frames"][()], expected)
        assert f.attrs["source_sha256"] == nm1_template.template_digest(prepared["movie"])
        assert tuple(f.attrs["source_shape"]) == (900, *MOVIE_HW)


@pytest.mark.slow
def test_prepared_sessions_load_in_torch_brain(prepared):
    """torch_brain 0.1.2's Dataset opens the files and CalciumPOYOPlus tokenizes a sample."""
    import torch
    from omegaconf import OmegaConf
    from torch_brain.data import Dataset, collate
    from torch_brain.models import CalciumPOYOPlus
    from torch_brain.registry import MODALITY_REGISTRY

    session_ids = [str(i) for i, _, kind, _, _ in GOOD_SESSIONS if kind == "three_session_A"]
    config = OmegaConf.create(
        [
            {
                "selection": [{"brainset": BRAINSET_ID, "sessions": session_ids}],
                "config": {
                    "multitask_readout": [
                        {
                            "readout_id": "drifting_gratings_orientation",
                            "metrics": [
                                {
                                    "metric": {
                                        "_target_": "torchmetrics.Accuracy",
                                        "task": "multiclass",
                                        "num_classes": 8,
                                    }
                                }
                            ],
                        }
                    ]
                },
            }
        ]
    )
    dataset = Dataset(prepared["processed"], config=config, split="train")
    intervals = dataset.get_sampling_intervals()
    assert sorted(intervals) == sorted(f"{BRAINSET_ID}/{i}" for i in session_ids)
    model = CalciumPOYOPlus(
        sequence_length=1.0,
        latent_step=0.5,
        num_latents_per_step=4,
        dim=32,
        depth=1,
        dim_head=16,
        self_heads=2,
        readout_specs=MODALITY_REGISTRY,
    )
    model.unit_emb.initialize_vocab(dataset.get_unit_ids())
    model.session_emb.initialize_vocab(dataset.get_session_ids())
    samples = []
    for recording_id in sorted(intervals):
        train = intervals[recording_id]
        # The first training interval that is a grating trial (they last 2 s).
        k = int(np.flatnonzero((train.end - train.start) < 2.5)[0])
        sample = dataset.get(recording_id, float(train.start[k]), float(train.start[k]) + 1.0)
        tokens = model.tokenize(sample)
        n_frames, n_units = sample.calcium_traces.df_over_f.shape
        assert n_units == 30 and n_frames >= 29
        # One token per frame and unit (torch_brain wraps it in a pad-to-8 marker).
        assert tokens["model_inputs"]["input_values"].obj.shape[0] == n_frames * n_units
        target = tokens["target_values"].obj["drifting_gratings_orientation"]
        assert target.tolist() == sample.drifting_gratings.orientation_id.tolist()
        samples.append(tokens)
    batch = collate(samples)
    with torch.no_grad():
        output = model(**batch["model_inputs"])
    assert output["drifting_gratings_orientation"].shape[-1] == 8


@pytest.mark.slow
def test_prepare_default_manifest_local_single_rerun_and_reprocess(tmp_path):
    """`--local -s ID` on the default 433-id manifest (file present: no download); a rerun skips
    the finished session; --reprocess rewrites it."""
    pipeline = load_pipeline_module("pipeline")
    session_id = pipeline.read_session_ids(pipeline.SESSION_IDS_FILE)[0]
    raw, processed = tmp_path / "raw", tmp_path / "processed"
    simulate_session(
        path=nwb_path(raw, int(session_id)),
        experiment_id=int(session_id),
        cre_line="Ntsr1-Cre_GN220",
        n_rois=6,
        layout=SessionLayout(dg_repeats=1),
        nm1_template=natural_movie_one_template(seed=0, height=38, width=76),
    )
    output = processed / BRAINSET_ID / f"{session_id}.h5"
    first = _prepare(str(PIPELINE_DIR), "--local", "-s", session_id, raw=raw, processed=processed)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (raw / BRAINSET_ID / "manifest.json").exists()
    with h5py.File(output, "r") as f:
        assert f["units/is_predictable"][()].all()
    with h5py.File(processed / BRAINSET_ID / "templates" / "natural_movie_one.h5", "r") as f:
        assert f["frames"].shape == (900, 128, 256)
    written = output.stat().st_mtime_ns

    again = _prepare(str(PIPELINE_DIR), "--local", "-s", session_id, raw=raw, processed=processed)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Already processed" in again.stdout
    assert output.stat().st_mtime_ns == written

    redo = _prepare(
        str(PIPELINE_DIR), "--local", "-s", session_id, "--reprocess", raw=raw, processed=processed
    )
    assert redo.returncode == 0, redo.stdout + redo.stderr
    assert output.stat().st_mtime_ns != written
