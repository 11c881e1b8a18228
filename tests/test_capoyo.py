"""CAPOYO: tokenize -> collate -> forward -> loss -> backward, masking, trunk transfer."""

import numpy as np
import pytest
import torch
import torch_brain
from omegaconf import OmegaConf
from torch_brain.data import Dataset, collate
from torch_brain.data.dataset import DatasetIndex

from poyocap_plugin.brainset import ALLEN_CRE_LINES, MASKED_LATENT_READOUT
from poyocap_plugin.models import CAPOYO
from poyocap_plugin.nn import LatentMasking
from poyocap_plugin.nn.latent_masking import pack_masked_latents, trivial_predictions
from poyocap_plugin.normalize import NormalizeDfOverF

DG = "drifting_gratings_orientation"
RECORDING = "allen_brain_observatory_calcium/900000"


def make_model(masked=True, target="ema", masking_options=None, **overrides) -> CAPOYO:
    torch.manual_seed(0)
    kwargs = dict(
        sequence_length=1.0,
        readout_specs=torch_brain.MODALITY_REGISTRY,
        readouts={DG: 0.01},
        latent_step=0.25,
        num_latents_per_step=2,
        dim=16,
        depth=1,
        dim_head=8,
        cross_heads=1,
        self_heads=2,
        ffn_dropout=0.0,
        lin_dropout=0.0,
        atn_dropout=0.0,
        masking=LatentMasking(dim=16, target=target, **(masking_options or {})) if masked else None,
    )
    kwargs.update(overrides)
    return CAPOYO(**kwargs)


def make_batch(model: CAPOYO, data_root, starts=(1.0, 4.0)) -> dict:
    config = OmegaConf.create(
        [
            {
                "selection": [{"brainset": "allen_brain_observatory_calcium"}],
                "config": {"multitask_readout": [{"readout_id": DG, "metrics": []}]},
            }
        ]
    )
    dataset = Dataset(root=str(data_root), config=config, split="train", transform=model.tokenize)
    if model.unit_emb.is_lazy():
        model.unit_emb.initialize_vocab(dataset.get_unit_ids())
        model.session_emb.initialize_vocab(dataset.get_session_ids())
    return collate([dataset[DatasetIndex(RECORDING, s, s + 1.0)] for s in starts])


def total_loss(model, batch, output):
    specs = model.readout.readout_specs
    return sum(
        specs[name].loss_fn(out, batch["target_values"][name], batch["target_weights"][name])
        for name, out in output.items()
    )


def test_builds_only_the_configured_readouts():
    model = make_model()
    assert set(model.readout.projections) == {DG}
    assert set(model.readout.readout_specs) == {DG, MASKED_LATENT_READOUT}
    assert not hasattr(model, "token_type_emb")
    max_id = max(spec.id for spec in torch_brain.MODALITY_REGISTRY.values())
    assert model.task_emb.weight.shape[0] == max_id + 1
    plain = make_model(masked=False)
    assert set(plain.readout.readout_specs) == {DG}
    assert not any("mask" in name for name, _ in plain.named_parameters())


def test_readout_weight_scales_the_loss(tiny_data_root):
    model = make_model()
    batch = make_batch(model, tiny_data_root)
    output = model(**batch["model_inputs"])
    stock = torch_brain.MODALITY_REGISTRY[DG].loss_fn
    args = (output[DG], batch["target_values"][DG], batch["target_weights"][DG])
    scaled = model.readout.readout_specs[DG].loss_fn(*args)
    torch.testing.assert_close(scaled, 0.01 * stock(*args))


def test_tokenize_collate_forward_loss_backward_reaches_every_parameter(tiny_data_root):
    model = make_model()
    batch = make_batch(model, tiny_data_root)
    inputs = batch["model_inputs"]
    # 4 bins x 2 latents, the last half masked, in every window
    expected = np.tile(np.arange(8) >= 4, (2, 1))
    np.testing.assert_array_equal(inputs["latent_mask"].numpy(), expected)
    masked_queries = (
        inputs["output_decoder_index"] == model.readout.readout_specs[MASKED_LATENT_READOUT].id
    )
    assert masked_queries.sum(dim=1).tolist() == [4, 4]
    # at their latents' times, a microsecond apart per latent id (kept apart by the stitcher)
    masked = torch.from_numpy(expected)
    torch.testing.assert_close(
        inputs["output_timestamps"][masked_queries].view(2, 4),
        (inputs["latent_timestamps"][masked] + 1e-6 * inputs["latent_index"][masked]).view(2, 4),
    )

    output = model(**inputs)
    assert output[MASKED_LATENT_READOUT].shape == (8, 80)  # 5 blocks of D=16
    assert batch["target_values"][MASKED_LATENT_READOUT].shape == (8,)
    assert output[DG].shape == (2, 8)
    total_loss(model, batch, output).backward()
    # DDP without find_unused_parameters needs a gradient for every parameter
    no_grad = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []


def test_unpacked_output_has_the_masked_rows_of_each_sample(tiny_data_root):
    model = make_model().eval()
    batch = make_batch(model, tiny_data_root)
    packed = model(**batch["model_inputs"])
    unpacked = model(**batch["model_inputs"], unpack_output=True)
    assert [o[MASKED_LATENT_READOUT].shape for o in unpacked] == [(4, 80), (4, 80)]
    torch.testing.assert_close(
        torch.cat([o[MASKED_LATENT_READOUT] for o in unpacked]), packed[MASKED_LATENT_READOUT]
    )


def test_paths_share_weights_so_an_identity_mask_gives_zero_loss(tiny_data_root, monkeypatch):
    model = make_model().eval()
    batch = make_batch(model, tiny_data_root)
    loss_fn = model.readout.readout_specs[MASKED_LATENT_READOUT].loss_fn
    target = batch["target_values"][MASKED_LATENT_READOUT]

    masked = model(**batch["model_inputs"])[MASKED_LATENT_READOUT]
    assert loss_fn(masked, target).item() > 0

    # Masking that changes nothing: the second pass runs the same processor on the same
    # latents, so reconstruction and reference agree exactly.
    monkeypatch.setattr(model.masking, "forward", lambda latents, mask, ids: latents)
    identical = model(**batch["model_inputs"])[MASKED_LATENT_READOUT]
    assert loss_fn(identical, target).item() == 0.0


def test_masked_latents_of_one_bin_are_reconstructed_apart(tiny_data_root):
    """The latents of one time bin share a time; only their ids tell them apart."""
    model = make_model().eval()
    batch = make_batch(model, tiny_data_root)
    rows = model(**batch["model_inputs"], unpack_output=True)[0][MASKED_LATENT_READOUT]
    reconstructions = rows[:, : model.dim]  # 2 bins x 2 latents, time-major
    assert model.num_latents_per_step == 2
    for first in (0, 2):
        assert (reconstructions[first] - reconstructions[first + 1]).abs().max() > 1e-3


def test_masked_objective_can_go_below_the_shared_token_floor(tiny_data_root):
    """With one shared token the processor gives every masked latent of a bin one output,
    so the L1 loss cannot go below the spread of that bin's targets; with the latent id
    added, a few steps on one batch go below that floor."""
    model = make_model(masking_options={"normalize_target": True})
    batch = make_batch(model, tiny_data_root)
    inputs = batch["model_inputs"]
    loss_fn = model.readout.readout_specs[MASKED_LATENT_READOUT].loss_fn
    target_values = batch["target_values"][MASKED_LATENT_READOUT]
    with torch.no_grad():
        target = model(**inputs, unpack_output=True)
    floor = np.mean(
        [
            # per bin: the best single prediction for its 2 latents is their median
            (
                t[:, 16:32].view(-1, 2, 16)
                - t[:, 16:32].view(-1, 2, 16).median(1, keepdim=True).values
            )
            .abs()
            .mean()
            .item()
            for t in (o[MASKED_LATENT_READOUT] for o in target)
        ]
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = loss_fn(model(**inputs)[MASKED_LATENT_READOUT], target_values)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * floor


def test_ema_teacher_follows_the_update_rule_and_survives_a_checkpoint(tiny_data_root):
    masking = {"ema_decay": 0.5, "ema_decay_end": 0.5}
    model = make_model(target="ema", masking_options=masking)
    batch = make_batch(model, tiny_data_root)
    assert not any(p.requires_grad for p in model.teacher.parameters())
    with torch.no_grad():  # the online weights move away from the teacher's copy
        for p in model.proc_layers.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.teacher.proc_layers.parameters()]
    model(**batch["model_inputs"])  # a training step: one update, decay 0.5
    for old, new, online in zip(
        before, model.teacher.proc_layers.parameters(), model.proc_layers.parameters(), strict=True
    ):
        torch.testing.assert_close(new, 0.5 * old + 0.5 * online)
    assert int(model.teacher_steps) == 1
    with torch.no_grad():
        model.eval()(**batch["model_inputs"])  # evaluation does not update
    assert int(model.teacher_steps) == 1

    restored = make_model(target="ema", masking_options=masking)
    make_batch(restored, tiny_data_root)  # initialises the vocabularies
    restored.load_state_dict(model.state_dict())
    assert int(restored.teacher_steps) == 1
    for a, b in zip(model.teacher.parameters(), restored.teacher.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    model.train()(**batch["model_inputs"])
    restored.train()(**batch["model_inputs"])
    for a, b in zip(model.teacher.parameters(), restored.teacher.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_teacher_is_not_part_of_the_trunk():
    model = make_model(target="ema")
    assert not any(key.startswith("teacher") for key in model.trunk_state_dict())
    assert make_model(target="detached").teacher is None
    assert make_model(target="input").teacher is None


def test_input_target_is_the_reference_and_only_the_trunk_learns(tiny_data_root):
    model = make_model(target="input")
    batch = make_batch(model, tiny_data_root)
    inputs = batch["model_inputs"]
    output = model(**inputs)[MASKED_LATENT_READOUT]
    reference = output[:, 16:32]  # block 2 of 5: the target (D=16)
    expected = model.masking.input_target(
        input_unit_index=inputs["input_unit_index"],
        input_values=inputs["input_values"],
        input_timestamps=inputs["input_timestamps"],
        input_mask=inputs["input_mask"],
        latent_timestamps=inputs["latent_timestamps"],
        num_latents_per_bin=model.num_latents_per_step,
        num_units=model.unit_emb.weight.shape[0],
    )
    torch.testing.assert_close(reference, expected[inputs["latent_mask"]])
    assert reference.abs().sum() > 0  # computed from the inputs alone, as above
    spec = model.readout.readout_specs[MASKED_LATENT_READOUT]
    spec.loss_fn(output, batch["target_values"][MASKED_LATENT_READOUT]).backward()
    for module in (model.unit_emb, model.enc_atn, model.proc_layers, model.masking):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


@pytest.mark.parametrize("target, reaches_reference", [("detached", False), ("shared", True)])
def test_gradient_reaches_the_trunk_and_the_target_only_when_shared(
    tiny_data_root, monkeypatch, target, reaches_reference
):
    model = make_model(target=target)
    batch = make_batch(model, tiny_data_root)
    captured = {}
    reference = model.masking.reference

    def capture(latents):
        latents.retain_grad()
        captured["latents"] = latents
        return reference(latents)

    monkeypatch.setattr(model.masking, "reference", capture)
    output = model(**batch["model_inputs"])
    spec = model.readout.readout_specs[MASKED_LATENT_READOUT]
    spec.loss_fn(
        output[MASKED_LATENT_READOUT], batch["target_values"][MASKED_LATENT_READOUT]
    ).backward()
    for module in (model.enc_atn, model.proc_layers, model.latent_emb):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    assert model.masking.mask_token.grad.abs().sum() > 0
    assert (captured["latents"].grad is not None) == reaches_reference


def test_trunk_loads_from_a_stage1_checkpoint(tmp_path, tiny_data_root):
    stage1 = make_model()
    make_batch(stage1, tiny_data_root)  # vocabularies, as train.py would
    path = tmp_path / "stage1.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in stage1.state_dict().items()}}, path)

    stage2 = make_model(masked=False, pretrained_trunk=str(path))
    for key, value in stage1.trunk_state_dict().items():
        torch.testing.assert_close(stage2.state_dict()[key], value)
    # vocabularies are left to train.py: the new model's are still lazy
    assert stage2.unit_emb.is_lazy() and stage2.session_emb.is_lazy()
    assert not any(
        key.startswith(("unit_emb", "session_emb", "readout", "masking"))
        for key in stage2.trunk_state_dict()
    )


def test_trunk_of_another_size_names_the_mismatched_keys(tmp_path):
    path = tmp_path / "other.ckpt"
    other = make_model(dim=32, dim_head=8, masking=None)
    torch.save(
        {
            "state_dict": {
                f"model.{k}": v
                for k, v in other.state_dict().items()
                if not k.startswith(("unit_emb", "session_emb"))
            }
        },
        path,
    )
    with pytest.raises(
        ValueError,
        match=r"another size.*latent_emb.weight: checkpoint \(2, 32\) vs model \(2, 16\)",
    ):
        make_model(pretrained_trunk=path)


def test_checkpoint_missing_trunk_keys_names_them(tmp_path):
    path = tmp_path / "partial.ckpt"
    state = {f"model.{k}": v for k, v in make_model().trunk_state_dict().items()}
    del state["model.dec_ffn.0.weight"]
    torch.save({"state_dict": state}, path)
    with pytest.raises(KeyError, match=r"lacks trunk keys \['dec_ffn.0.weight'\]"):
        make_model(pretrained_trunk=path)
    with pytest.raises(FileNotFoundError, match="model.pretrained_trunk: .*nope.ckpt"):
        make_model(pretrained_trunk=tmp_path / "nope.ckpt")


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(sequence_length=1), r"model.sequence_length must be a float > 0 \(write 1.0"),
        (dict(latent_step=0.3), "must divide model.sequence_length=1.0 into whole bins"),
        (
            dict(readouts={"no_such_readout": 1.0}),
            "names 'no_such_readout', which is not a registered",
        ),
        (dict(readouts={DG: 0.0}), f"model.readouts.{DG} must be a weight > 0"),
        (dict(readouts={MASKED_LATENT_READOUT: 1.0}), "it is built from model.masking"),
        (dict(masking=LatentMasking(dim=8)), r"model.masking.dim=8 differs from model.dim=16"),
    ],
)
def test_invalid_configs_are_refused_before_training(overrides, match):
    with pytest.raises(ValueError, match=match):
        make_model(**overrides)


def test_tokenize_names_a_readout_the_model_lacks(tiny_data_root):
    model = make_model(readouts={"drifting_gratings_temporal_frequency": 1.0})
    with pytest.raises(KeyError, match=rf"asks for readouts \['{DG}'\].*model.readouts"):
        make_batch(model, tiny_data_root)


# --- stage 2: the movie-frame readout --------------------------------------------------

FRAME = "natural_movie_one_image"


def make_frame_model(**overrides) -> CAPOYO:
    from poyocap_plugin.nn import SkipUNetFrameDecoder

    decoder = SkipUNetFrameDecoder(
        dim=16,
        height=16,
        width=32,
        num_stages=3,
        base_channels=4,
        max_channels=8,
        skip_channels=2,
        num_skip_stages=2,
    )
    kwargs = dict(
        masked=False,
        sequence_length=0.033,
        latent_step=0.033,
        readouts={FRAME: 1.0},
        frame_decoder=decoder,
    )
    kwargs.update(overrides)
    return make_model(**kwargs)


@pytest.fixture(scope="module")
def movie_batch_root(tmp_path_factory):
    import h5py

    from conftest import write_calcium_session

    root = tmp_path_factory.mktemp("movie")
    write_calcium_session(root, session_id="800000", natural_movie_repeats=3, movie_frames=6)
    template = root / "allen_brain_observatory_calcium" / "templates" / "natural_movie_one.h5"
    template.parent.mkdir()
    with h5py.File(template, "w") as f:
        f["frames"] = np.random.default_rng(0).integers(0, 256, (6, 16, 32), dtype=np.uint8)
    return root


def make_movie_batch(model: CAPOYO, root) -> dict:
    from torch_brain.transforms import Compose

    from poyocap_plugin.frame_windows import frame_sampling_intervals
    from poyocap_plugin.movie import MovieFrameTargets

    config = OmegaConf.create(
        [
            {
                "selection": [{"brainset": "allen_brain_observatory_calcium"}],
                "config": {"multitask_readout": [{"readout_id": FRAME, "metrics": []}]},
            }
        ]
    )
    template = root / "allen_brain_observatory_calcium" / "templates" / "natural_movie_one.h5"
    dataset = Dataset(
        root=str(root),
        config=config,
        split="train",
        transform=Compose(
            [MovieFrameTargets(template_path=template, height=16, width=32), model.tokenize]
        ),
    )
    model.unit_emb.initialize_vocab(dataset.get_unit_ids())
    model.session_emb.initialize_vocab(dataset.get_session_ids())
    data = dataset._get_data_object("allen_brain_observatory_calcium/800000")
    windows = frame_sampling_intervals(data, data.train_domain, window_s=0.033)
    return collate(
        [
            dataset[DatasetIndex(RECORDING.replace("900000", "800000"), s, s + 0.033)]
            for s in windows.start[:3]
        ]
    )


def test_frame_readout_decodes_flattened_frames_and_trains_every_parameter(movie_batch_root):
    model = make_frame_model()
    assert "frame_decoder" in dict(model.named_children())
    assert not any(
        word in name
        for name, _ in model.frame_decoder.named_parameters()
        for word in ("readout", "unit_emb", "session_emb")
    )
    batch = make_movie_batch(model, movie_batch_root)
    output = model(**batch["model_inputs"])
    assert output[FRAME].shape == batch["target_values"][FRAME].shape == (3, 16 * 32)
    assert 0.0 < output[FRAME].min() and output[FRAME].max() < 255.0
    total_loss(model, batch, output).backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
    unpacked = model.eval()(**batch["model_inputs"], unpack_output=True)
    assert [o[FRAME].shape for o in unpacked] == [(1, 512)] * 3


def test_configured_frame_loss_is_the_readouts_loss():
    from poyocap_plugin.losses import CAPFrameLoss

    loss = CAPFrameLoss(height=16, width=32, focal_weight=1.0)
    model = make_frame_model(frame_loss=loss)
    assert model.readout.readout_specs[FRAME].loss_fn is loss
    assert torch_brain.MODALITY_REGISTRY[FRAME].loss_fn is not loss


def test_default_frame_loss_takes_the_decoders_size():
    from poyocap_plugin.losses import CAPFrameLoss

    loss = make_frame_model().readout.readout_specs[FRAME].loss_fn
    assert isinstance(loss, CAPFrameLoss)
    assert (loss.height, loss.width) == (16, 32)


def test_registry_frame_loss_refuses_to_run_without_a_size():
    registry_loss = torch_brain.MODALITY_REGISTRY[FRAME].loss_fn
    with pytest.raises(ValueError, match="has no frame size.*CAPFrameLoss\\(height=..., width"):
        registry_loss(torch.zeros(2, 512), torch.zeros(2, 512))


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(frame_decoder=None), "needs model.frame_decoder"),
        (dict(readouts={DG: 1.0}), "does not name 'natural_movie_one_image'"),
        (dict(dim=32, dim_head=8), r"model.frame_decoder.dim=16 differs from model.dim=32"),
        (
            dict(frame_loss="wrong size"),
            r"model.frame_loss.width=64 differs from model.frame_decoder.width=32; set it "
            r"to \$\{model.frame_decoder.width\}",
        ),
    ],
)
def test_frame_readout_configs_are_checked(overrides, match):
    if overrides.get("frame_loss") == "wrong size":
        from poyocap_plugin.losses import CAPFrameLoss

        overrides["frame_loss"] = CAPFrameLoss(height=16, width=64)
    with pytest.raises(ValueError, match=match):
        make_frame_model(**overrides)


def test_trivial_predictions_copy_the_last_unmasked_bin_and_average_the_window():
    model = make_model(masking_options={"kind": "random"})  # 4 bins x 2 latents
    target = torch.arange(8.0).view(1, 8, 1).expand(1, 8, 16)  # latent k has value k
    #         bin:   0       1      2       3
    mask = torch.tensor([[False, True, True, True, False, False, True, False]])
    window_mean, copy_forward, position_mean = trivial_predictions(
        target, mask, num_bins=model.num_latent_bins, num_latents_per_bin=model.num_latents_per_step
    )
    torch.testing.assert_close(position_mean, window_mean)  # one window: no other to average
    torch.testing.assert_close(window_mean[0, :, 0], torch.full((8,), (0 + 4 + 5 + 7) / 4))
    # id 0 of bin 1 copies bin 0's latent 0; id 1 has no earlier unmasked latent (window
    # mean) until bin 2's latent 5; bin 3's latent 6 copies latent 4
    expected = torch.tensor([0.0, 4.0, 0.0, 4.0, 4.0, 5.0, 4.0, 7.0])
    torch.testing.assert_close(copy_forward[0, :, 0], expected)


def test_the_position_mean_averages_the_same_position_in_the_other_windows():
    target = torch.arange(24.0).view(3, 8, 1)  # window b, latent k: 8 b + k
    mask = torch.zeros(3, 8, dtype=torch.bool)
    mask[:, 4:] = True
    *_, position_mean = trivial_predictions(target, mask, num_bins=4, num_latents_per_bin=2)
    # window 0's latent k: mean of (8 + k, 16 + k) = 12 + k; window 2's: mean of (k, 8 + k)
    torch.testing.assert_close(position_mean[0, :, 0], 12.0 + torch.arange(8.0))
    torch.testing.assert_close(position_mean[2, :, 0], 4.0 + torch.arange(8.0))


@pytest.mark.parametrize(
    "token, tells_apart", [("modulated", True), ("concat", False), ("sum", False)]
)
def test_only_the_modulated_token_keeps_which_neuron_was_active_in_an_average(token, tells_apart):
    """Why the concat token starts on a plateau: two windows that differ only in which
    neuron was active have the same average token, so uniform attention at init sees no
    stimulus; the modulated token's average differs. The paper's sum is like concat."""
    model = make_model(masked=False, readouts={DG: 1.0}, input_token=token)
    model.unit_emb.initialize_vocab(["u0", "u1"])
    model.session_emb.initialize_vocab(["s0"])
    units, session = torch.tensor([[1, 2]]), torch.tensor([1])
    first = model._embed_inputs(units, torch.tensor([[[1.0], [0.0]]]), session, None).mean(1)
    second = model._embed_inputs(units, torch.tensor([[[0.0], [1.0]]]), session, None).mean(1)
    assert (not torch.allclose(first, second)) == tells_apart
    assert hasattr(model.input_tokens, "value_map") == (token != "modulated")


def test_sum_token_adds_unit_value_session_and_token_type_embeddings_at_full_width():
    model = make_model(masked=False, readouts={DG: 1.0}, input_token="sum")
    model.unit_emb.initialize_vocab(["u0", "u1"])
    model.session_emb.initialize_vocab(["s0", "s1"])
    assert model.unit_emb.weight.shape == (3, 16)  # D wide, not D/2
    units, values, sessions = (
        torch.tensor([[1, 2], [2, 2]]),
        torch.rand(2, 2, 1),
        torch.tensor([1, 2]),
    )
    tokens = model._embed_inputs(units, values, sessions, None)
    tokens_of = model.input_tokens
    expected = (
        model.unit_emb(units)
        + tokens_of.value_map(values)
        + tokens_of.token_type
        + model.session_emb(sessions)[:, None]
    )
    torch.testing.assert_close(tokens, expected)
    with pytest.raises(ValueError, match='input_token="sum" needs the session embedding'):
        model._embed_inputs(units, values, None, None)


@pytest.mark.parametrize("token", ["modulated", "sum"])
def test_cre_line_embedding_is_trained_in_stage_2_and_the_stage_1_trunk_loads(
    token, tmp_path, tiny_data_root
):
    stage1 = make_model(input_token=token)
    make_batch(stage1, tiny_data_root)  # vocabularies, as train.py would
    path = tmp_path / "stage1.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in stage1.state_dict().items()}}, path)

    stage2 = make_model(
        masked=False, input_token=token, cre_line_embedding=True, pretrained_trunk=str(path)
    )
    for key, value in stage1.trunk_state_dict().items():
        torch.testing.assert_close(stage2.state_dict()[key], value)
    assert not any(key.startswith("cre_line_emb") for key in stage2.trunk_state_dict())
    assert any(key.startswith("input_tokens") for key in stage2.trunk_state_dict()) == (
        token == "sum"
    )

    batch = make_batch(stage2, tiny_data_root)
    line = ALLEN_CRE_LINES.index("Cux2-CreERT2")  # the tiny recording's subject
    assert batch["model_inputs"]["input_cre_line_index"].tolist() == [line, line]
    stage2.train()
    total_loss(stage2, batch, stage2(**batch["model_inputs"])).backward()
    grad = stage2.cre_line_emb.weight.grad
    assert grad[line].abs().sum() > 0 and grad[torch.arange(13) != line].abs().sum() == 0
    inputs = dict(batch["model_inputs"])
    del inputs["input_cre_line_index"]
    with pytest.raises(ValueError, match="cre_line_embedding is on: forward needs"):
        stage2(**inputs)


def test_the_position_mean_keeps_to_the_windows_of_the_same_recording():
    target = torch.arange(32.0).view(4, 8, 1)  # window b, latent k: 8 b + k
    mask = torch.zeros(4, 8, dtype=torch.bool)
    mask[:, 4:] = True
    recording = torch.tensor([5, 7, 5, 9])  # window 3 has no other window of its recording
    window_mean, _, position_mean = trivial_predictions(
        target, mask, num_bins=4, num_latents_per_bin=2, recording=recording
    )
    torch.testing.assert_close(position_mean[0, :, 0], 16.0 + torch.arange(8.0))  # window 2
    torch.testing.assert_close(position_mean[2, :, 0], torch.arange(8.0))  # window 0
    torch.testing.assert_close(position_mean[3], window_mean[3])


def test_packing_refuses_windows_with_different_numbers_of_masked_latents():
    """Rows of two windows must never mix: the packed view checks the count per window."""
    target = torch.zeros(2, 8, 1)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[0, 5:] = True  # 3 masked latents
    mask[1, 3:] = True  # 5: 8 rows in all, which a view of (2, -1) would split 4 + 4
    with pytest.raises(RuntimeError, match="invalid for input of size 8"):
        pack_masked_latents(target, target, mask, num_masked=3, num_bins=4, num_latents_per_bin=2)


def test_nan_df_over_f_is_left_out_of_the_input_tokens(tiny_data_root):
    """A neuron's missing frames (NaN dF/F) give no token after the configs' normalisation;
    a window with no value at all still gives a finite loss."""
    model = make_model().eval()
    make_batch(model, tiny_data_root)  # the vocabularies
    config = OmegaConf.create(
        [
            {
                "selection": [{"brainset": "allen_brain_observatory_calcium"}],
                "config": {"multitask_readout": [{"readout_id": DG, "metrics": []}]},
            }
        ]
    )
    dataset = Dataset(root=str(tiny_data_root), config=config, split="train")
    samples = []
    for missing in (0, 3, None):
        sample = dataset.get(RECORDING, 1.0, 2.0)
        traces = np.array(sample.calcium_traces.df_over_f, dtype=np.float32)
        traces[0 if missing is not None else slice(None), :missing] = np.nan
        sample.calcium_traces.df_over_f = traces
        samples.append(model.tokenize(NormalizeDfOverF()(sample)))
    batch = collate(samples)
    inputs = batch["model_inputs"]
    assert inputs["input_mask"][0].sum() - inputs["input_mask"][1].sum() == 3
    assert torch.isfinite(inputs["input_values"]).all()
    output = model(**batch["model_inputs"])
    assert torch.isfinite(total_loss(model, batch, output))


def test_a_cre_line_outside_the_allen_lines_is_named(tiny_data_root):
    model = make_model(masked=False, cre_line_embedding=True)
    make_batch(model, tiny_data_root)  # the vocabularies
    config = OmegaConf.create(
        [
            {
                "selection": [{"brainset": "allen_brain_observatory_calcium"}],
                "config": {"multitask_readout": [{"readout_id": DG, "metrics": []}]},
            }
        ]
    )
    dataset = Dataset(root=str(tiny_data_root), config=config, split="train")
    sample = dataset.get(RECORDING, 1.0, 2.0)
    sample.subject.cre_line = "Emx1-Cre"
    with pytest.raises(ValueError, match="subject.cre_line 'Emx1-Cre' is not one of the Allen"):
        model.tokenize(sample)
