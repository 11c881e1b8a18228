"""The linear probe: the logistic helper on known answers, and a checkpoint end to end."""

import json

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from temporaldata import Data
from torch_brain.data import Dataset, collate

from poyocap_plugin.workflow.checkpoints import load_train_checkpoint
from poyocap_plugin.workflow.cli import cli
from poyocap_plugin.workflow.probe import (
    POOLINGS,
    PROBE_FEATURES,
    linear_probe_accuracy,
    probe_checkpoint,
)
from poyocap_plugin.workflow.probe.features import (
    _ENCODE_INPUTS,
    _probe_trials,
    load_trunks,
    split_features,
)
from poyocap_plugin.workflow.probe.pooling import pool_latents

from conftest import PROBE_SEED as SEED
from conftest import stage1_run_config as run_config
from conftest import write_stage1_checkpoint as write_checkpoint

BRAINSET = "allen_brain_observatory_calcium"


def blobs(rng, n, *, separable):
    labels = rng.integers(0, 8, n)
    if separable:  # one well-separated cluster per class
        features = 10.0 * np.eye(8)[labels] + 0.1 * rng.standard_normal((n, 8))
    else:
        features = rng.standard_normal((n, 8))
    return features, labels


def test_separable_features_are_classified_perfectly():
    rng = np.random.default_rng(0)
    train, test = blobs(rng, 200, separable=True), blobs(rng, 100, separable=True)
    assert linear_probe_accuracy(*train, *test) == 1.0


def test_features_independent_of_the_labels_score_near_chance():
    rng = np.random.default_rng(0)
    train, test = blobs(rng, 400, separable=False), blobs(rng, 4000, separable=False)
    assert abs(linear_probe_accuracy(*train, *test) - 1 / 8) < 0.03


def test_helper_refuses_one_class_and_mismatched_shapes():
    features = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"at least two classes.*\[2\]"):
        linear_probe_accuracy(features, np.full(4, 2), features, np.arange(4))
    with pytest.raises(ValueError, match=r"train_features must be \(N, F\).*\(4, 3\) and \(3,\)"):
        linear_probe_accuracy(features, np.arange(3), features, np.arange(4))
    with pytest.raises(ValueError, match="differ in width: 3 vs 2"):
        linear_probe_accuracy(features, np.arange(4), np.zeros((4, 2)), np.arange(4))


def read_session(data_root, session_id):
    with h5py.File(data_root / BRAINSET / f"{session_id}.h5", "r") as f:
        data = Data.from_hdf5(f)
        return (
            int(np.sum(data.units.is_predictable)),
            len(data.train_domain),
            len(data.test_domain),
        )


def test_probe_of_a_checkpoint_reports_every_recording_and_baseline(tmp_path, tiny_data_root):
    checkpoint = write_checkpoint(tmp_path / "stage1.ckpt", tiny_data_root, trained=True)
    result = probe_checkpoint(checkpoint, batch_size=5)

    assert result.seed == SEED and result.window_s == 1.0 and result.n_classes == 8
    assert set(result.pooled) == {"pretrained", "random_init"}
    recordings = [f"{BRAINSET}/900000", f"{BRAINSET}/900001"]
    assert list(result.per_recording) == recordings
    for recording, probe in result.per_recording.items():
        n_predictable, n_train, n_test = read_session(tiny_data_root, recording.split("/")[1])
        # one window per trial of the split; the neurons are those the neuron sampler keeps
        assert (probe.n_units, probe.n_train, probe.n_test) == (n_predictable, n_train, n_test)
        assert set(probe.accuracy) == set(PROBE_FEATURES)
        assert all(0.0 <= a <= 1.0 for a in probe.accuracy.values())
    assert result.n_test == sum(read_session(tiny_data_root, r[-6:])[2] for r in recordings)
    assert all(0.0 <= a <= 1.0 for a in result.pooled.values())
    overall = result.per_recording_overall
    assert overall["raw_df_over_f"] == pytest.approx(
        sum(p.accuracy["raw_df_over_f"] * p.n_test for p in result.per_recording.values())
        / result.n_test
    )

    record = json.loads(result.to_json())
    assert record["chance"] == 0.125 and record["n_test_trials"] == result.n_test
    assert record["pooled_pretrained_minus_random_init"] == pytest.approx(
        result.pooled["pretrained"] - result.pooled["random_init"]
    )
    assert record["pooling"] == result.pooling == "mean"
    assert record["features"].startswith("trunk features: mean over the processed latents")
    assert result.summary().endswith("; trunk features: pooling='mean'")
    assert set(record["per_recording"][recordings[0]]) == {
        "n_units",
        "n_train_trials",
        "n_test_trials",
        *PROBE_FEATURES,
    }


def test_random_init_with_the_runs_seed_is_the_untrained_checkpoint(tmp_path, tiny_data_root):
    """An untrained checkpoint and the random-init trunk drawn with the run's seed are the
    same weights with the same vocabularies, so every accuracy agrees exactly."""
    checkpoint = write_checkpoint(tmp_path / "init.ckpt", tiny_data_root, trained=False)
    result = probe_checkpoint(checkpoint)
    assert result.pooled["pretrained"] == result.pooled["random_init"]
    for probe in result.per_recording.values():
        assert probe.accuracy["pretrained"] == probe.accuracy["random_init"]

    features = {}
    for seed in (SEED, SEED + 1):
        run = load_train_checkpoint(checkpoint)
        torch.manual_seed(seed)
        features[seed] = run.instantiate_model().latent_emb.weight
    assert not torch.equal(features[SEED], features[SEED + 1])


def test_cli_writes_probe_json(tmp_path, tiny_data_root):
    checkpoint = write_checkpoint(tmp_path / "stage1.ckpt", tiny_data_root, trained=True)
    out = tmp_path / "out"
    args = ["probe", str(checkpoint), "--out", str(out), "--seed", "7", "--pooling", "latents"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("probe: pretrained ")
    assert "chance 0.125 (pooled test accuracy, 12 test trials in 2 recordings)" in result.output
    assert "; trunk features: pooling='latents'\n" in result.output
    record = json.loads((out / "probe.json").read_text())
    assert record["seed"] == 7 and record["checkpoint"] == str(checkpoint)
    assert record["pooling"] == "latents"
    assert record["features"].startswith(
        "trunk features: every processed latent (CAPOYO.encode) in order, concatenated"
    )
    assert set(record["pooled"]) == {"pretrained", "random_init"}
    assert set(record["per_recording_overall"]) == set(PROBE_FEATURES)


def test_pool_latents_averages_or_concatenates_in_order():
    latents = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)  # (B, N_latent, D)
    mean = pool_latents(latents, "mean")
    assert mean.shape == (2, 4)
    assert mean[0].tolist() == [4.0, 5.0, 6.0, 7.0] and mean[1].tolist() == [16.0, 17.0, 18.0, 19.0]
    concatenated = pool_latents(latents, "latents")
    assert concatenated.shape == (2, 12)
    assert concatenated[0].tolist() == list(range(12))  # latent 0's D features, then latent 1's
    assert concatenated[1].tolist() == list(range(12, 24))
    with pytest.raises(ValueError, match=r"latents must be \(B, N_latent, D\), got shape \(3, 4\)"):
        pool_latents(latents[0], "mean")


def test_latents_pooling_keeps_every_latent_of_the_window(tmp_path, tiny_data_root):
    """With ``"latents"`` a trial's trunk feature is its window's encode output flattened,
    ``N_latent * D`` wide; with ``"mean"`` it is the mean of those latents, ``D`` wide."""
    checkpoint = write_checkpoint(tmp_path / "stage1.ckpt", tiny_data_root, trained=True)
    run = load_train_checkpoint(checkpoint)
    device = torch.device("cpu")
    models = load_trunks(run, seed=SEED, device=device)
    dataset = Dataset(root=str(tiny_data_root), config=run.config.dataset, split="train")
    dataset.disable_data_leakage_check()
    intervals = dataset.get_sampling_intervals()
    recording = sorted(intervals)[0]
    transforms = run.eval_transforms()
    features = {
        pooling: split_features(
            dataset,
            recording,
            intervals[recording],
            models,
            transforms=transforms,
            window_s=1.0,
            batch_size=5,
            device=device,
            pooling=pooling,
        )
        for pooling in POOLINGS
    }
    mean, latents = features["mean"], features["latents"]
    n_trials = len(mean.labels)
    assert n_trials > 5  # more than one batch
    n_latent, dim = 8, 16  # (1.0 s / 0.25 s) steps x 2 latents per step; model.dim
    np.testing.assert_array_equal(latents.labels, mean.labels)
    np.testing.assert_array_equal(latents.features["raw_df_over_f"], mean.features["raw_df_over_f"])
    for trunk in ("pretrained", "random_init"):
        assert mean.features[trunk].shape == (n_trials, dim)
        assert latents.features[trunk].shape == (n_trials, n_latent * dim)
        np.testing.assert_allclose(
            latents.features[trunk].reshape(n_trials, n_latent, dim).mean(axis=1),
            mean.features[trunk],
            rtol=1e-5,
            atol=1e-6,
        )
    assert not np.allclose(
        latents.features["pretrained"], latents.features["random_init"], atol=1e-3
    )

    # the first trial's window encoded alone: the same latents, flattened in order
    starts, _ = _probe_trials(dataset, recording, intervals[recording], 1.0)
    sample = dataset.get(recording, starts[0], starts[0] + 1.0)
    for transform in transforms:
        sample = transform(sample)
    inputs = models["pretrained"].tokenize(sample)["model_inputs"]
    batch = collate([{key: inputs[key] for key in _ENCODE_INPUTS if key in inputs}])
    with torch.no_grad():
        encoded = models["pretrained"].encode(**batch)
    assert encoded.shape == (1, n_latent, dim)
    np.testing.assert_allclose(
        latents.features["pretrained"][0], encoded[0].flatten().numpy(), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        mean.features["pretrained"][0], encoded[0].mean(dim=0).numpy(), rtol=1e-5, atol=1e-5
    )


def test_an_unknown_pooling_is_refused_naming_the_allowed_values(tmp_path, tiny_data_root):
    checkpoint = write_checkpoint(tmp_path / "stage1.ckpt", tiny_data_root, trained=True)
    allowed = r"pooling='max' is not one of 'mean', 'latents'"
    with pytest.raises(ValueError, match=allowed):
        probe_checkpoint(checkpoint, pooling="max")
    with pytest.raises(ValueError, match=allowed):
        pool_latents(torch.zeros(1, 2, 3), "max")
    with pytest.raises(ValueError, match=allowed):
        split_features(
            None,
            "any",
            None,
            {},
            transforms=[],
            window_s=1.0,
            batch_size=1,
            device=torch.device("cpu"),
            pooling="max",
        )


def test_data_root_argument_replaces_the_runs(tmp_path, tiny_data_root):
    checkpoint = write_checkpoint(tmp_path / "stage1.ckpt", tiny_data_root, trained=True)
    with pytest.raises(FileNotFoundError, match=r"data_root .*nowhere \(from the data_root arg"):
        probe_checkpoint(checkpoint, data_root=tmp_path / "nowhere")
    moved = write_checkpoint(tmp_path / "moved.ckpt", tiny_data_root, trained=True)
    state = torch.load(moved, weights_only=False)
    state["hyper_parameters"]["data_root"] = str(tmp_path / "moved")
    torch.save(state, moved)
    with pytest.raises(FileNotFoundError, match=r"moved \(from .*moved.ckpt's config\)"):
        probe_checkpoint(moved)
    assert probe_checkpoint(moved, data_root=tiny_data_root).n_test == 12


def test_bad_checkpoints_are_refused_naming_the_file(tmp_path, tiny_data_root):
    missing = tmp_path / "nope.ckpt"
    with pytest.raises(FileNotFoundError, match=r"checkpoint .*nope.ckpt does not exist"):
        probe_checkpoint(missing)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"garbage.ckpt is not a torch checkpoint"):
        probe_checkpoint(garbage)
    bare = tmp_path / "bare.ckpt"
    torch.save({"state_dict": {}}, bare)
    with pytest.raises(ValueError, match=r"bare.ckpt is not a checkpoint of torch_brain's train"):
        probe_checkpoint(bare)
    other = tmp_path / "poyo_plus.ckpt"
    config = run_config(tiny_data_root)
    config["model"] = {"_target_": "torch_brain.models.POYOPlus", "dim": 16}
    torch.save({"state_dict": {}, "hyper_parameters": config}, other)
    with pytest.raises(
        ValueError,
        match=r"poyo_plus.ckpt is not a CAPOYO checkpoint: model._target_="
        r"'torch_brain.models.POYOPlus', expected 'poyocap_plugin.models.CAPOYO'",
    ):
        probe_checkpoint(other)

    result = CliRunner().invoke(cli, ["probe", str(other), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "poyo_plus.ckpt is not a CAPOYO checkpoint" in result.output
    assert not (tmp_path / "out").exists()


def test_device_must_be_available(tmp_path, tiny_data_root):
    checkpoint = write_checkpoint(tmp_path / "stage1.ckpt", tiny_data_root, trained=True)
    with pytest.raises(ValueError, match=r"device='tpu9' is not a torch device"):
        probe_checkpoint(checkpoint, device="tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"device='cuda', but CUDA is not available"):
            probe_checkpoint(checkpoint, device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_probe_on_the_gpu_matches_the_cpu(tmp_path, tiny_data_root):
    checkpoint = write_checkpoint(tmp_path / "stage1.ckpt", tiny_data_root, trained=True)
    cpu, gpu = (probe_checkpoint(checkpoint, device=d) for d in ("cpu", "cuda"))
    assert gpu.n_test == cpu.n_test
    for feature, accuracy in cpu.pooled.items():
        assert abs(gpu.pooled[feature] - accuracy) <= 1 / cpu.n_test  # one trial at most
