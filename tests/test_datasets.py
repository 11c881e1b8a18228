"""The curriculum's dataset configs: partitions, disjoint subjects, loading in torch_brain."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from torch_brain.data import Dataset

from poyocap_plugin.brainset import MOVIE_READOUT
from poyocap_plugin.neuron_sampler import NeuronSampler
from poyocap_plugin.workflow import trainer
from poyocap_plugin.workflow.cli import cli
from poyocap_plugin.workflow.datasets import MOVIE_METRIC_TARGET, write_dataset_configs
from tests.conftest import CURRICULUM_SESSIONS, write_calcium_session

PREDICTABLE = ["700000", "700001", "700002", "700003", "700004"]  # Sst x2, Vip, Pvalb, Ntsr1
UNPREDICTABLE = ["700005", "700006", "700007"]  # Cux2 x2, Rorb (no natural movie one)
NAMES = [
    "poyocap_pretrain",
    "poyocap_finetune_movie",
    "poyocap_finetune_dg",
    "from_scratch_finetune_movie",
    "from_scratch_finetune_dg",
    "inhibitory_ssl_pretrain",
    "inhibitory_ssl_finetune_movie",
    "inhibitory_ssl_finetune_dg",
    "reverse_ssl_pretrain",
    "reverse_ssl_finetune_movie",
    "reverse_ssl_finetune_dg",
    "mixed_ssl_pretrain",
    "mixed_ssl_finetune_movie",
    "mixed_ssl_finetune_dg",
]
SUBJECTS = {session: subject for session, _, subject, _ in CURRICULUM_SESSIONS}


@pytest.fixture(scope="module")
def written(curriculum_data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("curriculum_out")
    paths = write_dataset_configs(curriculum_data_root, out)
    return out, paths


def _groups(path: Path) -> list[tuple[list[str], str]]:
    config = yaml.safe_load(path.read_text())
    return [
        (g["selection"][0]["sessions"], g["config"]["neuron_selection"]["population"])
        for g in config
    ]


def test_one_config_per_variant_and_stage(written):
    out, paths = written
    assert [p.stem for p in paths] == NAMES
    assert all(p.parent == out / "dataset" for p in paths)


def test_partitions_of_every_variant(written):
    out, _ = written
    groups = {name: _groups(out / "dataset" / f"{name}.yaml") for name in NAMES}
    movie = ["700005", "700006"]  # 700007 shows no natural movie one
    assert groups["poyocap_pretrain"] == [(PREDICTABLE, "predictable")]
    assert groups["poyocap_finetune_movie"] == [(movie, "unpredictable")]
    assert groups["poyocap_finetune_dg"] == [(UNPREDICTABLE, "unpredictable")]
    assert groups["from_scratch_finetune_movie"] == [(PREDICTABLE + movie, "all")]
    assert groups["from_scratch_finetune_dg"] == [(PREDICTABLE + UNPREDICTABLE, "all")]
    assert groups["inhibitory_ssl_pretrain"] == [(PREDICTABLE[:4], "predictable")]
    assert groups["inhibitory_ssl_finetune_dg"] == groups["poyocap_finetune_dg"]
    assert groups["reverse_ssl_pretrain"] == [(UNPREDICTABLE, "unpredictable")]
    assert groups["reverse_ssl_finetune_movie"] == [(PREDICTABLE, "predictable")]
    # mixed: one of the two Sst subjects joins pretraining (lines with one subject stay)
    (pre_unpredictable, pre_predictable) = groups["mixed_ssl_pretrain"]
    assert pre_unpredictable == (UNPREDICTABLE, "unpredictable")
    assert pre_predictable[1] == "predictable" and len(pre_predictable[0]) == 1
    assert pre_predictable[0][0] in ("700000", "700001")
    finetune = groups["mixed_ssl_finetune_movie"]
    assert finetune == [(sorted(set(PREDICTABLE) - set(pre_predictable[0])), "predictable")]


def test_pretrain_and_finetune_subjects_are_disjoint(written):
    out, _ = written
    manifest = json.loads((out / "curriculum.json").read_text())["configs"]
    for variant in ("poyocap", "inhibitory_ssl", "reverse_ssl", "mixed_ssl"):
        pre = set(manifest[f"{variant}_pretrain"]["subjects"])
        fine = set(manifest[f"{variant}_finetune_movie"]["subjects"]) | set(
            manifest[f"{variant}_finetune_dg"]["subjects"]
        )
        assert pre and fine and not pre & fine, variant
        for name in (f"{variant}_pretrain", f"{variant}_finetune_dg"):
            sessions = [s for g in _groups(out / "dataset" / f"{name}.yaml") for s in g[0]]
            assert sorted(SUBJECTS[s] for s in sessions) == sorted(manifest[name]["subjects"])


def test_manifest_records_counts_settings_and_left_out_sessions(written):
    out, _ = written
    manifest = json.loads((out / "curriculum.json").read_text())
    assert manifest["settings"]["skewness_threshold"] == 3.51
    pretrain = manifest["configs"]["poyocap_pretrain"]
    # dense sessions: units 1-6 predictable, unit 0 not, unit 7 NaN
    assert pretrain["groups"][0]["sessions"] == {s: 6 for s in PREDICTABLE}
    assert pretrain["n_selected_neurons"] == 30
    assert manifest["configs"]["poyocap_finetune_movie"]["excluded"] == {
        "700007": "no natural_movie_one"
    }
    assert manifest["configs"]["from_scratch_finetune_dg"]["groups"][0]["sessions"]["700005"] == 7


def test_stage_contents_readouts_and_sampling(written):
    out, _ = written
    movie = yaml.safe_load((out / "dataset" / "poyocap_finetune_movie.yaml").read_text())[0]
    readout = movie["config"]["multitask_readout"]
    metric = {"_target_": MOVIE_METRIC_TARGET, "height": 128, "width": 256}  # the paper's
    assert readout == [{"readout_id": MOVIE_READOUT, "metrics": [{"metric": metric}]}]
    assert movie["config"]["sampling_intervals_modifier"] == (
        "from poyocap_plugin.frame_windows import frame_sampling_intervals\n"
        "sampling_intervals = frame_sampling_intervals(data, sampling_intervals, window_s=0.033)\n"
    )
    dg = yaml.safe_load((out / "dataset" / "poyocap_pretrain.yaml").read_text())[0]
    assert dg["config"]["multitask_readout"][0]["readout_id"] == "drifting_gratings_orientation"
    assert dg["config"]["neuron_selection"] == {
        "population": "predictable",
        "criterion": "statistics",
        "skewness_threshold": 3.51,
        "kurtosis_threshold": 22.62,
        "min_units": 1,
    }
    text = (out / "dataset" / "poyocap_pretrain.yaml").read_text()
    assert f"hydra.searchpath=[file://{out.resolve()}]" in text  # the header says how to use it


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_every_config_loads_in_torch_brain_dataset(written, curriculum_data_root, name, split):
    out, _ = written
    dataset = Dataset(
        str(curriculum_data_root), config=str(out / "dataset" / f"{name}.yaml"), split=split
    )
    intervals = dataset.get_sampling_intervals()  # runs each group's sampling modifier
    assert intervals and all(len(i) > 0 for i in intervals.values())
    for recording_id, interval in intervals.items():
        data = dataset._get_data_object(recording_id)
        if "movie" in name:  # one window per movie frame of the split, at its onset
            frames = data.natural_movie_one
            assert len(interval) == len(set(interval.start.round(6)))
            onsets = frames.start[np.searchsorted(frames.start, interval.start)]
            np.testing.assert_allclose(onsets - interval.start, 0.25 * 0.033, atol=1e-9)
        else:  # inside drifting-grating trials
            trials = data.drifting_gratings.coalesce(0.3)
            assert (interval & trials).start.tolist() == interval.start.tolist()
    NeuronSampler(min_units=1).check_dataset(dataset)


def test_pretraining_on_every_trial_trains_on_all_but_the_validation_trials(
    curriculum_data_root, tmp_path
):
    write_dataset_configs(curriculum_data_root, tmp_path, pretrain_every_trial=True)

    def seconds(name: str, split: str) -> dict[str, float]:
        """Seconds of drifting-grating trials each recording samples in a split, and of all."""
        config = str(tmp_path / "dataset" / f"{name}.yaml")
        dataset = Dataset(str(curriculum_data_root), config=config, split=split)
        out = {}
        for recording_id, interval in dataset.get_sampling_intervals().items():
            every = dataset._get_data_object(recording_id).drifting_gratings.coalesce(0.3)
            out[recording_id] = (
                np.sum(interval.end - interval.start),
                np.sum(every.end - every.start),
            )
        return out

    for name in ("poyocap_pretrain", "reverse_ssl_pretrain"):
        train, valid, test = (seconds(name, split) for split in ("train", "valid", "test"))
        assert test == valid
        for recording_id, (trained, every) in train.items():
            assert trained + valid[recording_id][0] == pytest.approx(every, rel=1e-9)
    # the stage-2 configs are the stock splits
    assert seconds("poyocap_finetune_dg", "test") != seconds("poyocap_finetune_dg", "valid")
    manifest = json.loads((tmp_path / "curriculum.json").read_text())
    assert manifest["settings"]["pretrain_every_trial"] is True


def test_too_few_selected_neurons_refuses_or_excludes(curriculum_data_root, tmp_path):
    with pytest.raises(ValueError, match=r"fewer than min_units=7 selected neurons") as error:
        write_dataset_configs(curriculum_data_root, tmp_path / "a", min_units=7)
    assert "poyocap_pretrain: session '700000': 6 of 8 neurons are predictable" in str(error.value)
    assert not (tmp_path / "a" / "dataset").exists()  # nothing written

    root = tmp_path / "data"
    write_calcium_session(root, session_id="1", subject_id="m1", natural_movie_repeats=3)
    kurtosis = [1.0, 2.0] + [float("nan")] * 10  # only two neurons with valid statistics
    write_calcium_session(
        root, session_id="2", subject_id="m2", kurtosis=kurtosis, natural_movie_repeats=3
    )
    paths = write_dataset_configs(
        root, tmp_path / "b", variants=["from_scratch"], min_units=3, on_too_few="exclude"
    )
    assert _groups(paths[1]) == [(["1"], "all")]
    manifest = json.loads((tmp_path / "b" / "curriculum.json").read_text())
    assert manifest["configs"]["from_scratch_finetune_dg"]["excluded"] == {
        "2": "2 of 12 neurons are all, min_units=3"
    }
    with pytest.raises(ValueError, match=r"from_scratch_finetune_movie would hold no session"):
        write_dataset_configs(
            root, tmp_path / "c", variants=["from_scratch"], min_units=13, on_too_few="exclude"
        )


def test_cli_writes_configs_and_reports_user_errors(curriculum_data_root, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["datasets", str(curriculum_data_root), "--out", str(tmp_path), "--variant", "poyocap"],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "dataset").iterdir()) == [
        "poyocap_finetune_dg.yaml",
        "poyocap_finetune_movie.yaml",
        "poyocap_pretrain.yaml",
    ]
    assert f"use with: hydra.searchpath=[file://{tmp_path.resolve()}]" in result.output
    result = runner.invoke(
        cli, ["datasets", str(curriculum_data_root), "--out", str(tmp_path), "--min-units", "9"]
    )
    assert result.exit_code == 1 and "Error: " in result.output
    assert "fewer than min_units=9" in result.output
    result = runner.invoke(
        cli,
        [
            "datasets",
            str(curriculum_data_root),
            "--out",
            str(tmp_path),
            "--predictable-line",
            "Sst",
        ],
    )
    assert result.exit_code == 1 and "unknown Cre lines ['Sst']" in result.output


# --- the one override: hydra.searchpath --------------------------------------------------


@pytest.fixture
def stock_configs():
    train_py = trainer.find_trainer()
    if train_py is None:
        pytest.fail("The stock trainer is not cached: run `poyocap trainer` first")
    return train_py.parent / "configs"


def test_hydra_searchpath_override_puts_the_configs_in_the_dataset_group(
    written, stock_configs, curriculum_data_root
):
    out, _ = written
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(stock_configs), version_base="1.3"):
            cfg = compose(
                config_name="poyocap_smoke",
                overrides=[
                    f"hydra.searchpath=[file://{out}]",
                    "dataset=poyocap_finetune_dg",
                    f"data_root={curriculum_data_root}",
                ],
            )
    finally:
        GlobalHydra.instance().clear()
    expected = yaml.safe_load((out / "dataset" / "poyocap_finetune_dg.yaml").read_text())
    assert OmegaConf.to_container(cfg.dataset) == expected
    dataset = Dataset(cfg.data_root, config=cfg.dataset, split="train")  # as train.py does
    assert sorted(dataset.recording_dict) == [
        f"allen_brain_observatory_calcium/{s}" for s in UNPREDICTABLE
    ]


@pytest.mark.slow
def test_stock_trainer_trains_on_a_generated_config_with_the_sampler(
    written, curriculum_data_root, tmp_path
):
    out, _ = written
    sampler = "{_target_:poyocap_plugin.neuron_sampler.NeuronSampler,population:predictable}"
    dropout = (
        "{_target_:torch_brain.transforms.UnitDropout,field:calcium_traces.df_over_f,"
        "min_units:2,mode_units:3,max_units:4}"
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "poyocap"),
            "train",
            "--config-name",
            "poyocap_smoke",
            f"hydra.searchpath=[file://{out}]",
            "dataset=poyocap_finetune_dg",
            f"data_root={curriculum_data_root}",
            f"log_dir={tmp_path / 'run'}",
            f"train_transforms=[{sampler},{dropout}]",
            f"eval_transforms=[{sampler}]",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Training on 3 sessions" in result.stdout + result.stderr


def test_movie_window_reaches_the_movie_config(curriculum_data_root, tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "datasets",
            str(curriculum_data_root),
            "--out",
            str(tmp_path),
            "--variant",
            "from_scratch",
            "--movie-window",
            "0.03",
        ],
    )
    assert result.exit_code == 0, result.output
    movie = yaml.safe_load((tmp_path / "dataset" / "from_scratch_finetune_movie.yaml").read_text())
    assert "window_s=0.03)" in movie[0]["config"]["sampling_intervals_modifier"]
    with pytest.raises(ValueError, match=r"movie_window_s must be a float > 0 \(s\), got 0"):
        write_dataset_configs(curriculum_data_root, tmp_path / "x", movie_window_s=0)


def test_the_movie_metric_gets_the_frame_size_given(curriculum_data_root, tmp_path):
    out = tmp_path / "small"
    write_dataset_configs(curriculum_data_root, out, frame_height=16, frame_width=32)
    movie = yaml.safe_load((out / "dataset" / "poyocap_finetune_movie.yaml").read_text())[0]
    metric = movie["config"]["multitask_readout"][0]["metrics"][0]["metric"]
    assert (metric["height"], metric["width"]) == (16, 32)
    manifest = json.loads((out / "curriculum.json").read_text())
    assert (manifest["settings"]["frame_height"], manifest["settings"]["frame_width"]) == (16, 32)
    with pytest.raises(ValueError, match=r"write_dataset_configs: width must be a positive"):
        write_dataset_configs(curriculum_data_root, tmp_path / "y", frame_width=0)
