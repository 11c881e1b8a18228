"""Predictability: the rule, Kneedle thresholds, per-line summaries, the report and its CLI."""

import h5py
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from temporaldata import ArrayDict, Data

from poyocap_plugin.brainset import ALLEN_CRE_LINES, BRAINSET_ID, PAPER_PREDICTABLE_CRE_LINES
from poyocap_plugin.predictability import (
    knee_threshold,
    predictable_mask,
    read_unit_statistics,
    summarize_cre_lines,
    valid_statistics_mask,
)
from poyocap_plugin.workflow.cli import cli
from poyocap_plugin.workflow.simulate import (
    CRE_LINES,
    PREDICTABLE_CRE_LINES,
)


def test_rule_is_both_statistics_at_or_below_the_thresholds_and_nan_is_neither():
    skewness = np.array([3.51, 3.52, 1.0, np.nan, 0.0])
    kurtosis = np.array([22.62, 1.0, 22.63, 1.0, np.nan])
    assert predictable_mask(skewness, kurtosis).tolist() == [True, False, False, False, False]
    assert predictable_mask(skewness, kurtosis, kurtosis_threshold=30.0).tolist() == [
        True,
        False,
        True,
        False,
        False,
    ]
    assert valid_statistics_mask(skewness, kurtosis).tolist() == [True, True, True, False, False]
    assert valid_statistics_mask(skewness, kurtosis, [True, False, True, True, True]).tolist() == [
        True,
        False,
        True,
        False,
        False,
    ]


def test_constants_agree_with_the_simulator():
    assert set(PAPER_PREDICTABLE_CRE_LINES) == set(PREDICTABLE_CRE_LINES)
    assert ALLEN_CRE_LINES == CRE_LINES


def test_knee_is_the_last_value_before_the_curve_bends_up():
    # four low lines, nine high ones (the shape of the simulated medians), any order
    values = [5.34, 0.6, 5.35, 0.45, 5.36, 5.39, 0.62, 5.47, 5.68, 5.88, 0.59, 5.96, 6.29]
    assert knee_threshold(values) == 0.62
    assert knee_threshold([0.5, 0.9, 1.5, 2.2, 3.51, 6, 8, 9, 9.5, 10, 11, 12, 13]) == 2.2
    assert knee_threshold([1.0, float("nan"), 2.0]) is None  # fewer than 3 finite values
    assert knee_threshold([2.0, 2.0, 2.0]) is None
    assert knee_threshold([1.0, 2.0, 3.0]) is None  # a straight line has no knee


def test_summary_per_cre_line_has_exact_counts_medians_and_fractions():
    units = pd.DataFrame(
        {
            "session_id": ["a", "a", "b", "c", "c", "c"],
            "cre_line": ["Sst-IRES-Cre"] * 3 + ["Cux2-CreERT2"] * 3,
            "skewness": [1.0, 2.0, 5.0, 4.0, 6.0, np.nan],
            "kurtosis": [1.0, 30.0, 3.0, 40.0, 50.0, 1.0],
            "stats_valid": [True, True, True, True, True, False],
        }
    )
    lines = summarize_cre_lines(units)
    assert lines.index.tolist() == ["Cux2-CreERT2", "Sst-IRES-Cre"]
    sst = lines.loc["Sst-IRES-Cre"]
    assert (sst.n_sessions, sst.n_units, sst.n_valid) == (2, 3, 3)
    assert (sst.skewness_median, sst.skewness_q25, sst.skewness_q75) == (2.0, 1.5, 3.5)
    assert sst.kurtosis_median == 3.0
    assert sst.fraction_predictable == pytest.approx(1 / 3)
    cux2 = lines.loc["Cux2-CreERT2"]
    assert (cux2.n_units, cux2.n_valid, cux2.skewness_median) == (3, 2, 5.0)
    assert cux2.fraction_predictable == 0.0


# --- errors ------------------------------------------------------------------------------


def test_missing_brainset_folder_is_a_click_error_naming_it(tmp_path):
    result = CliRunner().invoke(cli, ["predictability", str(tmp_path)])
    assert result.exit_code == 1
    assert f"No brainset folder {tmp_path / BRAINSET_ID}" in result.output
    (tmp_path / BRAINSET_ID).mkdir()
    with pytest.raises(FileNotFoundError, match=r"holds no processed sessions"):
        read_unit_statistics(tmp_path)


def _write_plain(root, session_id: str, stem: str | None = None, **units) -> None:
    data = Data(
        brainset=Data(id=BRAINSET_ID),
        subject=Data(id="m", cre_line="Sst-IRES-Cre"),
        session=Data(id=session_id),
        units=ArrayDict(id=np.array(["a", "b"]), **units),
    )
    path = root / BRAINSET_ID / f"{stem or session_id}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        data.to_hdf5(f)


def test_session_without_statistics_names_the_file_and_the_fix(tmp_path):
    _write_plain(tmp_path, "1", skewness=np.array([1.0, 2.0]))
    with pytest.raises(KeyError, match=r"1.h5: units has no \['kurtosis'\].*pipeline"):
        read_unit_statistics(tmp_path)


def test_session_id_must_match_its_file_stem(tmp_path):
    _write_plain(tmp_path, "1", stem="2", skewness=np.ones(2), kurtosis=np.ones(2))
    with pytest.raises(ValueError, match=r"2.h5 has session.id '1', not its file stem '2'"):
        read_unit_statistics(tmp_path)


def test_statistics_table_without_stats_valid_column_counts_finite_values(tmp_path):
    _write_plain(tmp_path, "1", skewness=np.array([1.0, np.nan]), kurtosis=np.ones(2))
    stats = read_unit_statistics(tmp_path)
    assert stats.units.stats_valid.tolist() == [True, True]
    assert stats.units.cre_line.tolist() == ["Sst-IRES-Cre"] * 2  # from the subject
    assert stats.sessions.loc["1"].to_dict() == {
        "subject_id": "m",
        "cre_line": "Sst-IRES-Cre",
        "n_units": 2,
        "has_drifting_gratings": False,
        "has_natural_movie_one": False,
    }
    assert summarize_cre_lines(stats.units).loc["Sst-IRES-Cre"].n_valid == 1
