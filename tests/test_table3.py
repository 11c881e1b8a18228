"""Table 3: mean ± 95 % CI per arm, paired differences from scratch, the Markdown table."""

import json
from pathlib import Path

import pytest
from scipy import stats

from poyocap_plugin.workflow import arms, table3
from poyocap_plugin.workflow.runs import StageResult
from poyocap_plugin.workflow.table3 import (
    Table3Row,
    format_table3,
    paired_with_scratch,
    run_table3,
    summarize_table3,
)


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

    def test_no_paired_table_without_a_from_scratch_row(self):
        assert "Paired difference" not in format_table3(self.rows, simulated=False)
        assert paired_with_scratch(self.rows) == {}

    def test_every_arm_is_compared_with_from_scratch_over_the_same_seeds(self):
        scratch = {"movie_ssim": (0.50, 0.55, 0.58), "dg_accuracy": (0.25, 0.30, 0.30)}
        rows = [
            Table3Row("poyocap", (0.60, 0.62, 0.65), (0.30, 0.20, 0.40), scratch),
            Table3Row("from_scratch", (0.40, 0.45, 0.48), (0.25, 0.30, 0.30), scratch),
            Table3Row("reverse_ssl", (0.45,), (), {"movie_ssim": (0.4,)}),
        ]
        comparisons = paired_with_scratch(rows)
        assert comparisons["reverse_ssl"] == {"movie_ssim": None, "dg_accuracy": None}
        ssim = comparisons["poyocap"]["movie_ssim"]
        assert ssim.differences == pytest.approx((0.10, 0.07, 0.07))
        assert ssim.p == pytest.approx(
            stats.ttest_rel(rows[0].movie_ssim, scratch["movie_ssim"]).pvalue
        )
        lines = format_table3(rows, simulated=True).splitlines()
        assert lines[-2:] == [
            f"| POYO-CAP | {ssim} | {comparisons['poyocap']['dg_accuracy']} |",
            "| Reverse SSL | n/a | n/a |",
        ]
        assert str(comparisons["poyocap"]["dg_accuracy"]).endswith("not significant")
        record = summarize_table3(rows)["poyocap"]["movie_ssim"]["minus_from_scratch"]
        assert record["mean_difference"] == pytest.approx(0.08)
        assert record["p"] == pytest.approx(ssim.p)

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
    """run_table3 runs each (arm, seed) through run_arms and tabulates the means."""
    calls = []

    def fake_configs(data_root, out_dir, *, variants, settings, min_units):
        calls.append(("configs", tuple(variants)))
        return Path(out_dir)

    def fake_stage(arm, seed, stage, trunk, *, data_root, config_dir, runs_dir, settings):
        if stage == "finetune_movie":
            calls.append((arm, seed))
        ssim = {"poyocap": 0.5, "reverse_ssl": 0.3}[arm] + 0.1 * seed
        key, value = {
            "pretrain": ("x", 0.0),
            "finetune_movie": ("natural_movie_one_image/MovieSSIM()", ssim),
            "finetune_dg": ("drifting_gratings_orientation/MulticlassAccuracy()", 0.25),
        }[stage]
        metrics = {f"allen_brain_observatory_calcium/1/{key}/test": value}
        return StageResult(stage, (), Path(), Path(), Path(), metrics, 0.0)

    monkeypatch.setattr(table3, "write_curriculum_configs", fake_configs)
    monkeypatch.setattr(arms, "_run_arm_stage", fake_stage)
    rows, path = run_table3(
        tmp_path / "t3", data_root=tmp_path, seeds=(0, 1, 2), arms=("poyocap", "reverse_ssl")
    )
    assert calls[0] == ("configs", ("poyocap", "reverse_ssl"))
    # two runs at a time (the cpu preset): every (arm, seed) once, in any order
    assert sorted(calls[1:]) == [(a, s) for a in ("poyocap", "reverse_ssl") for s in (0, 1, 2)]
    assert rows[0].movie_ssim == pytest.approx((0.5, 0.6, 0.7))
    table = path.read_text()
    assert "| POYO-CAP | 0.600 ± 0.248 | 0.593 | 0.250 ± 0.000 | 0.555 |" in table
    assert "| Reverse SSL | 0.400 ± 0.248 | 0.489 | 0.250 ± 0.000 | 0.213 |" in table
    saved = json.loads((tmp_path / "t3" / "table3.json").read_text())
    assert saved["simulated"] is False and saved["seeds"] == [0, 1, 2]
    assert saved["arms"]["reverse_ssl"]["movie_ssim"]["mean"] == pytest.approx(0.4)


def test_run_table3_pairs_each_arm_with_from_scratch_on_the_arm_s_own_recordings(
    tmp_path, monkeypatch
):
    """From scratch tests on every recording; each arm is compared with its score on the
    recordings that arm tested on, seed by seed."""
    tested = {"poyocap": ("2",), "reverse_ssl": ("1",), "from_scratch": ("1", "2")}

    def fake_stage(arm, seed, stage, trunk, *, data_root, config_dir, runs_dir, settings):
        key = {
            "pretrain": "x",
            "finetune_movie": "natural_movie_one_image/MovieSSIM()",
            "finetune_dg": "drifting_gratings_orientation/MulticlassAccuracy()",
        }[stage]
        # recording 1 scores 0.2 + seed / 10, recording 2 scores 0.6 + seed / 100
        metrics = {
            f"allen_brain_observatory_calcium/{r}/{key}/test": (
                0.2 + seed / 10 if r == "1" else 0.6 + seed / 100
            )
            + (0.05 if arm == "poyocap" else 0.0)
            for r in tested[arm]
        }
        return StageResult(stage, (), Path(), Path(), Path(), metrics, 0.0)

    monkeypatch.setattr(table3, "write_curriculum_configs", lambda *a, **k: tmp_path)
    monkeypatch.setattr(arms, "_run_arm_stage", fake_stage)
    rows, _ = run_table3(tmp_path / "t3", data_root=tmp_path, seeds=(0, 1, 2), arms=tuple(tested))
    by_arm = {row.arm: row for row in rows}
    assert by_arm["from_scratch"].movie_ssim == pytest.approx((0.4, 0.455, 0.51))
    assert by_arm["poyocap"].from_scratch["movie_ssim"] == pytest.approx((0.6, 0.61, 0.62))
    assert by_arm["reverse_ssl"].from_scratch["dg_accuracy"] == pytest.approx((0.2, 0.3, 0.4))
    comparison = paired_with_scratch(rows)["poyocap"]["movie_ssim"]
    assert comparison.differences == pytest.approx((0.05, 0.05, 0.05))
    assert paired_with_scratch(rows)["reverse_ssl"]["movie_ssim"].differences == pytest.approx(
        (0.0, 0.0, 0.0)
    )


def test_a_recording_from_scratch_did_not_test_is_named(tmp_path, monkeypatch):
    def fake_stage(arm, seed, stage, trunk, *, data_root, config_dir, runs_dir, settings):
        key = {
            "pretrain": "x",
            "finetune_movie": "natural_movie_one_image/MovieSSIM()",
            "finetune_dg": "drifting_gratings_orientation/MulticlassAccuracy()",
        }[stage]
        recording = "2" if arm == "poyocap" else "1"
        metrics = {f"allen_brain_observatory_calcium/{recording}/{key}/test": 0.5}
        return StageResult(stage, (), Path(), Path(), Path(), metrics, 0.0)

    monkeypatch.setattr(table3, "write_curriculum_configs", lambda *a, **k: tmp_path)
    monkeypatch.setattr(arms, "_run_arm_stage", fake_stage)
    with pytest.raises(ValueError, match=r"from_scratch seed 0 has no test movie_ssim on "
                       r"poyocap's recordings \['2'\]"):  # fmt: skip
        run_table3(
            tmp_path / "t3", data_root=tmp_path, seeds=(0, 1), arms=("poyocap", "from_scratch")
        )
