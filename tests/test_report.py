"""The curriculum report: its table, first paragraph and summary.json, and the curves."""

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from poyocap_plugin.workflow import render, report
from poyocap_plugin.workflow.baselines import Baseline, DecodedFrames, MovieBaselines
from poyocap_plugin.workflow.render import plot_training_curves
from poyocap_plugin.workflow.report import (
    CurriculumSummary,
    answer,
    results_table,
    write_curriculum_report,
    write_summary,
)
from poyocap_plugin.workflow.runs import StageResult

BASELINES = (
    Baseline("mean_frame", 0.171),
    Baseline("ridge", 0.221),
    Baseline("chance", 0.125),
    Baseline("logistic", 0.65),
)
CAP_SSIM, SCRATCH_SSIM = (0.60, 0.62, 0.65), (0.50, 0.55, 0.58)
CAP_DG, SCRATCH_DG = (0.30, 0.20, 0.40), (0.25, 0.30, 0.30)


def summary_of(seeds) -> CurriculumSummary:
    return CurriculumSummary(
        metrics={
            "poyocap": {
                s: {"movie_ssim": CAP_SSIM[i], "dg_accuracy": CAP_DG[i]}
                for i, s in enumerate(seeds)
            },
            "poyocap_no_pretraining": {
                s: {"movie_ssim": SCRATCH_SSIM[i], "dg_accuracy": SCRATCH_DG[i]}
                for i, s in enumerate(seeds)
            },
        },
        baselines=BASELINES,
    )


def table_cells(table: str) -> dict[str, list[str]]:
    rows = [line.strip("|").split("|") for line in table.splitlines()[2:]]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


class TestOneSeed:
    summary = summary_of([42])

    def test_table_shows_values_and_baselines_without_a_gain(self):
        table = results_table(self.summary, simulated=True)
        assert table.splitlines()[0] == "| | movie SSIM (test) | DG accuracy (test) |"
        assert table_cells(table) == {
            "POYO-CAP": ["0.600", "0.300"],
            "from scratch": ["0.500", "0.250"],
            "mean frame (training split)": ["0.171", "—"],
            "ridge regression on the 2-photon frame's dF/F": ["0.221", "—"],
            "chance": ["—", "0.125"],
            "logistic regression on each trial's mean dF/F": ["—", "0.650"],
            "paper POYO-CAP (real Allen data, not this dataset)": ["0.593", "0.555"],
            "paper From scratch (real Allen data, not this dataset)": ["0.528", "0.492"],
        }
        assert "%" not in table

    def test_first_paragraph_says_one_seed_cannot_tell(self):
        text = answer(self.summary)
        assert text.startswith("**Did the curriculum help here, and how sure are we?** Seed 42")
        assert "cannot tell" in text and "no gain is claimed" in text and "%" not in text

    def test_summary_json_has_no_comparison(self, tmp_path):
        saved = json.loads(write_summary(self.summary, tmp_path / "summary.json").read_text())
        assert saved["comparisons"] == []
        assert saved["metrics"][0] == {
            "arm": "poyocap",
            "seed": 42,
            "stage": "finetune_movie",
            "metric": "movie_ssim",
            "value": 0.6,
        }
        assert len(saved["metrics"]) == 4


class TestThreeSeeds:
    summary = summary_of([0, 1, 2])

    def test_table_shows_mean_ci_and_the_paired_difference(self):
        cells = table_cells(results_table(self.summary, simulated=False))
        ssim_p = stats.ttest_rel(CAP_SSIM, SCRATCH_SSIM).pvalue
        dg_p = stats.ttest_rel(CAP_DG, SCRATCH_DG).pvalue
        assert ssim_p < 0.05 <= dg_p
        assert cells["POYO-CAP"] == ["0.623 ± 0.063", "0.300 ± 0.248"]
        assert cells["POYO-CAP − from scratch (paired, 3 seeds)"] == [
            f"+0.080 ± 0.043, p = {ssim_p:.3f}",
            f"+0.017 ± 0.259, p = {dg_p:.3f}, not significant",
        ]
        assert "paper POYO-CAP (real Allen data, 3 seeds)" in cells

    def test_first_paragraph_answers_from_the_comparison(self):
        text = answer(self.summary)
        assert "on movie SSIM (test), helped: POYO-CAP − from scratch = +0.080" in text
        assert "on DG accuracy (test), no significant difference" in text

    def test_summary_json_matches_the_table(self, tmp_path):
        saved = json.loads(write_summary(self.summary, tmp_path / "summary.json").read_text())
        cells = table_cells(results_table(self.summary, simulated=True))
        titles = {
            "mean_frame": "mean frame (training split)",
            "ridge": "ridge regression on the 2-photon frame's dF/F",
            "chance": "chance",
            "logistic": "logistic regression on each trial's mean dF/F",
        }
        column = {"movie_ssim": 0, "dg_accuracy": 1}
        for baseline in saved["baselines"]:
            shown = cells[titles[baseline["name"]]][column[baseline["metric"]]]
            assert shown == f"{baseline['value']:.3f}"
        for arm, title in (("poyocap", "POYO-CAP"), ("poyocap_no_pretraining", "from scratch")):
            for metric, index in column.items():
                values = [
                    m["value"] for m in saved["metrics"] if (m["arm"], m["metric"]) == (arm, metric)
                ]
                assert cells[title][index].startswith(f"{sum(values) / len(values):.3f} ± ")
        paired = cells["POYO-CAP − from scratch (paired, 3 seeds)"]
        for comparison in saved["comparisons"]:
            low, high = comparison["ci95"]
            shown = paired[column[comparison["metric"]]]
            assert (comparison["a"], comparison["b"]) == ("poyocap", "poyocap_no_pretraining")
            assert shown.startswith(
                f"{comparison['mean_difference']:+.3f} ± {(high - low) / 2:.3f}"
            )
            assert f"p = {comparison['p']:.3f}" in shown


def _metrics_csv(path, n_steps: int, offset: float):
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", "epoch", "train_loss", "average_val_metric"])
        writer.writeheader()
        for step in range(n_steps):
            writer.writerow({"step": step, "epoch": 0, "train_loss": offset + 1.0 / (step + 1)})
        writer.writerow({"step": n_steps - 1, "epoch": 0, "average_val_metric": 0.1 + offset})
    return path


def _run(tmp_path, name, ssim, accuracy=None):
    key = "allen_brain_observatory_calcium/1/natural_movie_one_image/MovieSSIM()/test"
    dg_key = (
        "allen_brain_observatory_calcium/1/drifting_gratings_orientation/MulticlassAccuracy()/test"
    )
    metrics = {key: ssim} if accuracy is None else {dg_key: accuracy}
    csv_path = _metrics_csv(tmp_path / f"{name.replace('/', '_')}.csv", 3, 0.0)
    return StageResult(
        name, ("poyocap", "train"), Path("best.ckpt"), Path("last.ckpt"), csv_path, metrics, 1.0
    )


# two test recordings of 10 windows of 2 x 4 pixels: window i's true frame is grey level
# 10 i everywhere, the ridge decoder's 10 i + 5
RIDGE_MOVIE = MovieBaselines(
    baselines=BASELINES[:2],
    ridge_frames={
        f"allen_brain_observatory_calcium/60000{r}": DecodedFrames(
            true=np.repeat(10.0 * np.arange(10)[:, None], 8, axis=1),
            decoded=np.repeat(10.0 * np.arange(10)[:, None] + 5, 8, axis=1),
        )
        for r in range(2)
    },
    height=2,
    width=4,
)


@pytest.fixture
def light_report(monkeypatch, tmp_path):
    """write_curriculum_report with its data-reading parts replaced by stand-ins."""
    figure = tmp_path / "figure.png"
    monkeypatch.setattr(report, "render_decoded_frames", lambda *a, **k: [figure])
    monkeypatch.setattr(
        report,
        "predictability_report",
        SimpleNamespace(
            predictability_report=lambda root: None,
            write_report=lambda table, out: {"figure": figure, "lines_csv": tmp_path / "l.csv"},
        ),
    )
    monkeypatch.setattr(
        report,
        "arm_baselines",
        lambda stages, **k: (RIDGE_MOVIE, BASELINES if "finetune_dg" in stages else BASELINES[:2]),
    )

    def write(cap, scratch, seed=42):
        return write_curriculum_report(
            tmp_path / "report",
            data_root=tmp_path,
            simulated=True,
            cap=cap,
            baseline=scratch,
            settings={"seed": seed},
        )

    return write


def test_report_of_one_seed_states_no_gain(light_report, tmp_path):
    """One seed: values only, never a relative gain such as "+1.3 %"."""
    cap = {
        "finetune_movie": _run(tmp_path, "poyocap/seed_42/finetune_movie", 0.174),
        "finetune_dg": _run(tmp_path, "poyocap/seed_42/finetune_dg", None, 0.083),
    }
    scratch = {
        "finetune_movie": _run(tmp_path, "scratch/seed_42/finetune_movie", 0.172),
        "finetune_dg": _run(tmp_path, "scratch/seed_42/finetune_dg", None, 0.063),
    }
    text = light_report(cap, scratch).read_text()
    assert "%" not in text.split("## Decoded frames")[0]
    assert "cannot tell" in text.split("\n\n")[1]  # the first paragraph
    assert "| POYO-CAP | 0.174 | 0.083 |" in text and "| from scratch | 0.172 | 0.063 |" in text
    saved = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert saved["comparisons"] == [] and {b["name"] for b in saved["baselines"]} == {
        "mean_frame",
        "ridge",
        "chance",
        "logistic",
    }


def test_report_over_seeds_compares_paired_seeds(light_report, tmp_path):
    cap = {
        s: {"finetune_movie": _run(tmp_path, f"c/{s}", CAP_SSIM[i])}
        for i, s in enumerate((0, 1, 2))
    }
    scratch = {
        s: {"finetune_movie": _run(tmp_path, f"s/{s}", SCRATCH_SSIM[i])}
        for i, s in enumerate((0, 1, 2))
    }
    text = light_report(cap, scratch).read_text()
    assert "| POYO-CAP − from scratch (paired, 3 seeds) | +0.080 ± 0.043" in text
    saved = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert [c["metric"] for c in saved["comparisons"]] == ["movie_ssim"]
    assert saved["comparisons"][0]["p"] == pytest.approx(
        stats.ttest_rel(CAP_SSIM, SCRATCH_SSIM).pvalue
    )


def test_a_seed_without_its_movie_run_is_named(light_report, tmp_path):
    cap = {0: {"finetune_movie": _run(tmp_path, "c/0", 0.5)}, 1: {}}
    with pytest.raises(
        KeyError, match=r"POYO-CAP has no finetune_movie run to report \(seeds \[1\]\)"
    ):
        light_report(cap, {0: {"finetune_movie": _run(tmp_path, "s/0", 0.4)}})


def test_training_curves_are_a_valid_png(tmp_path):
    runs = {
        "POYO-CAP": {
            "pretrain": _metrics_csv(tmp_path / "a.csv", 5, 0.0),
            "finetune_movie": _metrics_csv(tmp_path / "b.csv", 4, 0.1),
        },
        "from scratch": {"finetune_movie": _metrics_csv(tmp_path / "c.csv", 4, 0.2)},
    }
    path = plot_training_curves(runs, tmp_path / "out" / "curves.png")
    with Image.open(path) as image:
        image.verify()
        assert image.format == "PNG"
    with Image.open(path) as image:
        assert image.size == (840, 600)  # two stage columns of 4.2 in, 6 in high, 100 dpi
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["curves.png"]


def test_training_curves_need_a_run(tmp_path):
    with pytest.raises(ValueError, match="no run to plot"):
        plot_training_curves({"POYO-CAP": {}}, tmp_path / "curves.png")


def test_report_shows_the_ridge_decoders_frames_after_both_arms(
    light_report, monkeypatch, tmp_path
):
    """One ridge PNG per test recording under "**ridge regression**", after the two arms,
    showing the ridge decoder's frames of the windows the arms' figures show."""
    shown = []
    write_grid = render._write_grid

    def record(true, decoded, **kwargs):
        shown.append((kwargs["path"].name, np.asarray(true), np.asarray(decoded)))
        return write_grid(true, decoded, **kwargs)

    monkeypatch.setattr(render, "_write_grid", record)
    cap = {"finetune_movie": _run(tmp_path, "c/42", 0.2)}
    text = light_report(cap, {"finetune_movie": _run(tmp_path, "s/42", 0.1)}).read_text()
    section = text.split("## Decoded frames")[1].split("## Training curves")[0]
    headings = [line for line in section.splitlines() if line.startswith("**")]
    assert headings == ["**POYO-CAP**", "**from scratch**", "**ridge regression**"]
    ridge = section.split("**ridge regression**")[1]
    assert [line for line in ridge.splitlines() if line] == [
        "![ridge regression 600000](frames/ridge/600000.png)",
        "![ridge regression 600001](frames/ridge/600001.png)",
    ]
    windows = [0, 2, 4, 5, 7, 9]  # 6 per recording (the report's default) spread over 10
    assert [name for name, _, _ in shown] == ["600000.png", "600001.png"]
    for _, true, decoded in shown:
        assert np.array_equal(true, np.repeat(10.0 * np.array(windows)[:, None], 8, axis=1))
        assert np.array_equal(decoded, true + 5)
    for name in ("600000.png", "600001.png"):
        with Image.open(tmp_path / "report" / "frames" / "ridge" / name) as image:
            assert image.format == "PNG"
            assert image.size == (220 * len(windows), 260)  # 2.2 in per frame, 2.6 in, 100 dpi
