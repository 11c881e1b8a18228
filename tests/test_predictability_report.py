"""The predictability report on simulated sessions: recovered partition, files, figure, CLI."""

import json

import h5py
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from temporaldata import ArrayDict, Data, Interval, RegularTimeSeries

from brainsets_pipelines.allen_brain_observatory_calcium.neuron_stats import (
    extract_predictability_stats,
)
from poyocap_plugin.brainset import BRAINSET_ID
from poyocap_plugin.workflow.cli import cli
from poyocap_plugin.workflow.predictability_report import (
    plot_predictability,
    predictability_report,
    write_report,
)
from poyocap_plugin.workflow.simulate import (
    CRE_LINES,
    PREDICTABLE_CRE_LINES,
    natural_movie_one_template,
    simulate_session,
)

# --- simulated sessions ------------------------------------------------------------------


def _write_simulated(root, sim, session_id: str) -> None:
    """Store a simulated session in the processed layout, with the pipeline's statistics."""
    stats = extract_predictability_stats(sim.dff)
    n_frames, n_units = sim.dff.shape
    data = Data(
        brainset=Data(id=BRAINSET_ID),
        subject=Data(id=f"subject_{session_id}", cre_line=sim.cre_line),
        session=Data(id=session_id),
        units=ArrayDict(
            id=sim.roi_ids.astype(str),
            cre_line=np.full(n_units, sim.cre_line),
            **stats,
        ),
        calcium_traces=RegularTimeSeries(df_over_f=sim.dff, sampling_rate=30.0, domain_start=0.0),
        domain=Interval(start=np.array([0.0]), end=np.array([n_frames / 30.0])),
    )
    path = root / BRAINSET_ID / f"{session_id}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        data.to_hdf5(f)


@pytest.fixture(scope="module")
def simulated_root(tmp_path_factory):
    """One simulated session per Cre line (13 sessions of 12 neurons)."""
    root = tmp_path_factory.mktemp("simulated")
    template = natural_movie_one_template(seed=0, height=38, width=76)
    raw = tmp_path_factory.mktemp("raw")
    for i, line in enumerate(CRE_LINES):
        sim = simulate_session(
            path=raw / f"{i}.nwb",
            experiment_id=900_000_001 + i,
            cre_line=line,
            n_rois=12,
            nm1_template=template,
            eye_tracking=False,
            seed=1,
        )
        _write_simulated(root, sim, str(900_000_001 + i))
    return root


def test_report_recovers_the_simulated_partition(simulated_root):
    report = predictability_report(simulated_root)
    assert report.lines.index.tolist() == sorted(CRE_LINES)
    assert (report.lines.n_units == 12).all() and (report.lines.n_sessions == 1).all()
    assert set(report.predictable_lines_paper) == set(PREDICTABLE_CRE_LINES)
    assert set(report.predictable_lines_knee) == set(PREDICTABLE_CRE_LINES)
    predictable = report.lines.loc[list(PREDICTABLE_CRE_LINES)]
    others = report.lines.drop(index=list(PREDICTABLE_CRE_LINES))
    assert (predictable.fraction_predictable == 1.0).all()
    assert (others.fraction_predictable <= 0.1).all()
    # the knee lies between the two groups' medians
    assert predictable.skewness_median.max() == report.knee_skewness < others.skewness_median.min()
    assert predictable.kurtosis_median.max() == report.knee_kurtosis < others.kurtosis_median.min()
    assert report.units.predictable.sum() == (
        report.units.cre_line.isin(PREDICTABLE_CRE_LINES).sum()
        - (others.fraction_predictable * 12).sum()
    )


def test_report_files_json_csv_and_a_png_showing_both_thresholds(simulated_root, tmp_path):
    report = predictability_report(simulated_root)
    paths = write_report(report, tmp_path / "report")
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "cre_lines.csv",
        "predictability.json",
        "predictability.png",
        "units.csv",
    ]
    summary = json.loads(paths["json"].read_text())
    assert summary["n_sessions"] == 13 and summary["n_units"] == 156
    assert summary["thresholds"]["paper"] == {"skewness": 3.51, "kurtosis": 22.62}
    assert summary["thresholds"]["knee"]["skewness"] == report.knee_skewness
    assert sorted(summary["predictable_lines"]["paper_thresholds"]) == sorted(PREDICTABLE_CRE_LINES)
    assert set(summary["cre_lines"]) == set(CRE_LINES)
    assert len(pd.read_csv(paths["lines_csv"])) == 13
    assert len(pd.read_csv(paths["units_csv"])) == 156

    assert paths["figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(paths["figure"]).shape == (600, 1000, 4)
    axes = plot_predictability(report).axes[0]
    labels = {line.get_label() for line in axes.get_lines()}
    assert {"paper skewness = 3.51", "paper kurtosis = 22.62"} <= labels
    assert f"knee skewness = {report.knee_skewness:.2f}" in labels
    vertical = [line.get_xdata()[0] for line in axes.get_lines() if "skewness" in line.get_label()]
    assert vertical == [3.51, report.knee_skewness]
    assert len(axes.collections) == 13  # one scatter per Cre line


def test_cli_prints_the_table_and_writes_the_report(simulated_root, tmp_path):
    result = CliRunner().invoke(
        cli, ["predictability", str(simulated_root), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    assert "Sst-IRES-Cre" in result.output and "knee: skewness" in result.output
    assert "paper: skewness 3.51, kurtosis 22.62" in result.output
    assert (tmp_path / "out" / "predictability.png").is_file()
