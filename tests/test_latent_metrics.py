"""Stage-1 validation metrics: R^2 of known inputs, effective rank, the collapse warning."""

import logging

import pytest
import torch

from poyocap_plugin.latent_metrics import (
    MaskedLatentR2,
    MaskedLatentTargetRank,
    effective_rank,
    r2_score,
)
from poyocap_plugin.losses import MASKED_LATENT_BLOCKS


def pack(reconstruction, target, window_mean=None, copy_forward=None, position_mean=None):
    blocks = {"reconstruction": reconstruction, "target": target}
    for name, block in (
        ("window_mean", window_mean),
        ("copy_forward", copy_forward),
        ("position_mean", position_mean),
    ):
        blocks[name] = torch.zeros_like(target) if block is None else block
    return torch.cat([blocks[name] for name in MASKED_LATENT_BLOCKS], dim=1)


def test_r2_of_known_predictions():
    target = torch.tensor([[1.0, 0.0], [3.0, 4.0]])  # total sum of squares: 2 + 8 = 10
    assert r2_score(target, target) == pytest.approx(1.0)
    assert r2_score(target.mean(0).expand_as(target), target) == pytest.approx(0.0)
    assert r2_score(target + 1.0, target) == pytest.approx(1 - 4 / 10)
    assert r2_score(torch.ones(2, 2), torch.ones(2, 2)) == 0.0  # no variance to explain


def test_effective_rank_counts_equal_directions():
    line = torch.tensor([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
    assert effective_rank(line) == pytest.approx(1.0)
    square = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert effective_rank(square) == pytest.approx(2.0)
    assert effective_rank(torch.ones(3, 2)) == 0.0


def test_metric_scores_each_predictor_over_every_update():
    target = torch.tensor([[1.0, 0.0], [3.0, 4.0], [2.0, 2.0], [0.0, 1.0]])
    rows = pack(
        target,
        target,
        window_mean=target.mean(0).expand_as(target),
        copy_forward=-target,
        position_mean=target + 1.0,
    )
    scores = {}
    for predictor in ("reconstruction", "window_mean", "copy_forward", "position_mean"):
        metric = MaskedLatentR2(predictor=predictor)
        metric.update(rows[:2], torch.zeros(2))
        metric.update(rows[2:], torch.zeros(2))
        scores[predictor] = metric.compute().item()
    assert scores["reconstruction"] == pytest.approx(1.0)
    assert scores["window_mean"] == pytest.approx(0.0, abs=1e-6)
    assert scores["copy_forward"] < 0
    # every entry off by 1: 8 squared errors over a total sum of squares of 5 + 8.75
    assert scores["position_mean"] == pytest.approx(1 - 8 / 13.75)


def test_collapsed_targets_are_warned(caplog):
    target = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])  # effective rank 1
    metric = MaskedLatentR2()
    metric.update(pack(target, target), torch.zeros(3))
    with caplog.at_level(logging.INFO, logger="poyocap_plugin.latent_metrics"):
        metric.compute()
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "effective rank 1.00 of 2 (collapsed)" in record.getMessage()


@pytest.mark.parametrize(
    "preds, target, match",
    [
        (torch.zeros(3, 6), torch.zeros(3), r"packed rows of shape \(N, 5D\); got \(3, 6\)"),
        (torch.zeros(3, 10), torch.zeros(2), "same length; got 3 and 2"),
    ],
)
def test_misshapen_rows_are_refused(preds, target, match):
    with pytest.raises(ValueError, match=match):
        MaskedLatentR2().update(preds, target)


def test_unknown_predictor_is_refused():
    with pytest.raises(ValueError, match="predictor must be one of"):
        MaskedLatentR2(predictor="target")


def test_target_rank_metric_is_the_effective_rank_of_the_targets():
    square = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    metric = MaskedLatentTargetRank()
    assert metric.compute().item() == 0.0  # nothing seen yet
    metric.update(pack(torch.zeros_like(square), square), torch.zeros(4))
    assert metric.compute().item() == pytest.approx(2.0)


def test_each_predictor_has_its_own_name():
    """torch_brain's evaluator keys a recording's metrics by str(metric)."""
    names = {str(MaskedLatentR2(predictor=p)) for p in ("reconstruction", "window_mean")}
    assert names == {
        "MaskedLatentR2(predictor=reconstruction)",
        "MaskedLatentR2(predictor=window_mean)",
    }
