import pytest
import torch
from torch import nn
from torch_brain.optim import SparseLamb

from poyocap_plugin.losses import CAPFrameLoss
from poyocap_plugin.nn import SkipUNetFrameDecoder

TINY = dict(
    dim=32,
    height=16,
    width=32,
    num_stages=4,
    base_channels=8,
    max_channels=32,
    skip_channels=4,
    num_skip_stages=2,
)
SPARSE_MODULES = ("unit_emb", "session_emb", "readout")  # train.py's SparseLamb group


def tiny_decoder(**overrides) -> SkipUNetFrameDecoder:
    torch.manual_seed(0)
    return SkipUNetFrameDecoder(**{**TINY, **overrides})


@pytest.mark.parametrize(
    "height, width, num_stages",
    [(16, 32, 4), (16, 32, 1), (8, 16, 3), (24, 48, 3), (32, 64, 5), (12, 20, 2)],
)
def test_output_shape_and_range_for_several_sizes(height, width, num_stages):
    decoder = tiny_decoder(
        height=height, width=width, num_stages=num_stages, num_skip_stages=min(2, num_stages)
    )
    images = decoder(torch.randn(3, 32))
    assert images.shape == (3, height, width)
    assert images.dtype == torch.float32
    assert ((images > 0) & (images < 255)).all()


def test_paper_size_builds_and_decodes():
    decoder = SkipUNetFrameDecoder(dim=64, height=128, width=256)
    assert decoder.seed_shape == (256, 1, 2)
    assert decoder(torch.randn(1, 64)).shape == (1, 128, 256)


def test_untrained_decoder_starts_near_mid_grey():
    images = tiny_decoder()(torch.randn(8, 32))
    assert (images - 127.5).abs().max() < 40


@pytest.mark.parametrize("bias, inside", [(-6.0, lambda y: y < 1.0), (6.0, lambda y: y > 254.0)])
def test_extremes_are_reached_with_nonzero_gradient(bias, inside):
    """255 * sigmoid: no dead region, unlike tanh followed by a clamp."""
    decoder = tiny_decoder()
    with torch.no_grad():
        decoder.to_pixels.bias.fill_(bias)
    embedding = torch.randn(4, 32, requires_grad=True)
    images = decoder(embedding)
    assert inside(images).all()
    images.sum().backward()
    assert embedding.grad.abs().min() > 0
    assert decoder.to_pixels.bias.grad.abs() > 0


def test_every_parameter_gets_a_gradient():
    """DESIGN contract 6: DDP without find_unused_parameters needs a gradient everywhere."""
    decoder = tiny_decoder()
    decoder(torch.randn(2, 32)).mean().backward()
    missing = [name for name, p in decoder.named_parameters() if p.grad is None]
    assert missing == []


def test_empty_batch_decodes_to_no_frames():
    assert tiny_decoder()(torch.randn(0, 32)).shape == (0, 16, 32)


def test_batch_norm_variant_trains_and_evaluates():
    decoder = tiny_decoder(norm="batch")
    assert any(isinstance(m, nn.BatchNorm2d) for m in decoder.modules())
    decoder(torch.randn(4, 32)).mean().backward()
    decoder.eval()
    assert decoder(torch.randn(1, 32)).shape == (1, 16, 32)


def test_group_norm_is_the_default():
    decoder = tiny_decoder()
    assert any(isinstance(m, nn.GroupNorm) for m in decoder.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in decoder.modules())


def test_skip_projections_only_on_the_first_stages():
    decoder = tiny_decoder(num_skip_stages=2)
    has_skip = [hasattr(stage, "skip_proj") for stage in decoder.stages]
    assert has_skip == [True, True, False, False]
    assert decoder.stages[1].skip_proj.out_features == 4 * 4 * 8  # 4 channels at 4 x 8
    assert not any(hasattr(s, "skip_proj") for s in tiny_decoder(num_skip_stages=0).stages)


def test_skips_carry_the_embedding():
    """With the seed projection zeroed, the image still depends on the embedding."""
    decoder = tiny_decoder()
    with torch.no_grad():
        decoder.seed_proj.weight.zero_()
    a, b = decoder(torch.randn(2, 32))
    assert (a - b).abs().max() > 1e-3


class _ToyModel(nn.Module):
    """The parameter layout train.py sees: a sparse-group readout beside the decoder."""

    def __init__(self):
        super().__init__()
        self.readout = nn.Linear(32, 1)
        self.frame_decoder = tiny_decoder()

    def forward(self, x):
        return self.frame_decoder(x).mean() + self.readout(x).mean()


def test_parameter_names_stay_out_of_sparse_lamb_sparse_group():
    model = _ToyModel()
    names = [name for name, _ in model.frame_decoder.named_parameters()]
    assert names and not [n for n in names if any(word in n for word in SPARSE_MODULES)]
    shapes = {p.ndim for p in model.frame_decoder.parameters()}
    assert {1, 4} <= shapes  # the shapes SparseLamb's sparse path cannot update


def test_sparse_lamb_with_train_py_groups_updates_the_decoder():
    model = _ToyModel()
    sparse = [p for n, p in model.named_parameters() if n.split(".")[0] in SPARSE_MODULES]
    dense = [
        p for n, p in model.named_parameters() if not any(word in n for word in SPARSE_MODULES)
    ]
    assert len(sparse) + len(dense) == len(list(model.parameters()))  # nothing silently frozen
    optimizer = SparseLamb(
        [{"params": sparse, "sparse": True}, {"params": dense}], lr=1e-2, weight_decay=1e-4
    )
    before = [p.detach().clone() for p in model.frame_decoder.parameters()]
    model(torch.randn(3, 32)).backward()
    optimizer.step()
    after = list(model.frame_decoder.parameters())
    assert all(not torch.equal(b, a) for b, a in zip(before, after, strict=True))


def test_fits_frames_on_cpu_with_the_finetuning_loss_on_flattened_rows():
    """What CAPOYO does: decode, flatten to (N, H*W) for the stitcher, apply CAPFrameLoss."""
    decoder = tiny_decoder()
    generator = torch.Generator().manual_seed(1)
    embedding = torch.randn(4, 32, generator=generator)
    ramp = torch.linspace(0, 255, 32)
    target = torch.stack([ramp.expand(16, 32), ramp.flip(0).expand(16, 32)] * 2).flatten(1)
    loss_fn = CAPFrameLoss(height=16, width=32, perceptual_weight=0.0)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = loss_fn(decoder(embedding).flatten(1), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize(
    "overrides, match",
    [
        (
            dict(height=20),
            r"height=20, width=32 is not a multiple of 2\*\*num_stages=16.*"
            r"num_stages <= 2",
        ),
        (dict(height=15, num_stages=1), r"choose even sides"),
        (dict(num_skip_stages=5), "num_skip_stages=5 exceeds num_stages=4"),
        (dict(norm="layer"), "norm must be one of 'group', 'batch'; got 'layer'"),
        (dict(dim=0), "dim must be an integer >= 1; got 0"),
        (dict(base_channels=2.5), "base_channels must be an integer >= 1; got 2.5"),
    ],
)
def test_rejects_bad_configuration(overrides, match):
    with pytest.raises(ValueError, match=match):
        tiny_decoder(**overrides)


def test_rejects_misshapen_embedding():
    with pytest.raises(ValueError, match=r"shape \(N, 32\); got \(2, 3, 32\)"):
        tiny_decoder()(torch.randn(2, 3, 32))
