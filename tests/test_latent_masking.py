import numpy as np
import pytest
import torch

from poyocap_plugin.nn import LatentMasking


def test_causal_mask_covers_the_last_bins():
    masking = LatentMasking(dim=4, ratio=0.5, kind="causal")
    mask = masking.select(num_bins=8, num_latents_per_bin=4)
    np.testing.assert_array_equal(mask, np.arange(32) >= 16)
    quarter = LatentMasking(dim=4, ratio=0.25).select(num_bins=8, num_latents_per_bin=4)
    np.testing.assert_array_equal(quarter, np.arange(32) >= 24)


def test_random_mask_has_a_fixed_count_and_is_seeded():
    draws = [
        LatentMasking(dim=4, kind="random", seed=3).select(num_bins=8, num_latents_per_bin=4)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(draws[0], draws[1])
    masking = LatentMasking(dim=4, kind="random", seed=3)
    first, second = (masking.select(num_bins=8, num_latents_per_bin=4) for _ in range(2))
    assert first.sum() == second.sum() == 16
    assert not np.array_equal(first, second)  # a new draw for every window


def test_forward_replaces_the_masked_latents_by_the_token_plus_their_id():
    masking = LatentMasking(dim=3)
    latents = torch.randn(2, 4, 3)
    ids = torch.randn(2, 4, 3)
    mask = torch.tensor([[False, False, True, True], [True, False, False, False]])
    out = masking(latents, mask, ids)
    torch.testing.assert_close(out[~mask], latents[~mask])
    torch.testing.assert_close(out[mask], masking.mask_token + ids[mask])
    # two masked latents with different ids stay apart
    assert not torch.allclose(out[0, 2], out[0, 3])


def test_reference_is_detached_unless_shared():
    latents = torch.randn(2, 3, requires_grad=True)
    assert not LatentMasking(dim=3).reference(latents).requires_grad
    assert not LatentMasking(dim=3, target="ema").reference(latents).requires_grad
    assert LatentMasking(dim=3, target="shared").reference(latents).requires_grad


def test_normalized_target_is_layer_normed_per_latent():
    latents = torch.tensor([[1.0, 2.0, 3.0, 6.0], [10.0, 10.0, 10.0, 14.0]])
    target = LatentMasking(dim=4, normalize_target=True).reference(latents)
    torch.testing.assert_close(target.mean(-1), torch.zeros(2))
    torch.testing.assert_close(target.var(-1, unbiased=False), torch.ones(2), atol=1e-4, rtol=0)
    torch.testing.assert_close(LatentMasking(dim=4).reference(latents), latents)


def _input_target(masking: LatentMasking, values: list[float], **overrides) -> torch.Tensor:
    """Tokens of units 1, 2, 1, 1 and a padding token, in two bins of two latents."""
    tokens = dict(
        input_unit_index=torch.tensor([[1, 2, 1, 1, 0]]),
        input_values=torch.tensor(values).view(1, 5, 1),
        input_timestamps=torch.tensor([[0.1, 0.2, 0.6, 0.15, 0.1]]),
        input_mask=torch.tensor([[True, True, True, True, False]]),
        latent_timestamps=torch.tensor([[0.125, 0.125, 0.625, 0.625]]),
        num_latents_per_bin=2,
        num_units=3,
    )
    return masking.input_target(**{**tokens, **overrides})


def test_input_target_is_each_bins_activity_through_a_fixed_projection():
    masking = LatentMasking(dim=4, target="input")
    target = _input_target(masking, [2.0, 3.0, 1.0, 4.0, 50.0])
    assert target.shape == (1, 4, 4) and not target.requires_grad
    # the latents of a bin share their bin's target
    torch.testing.assert_close(target[0, 0], target[0, 1])
    torch.testing.assert_close(target[0, 2], target[0, 3])
    # bin 0: units 1 (2.0, 4.0) and 2 (3.0), the padding token not counted; bin 1: unit 1
    r = masking._unit_projection
    assert r.shape == (3, 4)
    torch.testing.assert_close(target[0, 0], (3.0 * r[1] + 3.0 * r[2]) / 2**0.5)
    torch.testing.assert_close(target[0, 2], 1.0 * r[1])
    # the units' vectors differ; the projection is fixed: a new module draws the same one
    assert not torch.allclose(r[1], r[2])
    again = _input_target(LatentMasking(dim=4, target="input"), [2.0, 3.0, 1.0, 4.0, 50.0])
    torch.testing.assert_close(again, target)
    # and it is linear in the activity
    torch.testing.assert_close(_input_target(masking, [4.0, 6.0, 2.0, 8.0, 0.0]), 2 * target)


def test_ema_decay_follows_a_cosine_from_start_to_end():
    masking = LatentMasking(
        dim=4, target="ema", ema_decay=0.9, ema_decay_end=1.0, ema_anneal_steps=10
    )
    assert masking.decay_at(0) == pytest.approx(0.9)
    assert masking.decay_at(5) == pytest.approx(0.95)
    assert masking.decay_at(10) == pytest.approx(1.0)
    assert masking.decay_at(50) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ratio=1.0), r"masking.ratio must be in \(0, 1\); got 1.0"),
        (dict(kind="future"), "masking.kind must be 'causal' or 'random'; got 'future'"),
        (
            dict(target="teacher"),
            r"masking.target must be one of \('detached', 'shared', 'ema', 'input'\); "
            "got 'teacher'",
        ),
        (dict(ema_decay=1.5), r"masking.ema_decay must be in \[0, 1\]; got 1.5"),
        (dict(ema_anneal_steps=0), "masking.ema_anneal_steps must be >= 1; got 0"),
    ],
)
def test_invalid_options_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LatentMasking(dim=4, **kwargs)


def test_a_ratio_that_masks_nothing_is_refused():
    with pytest.raises(ValueError, match="masks 0 of 8 latents"):
        LatentMasking(dim=4, ratio=0.1).select(num_bins=2, num_latents_per_bin=4)
