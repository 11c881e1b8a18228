import pytest
import torch

from poyocap_plugin.losses import MaskedLatentL1Loss


def test_masked_latent_l1_is_the_weighted_mean_absolute_error():
    reconstruction = torch.tensor([[0.0, 0.0], [1.0, 3.0]])
    reference = torch.tensor([[1.0, -1.0], [1.0, 1.0]])
    packed = torch.cat([reconstruction, reference], dim=1)  # (N=2, 2D=4)
    placeholder = torch.zeros(2)
    loss = MaskedLatentL1Loss()
    # per row: mean(|0-1|, |0+1|) = 1, mean(0, 2) = 1 -> weighted by (3, 1)
    assert loss(packed, placeholder).item() == pytest.approx(1.0)
    packed[1, 1] = 5.0  # row 2 becomes mean(0, 4) = 2
    assert loss(packed, placeholder, torch.tensor([3.0, 1.0])).item() == pytest.approx(5 / 4)
    assert loss(packed, placeholder, 1.0).item() == pytest.approx(1.5)


def test_masked_latent_l1_backpropagates_into_the_reconstruction():
    packed = torch.randn(4, 16, requires_grad=True)
    MaskedLatentL1Loss()(packed, torch.zeros(4)).backward()
    assert packed.grad[:, :8].abs().sum() > 0


@pytest.mark.parametrize(
    "shape, target_len, weights, match",
    [
        ((4, 2, 8), 4, None, r"shape \(N, 2D\).*\(4, 2, 8\)"),
        ((4, 7), 4, None, r"shape \(N, 2D\).*\(4, 7\)"),
        ((4, 8), 5, None, "same batch size; got 4 and 5"),
        ((4, 8), 4, torch.ones(3), r"Weights must have shape \(4,\); got \(3,\)"),
    ],
)
def test_masked_latent_l1_rejects_misshapen_input(shape, target_len, weights, match):
    with pytest.raises(ValueError, match=match):
        MaskedLatentL1Loss()(torch.zeros(shape), torch.zeros(target_len), weights)
