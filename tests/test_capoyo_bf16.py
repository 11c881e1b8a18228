"""CAPOYO under bf16 autocast, as train.py runs it with ``precision=bf16-mixed`` (CPU)."""

import torch
from test_capoyo import (
    make_batch,
    make_frame_model,
    make_model,
    make_movie_batch,
    movie_batch_root,  # noqa: F401  (the fixture)
    total_loss,
)

from poyocap_plugin.brainset import MASKED_LATENT_READOUT
from poyocap_plugin.losses import MASKED_LATENT_BLOCKS
from poyocap_plugin.nn import SkipUNetFrameDecoder


def _train_step_under_autocast(model, batch):
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        output = model(**batch["model_inputs"])
        loss = total_loss(model, batch, output)
    loss.backward()
    return output, loss


def test_stage1_masked_step_runs_in_bf16_and_reaches_every_parameter(tiny_data_root):
    model = make_model()
    batch = make_batch(model, tiny_data_root)
    output, loss = _train_step_under_autocast(model, batch)
    assert output[MASKED_LATENT_READOUT].shape == (
        2 * model.num_masked,
        len(MASKED_LATENT_BLOCKS) * model.dim,
    )
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
    trained = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad.dtype == p.dtype == torch.float32 for p in trained)


def test_stage2_frame_step_runs_in_bf16_and_reaches_every_parameter(movie_batch_root):  # noqa: F811
    model = make_frame_model()
    batch = make_movie_batch(model, movie_batch_root)
    output, loss = _train_step_under_autocast(model, batch)
    frames = output["natural_movie_one_image"].detach()
    assert frames.shape == (3, 16 * 32)
    assert 0.0 <= float(frames.min()) and float(frames.max()) <= 255.0
    assert torch.isfinite(loss)
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []


def test_frame_decoder_keeps_channels_last_weights_through_to_and_load_state_dict():
    decoder = SkipUNetFrameDecoder(
        dim=8, height=8, width=16, num_stages=2, base_channels=4, num_skip_stages=1
    )
    copy = SkipUNetFrameDecoder(
        dim=8, height=8, width=16, num_stages=2, base_channels=4, num_skip_stages=1
    )
    copy.load_state_dict(decoder.state_dict())
    for module in (decoder, copy.to(torch.float64).to(torch.float32)):
        convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
        assert convs and all(
            m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs
        )
    embedding = torch.randn(3, 8)
    torch.testing.assert_close(decoder(embedding), copy(embedding))
