import math

import pytest
import torch
from torch_brain.utils.stitcher import stitch
from torchmetrics.functional.image import structural_similarity_index_measure
from torchmetrics.utilities.data import dim_zero_sum

from poyocap_plugin.metrics import MAX_PSNR_DB, MoviePSNR, MovieSSIM, PixelCorrelation

METRICS = [MovieSSIM, MoviePSNR, PixelCorrelation]
SIZE = dict(height=16, width=32)  # the test frames' size (pixels)


def _frames(n: int, seed: int, height: int = 16, width: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, 4, 8, generator=generator) * 255
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear")
    return smooth[:, 0]


def _noisy(frames: torch.Tensor, amount: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (frames + amount * torch.randn(frames.shape, generator=generator)).clamp(0, 255)


def _per_frame_ssim(preds, target):
    return structural_similarity_index_measure(
        preds[:, None].double(), target[:, None].double(), data_range=255.0, reduction="none"
    )


@pytest.mark.parametrize("metric_cls", METRICS)
def test_metrics_are_higher_is_better_and_ddp_summed(metric_cls):
    metric = metric_cls(**SIZE)
    assert metric.higher_is_better is True
    assert metric.full_state_update is False
    assert metric._reductions.keys() == {"score_sum", "num_frames"}
    assert all(fx is dim_zero_sum for fx in metric._reductions.values())  # "sum" across ranks


def test_ssim_is_one_on_identical_frames():
    frames = _frames(3, seed=0)
    metric = MovieSSIM(**SIZE)
    metric.update(frames, frames.clone())
    assert metric.compute().item() == pytest.approx(1.0)


def test_ssim_matches_torchmetrics_functional_with_data_range_255():
    target = _frames(4, seed=0)
    preds = _noisy(target, 30, seed=1)
    metric = MovieSSIM(**SIZE)
    metric.update(preds, target)
    expected = structural_similarity_index_measure(
        preds[:, None], target[:, None], data_range=255.0, reduction="elementwise_mean"
    )
    assert metric.compute().item() == pytest.approx(expected.item(), rel=1e-5)


def test_ssim_data_range_is_fixed_not_inferred_from_the_batch():
    """Dark, low-contrast frames: an inferred range would change C1, C2 and the score."""
    target = _frames(2, seed=0) * 0.1
    preds = _noisy(target, 3, seed=1)
    metric = MovieSSIM(**SIZE)
    metric.update(preds, target)
    inferred = structural_similarity_index_measure(preds[:, None], target[:, None])
    fixed = _per_frame_ssim(preds, target).mean()
    assert metric.compute().item() == pytest.approx(fixed.item(), rel=1e-6)
    assert abs(fixed.item() - inferred.item()) > 1e-3


def test_every_frame_counts_once_across_updates():
    """The mean is over frames, not over update calls of different sizes."""
    target = _frames(5, seed=0)
    preds = _noisy(target, 40, seed=1)
    metric = MovieSSIM(**SIZE)
    metric.update(preds[:2], target[:2])
    metric.update(preds[2:], target[2:])
    metric.update(preds[:0], target[:0])  # a sequence with no frames adds nothing
    assert metric.num_frames.item() == 5
    per_frame = _per_frame_ssim(preds, target)
    assert metric.compute().item() == pytest.approx(per_frame.mean().item(), rel=1e-9)
    batch_means = (per_frame[:2].mean() + per_frame[2:].mean()) / 2
    assert abs(metric.compute().item() - batch_means.item()) > 1e-6


def test_recordings_are_averaged_after_their_frames():
    """One metric per recording (as the stitch evaluator keeps them), then a plain mean."""
    frames = {"rec_a": _frames(1, seed=0), "rec_b": _frames(3, seed=1)}
    per_recording = {}
    for recording, target in frames.items():
        metric = MovieSSIM(**SIZE)
        metric.update(_noisy(target, 50, seed=2), target)
        per_recording[recording] = metric.compute().item()
        assert metric.num_frames.item() == len(target)
    expected_a = _per_frame_ssim(_noisy(frames["rec_a"], 50, seed=2), frames["rec_a"]).mean()
    assert per_recording["rec_a"] == pytest.approx(expected_a.item())
    average = sum(per_recording.values()) / 2
    pooled = MovieSSIM(**SIZE)
    for target in frames.values():
        pooled.update(_noisy(target, 50, seed=2), target)
    assert average != pytest.approx(pooled.compute().item())


@pytest.mark.parametrize("metric_cls", METRICS)
def test_ddp_style_merge_equals_one_process(metric_cls):
    target = _frames(6, seed=0)
    preds = _noisy(target, 30, seed=1)
    rank0, rank1, single = metric_cls(**SIZE), metric_cls(**SIZE), metric_cls(**SIZE)
    rank0.update(preds[:4], target[:4])
    rank1.update(preds[4:], target[4:])
    single.update(preds, target)
    # what dist_reduce_fx="sum" does across ranks
    summed = {name: getattr(rank0, name) + getattr(rank1, name) for name in rank0._defaults}
    rank0.merge_state(rank1)
    assert rank0.num_frames.item() == 6 == summed["num_frames"].item()
    assert rank0.compute().item() == pytest.approx(single.compute().item(), rel=1e-9)
    assert (summed["score_sum"] / summed["num_frames"]).item() == pytest.approx(
        single.compute().item(), rel=1e-9
    )


@pytest.mark.parametrize("metric_cls", METRICS)
def test_flattened_frames_score_the_same(metric_cls):
    target = _frames(3, seed=0)
    preds = _noisy(target, 30, seed=1)
    images, flat = metric_cls(**SIZE), metric_cls(**SIZE)
    images.update(preds, target)
    flat.update(preds.flatten(1), target.flatten(1))
    assert flat.compute().item() == pytest.approx(images.compute().item(), rel=1e-9)


@pytest.mark.parametrize("metric_cls", METRICS)
def test_metrics_take_torch_brain_stitched_frames(metric_cls):
    """Flattened frames survive torch_brain's stitcher, which mean-pools shared timestamps."""
    target = _frames(3, seed=0)
    preds = _noisy(target, 30, seed=1)
    timestamps = torch.tensor([0.5, 0.5, 1.5, 2.5], dtype=torch.float64)
    pred_rows = torch.cat([preds[:1], preds]).flatten(1)  # frame 0 predicted twice
    target_rows = torch.cat([target[:1], target]).flatten(1)
    stitched_pred = stitch(timestamps, pred_rows)[1]
    stitched_target = stitch(timestamps, target_rows)[1]
    metric, reference = metric_cls(**SIZE), metric_cls(**SIZE)
    metric.update(stitched_pred, stitched_target)
    reference.update(preds, target)
    assert metric.num_frames.item() == 3
    assert metric.compute().item() == pytest.approx(reference.compute().item(), rel=1e-6)


def test_psnr_by_hand():
    target = torch.zeros(2, 16, 32)
    preds = target.clone()
    preds[0] += 25.5  # MSE 650.25 -> 10 log10(255^2 / 650.25) = 20 dB
    metric = MoviePSNR(**SIZE)
    metric.update(preds, target)
    assert metric.compute().item() == pytest.approx((20.0 + MAX_PSNR_DB) / 2)


def test_pixel_correlation_by_hand():
    target = _frames(3, seed=0)
    preds = torch.stack([0.5 * target[0] + 10, 255 - target[1], torch.full_like(target[2], 7.0)])
    metric = PixelCorrelation(**SIZE)
    metric.update(preds, target)
    assert metric.compute().item() == pytest.approx((1.0 - 1.0 + 0.0) / 3, abs=1e-9)
    half = PixelCorrelation(**SIZE)
    half.update(preds[:1], target[:1])
    assert half.compute().item() == pytest.approx(1.0)


def test_compute_before_any_frame_is_nan():
    metric = MovieSSIM(**SIZE)
    with pytest.warns(UserWarning, match="compute.*before.*update"):
        assert math.isnan(metric.compute().item())


@pytest.mark.parametrize(
    "preds_shape, target_shape, match",
    [
        ((2, 16, 32), (2, 16, 30), r"MovieSSIM target: expected 16x32 frames.*\(2, 16, 30\)"),
        ((2, 16, 32), (3, 16, 32), r"same number of frames; got 2 and 3"),
        ((2, 1, 16, 32), (2, 1, 16, 32), r"got shape \(2, 1, 16, 32\)"),
        (
            (2, 300),
            (2, 300),
            r"MovieSSIM preds: expected 16x32 frames.*\(N, 512\); got shape \(2, 300\)",
        ),
    ],
)
def test_update_rejects_misshapen_frames(preds_shape, target_shape, match):
    with pytest.raises(ValueError, match=match):
        MovieSSIM(**SIZE).update(torch.zeros(preds_shape), torch.zeros(target_shape))


def test_ssim_rejects_frames_smaller_than_its_window():
    with pytest.raises(ValueError, match="at least kernel_size=11 pixels a side; got 8x16"):
        MovieSSIM(height=8, width=16)


@pytest.mark.parametrize("metric_cls", METRICS)
def test_a_wrong_flattened_size_raises_naming_the_expected_frame_size(metric_cls):
    """512 pixels are 16x32 or 8x64: the size given decides, nothing is guessed."""
    metric = metric_cls(**SIZE)
    metric.update(torch.zeros(2, 512), torch.zeros(2, 512))
    name = metric_cls.__name__
    with pytest.raises(ValueError, match=rf"{name} preds: expected 16x32 frames.*\(2, 500\)"):
        metric.update(torch.zeros(2, 500), torch.zeros(2, 500))
    with pytest.raises(ValueError, match=rf"{name} preds: expected 16x32 frames.*\(2, 8, 64\)"):
        metric.update(torch.zeros(2, 8, 64), torch.zeros(2, 8, 64))


@pytest.mark.parametrize("metric_cls", METRICS)
def test_the_frame_size_stays_out_of_the_metric_name(metric_cls):
    """train.py keys results by str(metric); the workflow reads e.g. 'MovieSSIM()'."""
    assert str(metric_cls(**SIZE)) == f"{metric_cls.__name__}()"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kernel_size=10), "kernel_size must be a positive odd integer; got 10"),
        (dict(sigma=0.0), "sigma must be > 0; got 0.0"),
        (dict(height=-2), r"MovieSSIM: height must be a positive integer \(pixels\); got -2"),
        (dict(width=None), r"MovieSSIM: width must be a positive integer \(pixels\); got None"),
    ],
)
def test_ssim_rejects_bad_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MovieSSIM(**(SIZE | kwargs))
