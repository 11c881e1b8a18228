"""The ``poyocap`` CLI: option names, defaults and choices taken from the library, user errors,
and the commands that run in seconds end to end."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Literal, get_args

import click
import pytest
import tomllib
import torch
import yaml
from click.testing import CliRunner

from poyocap_plugin.brainset import (
    BRAINSET_ID,
    MOVIE_WINDOW_S,
    PAPER_KURTOSIS_THRESHOLD,
    PAPER_PREDICTABLE_CRE_LINES,
    PAPER_SKEWNESS_THRESHOLD,
)
from poyocap_plugin.frame_layout import PAPER_FRAME_HEIGHT_PX, PAPER_FRAME_WIDTH_PX
from poyocap_plugin.neuron_sampler import Criterion
from poyocap_plugin.workflow import arms, curriculum
from poyocap_plugin.workflow import cli as cli_package
from poyocap_plugin.workflow.analyses.fisher import run_fisher
from poyocap_plugin.workflow.analyses.landscape import Directions, run_landscape
from poyocap_plugin.workflow.analyses.scaling import (
    QUICK_SEEDS,
    QUICK_SIZES,
    model_sizes,
    quick_settings,
    run_scaling,
)
from poyocap_plugin.workflow.arms import stage_command
from poyocap_plugin.workflow.cli import analyses as cli_analyses
from poyocap_plugin.workflow.cli import cli, experiments, main
from poyocap_plugin.workflow.cli._library import (
    choices_of,
    default_of,
    field_default,
    parameter_choices,
    user_errors,
)
from poyocap_plugin.workflow.cli.data import ON_TOO_FEW
from poyocap_plugin.workflow.cli.results import RENDER_SPLITS
from poyocap_plugin.workflow.cli.simulation import DURATIONS
from poyocap_plugin.workflow.curriculum import run_curriculum
from poyocap_plugin.workflow.datasets import write_dataset_configs
from poyocap_plugin.workflow.partitions import TooFew
from poyocap_plugin.workflow.probe import Pooling, probe_checkpoint
from poyocap_plugin.workflow.runs import StageResult
from poyocap_plugin.workflow.settings import CurriculumSettings, Preset
from poyocap_plugin.workflow.simulate import (
    CRE_LINES,
    NM1_HEIGHT_PX,
    NM1_WIDTH_PX,
    SESSION_TYPES,
    SessionLayout,
    nwb_path,
    simulate_sessions,
)
from poyocap_plugin.workflow.simulate.session import Breakage
from poyocap_plugin.workflow.simulated_brainset import SIMULATIONS, SimulationSettings
from poyocap_plugin.workflow.stages import TABLE3_ARMS, VARIANTS
from poyocap_plugin.workflow.table3 import run_table3

STUDY_RUNS = CurriculumSettings.preset("study")

_SHARED = [
    "--data-root",
    "--simulate",
    "--sim-sessions",
    "--sim-cre-line",
    "--sim-rois",
    "--sim-dg-repeats",
    "--prepare-workers",
    "--preset",
    "--model",
    "--pretrain-epochs",
    "--finetune-epochs",
    "--dg-epochs",
    "--batch-size",
    "--pretrain-batch-size",
    "--pretrain-every-trial",
    "--pretrain-train-split",
    "--eval-batch-size",
    "--base-lr",
    "--gpus",
    "--nodes",
    "--frame-size",
    "--num-workers",
    "--eval-epochs",
    "--parallel-runs",
    "--perceptual",
    "--no-perceptual",
    "--perceptual-weights",
    "--override",
    "--launcher",
    "--min-units",
]
#: every command and its options, as users type them
OPTIONS = {
    "trainer": ["--sdist"],
    "train": ["--check", "--no-check"],
    "check": [],
    "summary": [],
    "predictability": ["--out", "--brainset-id"],
    "datasets": [
        "--out",
        "--variant",
        "--criterion",
        "--skewness-threshold",
        "--kurtosis-threshold",
        "--predictable-line",
        "--min-units",
        "--mixed-fraction",
        "--seed",
        "--movie-window",
        "--frame-size",
        "--pretrain-every-trial",
        "--pretrain-train-split",
        "--exclude-too-few",
        "--refuse-too-few",
        "--brainset-id",
    ],
    "simulate": [
        "--out-dir",
        "--n-sessions",
        "--cre-line",
        "--session-type",
        "--n-rois",
        "--duration",
        "--movie-size",
        "--template-seed",
        "--eye-tracking",
        "--no-eye-tracking",
        "--broken",
        "--first-experiment-id",
        "--seed",
    ],
    "render": ["--out", "--data-root", "--split", "--frames"],
    "probe": ["--out", "--data-root", "--seed", "--batch-size", "--device", "--pooling"],
    "curriculum": [*_SHARED, "--seed", "--seeds", "--dg", "--no-dg", "--stop-after"],
    "table3": [*_SHARED, "--seed", "--arm"],
    "analyze landscape": [
        *_SHARED,
        "--seed",
        "--directions",
        "--steps",
        "--windows",
        "--device",
        "--checkpoint",
    ],
    "analyze fisher": [*_SHARED, "--seed", "--windows", "--device", "--checkpoint"],
    "analyze scaling": [*_SHARED, "--size", "--seed", "--quick", "--dg", "--no-dg"],
}


def invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, [str(a) for a in args], terminal_width=1000)  # no wrapping


def command_of(path: str) -> click.Command:
    """The command at ``path``, e.g. ``"table3"`` or ``"analyze fisher"``."""
    command = cli
    for name in path.split():
        command = command.commands[name]
    return command


def param(command: str, name: str) -> click.Parameter:
    """The click parameter ``name`` (its Python name) of ``command``."""
    (found,) = [p for p in command_of(command).params if p.name == name]
    return found


def choices(command: str, name: str) -> tuple[str, ...]:
    return tuple(param(command, name).type.choices)


class TestHelp:
    def test_the_group_lists_every_command(self):
        result = invoke("--help")
        assert result.exit_code == 0, result.output
        top_level = {path.split()[0] for path in OPTIONS}
        assert sorted(cli.commands) == sorted(top_level)
        for command in top_level:
            assert f"  {command} " in result.output
        group = invoke("analyze", "--help").output
        assert sorted(command_of("analyze").commands) == ["fisher", "landscape", "scaling"]
        assert all(f"  {name} " in group for name in ("fisher", "landscape", "scaling"))

    @pytest.mark.parametrize("command", sorted(OPTIONS))
    def test_help_lists_the_options_and_examples(self, command):
        result = invoke(*command.split(), "--help")
        assert result.exit_code == 0, result.output
        for option in OPTIONS[command]:
            assert option in result.output, f"{command} --help lacks {option}"
        assert "Examples:" in result.output and f"poyocap {command}" in result.output
        declared = [o for p in command_of(command).params for o in (*p.opts, *p.secondary_opts)]
        assert sorted(o for o in declared if o.startswith("--")) == sorted(OPTIONS[command])

    @pytest.mark.parametrize("command", sorted(OPTIONS))
    def test_every_option_has_help(self, command):
        for option in command_of(command).params:
            if isinstance(option, click.Option):
                assert option.help, f"{command} {option.opts} has no help"

    def test_main_is_the_console_script(self):
        pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
        module, _, name = pyproject["project"]["scripts"]["poyocap"].partition(":")
        assert module == cli_package.__name__ and getattr(cli_package, name) is main

    def test_each_cli_module_stays_under_250_lines(self):
        modules = sorted(Path(cli_package.__file__).parent.glob("*.py"))
        assert len(modules) > 2
        for module in modules:
            assert len(module.read_text().splitlines()) <= 250, module.name


class TestDefaults:
    def test_datasets_defaults_are_write_dataset_configs_defaults(self):
        expected = {
            "variants": tuple(VARIANTS),
            "criterion": "statistics",
            "skewness_threshold": PAPER_SKEWNESS_THRESHOLD,
            "kurtosis_threshold": PAPER_KURTOSIS_THRESHOLD,
            "predictable_lines": PAPER_PREDICTABLE_CRE_LINES,
            "movie_window_s": MOVIE_WINDOW_S,
            "brainset_id": BRAINSET_ID,
            "min_units": default_of(write_dataset_configs, "min_units"),
            "mixed_fraction": default_of(write_dataset_configs, "mixed_fraction"),
            "seed": default_of(write_dataset_configs, "seed"),
            "frame_size": (PAPER_FRAME_HEIGHT_PX, PAPER_FRAME_WIDTH_PX),
        }
        for name, value in expected.items():
            assert param("datasets", name).default == value, name
        assert default_of(write_dataset_configs, "criterion") == "statistics"
        refuse = param("datasets", "exclude_too_few").default
        assert ON_TOO_FEW[refuse] == default_of(write_dataset_configs, "on_too_few") == "error"

    def test_datasets_help_shows_the_paper_thresholds(self):
        result = invoke("datasets", "--help")
        assert f"[default: {PAPER_SKEWNESS_THRESHOLD}]" in result.output
        assert f"[default: {PAPER_KURTOSIS_THRESHOLD}]" in result.output
        assert f"[default: {MOVIE_WINDOW_S}]" in result.output
        assert f"[default: {', '.join(PAPER_PREDICTABLE_CRE_LINES)}]" in result.output

    def test_predictability_brainset_is_the_brainset_id(self):
        assert param("predictability", "brainset_id").default == BRAINSET_ID

    def test_simulate_defaults_are_simulate_sessions_defaults(self):
        for name in ("n_sessions", "n_rois", "template_seed", "eye_tracking", "seed"):
            assert param("simulate", name).default == default_of(simulate_sessions, name), name
        assert param("simulate", "cre_lines").default == CRE_LINES
        assert param("simulate", "session_types").default == ("three_session_A",)
        assert param("simulate", "movie_size").default == (NM1_HEIGHT_PX, NM1_WIDTH_PX)
        assert param("simulate", "first_experiment_id").default == 900_000_001
        assert param("simulate", "broken").default == "none"
        assert DURATIONS[param("simulate", "duration").default]() == SessionLayout()

    @pytest.mark.parametrize("command", ["curriculum", "table3"])
    def test_simulation_options_default_to_the_preset_s_set(self, command):
        for name in ("n_sessions", "n_rois", "dg_repeats", "prepare_workers"):
            assert param(command, name).default is None, name
        assert param(command, "cre_lines").default == ()

    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            ([], (SIMULATIONS["cpu"], CurriculumSettings())),
            (["--preset", "study"], (SIMULATIONS["study"], STUDY_RUNS)),
            (
                ["--preset", "study", "--sim-rois", "7", "--sim-cre-line", "Sst-IRES-Cre"],
                (
                    replace(SIMULATIONS["study"], n_rois=7, cre_lines=("Sst-IRES-Cre",)),
                    STUDY_RUNS,
                ),
            ),
        ],
    )
    def test_table3_simulates_the_preset_s_set_with_the_options_changes(
        self, tmp_path, monkeypatch, args, expected
    ):
        seen = {}

        def fake_run_table3(out_dir, *, simulation, settings, **kwargs):
            seen["simulation"] = simulation
            seen["settings"] = settings
            raise SystemExit(0)

        monkeypatch.setattr(experiments, "run_table3", fake_run_table3)
        invoke("table3", tmp_path / "out", "--simulate", *args)
        assert (seen["simulation"], seen["settings"]) == expected

    @pytest.mark.parametrize("command", ["curriculum", "table3"])
    def test_run_options_are_curriculum_settings_defaults(self, command):
        settings = CurriculumSettings()
        assert CurriculumSettings.preset(param(command, "preset").default) == settings
        assert param(command, "overrides").default == settings.overrides
        assert param(command, "launcher").default == " ".join(settings.launcher)
        for name in ("model", "pretrain_epochs", "batch_size", "base_lr", "frame_size"):
            assert param(command, name).default is None, name  # None: the preset's value
        assert param(command, "min_units").default == default_of(run_table3, "min_units")
        assert param(command, "min_units").default == default_of(run_curriculum, "min_units")

    def test_curriculum_and_table3_defaults_are_their_functions(self):
        assert param("curriculum", "seed").default == default_of(run_curriculum, "seed") == 42
        assert param("curriculum", "n_seeds").default == default_of(run_curriculum, "n_seeds") == 1
        assert param("curriculum", "stop_after").default == "finetune"
        assert param("curriculum", "dg").default is CurriculumSettings().dg
        assert param("table3", "seeds").default == default_of(run_table3, "seeds") == (0, 1, 2)
        assert param("table3", "arms").default == TABLE3_ARMS

    def test_help_shows_the_settings_defaults(self):
        output = invoke("curriculum", "--help").output
        words = " ".join(output.split())  # help text wraps
        assert f"cpu: {', '.join(SIMULATIONS['cpu'].cre_lines)};" in words
        assert f"study: {SIMULATIONS['study'].n_sessions}, paper:" in words
        height, width, _ = CurriculumSettings().frame_size
        assert f"cpu ({CurriculumSettings().model}, {height}x{width} frames" in output

    def test_render_and_probe_defaults(self):
        assert param("render", "split").default == "test"
        assert param("render", "frames").default == 8
        assert param("probe", "batch_size").default == 32
        assert param("probe", "device").default == "cpu"
        assert param("probe", "seed").default is None
        assert param("probe", "pooling").default == default_of(probe_checkpoint, "pooling")
        assert param("probe", "pooling").default == "mean"


class TestChoices:
    def test_variants_and_arms_come_from_the_stage_table(self):
        assert choices("datasets", "variants") == tuple(VARIANTS)
        assert choices("table3", "arms") == TABLE3_ARMS
        assert "poyocap_no_pretraining" not in choices("table3", "arms")

    def test_choices_are_the_literals(self):
        assert choices("datasets", "criterion") == get_args(Criterion)
        assert choices("curriculum", "preset") == get_args(Preset)
        assert choices("table3", "preset") == get_args(Preset)
        assert choices("simulate", "broken") == ("none", *get_args(Breakage))
        assert choices("simulate", "session_types") == SESSION_TYPES
        assert choices("curriculum", "stop_after") == ("pretrain", "finetune")
        assert set(ON_TOO_FEW.values()) == set(get_args(TooFew))
        assert choices("render", "split") == RENDER_SPLITS == ("train", "valid", "test")
        assert choices("probe", "pooling") == get_args(Pooling) == ("mean", "latents")
        assert set(choices("simulate", "duration")) == set(DURATIONS) == {"short", "full"}

    @pytest.mark.parametrize(
        ("args", "value"),
        [
            (["datasets", "root", "--out", "out", "--criterion", "stats"], "stats"),
            (["datasets", "root", "--out", "out", "--variant", "poyocap_no_pretraining"], None),
            (["simulate", "--broken", "corrupt"], "corrupt"),
            (["simulate", "--session-type", "three_session_Z"], "three_session_Z"),
            (["simulate", "--duration", "medium"], "medium"),
            (["curriculum", "out", "--preset", "gpu"], "gpu"),
            (["curriculum", "out", "--stop-after", "finetune_dg"], "finetune_dg"),
            (["table3", "out", "--arm", "poyocap_no_pretraining"], None),
            (["render", "model.ckpt", "--split", "validation"], "validation"),
            (["probe", "model.ckpt", "--pooling", "max"], "max"),
        ],
    )
    def test_a_bad_choice_is_a_usage_error_naming_the_value(self, args, value):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert f"'{value or args[-1]}' is not one of" in result.output
        assert "Traceback" not in result.output


class TestUserErrors:
    def test_curriculum_needs_one_data_source(self, tmp_path):
        for extra in ([], ["--simulate", "--data-root", tmp_path]):
            result = invoke("curriculum", tmp_path / "out", *extra)
            assert result.exit_code == 1, result.output
            assert "Give either --data-root DIR (a processed brainset) or --simulate" in (
                result.output
            )
        assert not (tmp_path / "out").exists()

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            (["--batch-size", "0"], "CurriculumSettings.batch_size must be an int >= 1, got 0"),
            (["--override", "gpus"], "override 'gpus' is not a Hydra KEY=VALUE override"),
        ],
    )
    def test_invalid_settings_are_named_before_anything_runs(self, tmp_path, extra, message):
        result = invoke("table3", tmp_path / "out", "--data-root", tmp_path, *extra)
        assert result.exit_code == 1 and f"Error: {message}" in result.output
        assert not (tmp_path / "out").exists()

    @pytest.mark.parametrize("value", ["0", "-2"])
    def test_fewer_than_one_seed_is_refused(self, tmp_path, value):
        result = invoke("curriculum", tmp_path / "out", "--data-root", tmp_path, "--seeds", value)
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert f"Invalid value for '--seeds': {value} is not in the range x>=1" in result.output
        assert not (tmp_path / "out").exists()

    def test_invalid_simulation_is_named(self, tmp_path):
        result = invoke("curriculum", tmp_path / "out", "--simulate", "--sim-sessions", "1")
        assert result.exit_code == 1
        assert "SimulationSettings.n_sessions must be >= 2, got 1" in result.output

    def test_missing_brainset_names_the_folder(self, tmp_path):
        result = invoke("predictability", tmp_path, "--out", tmp_path / "out")
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert f"No brainset folder {tmp_path / BRAINSET_ID}" in result.output

    def test_missing_run_names_the_folder(self, tmp_path):
        result = invoke("summary", tmp_path)
        assert result.exit_code == 1
        assert "Error: No run under" in result.output and "lightning_logs" in result.output

    def test_a_key_error_is_shown_without_quotes(self):
        with pytest.raises(click.ClickException) as caught:
            with user_errors(KeyError):
                raise KeyError("units.csv lacks the column 'skewness'; rerun brainsets prepare")
        assert caught.value.message.startswith("units.csv lacks")

    def test_other_errors_pass_through(self):
        with pytest.raises(TypeError, match="not a user error"):
            with user_errors(ValueError):
                raise TypeError("not a user error")


class TestLibraryLookups:
    def test_default_of_names_a_parameter_without_default(self):
        assert default_of(write_dataset_configs, "seed") == 0
        with pytest.raises(ValueError, match=r"write_dataset_configs has no parameter 'data_root'"):
            default_of(write_dataset_configs, "data_root")

    def test_field_default_reads_the_dataclass(self):
        assert field_default(SimulationSettings, "n_rois") == SimulationSettings().n_rois
        names = {f.name for f in fields(CurriculumSettings)}
        defaults = {name: field_default(CurriculumSettings, name) for name in names}
        assert defaults == vars(CurriculumSettings())
        with pytest.raises(ValueError, match="no field 'epochs'"):
            field_default(CurriculumSettings, "epochs")

    def test_choices_of_needs_a_literal_of_strings(self):
        assert choices_of(Literal["a", "b"]) == ("a", "b")
        assert parameter_choices(write_dataset_configs, "on_too_few") == get_args(TooFew)
        with pytest.raises(ValueError, match="expected a Literal of strings"):
            choices_of(int)


class TestEndToEnd:
    def test_curriculum_runs_every_arm_for_every_seed(self, tmp_path, monkeypatch):
        """--seeds 2 --seed 5: every stage of both arms with seed=5 and seed=6, each in its
        own folder, and one report over both seeds (training and report faked)."""
        commands, reports = {}, []

        def fake_stage(name, command, log_dir, *, data_root, dataset_config, env):
            commands[name] = command
            metrics = {f"{BRAINSET_ID}/1/natural_movie_one_image/MovieSSIM()/test": 0.25}
            best = log_dir / "best.ckpt"
            return StageResult(name, tuple(command), best, best, best, metrics, 0.0)

        def fake_report(report_dir, **kwargs):
            reports.append(kwargs)
            return report_dir / "report.md"

        monkeypatch.setattr(curriculum, "write_curriculum_configs", lambda _, out, **k: out)
        monkeypatch.setattr(arms, "_run_stage", fake_stage)
        monkeypatch.setattr(curriculum, "write_curriculum_report", fake_report)
        (tmp_path / "data" / BRAINSET_ID).mkdir(parents=True)
        (tmp_path / "data" / BRAINSET_ID / "1.h5").write_bytes(b"")
        out = (tmp_path / "out").resolve()
        args = ["--data-root", tmp_path / "data", "--seed", "5", "--seeds", "2"]
        result = invoke("curriculum", out, *args)
        assert result.exit_code == 0, result.output
        stages = {
            "poyocap": ("pretrain", "finetune_movie", "finetune_dg"),
            "poyocap_no_pretraining": ("finetune_movie", "finetune_dg"),
        }
        expected = [f"{arm}/seed_{s}/{st}" for s in (5, 6) for arm in stages for st in stages[arm]]
        # two runs at a time: every run once, each arm's stage 1 before its stage 2
        assert sorted(commands) == sorted(expected)
        order = list(commands)
        for s in (5, 6):
            pretrain = order.index(f"poyocap/seed_{s}/pretrain")
            assert all(
                order.index(f"poyocap/seed_{s}/{st}") > pretrain for st in stages["poyocap"][1:]
            )
        for name, command in commands.items():
            arm, seed, stage = name.split("/")
            assert f"seed={seed.removeprefix('seed_')}" in command
            assert f"log_dir={out / 'runs' / name}" in command
            assert f"{name}: best checkpoint {out / 'runs' / name / 'best.ckpt'}" in result.output
        for seed in (5, 6):
            assert f"poyocap/seed_{seed}: movie_ssim 0.250" in result.output
        (report,) = reports
        assert list(report["cap"]) == list(report["baseline"]) == [5, 6]
        assert f"report: {out / 'report' / 'report.md'}" in result.output

    def test_simulate_writes_tiny_sessions(self, tmp_path):
        result = invoke(
            "simulate",
            "--out-dir",
            tmp_path,
            "--n-sessions",
            "2",
            "--cre-line",
            "Sst-IRES-Cre",
            "--n-rois",
            "3",
            "--movie-size",
            "38",
            "76",
            "--no-eye-tracking",
            "--first-experiment-id",
            "7",
        )
        assert result.exit_code == 0, result.output
        written = [nwb_path(tmp_path, 7), nwb_path(tmp_path, 8)]
        assert all(path.is_file() for path in written)
        assert result.output.splitlines()[:2] == [f"wrote {path}" for path in written]
        assert f"prepare with: brainsets prepare {BRAINSET_ID} --raw-dir {tmp_path}" in (
            result.output
        )

    def test_datasets_passes_the_library_defaults(self, curriculum_data_root, tmp_path):
        result = invoke("datasets", curriculum_data_root, "--out", tmp_path)
        assert result.exit_code == 0, result.output
        written = {p.stem for p in (tmp_path / "dataset").iterdir()}
        assert {f"{variant}_finetune_dg" for variant in VARIANTS} <= written
        settings = json.loads((tmp_path / "curriculum.json").read_text())["settings"]
        assert settings["skewness_threshold"] == PAPER_SKEWNESS_THRESHOLD
        assert settings["kurtosis_threshold"] == PAPER_KURTOSIS_THRESHOLD
        assert settings["movie_window_s"] == MOVIE_WINDOW_S
        assert settings["predictable_cre_lines"] == list(PAPER_PREDICTABLE_CRE_LINES)
        assert settings["criterion"] == default_of(write_dataset_configs, "criterion")
        assert settings["on_too_few"] == default_of(write_dataset_configs, "on_too_few")

    def test_datasets_passes_the_options(self, curriculum_data_root, tmp_path):
        result = invoke(
            "datasets",
            curriculum_data_root,
            "--out",
            tmp_path,
            "--variant",
            "poyocap",
            "--criterion",
            "cre_line",
            "--exclude-too-few",
            "--min-units",
            "5",
            "--frame-size",
            "16",
            "32",
        )
        assert result.exit_code == 0, result.output
        movie = yaml.safe_load((tmp_path / "dataset" / "poyocap_finetune_movie.yaml").read_text())
        (metric,) = movie[0]["config"]["multitask_readout"][0]["metrics"]
        assert (metric["metric"]["height"], metric["metric"]["width"]) == (16, 32)
        record = json.loads((tmp_path / "curriculum.json").read_text())
        assert record["settings"]["criterion"] == "cre_line"
        assert record["settings"]["on_too_few"] == "exclude"
        assert record["settings"]["min_units"] == 5
        assert sorted(record["configs"]) == [
            "poyocap_finetune_dg",
            "poyocap_finetune_movie",
            "poyocap_pretrain",
        ]

    def test_summary_prints_the_newest_run(self, tmp_path):
        run = tmp_path / "lightning_logs" / "version_3"
        (run / "checkpoints").mkdir(parents=True)
        for name in ("epoch=1-step=10.ckpt", "epoch_epoch=01.ckpt", "last.ckpt"):
            (run / "checkpoints" / name).write_bytes(b"")
        (run / "metrics.csv").write_text("epoch,step,average_test_metric\n0,10,0.25\n")
        result = invoke("summary", tmp_path)
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[0] == f"best checkpoint: {run / 'checkpoints' / 'epoch=1-step=10.ckpt'}"
        assert lines[2] == f"metrics:         {run / 'metrics.csv'}"
        assert lines[3] == "  average_test_metric = 0.2500"


class TestAnalyze:
    def test_defaults_are_the_library_functions(self):
        for name in ("seed", "directions", "steps", "max_windows", "device"):
            assert param("analyze landscape", name).default == default_of(run_landscape, name)
        for name in ("seed", "max_windows", "device"):
            assert param("analyze fisher", name).default == default_of(run_fisher, name)
        for name in ("sizes", "seeds", "dg"):
            assert param("analyze scaling", name).default == default_of(run_scaling, name)
        assert choices("analyze landscape", "directions") == get_args(Directions)
        assert set(choices("analyze scaling", "sizes")) == set(model_sizes())

    def test_quick_runs_the_quick_sweep(self, tmp_path, monkeypatch):
        seen = {}

        def fake_run_scaling(out_dir, *, settings, sizes, seeds, dg, **kwargs):
            seen.update(settings=settings, sizes=sizes, seeds=seeds, dg=dg)
            raise SystemExit(0)

        monkeypatch.setattr(cli_analyses, "run_scaling", fake_run_scaling)
        invoke("analyze", "scaling", tmp_path / "out", "--simulate", "--quick")
        assert (seen["sizes"], seen["seeds"], seen["dg"]) == (QUICK_SIZES, QUICK_SEEDS, False)
        invoke("analyze", "scaling", tmp_path / "out", "--simulate", "--quick", "--dg")
        assert seen["dg"] is True
        assert seen["settings"] == quick_settings(CurriculumSettings())

    def test_quick_with_sizes_is_a_usage_error(self, tmp_path):
        result = invoke(
            "analyze", "scaling", tmp_path / "out", "--simulate", "--quick", "--size", "capoyo_48k"
        )
        assert result.exit_code == 2 and "--quick sets the sizes and seeds" in result.output
        assert not (tmp_path / "out").exists()

    def test_landscape_passes_its_options(self, tmp_path, monkeypatch):
        seen = {}

        def fake_run_landscape(out_dir, **kwargs):
            seen.update(kwargs)
            raise SystemExit(0)

        monkeypatch.setattr(cli_analyses, "run_landscape", fake_run_landscape)
        invoke(
            "analyze", "landscape", tmp_path / "out", "--data-root", tmp_path,
            "--directions", "random", "--steps", "7", "--windows", "9", "--seed", "4",
        )  # fmt: skip
        assert (seen["directions"], seen["steps"], seen["max_windows"], seen["seed"]) == (
            "random",
            7,
            9,
            4,
        )
        assert seen["data_root"] == tmp_path and seen["simulation"] is None

    def test_fisher_passes_its_options(self, tmp_path, monkeypatch):
        seen = {}

        def fake_run_fisher(out_dir, **kwargs):
            seen.update(kwargs)
            raise SystemExit(0)

        monkeypatch.setattr(cli_analyses, "run_fisher", fake_run_fisher)
        invoke(
            "analyze", "fisher", tmp_path / "out", "--data-root", tmp_path,
            "--windows", "5", "--seed", "2", "--device", "cpu",
        )  # fmt: skip
        assert (seen["max_windows"], seen["seed"], seen["device"]) == (5, 2, "cpu")
        assert seen["checkpoints"] is None  # none given: train stage 1

    @pytest.mark.parametrize("command", ["landscape", "fisher"])
    def test_named_checkpoints_reach_the_analysis(self, tmp_path, monkeypatch, command):
        seen = {}

        def fake_run(out_dir, **kwargs):
            seen.update(kwargs)
            raise SystemExit(0)

        monkeypatch.setattr(cli_analyses, f"run_{command}", fake_run)
        given = ("--checkpoint", "sst=a/last.ckpt", "--checkpoint", "cux2=b=c.ckpt")
        invoke("analyze", command, tmp_path / "out", "--data-root", tmp_path, *given)
        assert seen["checkpoints"] == {"sst": Path("a/last.ckpt"), "cux2": Path("b=c.ckpt")}
        for bad in ("last.ckpt", "=last.ckpt", "sst=", "sst=a --checkpoint sst=b"):
            result = invoke(
                "analyze", command, tmp_path / "out", "--data-root", tmp_path,
                *[part for item in bad.split(" --checkpoint ") for part in ("--checkpoint", item)],
            )  # fmt: skip
            assert result.exit_code == 2 and "give NAME=PATH" in result.output, bad

    @pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
    def test_cuda_without_cuda_is_named_before_any_run(self, tmp_path):
        result = invoke("analyze", "landscape", tmp_path / "out", "--simulate", "--device", "cuda")
        assert result.exit_code == 1 and "CUDA is not available here" in result.output
        assert not (tmp_path / "out").exists()


class TestPerceptual:
    def test_the_paper_preset_without_weights_names_the_options(self, tmp_path):
        result = invoke(
            "curriculum", tmp_path / "out", "--data-root", tmp_path, "--preset", "paper"
        )
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "--perceptual-weights PATH" in result.output and "--no-perceptual" in result.output
        assert not (tmp_path / "out").exists()

    def test_weights_turn_the_term_on_and_reach_the_movie_runs(self, tmp_path, monkeypatch):
        weights = tmp_path / "alexnet.pth"
        weights.write_bytes(b"x")
        seen = {}

        def fake_run_curriculum(out_dir, *, settings, **kwargs):
            seen["settings"] = settings
            raise SystemExit(0)

        monkeypatch.setattr(experiments, "run_curriculum", fake_run_curriculum)
        invoke(
            "curriculum", tmp_path / "out", "--data-root", tmp_path, "--perceptual-weights", weights
        )
        settings = seen["settings"]
        assert settings.perceptual and settings.perceptual_weights == str(weights)
        command = stage_command(
            "finetune_movie",
            variant="poyocap",
            data_root=tmp_path,
            config_dir=tmp_path,
            log_dir=tmp_path,
            settings=settings,
            seed=0,
            trunk=None,
        )
        assert f"model.frame_loss.perceptual_weights_path='{weights.resolve()}'" in command
        dg = stage_command(
            "finetune_dg",
            variant="poyocap",
            data_root=tmp_path,
            config_dir=tmp_path,
            log_dir=tmp_path,
            settings=settings,
            seed=0,
            trunk=None,
        )
        assert not any("perceptual" in part for part in dg)
