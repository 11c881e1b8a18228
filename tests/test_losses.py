import logging

import pytest
import torch

from poyocap_plugin.losses import (
    CAPFrameLoss,
    FFTMagnitudeL1Loss,
    FocalL1Loss,
    MaskedLatentL1Loss,
    PerceptualFeatureLoss,
    PixelL1Loss,
    SSIMLoss,
)


def test_masked_latent_l1_is_the_weighted_mean_absolute_error():
    reconstruction = torch.tensor([[0.0, 0.0], [1.0, 3.0]])
    reference = torch.tensor([[1.0, -1.0], [1.0, 1.0]])
    baselines = torch.full((2, 6), 7.0)  # trivial predictions: not part of the loss
    packed = torch.cat([reconstruction, reference, baselines], dim=1)  # (N=2, 5D=10)
    placeholder = torch.zeros(2)
    loss = MaskedLatentL1Loss()
    # per row: mean(|0-1|, |0+1|) = 1, mean(0, 2) = 1 -> weighted by (3, 1)
    assert loss(packed, placeholder).item() == pytest.approx(1.0)
    packed[1, 1] = 5.0  # row 2 becomes mean(0, 4) = 2
    assert loss(packed, placeholder, torch.tensor([3.0, 1.0])).item() == pytest.approx(5 / 4)
    assert loss(packed, placeholder, 1.0).item() == pytest.approx(1.5)


def test_masked_latent_l1_backpropagates_into_the_reconstruction():
    packed = torch.randn(4, 40, requires_grad=True)
    MaskedLatentL1Loss()(packed, torch.zeros(4)).backward()
    assert packed.grad[:, :8].abs().sum() > 0
    assert packed.grad[:, 16:].abs().sum() == 0  # the trivial predictions carry no loss


@pytest.mark.parametrize(
    "shape, target_len, weights, match",
    [
        ((4, 2, 10), 4, None, r"shape \(N, 5D\).*\(4, 2, 10\)"),
        ((4, 6), 4, None, r"shape \(N, 5D\).*\(4, 6\)"),
        ((4, 10), 5, None, "same batch size; got 4 and 5"),
        ((4, 10), 4, torch.ones(3), r"Weights must have shape \(4,\); got \(3,\)"),
    ],
)
def test_masked_latent_l1_rejects_misshapen_input(shape, target_len, weights, match):
    with pytest.raises(ValueError, match=match):
        MaskedLatentL1Loss()(torch.zeros(shape), torch.zeros(target_len), weights)


# --- Stage 2: movie-frame reconstruction ----------------------------------------------

TERMS = [PixelL1Loss, FocalL1Loss, FFTMagnitudeL1Loss, SSIMLoss]
SIZE = dict(height=16, width=32)  # the test frames' size (pixels)


def _frames(n: int = 4, height: int = 16, width: int = 32, seed: int = 0) -> torch.Tensor:
    """Smooth uint8 test frames (a gradient plus blobs), so SSIM and FFT see structure."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.linspace(-1, 1, height)[:, None]
    x = torch.linspace(-1, 1, width)[None, :]
    frames = []
    for _ in range(n):
        cy, cx = torch.rand(2, generator=generator) * 2 - 1
        blob = torch.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 0.1)
        frames.append(60 + 60 * (x + 1) + 70 * blob)
    return torch.stack(frames).clamp(0, 255).round().to(torch.uint8)


def _distort(frames: torch.Tensor, amount: float, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(frames.shape, generator=generator)
    return (frames.float() + amount * noise).clamp(0, 255)


def _alexnet_state_dict(path, *, seed: int = 0, extra: bool = True):
    """A random-init AlexNet-layout state_dict (keys of torchvision's alexnet) saved to path."""
    generator = torch.Generator().manual_seed(seed)
    state = {
        "features.0.weight": torch.randn(64, 3, 11, 11, generator=generator) * 0.05,
        "features.0.bias": torch.randn(64, generator=generator) * 0.05,
        "features.3.weight": torch.randn(192, 64, 5, 5, generator=generator) * 0.05,
        "features.3.bias": torch.randn(192, generator=generator) * 0.05,
    }
    if extra:  # later layers of a full AlexNet checkpoint are ignored
        state["features.6.weight"] = torch.zeros(384, 192, 3, 3)
        state["classifier.1.weight"] = torch.zeros(4, 9216)
    torch.save(state, path)
    return state


@pytest.fixture
def alexnet_weights(tmp_path):
    path = tmp_path / "alexnet.pth"
    return path, _alexnet_state_dict(path)


def _all_terms(weights_path):
    return [term(**SIZE) for term in TERMS] + [
        PerceptualFeatureLoss(**SIZE, weights_path=weights_path)
    ]


def test_each_term_is_zero_on_identical_frames_and_grows_with_distortion(alexnet_weights):
    target = _frames()
    for term in _all_terms(alexnet_weights[0]):
        assert term(target.float(), target).item() == pytest.approx(0.0, abs=1e-6), term
        values = [term(_distort(target, amount), target).item() for amount in (4, 16, 64)]
        assert 0 < values[0] < values[1] < values[2], (term, values)


def test_flattened_frames_give_the_same_loss(alexnet_weights):
    target, input = _frames(), _distort(_frames(), 20)
    for term in [*_all_terms(alexnet_weights[0]), CAPFrameLoss(**SIZE)]:
        flat = term(input.flatten(1), target.flatten(1).float())
        assert flat.item() == pytest.approx(term(input, target).item(), rel=1e-6), term


def test_pixel_l1_is_the_mean_absolute_error_on_unit_images():
    input = torch.full((2, 16, 32), 51.0)
    target = torch.zeros(2, 16, 32, dtype=torch.uint8)
    target[1] = 255
    # frame 0: |0.2 - 0| = 0.2; frame 1: |0.2 - 1| = 0.8
    loss = PixelL1Loss(**SIZE)
    assert loss(input, target).item() == pytest.approx(0.5)
    assert loss(input, target, torch.tensor([3.0, 1.0])).item() == pytest.approx(0.35)
    assert loss(input, target, torch.tensor([0.0, 1.0])).item() == pytest.approx(0.8)
    assert loss(input, target, 2.0).item() == pytest.approx(1.0)


def test_focal_l1_weights_errors_by_their_size_relative_to_the_worst_pixel():
    target = torch.zeros(1, 16, 32)
    input = torch.zeros(1, 16, 32)
    input[0, 0, :2] = torch.tensor([255.0, 127.5])  # unit errors 1 and 0.5, the rest 0
    pixels = 16 * 32
    gamma_one = FocalL1Loss(**SIZE, alpha=2.0, gamma=1.0)(input, target).item()
    assert gamma_one == pytest.approx(2.0 * (1.0 * 1.0 + 0.5 * 0.5) / pixels)
    gamma_zero = FocalL1Loss(**SIZE, alpha=2.0, gamma=0.0)(input, target).item()
    assert gamma_zero == pytest.approx(2.0 * PixelL1Loss(**SIZE)(input, target).item())


def test_focal_l1_gradient_is_finite_where_frames_agree():
    target = _frames(1)
    input = target.float().clone().requires_grad_()
    with torch.no_grad():
        input[0, 0, 0] += 10  # one wrong pixel; all others have error exactly 0
    for gamma in (0.0, 0.5, 1.0, 2.0):
        input.grad = None
        FocalL1Loss(**SIZE, gamma=gamma)(input, target).backward()
        assert torch.isfinite(input.grad).all(), gamma


def _cosine(frequency_y: int, frequency_x: int, height: int = 16, width: int = 32):
    y = torch.arange(height)[:, None] / height
    x = torch.arange(width)[None, :] / width
    return torch.cos(2 * torch.pi * (frequency_y * y + frequency_x * x))


@pytest.mark.parametrize("beta", [0.0, 2.0, 5.0])
def test_fft_term_weights_high_frequencies_as_documented(beta):
    """A distortion at the highest frequency costs (1 + beta) / (1 + beta * rho_low / rho_max)
    times the same distortion at a low frequency."""
    target = torch.full((1, 16, 32), 128.0)
    low = target + 20 * _cosine(1, 0)  # rho = 1/16 cycles per pixel
    high = target + 20 * _cosine(8, 16)  # rho = sqrt(0.5^2 + 0.5^2), the corner
    loss = FFTMagnitudeL1Loss(**SIZE, high_frequency_weight=beta)
    ratio = loss(high, target).item() / loss(low, target).item()
    # the corner bin is its own conjugate (one bin, amplitude doubled) -> same L1 mass
    expected = (1 + beta) / (1 + beta * (1 / 16) / (0.5**0.5))
    assert ratio == pytest.approx(expected, rel=1e-4)


def test_fft_weight_map_is_one_at_dc_and_one_plus_beta_at_the_corner():
    weights = FFTMagnitudeL1Loss(**SIZE, high_frequency_weight=2.0).frequency_weights(16, 32)
    assert weights[0, 0].item() == pytest.approx(1.0)
    assert weights[8, 16].item() == pytest.approx(3.0)
    assert weights.max().item() == pytest.approx(3.0)


def test_fft_term_ignores_circular_shifts():
    target = _frames(1)
    shifted = torch.roll(target, shifts=(3, 5), dims=(1, 2)).float()
    assert FFTMagnitudeL1Loss(**SIZE)(shifted, target).item() == pytest.approx(0.0, abs=1e-5)


def test_ssim_term_is_one_minus_torchmetrics_ssim():
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    target, input = _frames(), _distort(_frames(), 25)
    expected = 1 - ssim(input[:, None] / 255, target[:, None].float() / 255, data_range=1.0)
    assert SSIMLoss(**SIZE)(input, target).item() == pytest.approx(expected.item(), rel=1e-5)


def test_cap_frame_loss_is_the_weighted_sum_of_its_terms(alexnet_weights):
    target, input = _frames(), _distort(_frames(), 30)
    weights = dict(
        focal_weight=2.0, l1_weight=3.0, fft_weight=5.0, perceptual_weight=7.0, ssim_weight=11.0
    )
    loss = CAPFrameLoss(**SIZE, **weights, perceptual_weights_path=alexnet_weights[0])
    frame_weights = torch.tensor([1.0, 0.0, 2.0, 1.0])
    terms = loss.terms(input, target, frame_weights)
    assert set(terms) == {"focal_l1", "pixel_l1", "fft_magnitude_l1", "perceptual", "ssim"}
    expected = (
        2 * terms["focal_l1"]
        + 3 * terms["pixel_l1"]
        + 5 * terms["fft_magnitude_l1"]
        + 7 * terms["perceptual"]
        + 11 * terms["ssim"]
    )
    assert loss(input, target, frame_weights).item() == pytest.approx(expected.item(), rel=1e-5)
    assert terms["ssim"].item() == pytest.approx(
        SSIMLoss(**SIZE)(input, target, frame_weights).item()
    )


def test_cap_frame_loss_defaults_are_the_paper_weights():
    loss = CAPFrameLoss(**SIZE, perceptual_weight=0.0)
    assert loss.term_weights == {
        "focal_l1": 50.0,
        "pixel_l1": 50.0,
        "fft_magnitude_l1": 50.0,
        "perceptual": 0.0,
        "ssim": 0.1,
    }
    assert CAPFrameLoss(**SIZE).term_weights["perceptual"] == 1.0


def test_a_zero_weight_drops_its_term():
    loss = CAPFrameLoss(**SIZE, fft_weight=0.0, perceptual_weight=0.0)
    target, input = _frames(), _distort(_frames(), 30)
    assert set(loss.terms(input, target)) == {"focal_l1", "pixel_l1", "ssim"}


def test_cap_frame_loss_backpropagates_into_the_prediction():
    target = _frames()
    input = _distort(target, 30).requires_grad_()
    CAPFrameLoss(**SIZE)(input, target).backward()
    assert torch.isfinite(input.grad).all() and input.grad.abs().sum() > 0


def test_perceptual_off_warns_once_and_is_recorded(caplog):
    loss = CAPFrameLoss(**SIZE)  # building it (as modalities.py does at import) logs nothing
    assert caplog.records == []
    assert loss.perceptual_enabled is False
    assert "perceptual_term=off (no perceptual_weights_path)" in repr(loss)
    target, input = _frames(), _distort(_frames(), 30)
    with caplog.at_level(logging.WARNING, logger="poyocap_plugin.losses"):
        loss(input, target)
        loss(input, target)
        loss.terms(input, target)
    warnings = [r for r in caplog.records if "perceptual term is OFF" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "perceptual" not in loss.terms(input, target)


def test_perceptual_weight_zero_is_off_without_warning(caplog):
    loss = CAPFrameLoss(**SIZE, perceptual_weight=0.0)
    with caplog.at_level(logging.WARNING):
        loss(_distort(_frames(), 30), _frames())
    assert caplog.records == []
    assert "perceptual_term=off (perceptual_weight=0)" in repr(loss)


def test_perceptual_on_loads_the_saved_weights_and_stays_frozen(alexnet_weights):
    path, state = alexnet_weights
    loss = CAPFrameLoss(**SIZE, perceptual_weights_path=path)
    assert loss.perceptual_enabled and "perceptual_term=on" in repr(loss)
    network = loss.perceptual.network
    for key, value in network.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert not any(p.requires_grad for p in network.parameters())
    loss.train()
    assert not network.training
    before = {k: v.clone() for k, v in network.state_dict().items()}
    input = _distort(_frames(), 30).requires_grad_()
    loss(input, _frames()).backward()
    assert input.grad.abs().sum() > 0
    assert all(p.grad is None for p in network.parameters())
    for key, value in network.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_perceptual_follows_to(alexnet_weights):
    loss = CAPFrameLoss(**SIZE, perceptual_weights_path=alexnet_weights[0]).to(torch.float64)
    assert loss.perceptual.mean.dtype == torch.float64
    assert loss.perceptual.network.features[0].weight.dtype == torch.float64
    assert torch.isfinite(loss(_distort(_frames(), 30), _frames()))


@pytest.mark.parametrize(
    "content, error, match",
    [
        (None, FileNotFoundError, r"perceptual_weights_path '.*missing.pth' does not exist"),
        ([1, 2, 3], ValueError, r"holds a list, not a state_dict"),
        (
            {"features.0.weight": torch.zeros(64, 3, 11, 11)},
            ValueError,
            r"lacks the keys \['features.0.bias', 'features.3.weight', 'features.3.bias'\]",
        ),
        (
            {
                "features.0.weight": torch.zeros(64, 3, 7, 7),
                "features.0.bias": torch.zeros(64),
                "features.3.weight": torch.zeros(192, 64, 5, 5),
                "features.3.bias": torch.zeros(192),
            },
            ValueError,
            r"features.0.weight has shape \(64, 3, 7, 7\), expected \(64, 3, 11, 11\)",
        ),
        (b"not a checkpoint", ValueError, r"is not a loadable torch state_dict"),
    ],
)
def test_perceptual_weights_file_errors_name_the_file(tmp_path, content, error, match):
    path = tmp_path / "missing.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(error, match=match):
        PerceptualFeatureLoss(**SIZE, weights_path=path)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(l1_weight=-1.0), "l1_weight must be a finite number >= 0; got -1.0"),
        (dict(fft_weight=float("nan")), "fft_weight must be a finite number >= 0; got nan"),
        (
            dict(focal_weight=0, l1_weight=0, fft_weight=0, perceptual_weight=0, ssim_weight=0),
            "every term weight is 0",
        ),
        (
            dict(perceptual_weight=0.0, perceptual_weights_path="w.pth"),
            "perceptual_weights_path='w.pth' is set but perceptual_weight=0",
        ),
        (dict(focal_gamma=-1.0), "focal gamma must be >= 0; got -1.0"),
        (dict(fft_high_frequency_weight=-2.0), "high_frequency_weight must be >= 0; got -2.0"),
        (dict(ssim_kernel_size=4), "kernel_size must be a positive odd integer; got 4"),
        (dict(height=0), r"CAPFrameLoss: height must be a positive integer \(pixels\); got 0"),
        (dict(width=32.0), r"CAPFrameLoss: width must be a positive integer \(pixels\); got 32.0"),
        (dict(height=8, width=16), "SSIMLoss needs frames of at least kernel_size=11 pixels"),
    ],
)
def test_cap_frame_loss_rejects_bad_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CAPFrameLoss(**(SIZE | kwargs))


@pytest.mark.parametrize(
    "input_shape, target_shape, weights, match",
    [
        ((4, 16, 32), (3, 16, 32), None, "same batch size; got 4 and 3"),
        ((4, 16, 32), (4, 16, 30), None, r"CAPFrameLoss target: expected 16x32 frames"),
        ((4, 1, 16, 32), (4, 1, 16, 32), None, r"got shape \(4, 1, 16, 32\)"),
        ((4, 16, 32), (4, 16, 32), torch.ones(4, 1), r"weights must have shape \(4,\)"),
        ((4, 8, 64), (4, 8, 64), None, r"CAPFrameLoss input: expected 16x32 frames"),
    ],
)
def test_frame_losses_reject_misshapen_input(input_shape, target_shape, weights, match):
    with pytest.raises(ValueError, match=match):
        CAPFrameLoss(**SIZE)(torch.zeros(input_shape), torch.zeros(target_shape), weights)


def test_perceptual_rejects_frames_too_small(alexnet_weights):
    with pytest.raises(ValueError, match="at least 15 pixels a side; got 8x16"):
        PerceptualFeatureLoss(height=8, width=16, weights_path=alexnet_weights[0])


@pytest.mark.parametrize("term", [*TERMS, CAPFrameLoss])
def test_a_wrong_flattened_size_raises_naming_the_expected_frame_size(term):
    """512 pixels could be 16x32 or 8x64: the size given decides, nothing is guessed."""
    size = (
        dict(height=16, width=32) if term in (SSIMLoss, CAPFrameLoss) else dict(height=8, width=64)
    )
    loss = term(**size)  # SSIM needs 11 pixels a side
    loss(torch.zeros(2, 512), torch.zeros(2, 512))  # the right size passes
    name, (height, width) = term.__name__, (loss.height, loss.width)
    match = (
        rf"{name} input: expected {height}x{width} frames, of shape \(N, {height}, {width}\) "
        rf"or flattened \(N, {height * width}\); got shape \(2, 500\)"
    )
    with pytest.raises(ValueError, match=match):
        loss(torch.zeros(2, 500), torch.zeros(2, 500))


def test_frames_of_another_height_and_width_are_refused_even_with_as_many_pixels():
    with pytest.raises(ValueError, match=r"PixelL1Loss input: expected 16x32 frames.*\(2, 8, 64\)"):
        PixelL1Loss(**SIZE)(torch.zeros(2, 8, 64), torch.zeros(2, 8, 64))
