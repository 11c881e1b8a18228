"""The curriculum report: its metrics table and training-curve figure."""

import csv

import pytest
from PIL import Image

from poyocap_plugin.workflow.report import metrics_table, plot_training_curves


class TestMetricsTable:
    def test_cap_and_scratch_side_by_side_with_the_paper(self):
        table = metrics_table(
            {"movie_ssim": 0.6, "dg_accuracy": 0.25},
            {"movie_ssim": 0.5, "dg_accuracy": 0.2},
            simulated=False,
        )
        lines = table.splitlines()
        assert lines[0].startswith("| metric | POYO-CAP | from scratch | CAP vs scratch |")
        assert "real Allen data, 3 seeds" in lines[0]
        assert lines[2] == "| movie SSIM (test) | 0.600 | 0.500 | +20.0 % | 0.593 | 0.528 |"
        assert lines[3] == "| DG accuracy (test) | 0.250 | 0.200 | +25.0 % | 0.555 | 0.492 |"

    def test_missing_or_non_finite_values_show_as_na(self):
        lines = metrics_table(
            {"movie_ssim": float("nan"), "dg_accuracy": None},
            {"movie_ssim": 0.5, "dg_accuracy": None},
            simulated=True,
        ).splitlines()
        assert "paper POYO-CAP (real Allen data, not this dataset)" in lines[0]
        assert lines[2] == "| movie SSIM (test) | n/a | 0.500 | n/a | 0.593 | 0.528 |"
        assert lines[3] == "| DG accuracy (test) | n/a | n/a | n/a | 0.555 | 0.492 |"


def _metrics_csv(path, n_steps: int, offset: float):
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", "epoch", "train_loss", "average_val_metric"])
        writer.writeheader()
        for step in range(n_steps):
            writer.writerow({"step": step, "epoch": 0, "train_loss": offset + 1.0 / (step + 1)})
        writer.writerow({"step": n_steps - 1, "epoch": 0, "average_val_metric": 0.1 + offset})
    return path


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
