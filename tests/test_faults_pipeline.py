"""Faults in preparing the allen_brain_observatory_calcium brainset, each injected on purpose.

Fast tests drive the pipeline's pure helpers and its atomic writer (an exception between
write and rename; a writer process killed with SIGKILL mid-write). One slow fixture runs
the real ``brainsets prepare`` CLI three times on sessions broken in the ways real Allen
files are (no ROI, one ROI, all-NaN or constant dF/F, some bad ROIs, no natural movie one):
each broken session fails alone with its id and cause; a rerun skips the finished ones and
retries the failed ones; ``--reprocess`` redoes every session.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from temporaldata import ArrayDict, Data, Interval

from poyocap_plugin.workflow.simulate import (
    SessionLayout,
    natural_movie_one_template,
    nwb_path,
    simulate_session,
)

from conftest import BRAINSET_ID, PIPELINE_DIR, load_pipeline_module

neuron_stats = load_pipeline_module("neuron_stats")


# --------------------------------------------------------------------------------------------
# Sessions with 0 or 1 ROI, all-NaN and constant traces (pure helpers)
# --------------------------------------------------------------------------------------------


def _usable(df_over_f: np.ndarray) -> int:
    statistics = neuron_stats.extract_predictability_stats(df_over_f)
    return neuron_stats.check_usable_units(statistics, session_id="123")


def test_session_without_rois_fails_with_its_id():
    with pytest.raises(ValueError, match=r"session 123: the NWB file has no ROIs"):
        _usable(np.zeros((100, 0)))


@pytest.mark.parametrize("value", [np.nan, 0.25])
def test_session_whose_every_trace_is_nan_or_constant_fails(value):
    with pytest.raises(ValueError, match=r"session 123: all 3 ROIs have all-NaN or constant"):
        _usable(np.full((100, 3), value))


def test_one_roi_session_is_kept():
    assert _usable(np.random.default_rng(0).normal(size=(100, 1))) == 0


def test_bad_rois_are_flagged_not_fatal():
    x = np.random.default_rng(0).normal(size=(100, 4))
    x[:, 1] = np.nan
    x[:, 3] = 2.0
    statistics = neuron_stats.extract_predictability_stats(x)
    assert neuron_stats.check_usable_units(statistics, session_id="1") == 2
    assert statistics["stats_valid"].tolist() == [True, False, True, False]
    assert statistics["is_predictable"].tolist() == [True, False, True, False]


# --------------------------------------------------------------------------------------------
# A process killed or failing while writing: no partial .h5 under its final name
# --------------------------------------------------------------------------------------------


def _session(n_units: int = 3) -> Data:
    return Data(
        units=ArrayDict(id=np.array([f"u{i}" for i in range(n_units)])),
        domain=Interval(start=np.array([0.0]), end=np.array([1.0])),
    )


def test_failure_between_write_and_rename_leaves_no_file(tmp_path, monkeypatch):
    pipeline = load_pipeline_module("pipeline")
    output = tmp_path / "42.h5"
    pipeline._write_atomically(_session(3), output)
    before = output.read_bytes()

    def broken_rename(source, target):
        assert Path(source).exists() and Path(source).stat().st_size > 0  # fully written
        raise OSError("disk full (injected)")

    monkeypatch.setattr(pipeline.os, "replace", broken_rename)
    with pytest.raises(OSError, match="injected"):
        pipeline._write_atomically(_session(5), output)
    assert output.read_bytes() == before  # the finished file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["42.h5"]  # no partial left

    monkeypatch.undo()
    (tmp_path / "42.h5").unlink()

    def failing_to_hdf5(self, file, **kwargs):
        file.create_group("units")
        raise RuntimeError("killed mid-write (injected)")

    monkeypatch.setattr(Data, "to_hdf5", failing_to_hdf5)
    with pytest.raises(RuntimeError, match="injected"):
        pipeline._write_atomically(_session(), output)
    assert list(tmp_path.iterdir()) == []


_KILLED_WRITER = """
import importlib.util, sys, time
import numpy as np
from temporaldata import ArrayDict, Data, Interval

spec = importlib.util.spec_from_file_location("pipeline", {pipeline!r})
pipeline = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pipeline)

def slow_to_hdf5(self, file, **kwargs):
    file.create_dataset("half", data=np.zeros(1000))
    file.flush()
    print("writing", flush=True)
    time.sleep(600)

Data.to_hdf5 = slow_to_hdf5
data = Data(units=ArrayDict(id=np.array(["a"])), domain=Interval(start=[0.0], end=[1.0]))
pipeline._write_atomically(data, {output!r})
"""


def test_writer_killed_mid_write_leaves_no_h5_and_a_rerun_cleans_up(tmp_path):
    pipeline = load_pipeline_module("pipeline")
    output = tmp_path / "42.h5"
    script = _KILLED_WRITER.format(pipeline=str(PIPELINE_DIR / "pipeline.py"), output=str(output))
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "writing"
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait(timeout=60)
    assert writer.returncode == -signal.SIGKILL
    assert not output.exists()
    assert list(tmp_path.glob("*.h5")) == []  # torch_brain's Dataset globs *.h5: sees nothing
    leftovers = list(tmp_path.glob(".42.h5.*.partial"))
    assert len(leftovers) == 1

    pipeline._write_atomically(_session(), output)  # the rerun of that session
    assert sorted(p.name for p in tmp_path.iterdir()) == ["42.h5"]
    with h5py.File(output, "r") as f:
        assert Data.from_hdf5(f, lazy=False).units.id.tolist() == ["u0", "u1", "u2"]


# --------------------------------------------------------------------------------------------
# The real CLI: broken sessions fail alone; rerun after a crash; --reprocess
# --------------------------------------------------------------------------------------------

DFF = "processing/brain_observatory_pipeline/DfOverF/imaging_plane_1"
SEGMENTATION = "processing/brain_observatory_pipeline/ImageSegmentation"
MOVIE_HW = (19, 38)
GOOD = {"910001": 6, "910002": 1, "910006": 6}  # session -> ROIs; 910006 has 2 bad ROIs
FAILING = {
    "910003": "the NWB file has no ROIs",
    "910004": "all 4 ROIs have all-NaN or constant dF/F",
    "910005": "all 4 ROIs have all-NaN or constant dF/F",
    "910007": "has no natural_movie_one table",
}


def _replace(group: h5py.Group, name: str, data: np.ndarray) -> None:
    del group[name]
    group.create_dataset(name, data=data)


def _break(path: Path, how: str) -> None:
    """Edit an Allen NWB file written by the simulator the way a faulty real one looks."""
    with h5py.File(path, "r+") as f:
        traces = f[f"{DFF}/data"][()]  # (n_rois, T)
        if how == "no_rois":
            _replace(f[DFF], "data", traces[:0])
            _replace(f[DFF], "roi_names", np.zeros(0, dtype="S8"))
            segmentation = f[SEGMENTATION]
            for name in segmentation["imaging_plane_1/roi_list"][()]:
                del segmentation[f"imaging_plane_1/{name.decode()}"]
            _replace(segmentation, "imaging_plane_1/roi_list", np.zeros(0, dtype="S8"))
            _replace(segmentation, "roi_ids", np.zeros(0, dtype="S8"))
            _replace(segmentation, "cell_specimen_ids", np.zeros(0, dtype=np.int64))
        elif how == "all_nan":
            f[f"{DFF}/data"][...] = np.nan
        elif how == "constant":
            f[f"{DFF}/data"][...] = 0.5
        elif how == "some_bad_rois":
            traces[0] = np.nan
            traces[1] = 0.25
            f[f"{DFF}/data"][...] = traces
        elif how == "no_natural_movie_one":
            del f["stimulus/presentation/natural_movie_one_stimulus"]
        else:
            raise ValueError(how)


def _write(raw: Path, session_id: str, n_rois: int, movie: np.ndarray) -> Path:
    return simulate_session(
        path=nwb_path(raw, int(session_id)),
        experiment_id=int(session_id),
        cre_line="Sst-IRES-Cre",
        n_rois=n_rois,
        layout=SessionLayout(dg_repeats=1),
        nm1_template=movie,
        eye_tracking=False,
        seed=5,
    ).path


def _prepare(raw: Path, processed: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["UV_PYTHON_DOWNLOADS"] = "never"
    command = [
        str(Path(sys.executable).parent / "brainsets"),
        "prepare",
        BRAINSET_ID,
        "-c",
        "1",
        "--use-raw-files",
        "--template-size",
        *map(str, MOVIE_HW),
        *extra,
        "--raw-dir",
        str(raw),
        "--processed-dir",
        str(processed),
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)


def _mtimes(root: Path) -> dict[str, int]:
    return {p.stem: p.stat().st_mtime_ns for p in root.glob("*.h5")}


@pytest.fixture(scope="module")
def prepared_three_times(tmp_path_factory):
    """Prepare broken sessions; fix one and rerun; rerun with --reprocess."""
    raw = tmp_path_factory.mktemp("raw")
    processed = tmp_path_factory.mktemp("processed")
    root = processed / BRAINSET_ID
    movie = natural_movie_one_template(seed=0, height=MOVIE_HW[0], width=MOVIE_HW[1])
    for session_id, n_rois in GOOD.items():
        _write(raw, session_id, n_rois, movie)
    _break(nwb_path(raw, 910006), "some_bad_rois")
    for session_id, how in zip(
        FAILING, ["no_rois", "all_nan", "constant", "no_natural_movie_one"], strict=True
    ):
        _break(_write(raw, session_id, 4, movie), how)

    first = _prepare(raw, processed)
    logs = {p.stem: p.read_text() for p in (root / "pipeline_logs").glob("*.err")}
    after_first = _mtimes(root)
    _write(raw, "910003", 4, movie)  # the session is fixed (e.g. downloaded again)
    second = _prepare(raw, processed)
    after_second = _mtimes(root)
    third = _prepare(raw, processed, "--reprocess")
    return {
        "root": root,
        "runs": (first, second, third),
        "logs": logs,
        "mtimes": (after_first, after_second, _mtimes(root)),
    }


@pytest.mark.slow
def test_broken_sessions_fail_alone_with_id_and_cause(prepared_three_times):
    first = prepared_three_times["runs"][0]
    output = first.stdout + first.stderr
    assert first.returncode == 1, output
    assert f"{len(FAILING)} manifest items failed" in output
    assert sorted(prepared_three_times["mtimes"][0]) == sorted(GOOD)
    for session_id, cause in FAILING.items():
        assert f"session {session_id}: " in prepared_three_times["logs"][session_id]
        assert cause in prepared_three_times["logs"][session_id], session_id
    assert not list(prepared_three_times["root"].rglob("*.partial"))


@pytest.mark.slow
def test_kept_sessions_flag_their_bad_rois(prepared_three_times):
    root = prepared_three_times["root"]
    with h5py.File(root / "910002.h5", "r") as f:
        assert f["calcium_traces/df_over_f"].shape[1] == 1
        assert f["units/stats_valid"][()].tolist() == [True]
    with h5py.File(root / "910006.h5", "r") as f:
        assert f["units/stats_valid"][()].tolist() == [False, False, True, True, True, True]
        assert not f["units/is_predictable"][()][:2].any()


@pytest.mark.slow
def test_rerun_skips_finished_retries_failed_and_reprocess_redoes_all(prepared_three_times):
    _, second, third = prepared_three_times["runs"]
    after_first, after_second, after_third = prepared_three_times["mtimes"]
    assert second.returncode == 1  # three sessions are still broken
    assert "3 manifest items failed" in second.stdout + second.stderr
    assert sorted(after_second) == sorted([*GOOD, "910003"])  # the fixed one is retried
    for session_id in GOOD:
        assert after_second[session_id] == after_first[session_id]  # skipped
    assert third.returncode == 1
    assert sorted(after_third) == sorted(after_second)
    for session_id, mtime in after_second.items():
        assert after_third[session_id] != mtime  # processed again
