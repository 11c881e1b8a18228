"""Tests for poyocap_plugin.workflow.simulate: Allen-format NWB sessions and their neural model."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from scipy import stats

from poyocap_plugin.workflow.baselines import mean_frame_decoder, movie_ssim, ridge_decoder
from poyocap_plugin.workflow.cli import cli
from poyocap_plugin.workflow.simulate import (
    CRE_LINES,
    NM1_HEIGHT_PX,
    NM1_WIDTH_PX,
    PREDICTABLE_CRE_LINES,
    SESSION_TYPES,
    SessionLayout,
    natural_movie_one_template,
    nwb_path,
    simulate_session,
    simulate_sessions,
)
from poyocap_plugin.workflow.simulate.neurons import simulate_dff
from poyocap_plugin.workflow.simulate.timeline import build_schedule

SKEWNESS_THRESHOLD, KURTOSIS_THRESHOLD = 3.51, 22.62
PIPE = "processing/brain_observatory_pipeline"
# allensdk 2.16.2 cuts a stimulus into blocks where the grey gap exceeds these many frames.
EPOCH_THRESHOLD_FRAMES = {
    "three_session_A": 39,
    "three_session_B": 15,
    "three_session_C": 7,
    "three_session_C2": 7,
}
EXPECTED_EPOCHS = {
    "three_session_A": 7,
    "three_session_B": 8,
    "three_session_C": 7,
    "three_session_C2": 10,
}


@pytest.fixture(scope="module")
def small_movie() -> np.ndarray:
    return natural_movie_one_template(seed=0, height=38, width=76)


def _blocks(frame_duration: np.ndarray, threshold: int) -> int:
    """Number of blocks allensdk's epoch cutter finds in one stimulus table."""
    gaps = frame_duration[1:, 0] - frame_duration[:-1, 1]
    return int((gaps > threshold).sum()) + 1


# --------------------------------------------------------------------------------------------
# movie template
# --------------------------------------------------------------------------------------------


def test_template_default_is_the_real_size_and_deterministic():
    """The default template is 900 x 304 x 608 uint8, identical for one seed, structured."""
    movie = natural_movie_one_template(seed=3)
    assert movie.shape == (900, NM1_HEIGHT_PX, NM1_WIDTH_PX) == (900, 304, 608)
    assert movie.dtype == np.uint8
    small = natural_movie_one_template(seed=3, height=38, width=76)
    assert np.array_equal(small, natural_movie_one_template(seed=3, height=38, width=76))
    assert not np.array_equal(small, natural_movie_one_template(seed=4, height=38, width=76))
    # Structured, not noise: neighbouring pixels and frames are strongly correlated.
    frame = movie[100].astype(float)
    assert np.corrcoef(frame[:, :-1].ravel(), frame[:, 1:].ravel())[0, 1] > 0.9
    assert np.corrcoef(movie[100].ravel(), movie[101].ravel())[0, 1] > 0.9
    assert movie.std() > 20


def test_template_rejects_bad_size():
    with pytest.raises(ValueError, match="height must be a positive"):
        natural_movie_one_template(height=0)


# --------------------------------------------------------------------------------------------
# stimulus schedule
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("session_type", SESSION_TYPES)
def test_schedule_has_the_real_epoch_structure(session_type):
    """Each stimulus splits into the blocks allensdk expects (A 7, B 8, C 7, C2 10 epochs)."""
    schedule = build_schedule(
        session_type=session_type, layout=SessionLayout(), rng=np.random.default_rng(0)
    )
    threshold = EPOCH_THRESHOLD_FRAMES[session_type]
    n_epochs = sum(
        _blocks(np.asarray(t.frame_duration), threshold) for t in schedule.tables.values()
    )
    assert n_epochs == EXPECTED_EPOCHS[session_type] == len(schedule.blocks)
    nm1 = schedule.tables["natural_movie_one"]
    assert len(nm1.data) == 900 * 10
    assert np.array_equal(np.asarray(nm1.data)[:900], np.arange(900))


def test_schedule_unsplittable_epochs_adds_a_fourth_block():
    """The broken schedule gives drifting gratings 4 blocks: more than allensdk's 2 cuts."""
    schedule = build_schedule(
        session_type="three_session_A",
        layout=SessionLayout(),
        rng=np.random.default_rng(0),
        unsplittable_epochs=True,
    )
    dg = np.asarray(schedule.tables["drifting_gratings"].frame_duration)
    assert _blocks(dg, EPOCH_THRESHOLD_FRAMES["three_session_A"]) == 4


def test_schedule_drifting_gratings_cover_all_conditions():
    layout = SessionLayout(dg_repeats=2)
    schedule = build_schedule(
        session_type="three_session_A", layout=layout, rng=np.random.default_rng(1)
    )
    rows = np.asarray(schedule.tables["drifting_gratings"].data)
    shown = rows[rows[:, 2] == 0]
    conditions, counts = np.unique(shown[:, :2], axis=0, return_counts=True)
    assert len(conditions) == 40 and set(counts) == {2}
    assert np.isnan(rows[rows[:, 2] == 1][:, :2]).all()


def test_full_layout_is_about_an_hour():
    schedule = build_schedule(
        session_type="three_session_A", layout=SessionLayout.full(), rng=np.random.default_rng(0)
    )
    assert 100_000 < schedule.n_frames < 120_000  # ~1 h at 30 Hz


def test_layout_rejects_bad_values():
    with pytest.raises(ValueError, match="SessionLayout.nm1_repeats must be a positive int"):
        SessionLayout(nm1_repeats=0)


# --------------------------------------------------------------------------------------------
# neural model
# --------------------------------------------------------------------------------------------


def _session_dff(cre_line: str, movie: np.ndarray, seed: int, n_units: int = 40):
    rng = np.random.default_rng(seed)
    schedule = build_schedule(session_type="three_session_A", layout=SessionLayout(), rng=rng)
    dff, tuning = simulate_dff(
        schedule=schedule,
        templates={"natural_movie_one": movie},
        running_speed=np.abs(rng.normal(0, 5, schedule.n_frames)),
        cre_line=cre_line,
        n_units=n_units,
        sampling_rate_hz=30.0,
        rng=rng,
    )
    return schedule, dff, tuning


def _training_like_frames(schedule) -> np.ndarray:
    """Frames of the grating trials and of natural-movie-one repeats 0-7."""
    mask = np.zeros(schedule.n_frames, dtype=bool)
    dg = schedule.tables["drifting_gratings"]
    for (start, end), row in zip(dg.frame_duration, dg.data, strict=True):
        if row[2] == 0:
            mask[start:end] = True
    mask[np.asarray(schedule.tables["natural_movie_one"].frame_duration)[: 8 * 900, 0]] = True
    return mask


def test_populations_separate_per_cre_line(small_movie):
    """Median skewness and kurtosis fall under 3.51 / 22.62 exactly for the predictable lines."""
    for i, line in enumerate(CRE_LINES):
        schedule, dff, _ = _session_dff(line, small_movie, seed=i)
        frames = dff[_training_like_frames(schedule)].astype(np.float64)
        skewness = np.median(stats.skew(frames, axis=0))
        kurtosis = np.median(stats.kurtosis(frames, axis=0))
        if line in PREDICTABLE_CRE_LINES:
            assert skewness < SKEWNESS_THRESHOLD and kurtosis < KURTOSIS_THRESHOLD, line
        else:
            assert skewness > SKEWNESS_THRESHOLD and kurtosis > KURTOSIS_THRESHOLD, line


@pytest.mark.parametrize("cre_line", ["Cux2-CreERT2", "Sst-IRES-Cre"])
def test_grating_direction_and_movie_frame_are_decodable(cre_line, small_movie):
    """Nearest-centroid decoding beats chance for direction; movie frames are identifiable."""
    schedule, dff, _ = _session_dff(cre_line, small_movie, seed=1, n_units=60)
    dg = schedule.tables["drifting_gratings"]
    frames, rows = np.asarray(dg.frame_duration), np.asarray(dg.data)
    shown = rows[:, 2] == 0
    # Mean response over each trial, shifted by the calcium delay (~5 frames).
    x = np.stack([dff[s + 5 : e + 5].mean(0) for s, e in frames[shown]])
    y = (rows[shown, 1] // 45).astype(int)
    test = np.arange(len(y)) % 3 == 0
    centroids = np.stack([x[~test & (y == k)].mean(0) for k in range(8)])
    predicted = np.argmin(((x[test][:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (predicted == y[test]).mean() > 0.35  # chance: 0.125

    starts = np.asarray(schedule.tables["natural_movie_one"].frame_duration)[:, 0]
    responses = dff[starts.reshape(10, 900)]  # (repeat, frame, unit)
    reference = stats.zscore(responses[:8].mean(0), axis=0)
    held_out = stats.zscore(responses[9], axis=0)
    best = np.argmax(held_out @ reference.T, axis=1)
    assert (np.abs(best - np.arange(900)) <= 15).mean() > 0.15  # chance: ~0.034


def test_one_two_photon_frame_of_sparse_neurons_decodes_the_movie_linearly(small_movie):
    """The demo's data carry the movie: ridge from one frame's dF/F beats the mean frame.

    The demo's sizes (100 ROIs of a sparse line, 3 movie repeats: train on the first, test
    on the last), the report's ridge decoder and SSIM at the demo's 16 x 32 frames.
    """
    rng = np.random.default_rng(0)
    layout = SessionLayout(nm1_repeats=3, dg_repeats=8)
    schedule = build_schedule(session_type="three_session_A", layout=layout, rng=rng)
    dff, _ = simulate_dff(
        schedule=schedule,
        templates={"natural_movie_one": small_movie},
        running_speed=np.abs(rng.normal(0, 5, schedule.n_frames)),
        cre_line="Cux2-CreERT2",
        n_units=100,
        sampling_rate_hz=30.0,
        rng=rng,
    )
    starts = np.asarray(schedule.tables["natural_movie_one"].frame_duration)[:, 0]
    activity = dff[starts.reshape(3, 900)]  # (repeat, frame, unit)
    frames = (
        np.stack(
            [
                np.asarray(Image.fromarray(f).resize((32, 16), Image.Resampling.LANCZOS))
                for f in small_movie
            ]
        )
        .reshape(900, -1)
        .astype(np.float64)
    )
    decoded = ridge_decoder(activity[0], frames, activity[2])
    ridge = movie_ssim(decoded, frames, height=16, width=32)
    mean = movie_ssim(mean_frame_decoder(frames, 900), frames, height=16, width=32)
    assert ridge > mean + 0.10, (ridge, mean)


def test_simulate_dff_rejects_unknown_line(small_movie):
    with pytest.raises(ValueError, match="cre_line must be one of"):
        _session_dff("Foo-Cre", small_movie, seed=0)


# --------------------------------------------------------------------------------------------
# NWB files
# --------------------------------------------------------------------------------------------


def test_simulate_session_writes_the_allen_layout(tmp_path, small_movie):
    """Metadata strings are fixed-length bytes, traces are (rois, T), tables hold the truth."""
    path = tmp_path / "raw" / "123.nwb"
    truth = simulate_session(
        path=path,
        experiment_id=123,
        cre_line="Vip-IRES-Cre",
        n_rois=7,
        nm1_template=small_movie,
        seed=5,
    )
    assert truth.path == path and path.exists()
    assert not list(path.parent.glob("*.partial"))
    with h5py.File(path, "r") as f:
        genotype = f["general/subject/genotype"][()]
        assert isinstance(genotype, bytes) or genotype.dtype.kind == "S"
        assert f["general/subject/genotype"].dtype.kind == "S"
        assert f["general/subject/genotype"][()].decode().split(";")[0] == "Vip-IRES-Cre/wt"
        assert f["general/session_id"][()].decode() == "123"
        assert f["general/session_type"][()].decode() == "three_session_A"
        assert (
            f["general/optophysiology/imaging_plane_1/imaging depth"][()]
            .decode()
            .endswith(" microns")
        )
        dff = f[f"{PIPE}/DfOverF/imaging_plane_1/data"][()]
        assert dff.shape == (7, truth.n_frames) and dff.dtype == np.float32
        assert np.array_equal(dff.T, truth.dff)
        assert np.array_equal(f[f"{PIPE}/DfOverF/imaging_plane_1/timestamps"][()], truth.timestamps)
        assert sorted(f["stimulus/presentation"]) == [
            "drifting_gratings_stimulus",
            "natural_movie_one_stimulus",
            "natural_movie_three_stimulus",
            "spontaneous_stimulus",
        ]
        nm1 = f["stimulus/presentation/natural_movie_one_stimulus"]
        link = nm1.get("indexed_timeseries", getlink=True)
        assert isinstance(link, h5py.SoftLink)
        assert np.array_equal(
            f["stimulus/templates/natural_movie_one_image_stack/data"][()], small_movie
        )
        dg = f["stimulus/presentation/drifting_gratings_stimulus"]
        assert [v.decode() for v in dg["features"][()]] == [
            "temporal_frequency",
            "orientation",
            "blank_sweep",
        ]
        table = truth.schedule.tables["drifting_gratings"]
        np.testing.assert_array_equal(dg["data"][()], np.asarray(table.data))
        np.testing.assert_array_equal(dg["frame_duration"][()], np.asarray(table.frame_duration))
        assert "EyeTracking" in f[PIPE]
        masks = f[f"{PIPE}/ImageSegmentation/imaging_plane_1"]
        first = masks[masks["roi_list"][0].decode()]["img_mask"][()]
        assert first.shape == (512, 512) and 100 <= (first > 0).sum() <= 600


def test_simulate_session_is_seeded(tmp_path, small_movie):
    kwargs = dict(experiment_id=1, cre_line="Cux2-CreERT2", n_rois=5, nm1_template=small_movie)
    a = simulate_session(path=tmp_path / "a.nwb", seed=0, **kwargs)
    b = simulate_session(path=tmp_path / "b.nwb", seed=0, **kwargs)
    c = simulate_session(path=tmp_path / "c.nwb", seed=1, **kwargs)
    assert np.array_equal(a.dff, b.dff)
    assert not np.array_equal(a.dff[:, 0], c.dff[:, 0])


def test_broken_files(tmp_path, small_movie):
    """A truncated file does not open; an unsplittable one has a 4th grating block."""
    truncated = simulate_session(
        path=tmp_path / "1.nwb",
        experiment_id=1,
        cre_line="Sst-IRES-Cre",
        nm1_template=small_movie,
        broken="truncated",
    )
    with pytest.raises(OSError, match="truncated"):
        h5py.File(truncated.path, "r")
    epochs = simulate_session(
        path=tmp_path / "2.nwb",
        experiment_id=2,
        cre_line="Sst-IRES-Cre",
        nm1_template=small_movie,
        broken="unsplittable_epochs",
        eye_tracking=False,
    )
    with h5py.File(epochs.path, "r") as f:
        frames = f["stimulus/presentation/drifting_gratings_stimulus/frame_duration"][()]
        assert _blocks(frames, EPOCH_THRESHOLD_FRAMES["three_session_A"]) == 4
        assert "EyeTracking" not in f[PIPE]


def test_simulate_session_rejects_bad_arguments(tmp_path, small_movie):
    common = dict(path=tmp_path / "x.nwb", experiment_id=1, nm1_template=small_movie)
    with pytest.raises(ValueError, match="cre_line must be one of"):
        simulate_session(cre_line="Cux2", **common)
    with pytest.raises(ValueError, match="session_type must be one of"):
        simulate_session(cre_line="Cux2-CreERT2", session_type="three_session_D", **common)
    with pytest.raises(ValueError, match="broken must be None or one of"):
        simulate_session(cre_line="Cux2-CreERT2", broken="melted", **common)
    with pytest.raises(ValueError, match=r"nm1_template must be a \(900, H, W\) uint8"):
        simulate_session(
            path=tmp_path / "y.nwb",
            experiment_id=1,
            cre_line="Cux2-CreERT2",
            nm1_template=small_movie[:10],
        )
    assert not (tmp_path / "x.nwb").exists()


def test_simulate_sessions_layout_and_cycling(tmp_path):
    """Lines and types cycle; a line's sessions come from one mouse two at a time."""
    paths = simulate_sessions(
        out_dir=tmp_path,
        n_sessions=5,
        cre_lines=["Pvalb-IRES-Cre", "Tlx3-Cre_PL56"],
        session_types=["three_session_B", "three_session_C2"],
        n_rois=4,
        movie_height=38,
        movie_width=76,
        first_experiment_id=500,
    )
    assert paths == [nwb_path(tmp_path, i) for i in range(500, 505)]
    assert paths[0] == tmp_path / "allen_brain_observatory_calcium/ophys_experiment_data/500.nwb"
    seen = []
    for path in paths:
        with h5py.File(path, "r") as f:
            seen.append(
                (
                    f["general/subject/genotype"][()].decode().split("/")[0],
                    f["general/session_type"][()].decode(),
                    f["general/specimen_name"][()].decode(),
                    int(f["general/experiment_container_id"][()]),
                )
            )
    assert [s[:3] for s in seen] == [
        ("Pvalb-IRES-Cre", "three_session_B", "Pvalb-IRES-Cre;simulated-0"),
        ("Tlx3-Cre_PL56", "three_session_C2", "Tlx3-Cre_PL56;simulated-1"),
        ("Pvalb-IRES-Cre", "three_session_B", "Pvalb-IRES-Cre;simulated-0"),
        ("Tlx3-Cre_PL56", "three_session_C2", "Tlx3-Cre_PL56;simulated-1"),
        ("Pvalb-IRES-Cre", "three_session_B", "Pvalb-IRES-Cre;simulated-2"),
    ]
    assert len({s[3] for s in seen}) == 5  # five containers (imaging planes)


def test_simulate_sessions_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_sessions must be positive"):
        simulate_sessions(out_dir=tmp_path, n_sessions=0)
    with pytest.raises(ValueError, match="cre_lines must be from"):
        simulate_sessions(out_dir=tmp_path, cre_lines=["Sst"])
    with pytest.raises(ValueError, match="session_types must be from"):
        simulate_sessions(out_dir=tmp_path, session_types=["three_session_Z"])


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def test_cli_simulate_writes_sessions(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "simulate",
            "--out-dir",
            str(tmp_path),
            "--n-sessions",
            "2",
            "--cre-line",
            "Rorb-IRES2-Cre",
            "--n-rois",
            "3",
            "--movie-size",
            "38",
            "76",
            "--broken",
            "truncated",
            "--first-experiment-id",
            "42",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {nwb_path(tmp_path, 42)}" in result.output
    with h5py.File(nwb_path(tmp_path, 42), "r") as f:
        assert f["stimulus/templates/natural_movie_one_image_stack/data"].shape == (900, 38, 76)
    with pytest.raises(OSError):
        h5py.File(nwb_path(tmp_path, 43), "r")


def test_cli_simulate_reports_bad_cre_line(tmp_path):
    result = CliRunner().invoke(
        cli, ["simulate", "--out-dir", str(tmp_path), "--cre-line", "Sst", "--n-sessions", "1"]
    )
    assert result.exit_code != 0
    assert "cre_lines must be from" in result.output and "'Sst'" in result.output
