"""The curriculum job: stage commands, done-markers, and the whole job end to end (slow)."""

import json
import logging
import math
import os
import re
import shlex
import threading
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from poyocap_plugin.brainset import BRAINSET_ID
from poyocap_plugin.workflow import arms, curriculum
from poyocap_plugin.workflow.arms import run_arms, stage_command
from poyocap_plugin.workflow.cli import cli
from poyocap_plugin.workflow.curriculum import run_curriculum, write_curriculum_configs
from poyocap_plugin.workflow.runs import RunOutputs, StageResult, arm_metrics
from poyocap_plugin.workflow.settings import CurriculumSettings
from poyocap_plugin.workflow.simulated_brainset import SimulationSettings
from poyocap_plugin.workflow.stages import ARMS, CURRICULUM_ARMS

#: the stages each curriculum arm runs
STAGES = {
    "poyocap": ("pretrain", "finetune_movie", "finetune_dg"),
    "poyocap_no_pretraining": ("finetune_movie", "finetune_dg"),
}
TRUNK = Path("/runs/pretrain/lightning_logs/version_0/checkpoints/epoch=3-step=40.ckpt")


def command(stage: str, settings: CurriculumSettings, trunk: Path | None = None) -> list[str]:
    return stage_command(
        stage,
        variant="poyocap",
        data_root=Path("/data"),
        config_dir=Path("/out/configs"),
        log_dir=Path("/out/runs/x"),
        settings=settings,
        seed=7,
        trunk=trunk,
    )


class TestStageCommand:
    def test_movie_stage_with_trunk(self):
        line = command("finetune_movie", CurriculumSettings(), TRUNK)
        assert line[1:4] == ["train", "--config-name", "poyocap_finetune_movie"]
        assert line[4:] == [
            "data_root=/data",
            "log_dir=/out/runs/x",
            "hydra.searchpath=[file:///out/configs]",
            "dataset=poyocap_finetune_movie",
            "model=capoyo_48k",
            "seed=7",
            "epochs=6",
            "batch_size=16",
            "num_workers=0",
            "eval_epochs=6",  # validates once, after the last epoch
            "eval_batch_size=64",
            "optim.base_lr=0.0002",
            "model.frame_decoder.height=16",
            "model.frame_decoder.width=32",
            "+model.frame_decoder.num_stages=4",
            f"model.pretrained_trunk='{TRUNK}'",  # quoted: the name holds '='
        ]
        # the logged line survives the shell: copying it reproduces the same argv
        assert shlex.split(shlex.join(line)) == line

    def test_pretrain_stage_uses_pretrain_epochs_and_no_frame_size(self):
        settings = CurriculumSettings(
            pretrain_epochs=3, overrides=("precision=bf16-mixed",), parallel_runs=1
        )
        line = command("pretrain", settings)
        assert "epochs=3" in line and line[-1] == "precision=bf16-mixed"
        assert f"epochs={settings.dg_epochs}" in command("finetune_dg", settings)
        assert not any("frame_decoder" in a or "pretrained_trunk" in a for a in line)
        assert not any(a.startswith("eval_epochs") for a in line)  # stage 1 keeps its curves

    def test_stage_two_validates_every_eval_epochs(self):
        settings = CurriculumSettings(finetune_epochs=4, dg_epochs=8, eval_epochs=2)
        assert "eval_epochs=2" in command("finetune_movie", settings)
        assert "eval_epochs=2" in command("finetune_dg", settings)
        assert "eval_epochs=8" in command("finetune_dg", CurriculumSettings(dg_epochs=8))
        assert "eval_epochs=1" in command(
            "finetune_dg", CurriculumSettings.preset("paper", perceptual=False)
        )

    def test_paper_preset_keeps_the_configs_frame_size(self):
        line = command("finetune_movie", CurriculumSettings.preset("paper", perceptual=False))
        assert "model=capoyo_114M" in line and "epochs=25" in line
        assert not any(a.startswith(("model.frame_decoder", "eval_batch_size")) for a in line)

    @pytest.mark.parametrize(
        ("stage", "per_gpu", "peak_lr"),
        [("pretrain", 8, 1.25e-4), ("finetune_movie", 32, 5e-4), ("finetune_dg", 32, 5e-4)],
    )
    @pytest.mark.parametrize(("gpus", "nodes"), [(1, 1), (4, 1), (4, 2)])
    def test_paper_batch_is_per_gpu_times_devices_at_the_released_peak_lr(
        self, stage, per_gpu, peak_lr, gpus, nodes
    ):
        settings = CurriculumSettings.preset(
            "paper", perceptual=False, gpus=gpus, nodes=nodes, parallel_runs=1
        )
        line = command(stage, settings)
        values = dict(a.split("=", 1) for a in line if "=" in a)
        batch_size = int(values["batch_size"])
        assert batch_size == per_gpu * gpus * nodes
        # train.py's peak LR is optim.base_lr x the global batch: the released one at any size
        assert float(values["optim.base_lr"]) * batch_size == pytest.approx(peak_lr)
        assert (values.get("gpus"), values.get("nodes")) == (
            (str(gpus), str(nodes)) if gpus * nodes > 1 else (None, None)
        )

    @pytest.mark.parametrize("key", ["gpus", "nodes", "batch_size", "optim.base_lr", "+gpus"])
    def test_overrides_of_computed_keys_are_refused_naming_the_setting(self, key):
        with pytest.raises(ValueError, match=f"override '{re.escape(key)}=2' sets a key the"):
            CurriculumSettings(overrides=(f"{key}=2",))

    def test_unknown_stage(self):
        with pytest.raises(ValueError, match="stage must be one of .* got 'finetune'"):
            command("finetune", CurriculumSettings())


class TestSettings:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"pretrain_epochs": 0}, "pretrain_epochs must be an int >= 1, got 0"),
            ({"frame_size": (16, 32)}, r"frame_size must be \(height, width, num_stages\)"),
            ({"overrides": ("gpus",)}, "override 'gpus' is not a Hydra KEY=VALUE override"),
            ({"eval_epochs": 7}, r"eval_epochs must be None or divide the stage-2 epochs"),
            ({"eval_epochs": 4}, r"divide the stage-2 epochs \(\{'movie': 6, 'DG': 12\}\)"),
            ({"eval_epochs": 0}, r"eval_epochs must be None or divide"),
            ({"launcher": ("srun",)}, r"parallel_runs=2 with a launcher"),
            ({"gpus": 4}, r"parallel_runs=2 with a launcher or several GPUs or nodes"),
            ({"nodes": 0}, r"nodes must be an int >= 1, got 0"),
            ({"pretrain_batch_size": 0}, r"pretrain_batch_size must be an int >= 1, got 0"),
            ({"base_lr": 0.0}, r"base_lr must be > 0, got 0.0"),
        ],
    )
    def test_invalid(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            CurriculumSettings(**kwargs)

    def test_the_paper_preset_needs_the_perceptual_weights_or_says_no(self):
        with pytest.raises(ValueError, match="perceptual_weights is not set: give"):
            CurriculumSettings.preset("paper")
        assert not CurriculumSettings.preset("paper", perceptual=False).perceptual
        with pytest.raises(ValueError, match="with perceptual off"):
            CurriculumSettings(perceptual_weights="alexnet.pth")

    def test_the_study_preset_is_the_demo_s_runs_with_fewer_stage_two_epochs(self):
        cpu, study = CurriculumSettings.preset("cpu"), CurriculumSettings.preset("study")
        assert study.finetune_epochs < cpu.finetune_epochs and study.dg_epochs < cpu.dg_epochs
        assert replace(study, finetune_epochs=cpu.finetune_epochs, dg_epochs=cpu.dg_epochs) == cpu

    def test_preset_changes_and_unknown_preset(self):
        assert CurriculumSettings.preset("cpu", dg=False).dg is False
        with pytest.raises(
            ValueError, match=r"preset must be one of \('cpu', 'study', 'paper'\), got 'gpu'"
        ):
            CurriculumSettings.preset("gpu")

    def test_simulation_needs_three_movie_repeats(self):
        with pytest.raises(ValueError, match="nm1_repeats must be >= 3"):
            SimulationSettings(nm1_repeats=2)


def test_arm_metrics_average_over_recordings():
    def run(metrics):
        return StageResult("x", (), Path("b"), Path("l"), Path("m"), metrics, 1.0)

    results = {
        "finetune_movie": run(
            {
                "allen_brain_observatory_calcium/1/natural_movie_one_image/MovieSSIM()/test": 0.2,
                "allen_brain_observatory_calcium/2/natural_movie_one_image/MovieSSIM()/test": 0.4,
                "average_test_metric": 0.3,
            }
        )
    }
    assert arm_metrics(results) == {"movie_ssim": pytest.approx(0.3), "dg_accuracy": None}


def test_dataset_configs_are_written_once(curriculum_data_root, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="poyocap_plugin")
    out = write_curriculum_configs(
        curriculum_data_root, tmp_path / "c", variants=["poyocap"], settings=CurriculumSettings()
    )
    marker = json.loads((out / "done.json").read_text())
    assert sorted(Path(p).name for p in marker["outputs"]["configs"]) == [
        "poyocap_finetune_dg.yaml",
        "poyocap_finetune_movie.yaml",
        "poyocap_pretrain.yaml",
    ]
    mtime = (out / "dataset" / "poyocap_pretrain.yaml").stat().st_mtime_ns
    write_curriculum_configs(
        curriculum_data_root, tmp_path / "c", variants=["poyocap"], settings=CurriculumSettings()
    )
    assert "dataset configs: finished before" in caplog.text
    assert (out / "dataset" / "poyocap_pretrain.yaml").stat().st_mtime_ns == mtime
    write_curriculum_configs(
        curriculum_data_root,
        tmp_path / "c",
        variants=["from_scratch"],
        settings=CurriculumSettings(),
    )
    assert "dataset configs: settings changed" in caplog.text
    assert (out / "dataset" / "from_scratch_finetune_movie.yaml").is_file()


class TestArguments:
    def test_data_source_is_exactly_one(self, tmp_path):
        with pytest.raises(ValueError, match="exactly one of data_root"):
            run_curriculum(tmp_path)
        with pytest.raises(ValueError, match="exactly one of data_root"):
            run_curriculum(tmp_path, data_root=tmp_path, simulation=SimulationSettings())

    def test_empty_data_root(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="No processed sessions in .*brainsets prepare"):
            run_curriculum(tmp_path / "out", data_root=tmp_path)

    def test_unknown_arm(self, tmp_path):
        with pytest.raises(ValueError, match="arm must be one of"):
            run_arms(
                [("nope", 0)],
                data_root=tmp_path,
                config_dir=tmp_path,
                runs_dir=tmp_path,
                settings=CurriculumSettings(),
            )

    def test_cli_needs_a_data_source(self, tmp_path):
        result = CliRunner().invoke(cli, ["curriculum", str(tmp_path)])
        assert result.exit_code != 0
        assert "Give either --data-root DIR (a processed brainset) or --simulate" in result.output


# ---------------------------------------------------------------------------------------
# Seeds: every arm once per seed, without training (a fake trainer behind the done-markers)
# ---------------------------------------------------------------------------------------


class _FakeTrainer:
    """Stands in for `poyocap train` and the report; records every command it is given."""

    def __init__(self):
        self.commands: list[list[str]] = []
        self.envs: list[dict | None] = []
        self.reports: list[dict] = []

    def configs(self, data_root, out_dir, *, variants, settings, min_units):
        for variant in variants:
            for stage in ("pretrain", "finetune_movie", "finetune_dg"):
                path = Path(out_dir) / "dataset" / f"{variant}_{stage}.yaml"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"# {variant} {stage}\n")
        return Path(out_dir)

    def train(self, command, log_path, env):
        self.commands.append(command)
        self.envs.append(env)
        (log_dir,) = [a.removeprefix("log_dir=") for a in command if a.startswith("log_dir=")]
        checkpoints = Path(log_dir) / "lightning_logs/version_0/checkpoints"
        checkpoints.mkdir(parents=True)
        for name in ("best.ckpt", "last.ckpt", "../metrics.csv"):
            (checkpoints / name).write_text("")

    def outputs(self, log_dir):
        run_dir = Path(log_dir) / "lightning_logs/version_0"
        return RunOutputs(
            run_dir=run_dir,
            best_checkpoint=run_dir / "checkpoints/best.ckpt",
            last_checkpoint=run_dir / "checkpoints/last.ckpt",
            scalars=run_dir / "metrics.csv",
            test_metrics={"average_test_metric": 0.5},
        )

    def report(self, report_dir, **kwargs):
        self.reports.append(kwargs)
        return Path(report_dir) / "report.md"


@pytest.fixture
def fake_trainer(monkeypatch, tmp_path):
    """A fake trainer patched into the curriculum, and a data root with one session file."""
    fake = _FakeTrainer()
    monkeypatch.setattr(curriculum, "write_curriculum_configs", fake.configs)
    monkeypatch.setattr(arms, "run_logged", fake.train)
    monkeypatch.setattr(arms, "find_run_outputs", fake.outputs)
    monkeypatch.setattr(curriculum, "write_curriculum_report", fake.report)
    data_root = tmp_path / "data"
    (data_root / BRAINSET_ID).mkdir(parents=True)
    (data_root / BRAINSET_ID / "1.h5").write_bytes(b"")
    return fake, data_root


def _argument(command: list[str], key: str) -> str:
    (value,) = [a.removeprefix(f"{key}=") for a in command if a.startswith(f"{key}=")]
    return value


class TestSeeds:
    def test_every_arm_runs_once_per_seed_in_its_own_folder(
        self, fake_trainer, tmp_path, monkeypatch
    ):
        fake, data_root = fake_trainer
        out = tmp_path / "out"
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr(os, "cpu_count", lambda: 2)
        result = run_curriculum(out, data_root=data_root, seed=7, n_seeds=2)
        # two runs at a time, one thread each
        assert {env["OMP_NUM_THREADS"] for env in fake.envs} == {"1"}
        assert result.seeds == (7, 8)
        ran = {(_argument(c, "seed"), _argument(c, "log_dir")) for c in fake.commands}
        assert ran == {
            (str(seed), str(out / "runs" / arm / f"seed_{seed}" / stage))
            for seed in (7, 8)
            for arm, stages in STAGES.items()
            for stage in stages
        }
        assert len(fake.commands) == len(ran) == 10
        for seed in (7, 8):
            for arm, stages in STAGES.items():
                assert tuple(result.arms[arm][seed]) == stages
            # each seed's stage 2 starts from that seed's own stage 1
            trunk = result.arms["poyocap"][seed]["pretrain"].best_checkpoint
            assert trunk.is_relative_to(out / "runs" / "poyocap" / f"seed_{seed}" / "pretrain")
            movie = result.arms["poyocap"][seed]["finetune_movie"].command
            assert _argument(movie, "model.pretrained_trunk") == f"'{trunk}'"

    def test_the_report_receives_every_seed(self, fake_trainer, tmp_path):
        fake, data_root = fake_trainer
        result = run_curriculum(tmp_path / "out", data_root=data_root, seed=7, n_seeds=3)
        (report,) = fake.reports
        assert report["cap"] == result.arms["poyocap"] and list(report["cap"]) == [7, 8, 9]
        assert report["baseline"] == result.arms["poyocap_no_pretraining"]
        assert list(report["baseline"]) == [7, 8, 9]
        assert report["settings"]["seeds"] == [7, 8, 9] and "seed" not in report["settings"]

    def test_one_seed_reports_as_before(self, fake_trainer, tmp_path):
        fake, data_root = fake_trainer
        result = run_curriculum(tmp_path / "out", data_root=data_root)
        (report,) = fake.reports
        assert result.seeds == (42,) and list(report["cap"]) == [42]
        assert report["settings"] == asdict(CurriculumSettings.preset("cpu")) | {"seed": 42}
        assert {_argument(c, "seed") for c in fake.commands} == {"42"}

    def test_more_seeds_later_reuses_the_finished_ones(self, fake_trainer, tmp_path, caplog):
        fake, data_root = fake_trainer
        run_curriculum(tmp_path / "out", data_root=data_root, seed=7)
        fake.commands.clear()
        caplog.set_level(logging.INFO, logger="poyocap_plugin")
        result = run_curriculum(tmp_path / "out", data_root=data_root, seed=7, n_seeds=2)
        assert {_argument(c, "seed") for c in fake.commands} == {"8"} and len(fake.commands) == 5
        assert "poyocap/seed_7/pretrain: finished before" in caplog.text
        assert list(result.arms["poyocap"]) == [7, 8]

    def test_stop_after_pretrain_runs_stage1_of_every_seed(self, fake_trainer, tmp_path):
        fake, data_root = fake_trainer
        result = run_curriculum(
            tmp_path / "out", data_root=data_root, seed=7, n_seeds=2, stop_after="pretrain"
        )
        assert result.report is None and fake.reports == []
        assert {s: tuple(runs) for s, runs in result.arms["poyocap"].items()} == {
            7: ("pretrain",),
            8: ("pretrain",),
        }
        assert list(result.arms) == ["poyocap"]

    @pytest.mark.parametrize("n_seeds", [0, -1])
    def test_fewer_than_one_seed_is_refused_before_anything_runs(
        self, fake_trainer, tmp_path, n_seeds
    ):
        fake, data_root = fake_trainer
        with pytest.raises(ValueError, match=rf"n_seeds must be an int >= 1 .*got {n_seeds}"):
            run_curriculum(tmp_path / "out", data_root=data_root, n_seeds=n_seeds)
        assert fake.commands == [] and not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------
# End to end: simulate -> `brainsets prepare` -> stock train.py (both stages) -> report
# ---------------------------------------------------------------------------------------

# one Sst, one Cux2 session, small (the demo's data are 100 ROIs and 8 repeats)
SIMULATION = SimulationSettings(n_sessions=2, n_rois=10, dg_repeats=3)
# train.py's OneCycleLR needs >= 4 steps per run: one session of 84 DG windows at batch 32
# gives 2 steps per epoch, so stage 1 and the DG runs take 2 epochs
SETTINGS = CurriculumSettings(pretrain_epochs=2, finetune_epochs=1, dg_epochs=2, batch_size=32)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Run stage 1 only, then rerun the whole curriculum; keep both logs."""
    out = tmp_path_factory.mktemp("curriculum")
    handler = _Capture()
    logger = logging.getLogger("poyocap_plugin")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        first = run_curriculum(out, simulation=SIMULATION, settings=SETTINGS, stop_after="pretrain")
        first_log, handler.lines = list(handler.lines), []
        pretrain_marker = out / "runs/poyocap/seed_42/pretrain/done.json"
        mtime = pretrain_marker.stat().st_mtime_ns
        second = run_curriculum(out, simulation=SIMULATION, settings=SETTINGS)
        second_log = list(handler.lines)
    finally:
        logger.removeHandler(handler)
    return out, first, first_log, second, second_log, mtime


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.mark.slow
def test_stage1_only_then_resume_skips_finished_steps(finished):
    out, first, first_log, second, second_log, mtime = finished
    assert first.report is None and list(first.arms) == ["poyocap"]
    assert first.seeds == (42,) and list(first.arms["poyocap"][42]) == ["pretrain"]
    assert any(line.startswith("poyocap/seed_42/pretrain: done in") for line in first_log)
    for step in ("simulate", "prepare", "dataset configs", "poyocap/seed_42/pretrain"):
        assert any(line.startswith(f"{step}: finished before") for line in second_log), step
    assert (out / "runs/poyocap/seed_42/pretrain/done.json").stat().st_mtime_ns == mtime
    assert [p.name for p in (out / "runs/poyocap/seed_42/pretrain/lightning_logs").iterdir()] == [
        "version_0"
    ]
    # every stage's full command line is logged before it runs
    ran = [line for line in second_log if " train --config-name " in line]
    assert len(ran) == 4 and all("model=capoyo_48k" in line for line in ran)


@pytest.mark.slow
def test_every_artefact_is_there(finished):
    out, _, _, result, _, _ = finished
    assert result.simulated and result.report == out / "report" / "report.md"
    assert sorted((result.data_root / "allen_brain_observatory_calcium").glob("*.h5"))
    for arm, stages in STAGES.items():
        assert tuple(result.arms[arm][42]) == stages
        for stage, run in result.arms[arm][42].items():
            assert run.best_checkpoint.is_file() and run.last_checkpoint.is_file(), stage
            assert run.best_checkpoint.parent == out / "runs" / arm / "seed_42" / stage / (
                "lightning_logs/version_0/checkpoints"
            )
            assert all(math.isfinite(v) for v in run.test_metrics.values())
            assert (out / "runs" / arm / "seed_42" / stage / "done.json").is_file()
    # stage 2 started from stage 1's best checkpoint; the baseline from none
    cap, scratch = result.arms["poyocap"][42], result.arms["poyocap_no_pretraining"][42]
    trunk = cap["pretrain"].best_checkpoint
    assert f"model.pretrained_trunk='{trunk}'" in cap["finetune_movie"].command
    assert not any("pretrained_trunk" in a for a in scratch["finetune_dg"].command)
    for arm in STAGES:
        metrics = arm_metrics(result.arms[arm][42])
        assert -1.0 <= metrics["movie_ssim"] <= 1.0 and 0.0 <= metrics["dg_accuracy"] <= 1.0

    report = result.report.read_text()
    # one row per curriculum arm, a value per metric (one seed: no interval, no gain)
    titles = [f"| {ARMS[arm].title} |" for arm in CURRICULUM_ARMS]
    rows = [line for line in report.splitlines() if line.startswith(tuple(titles))]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert all(math.isfinite(float(c)) for c in cells[1:3]), row
    assert not re.search(r"[+-]\d+(\.\d+)? ?%", report)  # no relative gain from one seed
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert {b["name"] for b in summary["baselines"]} == {
        "mean_frame",
        "ridge",
        "chance",
        "logistic",
    }
    assert summary["comparisons"] == []
    assert "a **different dataset**" in report
    # the stage-1 trunk's probe, beside the same trunk untrained and chance
    (probe,) = [line.strip() for line in report.splitlines() if line.strip().startswith("probe:")]
    assert "random init" in probe and "chance 0.125" in probe
    assert (out / "report" / "probe" / "probe.json").is_file()
    images = [line.split("](")[1].rstrip(")") for line in report.splitlines() if "![" in line]
    assert len(images) == 3 * 1 + 2  # one test recording (2 arms, ridge), curves, scatter
    for relative in images:
        with Image.open(out / "report" / relative) as image:
            image.verify()
            assert image.format == "PNG"


@pytest.mark.slow
def test_cli_rerun_skips_every_stage(finished):
    out = finished[0]
    args = ["curriculum", str(out), "--simulate", "--sim-sessions", "2", "--sim-rois", "10"]
    args += ["--sim-dg-repeats", "3"]
    args += ["--pretrain-epochs", "2", "--finetune-epochs", "1", "--dg-epochs", "2"]
    args += ["--batch-size", "32"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'report' / 'report.md'}" in result.output
    assert "poyocap_no_pretraining/seed_42: movie_ssim" in result.output
    for arm, stages in STAGES.items():
        for stage in stages:
            versions = list((out / "runs" / arm / "seed_42" / stage / "lightning_logs").iterdir())
            assert [p.name for p in versions] == ["version_0"]


@pytest.mark.parametrize("frame_size", [(16, 32, 4), None])
def test_the_movie_metric_scores_the_frames_the_runs_decode(
    curriculum_data_root, tmp_path, frame_size
):
    settings = CurriculumSettings(frame_size=frame_size)
    out = write_curriculum_configs(
        curriculum_data_root, tmp_path / "c", variants=["poyocap"], settings=settings
    )
    groups = yaml.safe_load((out / "dataset" / "poyocap_finetune_movie.yaml").read_text())
    for group in groups:
        (metric,) = group["config"]["multitask_readout"][0]["metrics"]
        assert (metric["metric"]["height"], metric["metric"]["width"]) == (
            settings.frame_height_width
        )


class _FakeStages:
    """Stands in for one run of `poyocap train`: records start and end, returns a result."""

    def __init__(self, fail=(), barrier=None):
        self.events, self.fail, self.barrier = [], set(fail), barrier
        self.lock = threading.Lock()

    def __call__(self, arm, seed, stage, trunk, **paths):
        with self.lock:
            self.events.append(("start", arm, seed, stage, trunk))
            first_two = len(self.events) <= 2
        if self.barrier is not None and first_two:
            self.barrier.wait()  # the first two runs wait for each other
        if (arm, seed, stage) in self.fail:
            raise RuntimeError(f"{arm}/{seed}/{stage} failed")
        with self.lock:
            self.events.append(("end", arm, seed, stage))
        best = Path(f"/ckpt/{arm}/{seed}/{stage}")
        return StageResult(stage, (), best, best, best, {}, 0.0)

    def started(self):
        return [e[1:4] for e in self.events if e[0] == "start"]


class TestRunArms:
    def test_runs_parallel_runs_at_once(self, monkeypatch):
        # both first runs wait for each other: one run at a time would time out here
        fake = _FakeStages(barrier=threading.Barrier(2, timeout=10))
        monkeypatch.setattr(arms, "_run_arm_stage", fake)
        tasks = [("poyocap", 0), ("poyocap_no_pretraining", 0)]
        settings = CurriculumSettings(parallel_runs=2, dg=False)
        runs = run_arms(tasks, settings=settings)
        assert list(runs) == tasks
        assert list(runs["poyocap", 0]) == ["pretrain", "finetune_movie"]

    def test_stage_two_gets_the_trunk_and_goes_first(self, monkeypatch):
        fake = _FakeStages()
        monkeypatch.setattr(arms, "_run_arm_stage", fake)
        tasks = [("poyocap", 0), ("poyocap_no_pretraining", 0)]
        runs = run_arms(tasks, settings=CurriculumSettings(parallel_runs=1))
        assert fake.started() == [
            ("poyocap", 0, "pretrain"),
            ("poyocap", 0, "finetune_movie"),  # the trunk's runs before the other arm's
            ("poyocap", 0, "finetune_dg"),
            ("poyocap_no_pretraining", 0, "finetune_movie"),
            ("poyocap_no_pretraining", 0, "finetune_dg"),
        ]
        trunks = {e[3]: e[4] for e in fake.events if e[0] == "start" and e[1] == "poyocap"}
        assert trunks["pretrain"] is None
        assert trunks["finetune_dg"] == runs["poyocap", 0]["pretrain"].best_checkpoint
        assert list(runs["poyocap", 0]) == ["pretrain", "finetune_movie", "finetune_dg"]

    def test_an_arm_without_stage_one_runs_at_its_place_not_after_every_other(self, monkeypatch):
        # Table 3's order: the from-scratch DG run (among the longest) used to queue behind
        # every later task's stage 1 and so ran alone at the end
        fake = _FakeStages()
        monkeypatch.setattr(arms, "_run_arm_stage", fake)
        tasks = [("from_scratch", 0), ("inhibitory_ssl", 0), ("reverse_ssl", 0)]
        run_arms(tasks, settings=CurriculumSettings(parallel_runs=1))
        assert fake.started()[:3] == [
            ("from_scratch", 0, "finetune_movie"),
            ("from_scratch", 0, "finetune_dg"),
            ("inhibitory_ssl", 0, "pretrain"),
        ]

    def test_a_pair_given_twice_runs_once(self, monkeypatch):
        fake = _FakeStages()
        monkeypatch.setattr(arms, "_run_arm_stage", fake)
        settings = CurriculumSettings(parallel_runs=2, dg=False)
        runs = run_arms([("poyocap", 0), ("poyocap", 0)], settings=settings)
        assert fake.started() == [("poyocap", 0, "pretrain"), ("poyocap", 0, "finetune_movie")]
        assert list(runs) == [("poyocap", 0)]

    def test_a_failure_starts_nothing_new_and_is_raised(self, monkeypatch):
        fake = _FakeStages(fail={("poyocap", 0, "pretrain")})
        monkeypatch.setattr(arms, "_run_arm_stage", fake)
        with pytest.raises(RuntimeError, match="poyocap/0/pretrain failed"):
            run_arms(
                [("poyocap", s) for s in range(3)], settings=CurriculumSettings(parallel_runs=1)
            )
        assert fake.started() == [("poyocap", 0, "pretrain")]

    def test_parallel_runs_share_the_cores_unless_the_environment_says(self, monkeypatch):
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr(os, "cpu_count", lambda: 8)
        assert CurriculumSettings(parallel_runs=2).run_environment()["OMP_NUM_THREADS"] == "4"
        assert CurriculumSettings(parallel_runs=1).run_environment() is None
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert CurriculumSettings(parallel_runs=2).run_environment() is None
