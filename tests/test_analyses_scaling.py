"""Scaling with model size: parameter counts, the sweep over sizes, arms and seeds, its files."""

import csv
import json
import logging
from pathlib import Path

import pytest
import torch

from poyocap_plugin.brainset import BRAINSET_ID
from poyocap_plugin.workflow import arms
from poyocap_plugin.workflow.analyses import scaling
from poyocap_plugin.workflow.analyses.model_sizes import module_parameters
from poyocap_plugin.workflow.analyses.scaling import (
    QUICK_SEEDS,
    QUICK_SIZES,
    model_sizes,
    parameter_count,
    quick_settings,
    run_scaling,
)
from poyocap_plugin.workflow.baselines import Baseline
from poyocap_plugin.workflow.runs import RunOutputs, StageResult
from poyocap_plugin.workflow.settings import CurriculumSettings
from poyocap_plugin.workflow.simulated_brainset import SimulationSettings

BASELINES = (
    Baseline("mean_frame", 0.171),
    Baseline("ridge", 0.388),
    Baseline("chance", 0.125),
    Baseline("logistic", 0.75),
)
MOVIE_KEY = f"{BRAINSET_ID}/1/natural_movie_one_image/MovieSSIM()/test"
DG_KEY = f"{BRAINSET_ID}/1/drifting_gratings_orientation/MulticlassAccuracy()/test"

# movie SSIM per (size, arm) at seed 0 (seed s adds s / 100): POYO-CAP rises with size,
# the baseline stays flat (equal means are not a strict increase)
SSIM = {
    ("capoyo_48k", "poyocap"): 0.30,
    ("capoyo_1.2M", "poyocap"): 0.40,
    ("capoyo_48k", "poyocap_no_pretraining"): 0.35,
    ("capoyo_1.2M", "poyocap_no_pretraining"): 0.35,
}


# ---------------------------------------------------------------------------------------
# Parameter counts
# ---------------------------------------------------------------------------------------


def test_the_shipped_sizes_are_listed():
    assert set(QUICK_SIZES) <= set(model_sizes())
    assert {"capoyo_32M", "capoyo_114M", "capoyo_319M"} <= set(model_sizes())
    assert "calcium_poyo_plus_smoke" not in model_sizes()  # not a CAPOYO size


@pytest.mark.parametrize(
    ("size", "named"), [("capoyo_48k", 48e3), ("capoyo_250k", 250e3), ("capoyo_1.2M", 1.2e6)]
)
def test_a_cpu_size_counts_about_what_its_name_says(size, named):
    """A size's name is its trunk's count, as its config says ("about 48k parameters without
    the unit/session vocabularies"); the three CPU sizes are near-geometric steps."""
    assert abs(parameter_count(size) - named) < 0.05 * named


def test_the_count_leaves_out_the_vocabularies_and_the_frame_decoder():
    counts = module_parameters("capoyo_48k", (16, 32, 4))
    assert "unit_emb" not in counts and "session_emb" not in counts  # lazy: not counted
    assert counts["frame_decoder"] > 0
    assert parameter_count("capoyo_48k") == sum(counts.values()) - counts["frame_decoder"]


def test_counting_leaves_torch_s_random_state_alone():
    module_parameters.cache_clear()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    parameter_count("capoyo_48k")
    assert torch.equal(torch.rand(3), expected)


def test_an_unknown_size_is_named_with_the_available_ones():
    with pytest.raises(ValueError, match=r"\['capoyo_2G'\]; available: .*'capoyo_48k'"):
        parameter_count("capoyo_2G")


def test_quick_settings():
    quick = quick_settings(CurriculumSettings.preset("cpu", batch_size=8))
    assert (quick.pretrain_epochs, quick.finetune_epochs) == (1, 1)
    assert quick.eval_epochs is None and quick.batch_size == 8
    assert QUICK_SEEDS == (0, 1)


# ---------------------------------------------------------------------------------------
# The sweep, with the training runs faked at the stage level
# ---------------------------------------------------------------------------------------


@pytest.fixture
def fake_stage(monkeypatch):
    """Every stage returns a result without training; calls and configs are recorded."""
    calls: dict[str, list] = {"configs": [], "stages": [], "baselines": []}

    def configs(data_root, out_dir, *, variants, settings, min_units):
        calls["configs"].append((Path(out_dir), tuple(variants)))
        return Path(out_dir)

    def stage(arm, seed, stage, trunk, *, data_root, config_dir, runs_dir, settings):
        calls["stages"].append((settings.model, arm, seed, stage, Path(runs_dir)))
        metrics = {
            "pretrain": {"x": 0.0},
            "finetune_movie": {MOVIE_KEY: SSIM[settings.model, arm] + seed / 100},
            "finetune_dg": {DG_KEY: 0.25},
        }[stage]
        command = ("poyocap", "train", f"model={settings.model}", f"seed={seed}", stage)
        return StageResult(
            f"{arm}/seed_{seed}/{stage}", command, Path(), Path(), Path(), metrics, 0
        )

    def baselines(stages, *, data_root):
        calls["baselines"].append({name: run.command for name, run in stages.items()})
        return None, BASELINES if "finetune_dg" in stages else BASELINES[:2]

    monkeypatch.setattr(scaling, "write_curriculum_configs", configs)
    monkeypatch.setattr(arms, "_run_arm_stage", stage)
    monkeypatch.setattr(scaling, "arm_baselines", baselines)
    return calls


def test_every_size_arm_and_seed_runs_once_with_its_model(fake_stage, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="poyocap_plugin.workflow.analyses.scaling")
    out = tmp_path / "out"
    settings = quick_settings(CurriculumSettings.preset("cpu"))
    assert settings.dg  # the sweep's own dg=False turns the DG runs off
    # given largest first: the sweep runs and reports by increasing parameter count
    result = run_scaling(
        out,
        data_root=tmp_path,
        settings=settings,
        sizes=("capoyo_1.2M", "capoyo_48k"),
        seeds=(0, 1),
    )
    assert fake_stage["configs"] == [(out / "configs", ("poyocap",))]  # once, for every size
    assert sorted(fake_stage["stages"]) == sorted(
        (size, arm, seed, stage, out / "runs" / size)
        for size in ("capoyo_48k", "capoyo_1.2M")
        for seed in (0, 1)
        for arm, stages in (
            ("poyocap", ("pretrain", "finetune_movie")),
            ("poyocap_no_pretraining", ("finetune_movie",)),
        )
        for stage in stages
    )
    models = [call[0] for call in fake_stage["stages"]]
    assert models == ["capoyo_48k"] * 6 + ["capoyo_1.2M"] * 6
    small = f"{parameter_count('capoyo_48k'):,}"
    assert f"size 1/2: capoyo_48k ({small} parameters)" in caplog.text
    curve = result.curve("poyocap", "movie_ssim")
    assert [p.size for p in curve] == ["capoyo_48k", "capoyo_1.2M"]
    assert curve[1].values == pytest.approx((0.40, 0.41)) and curve[1].mean == pytest.approx(0.405)
    assert result.monotonic("poyocap", "movie_ssim") is True
    assert result.monotonic("poyocap_no_pretraining", "movie_ssim") is False
    assert {p.metric for p in result.points} == {"movie_ssim"}  # no DG runs: no DG points
    assert result.headline() == (
        "movie SSIM (test), POYO-CAP: 0.305 -> 0.405 (monotonic); "
        "from scratch: 0.355 -> 0.355 (not monotonic); baselines: mean frame 0.171, ridge 0.388"
    )
    # the baselines of the smallest size's first POYO-CAP run: the same test frames as all
    assert fake_stage["baselines"] == [
        {
            stage: ("poyocap", "train", "model=capoyo_48k", "seed=0", stage)
            for stage in ("pretrain", "finetune_movie")
        }
    ]
    assert "mean frame (training split) 0.171; ridge regression" in result.markdown_path.read_text()
    saved = json.loads(result.json_path.read_text())
    assert saved["baselines"] == {
        "mean_frame": {"metric": "movie_ssim", "value": 0.171},
        "ridge": {"metric": "movie_ssim", "value": 0.388},
    }
    assert saved["monotonic"] == {
        "poyocap": {"movie_ssim": True},
        "poyocap_no_pretraining": {"movie_ssim": False},
    }
    assert list(saved["sizes"]) == ["capoyo_48k", "capoyo_1.2M"]
    large = saved["sizes"]["capoyo_1.2M"]
    assert large["parameters"] == parameter_count("capoyo_1.2M")
    assert large["model_parameters"] > large["parameters"]  # the frame decoder
    ssim = large["arms"]["poyocap_no_pretraining"]["movie_ssim"]
    assert ssim["values"] == pytest.approx([0.35, 0.36]) and ssim["mean"] == pytest.approx(0.355)
    assert ssim["ci95_half_width"] == pytest.approx(0.0635310, rel=1e-5)  # t(0.975, 1) * 0.005
    assert {run["name"] for run in large["runs"]} == {
        "poyocap/seed_0/pretrain",
        "poyocap/seed_0/finetune_movie",
        "poyocap/seed_1/pretrain",
        "poyocap/seed_1/finetune_movie",
        "poyocap_no_pretraining/seed_0/finetune_movie",
        "poyocap_no_pretraining/seed_1/finetune_movie",
    }
    assert "poyocap train model=capoyo_1.2M seed=1 pretrain" in {
        r["command"] for r in large["runs"]
    }


def test_with_dg_runs_both_metrics_are_reported(fake_stage, tmp_path):
    result = run_scaling(
        tmp_path / "out", data_root=tmp_path, sizes=("capoyo_48k",), seeds=(3,), dg=True
    )
    assert {(p.arm, p.metric): p.values for p in result.points} == {
        ("poyocap", "movie_ssim"): pytest.approx((0.33,)),
        ("poyocap", "dg_accuracy"): (0.25,),
        ("poyocap_no_pretraining", "movie_ssim"): pytest.approx((0.38,)),
        ("poyocap_no_pretraining", "dg_accuracy"): (0.25,),
    }
    assert result.headline().endswith("baselines: chance 0.125, logistic 0.750")
    assert result.monotonic("poyocap", "dg_accuracy") is None  # one size: no curve
    assert "has one size: no curve to judge." in result.markdown_path.read_text()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sizes": ()}, "sizes must name at least one model size"),
        ({"sizes": ("capoyo_48k", "capoyo_48k")}, "each once"),
        ({"sizes": ("capoyo_48k", "capoyo_9T")}, r"unknown model size config\(s\) \['capoyo_9T'\]"),
        ({"seeds": ()}, "seeds must name at least one seed"),
        ({"seeds": (1, 1)}, "seeds must name at least one seed, each once"),
        ({"data_root": None}, "give exactly one of data_root and simulation"),
        ({"simulation": SimulationSettings()}, "give exactly one of data_root and simulation"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(fake_stage, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_scaling(tmp_path / "out", **({"data_root": tmp_path} | kwargs))
    assert fake_stage == {"configs": [], "stages": [], "baselines": []}
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------
# Resuming, with a fake trainer behind run_arms' done-markers; the files agree
# ---------------------------------------------------------------------------------------


class _FakeTrainer:
    """Stands in for `poyocap train`: writes a run's files; metrics follow its log_dir."""

    def __init__(self):
        self.log_dirs: list[Path] = []

    def configs(self, data_root, out_dir, *, variants, settings, min_units):
        for variant in variants:
            for stage in ("pretrain", "finetune_movie", "finetune_dg"):
                path = Path(out_dir) / "dataset" / f"{variant}_{stage}.yaml"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"# {variant} {stage}\n")
        return Path(out_dir)

    def train(self, command, log_path, env):
        (log_dir,) = [a.removeprefix("log_dir=") for a in command if a.startswith("log_dir=")]
        self.log_dirs.append(Path(log_dir))
        run_dir = Path(log_dir) / "lightning_logs/version_0"
        (run_dir / "checkpoints").mkdir(parents=True)
        for name in ("checkpoints/best.ckpt", "checkpoints/last.ckpt", "metrics.csv"):
            (run_dir / name).write_text("")

    def outputs(self, log_dir):
        # <out>/runs/<size>/<arm>/seed_<s>/<stage>
        size, arm, seed = Path(log_dir).parts[-4:-1]
        run_dir = Path(log_dir) / "lightning_logs/version_0"
        return RunOutputs(
            run_dir=run_dir,
            best_checkpoint=run_dir / "checkpoints/best.ckpt",
            last_checkpoint=run_dir / "checkpoints/last.ckpt",
            scalars=run_dir / "metrics.csv",
            test_metrics={MOVIE_KEY: SSIM[size, arm] + int(seed.removeprefix("seed_")) / 100},
        )


@pytest.fixture
def fake_trainer(monkeypatch, tmp_path):
    fake = _FakeTrainer()
    monkeypatch.setattr(scaling, "write_curriculum_configs", fake.configs)
    monkeypatch.setattr(arms, "run_logged", fake.train)
    monkeypatch.setattr(arms, "find_run_outputs", fake.outputs)
    monkeypatch.setattr(scaling, "arm_baselines", lambda stages, **k: (None, BASELINES[:2]))
    data_root = tmp_path / "data"
    (data_root / BRAINSET_ID).mkdir(parents=True)
    (data_root / BRAINSET_ID / "1.h5").write_bytes(b"")
    return fake, data_root


def test_a_rerun_trains_only_what_is_new(fake_trainer, tmp_path):
    """Each size runs in its own folder, so adding a size leaves the others' runs finished."""
    fake, data_root = fake_trainer
    out = tmp_path / "out"
    settings = quick_settings(CurriculumSettings.preset("cpu"))
    run_scaling(out, data_root=data_root, settings=settings, sizes=("capoyo_48k",), seeds=(0, 1))
    assert len(fake.log_dirs) == 6  # per seed: POYO-CAP's two stages, the baseline's one
    fake.log_dirs.clear()
    both = ("capoyo_48k", "capoyo_1.2M")
    run_scaling(out, data_root=data_root, settings=settings, sizes=both, seeds=(0, 1))
    assert len(fake.log_dirs) == 6
    assert {d.relative_to(out / "runs").parts[0] for d in fake.log_dirs} == {"capoyo_1.2M"}
    fake.log_dirs.clear()
    result = run_scaling(out, data_root=data_root, settings=settings, sizes=both, seeds=(0, 1))
    assert fake.log_dirs == []
    assert result.monotonic("poyocap", "movie_ssim") is True


def test_the_files_agree(fake_trainer, tmp_path):
    fake, data_root = fake_trainer
    settings = quick_settings(CurriculumSettings.preset("cpu"))
    result = run_scaling(
        tmp_path / "out",
        data_root=data_root,
        settings=settings,
        sizes=("capoyo_48k", "capoyo_1.2M"),
        seeds=(0, 1),
    )
    saved = json.loads(result.json_path.read_text())
    with result.csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    in_json = [
        (size, arm, metric, value)
        for size, entry in saved["sizes"].items()
        for arm, by_metric in entry["arms"].items()
        for metric, record in by_metric.items()
        for value in record["values"]
    ]
    assert len(rows) == len(in_json) == 8  # 2 sizes x 2 arms x 1 metric x 2 seeds
    assert sorted((r["size"], r["arm"], r["metric"], float(r["value"])) for r in rows) == sorted(
        in_json
    )
    assert {(r["size"], int(r["parameters"])) for r in rows} == {
        (size, entry["parameters"]) for size, entry in saved["sizes"].items()
    }
    assert result.figure_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = result.markdown_path.read_text()
    small = saved["sizes"]["capoyo_48k"]["parameters"]
    assert f"| capoyo_48k | {small:,} | 0.305 ± 0.064 | 0.355 ± 0.064 |" in markdown
    assert "- POYO-CAP: the movie SSIM (test) curve is monotonic" in markdown
    assert "- from scratch: the movie SSIM (test) curve is not monotonic" in markdown
    assert "monotonic means are not evidence of scaling" in markdown
    # no partial file is left beside them
    assert sorted(p.name for p in result.json_path.parent.glob("scaling*")) == [
        "scaling.csv",
        "scaling.json",
        "scaling.md",
        "scaling.png",
    ]
    assert not list(result.json_path.parent.glob(".*partial"))
