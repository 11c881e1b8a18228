"""Table 3: the Student-t confidence interval and the Markdown table."""

import json
import math
from pathlib import Path

import pytest
from scipy import stats

from poyocap_plugin.workflow import table3
from poyocap_plugin.workflow.runs import StageResult
from poyocap_plugin.workflow.table3 import (
    Table3Row,
    format_table3,
    mean_ci,
    run_table3,
    summarize_table3,
)


class TestMeanCI:
    def test_three_seeds_match_the_t_interval(self):
        """Half-width = t_{0.975, 2} * s / sqrt(3), with s the sample standard deviation."""
        mean, half = mean_ci([0.5, 0.6, 0.7])
        assert mean == pytest.approx(0.6)
        assert half == pytest.approx(4.302652729911275 * 0.1 / math.sqrt(3))

    def test_matches_scipy_interval(self):
        values = [0.51, 0.55, 0.58, 0.49, 0.6]
        mean, half = mean_ci(values, confidence=0.9)
        low, high = stats.t.interval(0.9, len(values) - 1, loc=mean, scale=stats.sem(values))
        assert (mean - half, mean + half) == pytest.approx((low, high))

    def test_identical_values_give_zero_width(self):
        assert mean_ci([0.3, 0.3]) == (pytest.approx(0.3), 0.0)

    def test_one_value_has_no_interval(self):
        mean, half = mean_ci([0.4])
        assert mean == 0.4 and math.isnan(half)

    @pytest.mark.parametrize(
        ("values", "kwargs", "match"),
        [
            ([], {}, "at least one value"),
            ([0.1, math.nan], {}, "finite values"),
            ([0.1, 0.2], {"confidence": 1.0}, r"confidence must be in \(0, 1\), got 1.0"),
        ],
    )
    def test_rejects_bad_input(self, values, kwargs, match):
        with pytest.raises(ValueError, match=match):
            mean_ci(values, **kwargs)


class TestFormatTable3:
    rows = [
        Table3Row("poyocap", (0.5, 0.6, 0.7), (0.3, 0.3, 0.3)),
        Table3Row("reverse_ssl", (0.25,), ()),
    ]

    def test_rows_show_ours_beside_the_paper(self):
        lines = format_table3(self.rows, simulated=False).splitlines()
        assert lines[2].startswith("| arm | movie SSIM (ours) | movie SSIM (paper) |")
        assert lines[4] == "| POYO-CAP | 0.600 ± 0.248 | 0.593 | 0.300 ± 0.000 | 0.555 |"
        assert lines[5] == "| Reverse SSL | 0.250 | 0.489 | n/a | 0.213 |"
        assert "simulated" not in lines[0]

    def test_simulated_data_is_labelled_a_different_dataset(self):
        header = format_table3(self.rows, simulated=True).splitlines()[0]
        assert "**simulated data**" in header and "a different dataset" in header

    def test_unknown_arm_is_named(self):
        with pytest.raises(ValueError, match="arm 'poyocap_no_pretraining' has no row"):
            format_table3([Table3Row("poyocap_no_pretraining", (0.1,), ())], simulated=True)

    def test_summary_holds_values_interval_and_paper(self):
        summary = summarize_table3(self.rows)
        assert summary["poyocap"]["movie_ssim"]["values"] == [0.5, 0.6, 0.7]
        assert summary["poyocap"]["movie_ssim"]["ci95_half_width"] == pytest.approx(
            0.2484, abs=1e-4
        )
        assert summary["reverse_ssl"]["dg_accuracy"]["mean"] is None
        assert summary["reverse_ssl"]["dg_accuracy"]["paper"] == 0.213


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"arms": ("poyocap", "nope")}, "arms must be a non-empty subset"),
        ({"seeds": ()}, "seeds must name at least one seed"),
        ({"data_root": None}, "exactly one of data_root and simulation"),
    ],
)
def test_run_table3_rejects_bad_arguments_before_running(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_table3(tmp_path, **({"data_root": tmp_path} | kwargs))


def test_run_table3_collects_every_arm_and_seed(tmp_path, monkeypatch):
    """run_table3 runs each (arm, seed) through run_arm and tabulates the means."""
    calls = []

    def fake_configs(data_root, out_dir, *, variants, settings, min_units):
        calls.append(("configs", tuple(variants)))
        return Path(out_dir)

    def fake_run_arm(arm, *, data_root, config_dir, runs_dir, settings, seed):
        calls.append((arm, seed))
        ssim = {"poyocap": 0.5, "reverse_ssl": 0.3}[arm] + 0.1 * seed

        def result(key, value):
            metrics = {f"allen_brain_observatory_calcium/1/{key}/test": value}
            return StageResult("x", (), Path(), Path(), Path(), metrics, 0.0)

        return {
            "finetune_movie": result("natural_movie_one_image/MovieSSIM()", ssim),
            "finetune_dg": result("drifting_gratings_orientation/MulticlassAccuracy()", 0.25),
        }

    monkeypatch.setattr(table3, "write_curriculum_configs", fake_configs)
    monkeypatch.setattr(table3, "run_arm", fake_run_arm)
    rows, path = run_table3(
        tmp_path / "t3", data_root=tmp_path, seeds=(0, 1, 2), arms=("poyocap", "reverse_ssl")
    )
    assert calls == [
        ("configs", ("poyocap", "reverse_ssl")),
        *[(arm, seed) for arm in ("poyocap", "reverse_ssl") for seed in (0, 1, 2)],
    ]
    assert rows[0].movie_ssim == pytest.approx((0.5, 0.6, 0.7))
    table = path.read_text()
    assert "| POYO-CAP | 0.600 ± 0.248 | 0.593 | 0.250 ± 0.000 | 0.555 |" in table
    assert "| Reverse SSL | 0.400 ± 0.248 | 0.489 | 0.250 ± 0.000 | 0.213 |" in table
    saved = json.loads((tmp_path / "t3" / "table3.json").read_text())
    assert saved["simulated"] is False and saved["seeds"] == [0, 1, 2]
    assert saved["arms"]["reverse_ssl"]["movie_ssim"]["mean"] == pytest.approx(0.4)
