"""The paper's analyses: roughness of known surfaces, the Fisher trace of logistic
regression, the landscape's directions, and both analyses end to end on checkpoints."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from poyocap_plugin.workflow.analyses import populations
from poyocap_plugin.workflow.analyses.fisher import per_sample_squared_gradient_norms, run_fisher
from poyocap_plugin.workflow.analyses.landscape import (
    filter_normalised_directions,
    loss_surface,
    run_landscape,
    trajectory_directions,
)
from poyocap_plugin.workflow.analyses.objective import (
    held_out_windows,
    loss_parameter_names,
    masked_latent_loss,
    mean_loss,
)
from poyocap_plugin.workflow.analyses.roughness import laplacian_roughness, local_minima
from poyocap_plugin.workflow.analysis_results import analyses_section, result_path
from poyocap_plugin.workflow.checkpoints import load_train_checkpoint
from poyocap_plugin.workflow.runs import StageResult

from conftest import write_stage1_checkpoint

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def grid(n):
    x = np.linspace(-1.0, 1.0, n)
    return np.meshgrid(x, x, indexing="ij"), x[1] - x[0]


class TestRoughness:
    def test_a_paraboloid_has_the_closed_form_roughness_and_one_minimum(self):
        (x, y), h = grid(21)
        bowl = x**2 + y**2
        # discrete Laplacian 4 h^2 everywhere, range 2: (4 h^2)^2 / 2^2
        assert laplacian_roughness(bowl) == pytest.approx(4 * h**4)
        assert local_minima(bowl) == 1

    def test_scale_and_offset_do_not_change_it_and_a_plane_is_smooth(self):
        (x, y), _ = grid(11)
        bowl = x**2 + y**2
        assert laplacian_roughness(7.0 * bowl + 3.0) == pytest.approx(laplacian_roughness(bowl))
        assert laplacian_roughness(2 * x - y) == pytest.approx(0.0, abs=1e-20)
        assert laplacian_roughness(np.ones((5, 5))) == 0.0

    def test_a_checkerboard_ripple_is_rougher_by_the_known_factor(self):
        n, eps = 21, 0.05
        (x, y), h = grid(n)
        i, j = np.indices((n, n))
        ripple = (-1.0) ** (i + j)
        rough = x**2 + y**2 + eps * ripple
        # the ripple's Laplacian is -8 eps (-1)^(i+j): mean of (4h^2 - 8 eps c)^2 over the
        # (n-2)^2 interior points, where c sums to 1 (odd count, starting at index 1)
        m = n - 2
        numerator = (4 * h**2) ** 2 - 2 * 4 * h**2 * 8 * eps / m**2 + 64 * eps**2
        expected = numerator / np.ptp(rough) ** 2
        assert laplacian_roughness(rough) == pytest.approx(expected)
        assert laplacian_roughness(rough) / laplacian_roughness(x**2 + y**2) > 50

    def test_an_egg_crate_has_one_minimum_per_dent(self):
        (x, y), _ = grid(41)  # step 0.05: a period of 0.4 spans 8 steps
        crate = np.cos(2 * np.pi * x / 0.4) * np.cos(2 * np.pi * y / 0.4)
        # the dents (-1): one coordinate in {-0.8, -0.4, 0, 0.4, 0.8}, the other in
        # {-0.6, -0.2, 0.2, 0.6} (the interior excludes +-1)
        assert local_minima(crate) == 2 * 5 * 4
        bowl = x**2 + y**2
        assert local_minima(bowl + 0.3 * crate) > 1
        assert laplacian_roughness(bowl + 0.3 * crate) > 100 * laplacian_roughness(bowl)

    def test_bad_surfaces_are_named(self):
        with pytest.raises(ValueError, match="at least 3 x 3, got \\(2, 5\\)"):
            laplacian_roughness(np.zeros((2, 5)))
        surface = np.zeros((4, 4))
        surface[1, 2] = np.nan
        with pytest.raises(ValueError, match="1 non-finite values"):
            local_minima(surface)


class TestFisher:
    def test_logistic_regression_matches_its_closed_form(self):
        """For l_i = BCE(sigmoid(w.x_i + b), y_i), grad = (p_i - y_i) (x_i, 1)."""
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(50, 4, generator=generator, dtype=torch.float64)
        y = (torch.rand(50, generator=generator) < 0.5).double()
        w = torch.randn(4, dtype=torch.float64, requires_grad=True, generator=generator)
        b = torch.zeros((), dtype=torch.float64, requires_grad=True)

        def loss(i):
            logit = x[i] @ w + b
            return torch.nn.functional.binary_cross_entropy_with_logits(logit, y[i])

        norms = per_sample_squared_gradient_norms(loss, [w, b], len(x))
        p = torch.sigmoid(x @ w + b).detach()
        expected = ((p - y) ** 2 * ((x**2).sum(1) + 1)).numpy()
        np.testing.assert_allclose(norms, expected, rtol=1e-10)

    def test_a_parameter_the_loss_does_not_reach_adds_nothing(self):
        w = torch.tensor([3.0], requires_grad=True)
        unused = torch.tensor([1.0], requires_grad=True)
        norms = per_sample_squared_gradient_norms(lambda i: (i * w).sum() ** 2, [w, unused], 3)
        # d/dw (i w)^2 = 2 i^2 w = 6 i^2
        np.testing.assert_allclose(norms, [0.0, 36.0, 576.0])

    def test_bad_arguments_and_a_non_finite_loss_are_named(self):
        w = torch.ones(1, requires_grad=True)
        with pytest.raises(ValueError, match="n_samples must be >= 1"):
            per_sample_squared_gradient_norms(lambda i: w.sum(), [w], 0)
        with pytest.raises(ValueError, match="no parameters"):
            per_sample_squared_gradient_norms(lambda i: w.sum(), [], 1)
        with pytest.raises(ValueError, match="the loss of sample 1 is inf"):
            per_sample_squared_gradient_norms(lambda i: w.sum() / (1 - i), [w], 2)


class TestDirections:
    def test_pca_of_a_path_in_a_plane_recovers_the_plane(self):
        e1, e2 = torch.eye(5, dtype=torch.float64)[:2]
        points = [3 * e1 + 1 * e2, 1 * e1 + 2 * e2, 0.5 * e1 - 1 * e2, torch.zeros(5).double()]
        d1, d2, coordinates, explained = trajectory_directions(points)
        plane = torch.stack((e1, e2))
        for d in (d1, d2):  # each direction lies in the plane, unit length
            assert torch.linalg.norm(plane @ d) == pytest.approx(1.0)
        assert float(d1 @ d2) == pytest.approx(0.0, abs=1e-12)
        assert explained.sum() == pytest.approx(1.0)
        # coordinates reproduce each point's offset from the end
        rebuilt = coordinates @ torch.stack((d1, d2)).numpy()
        np.testing.assert_allclose(rebuilt, torch.stack(points).numpy(), atol=1e-12)

    def test_pca_needs_two_steps(self):
        with pytest.raises(ValueError, match="at least 2 epochs"):
            trajectory_directions([torch.zeros(3), torch.ones(3)])

    def test_filter_normalised_rows_match_the_parameters_rows_and_skip_vectors(self):
        matrix = torch.tensor([[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]])
        vector = torch.ones(4)
        d1, d2 = filter_normalised_directions([matrix, vector], seed=0)
        for d in (d1, d2):
            rows = d[:6].view(3, 2)
            np.testing.assert_allclose(rows.norm(dim=1).numpy(), [5.0, 2.0, 1.0])
            assert torch.equal(d[6:], torch.zeros(4, dtype=torch.float64))
        assert not torch.equal(d1, d2)
        same, _ = filter_normalised_directions([matrix, vector], seed=0)
        assert torch.equal(same, d1)

    def test_loss_surface_samples_the_plane_and_restores_the_weights(self):
        w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        d1, d2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
        coordinates = np.array([-1.0, 0.0, 1.0])
        surface = loss_surface([w], (d1, d2), coordinates, lambda: float((w**2).sum()))
        expected = [[(1 + a) ** 2 + (-2 + b) ** 2 for b in coordinates] for a in coordinates]
        np.testing.assert_allclose(surface, expected)
        assert torch.equal(w.detach(), torch.tensor([1.0, -2.0]))


def test_held_out_windows_are_fixed_and_give_the_masked_loss(tmp_path, tiny_data_root):
    path = write_stage1_checkpoint(tmp_path / "s1.ckpt", tiny_data_root, trained=True)
    run = load_train_checkpoint(path)
    model = run.load_model()
    windows = held_out_windows(run, model, root=tiny_data_root, split="test", max_windows=5)
    again = held_out_windows(run, model, root=tiny_data_root, split="test", max_windows=5)
    assert len(windows) == 5 and windows.starts == again.starts
    recordings = {recording for recording, _ in windows.starts}
    assert recordings <= {
        "allen_brain_observatory_calcium/900000",
        "allen_brain_observatory_calcium/900001",
    }
    # the mean over windows is the per-window losses' mean (one batch or five)
    with torch.no_grad():
        per_window = [float(masked_latent_loss(model, b)) for b in windows.batches(1)]
    assert mean_loss(model, windows, batch_size=2) == pytest.approx(np.mean(per_window), rel=1e-5)
    assert all(np.isfinite(per_window))
    names = loss_parameter_names(model, windows)
    assert any(n.startswith("proc_layers.") for n in names)
    # not the vocabularies, nor what only the drifting-grating term trains
    left_out = ("unit_emb.", "session_emb.", "dec_atn.", "dec_ffn.", "readout.", "task_emb.")
    assert not any(n.startswith(left_out) for n in names)
    with pytest.raises(ValueError, match="split must be 'valid' or 'test'"):
        held_out_windows(run, model, root=tiny_data_root, split="train")


@pytest.fixture
def stage1_checkpoints(tmp_path, tiny_data_root):
    """Two populations' stage-1 "runs": three per-epoch checkpoints each, drifting away
    from the initial weights, in train.py's checkpoint layout; the last epoch's of each."""
    checkpoints = {}
    for k, population in enumerate(("predictable", "unpredictable")):
        folder = tmp_path / population / "checkpoints"
        folder.mkdir(parents=True)
        for epoch in range(3):
            path = folder / f"epoch_epoch={epoch:02d}.ckpt"
            write_stage1_checkpoint(
                path, tiny_data_root, trained=True, scale=0.02, noise_seed=10 * k + epoch
            )
        checkpoints[population] = path
    return checkpoints


def test_landscape_maps_both_populations_and_writes_its_files(
    tmp_path, tiny_data_root, stage1_checkpoints
):
    result = run_landscape(
        tmp_path / "out",
        data_root=tiny_data_root,
        checkpoints=stage1_checkpoints,
        steps=5,
        max_windows=4,
        batch_size=4,
    )
    assert set(result.landscapes) == {"predictable", "unpredictable"}
    for land in result.landscapes.values():
        assert land.surface.shape == (5, 5) and np.isfinite(land.surface).all()
        assert land.path.shape == (4, 2)  # the initial weights and three epochs
        np.testing.assert_allclose(land.path[-1], 0.0, atol=1e-9)  # centred on the end
    # one grid for both: 1.25 x the farthest point of either path
    farthest = max(np.abs(land.path).max() for land in result.landscapes.values())
    smooth, rough = result.landscapes["predictable"], result.landscapes["unpredictable"]
    np.testing.assert_array_equal(smooth.coordinates, rough.coordinates)
    assert smooth.coordinates[-1] == pytest.approx(1.25 * farthest)
    record = json.loads(result.files["json"].read_text())
    ratio = (
        result.landscapes["unpredictable"].roughness / result.landscapes["predictable"].roughness
    )
    assert record["roughness_ratio"] == pytest.approx(ratio)
    assert record["paper_roughness_ratio"] == 138.0
    rows = result.files["csv"].read_text().splitlines()
    assert rows[0] == "population,a,b,loss" and len(rows) == 1 + 2 * 25
    assert result.files["png"].read_bytes()[:8] == PNG_SIGNATURE
    assert "paper: 138x" in result.headline()
    assert record["populations"]["predictable"]["command"] is None  # given, not trained here
    # the centre of each grid is the final checkpoint's held-out loss
    final = load_train_checkpoint(stage1_checkpoints["predictable"])
    model = final.load_model()
    windows = held_out_windows(final, model, root=tiny_data_root, max_windows=4)
    assert result.landscapes["predictable"].surface[2, 2] == pytest.approx(
        mean_loss(model, windows), rel=1e-4
    )


def test_fisher_compares_populations_at_both_points(tmp_path, tiny_data_root, stage1_checkpoints):
    result = run_fisher(
        tmp_path / "out", data_root=tiny_data_root, checkpoints=stage1_checkpoints, max_windows=3
    )
    for population in ("predictable", "unpredictable"):
        f = result.populations[population]
        assert set(f.squared_norms) == {"trained", "initial"}
        assert all(len(v) == 3 and (v > 0).all() for v in f.squared_norms.values())
    expected = (
        result.populations["predictable"].trace("trained").mean
        / result.populations["unpredictable"].trace("trained").mean
    )
    assert result.ratio("trained") == pytest.approx(expected)
    record = json.loads(result.files["json"].read_text())
    assert record["ratio_predictable_over_unpredictable"]["trained"] == pytest.approx(expected)
    assert record["paper_ratio"] == 1.93
    rows = result.files["csv"].read_text().splitlines()
    assert len(rows) == 1 + 2 * 2 * 3
    assert "paper: 1.93x" in result.headline()
    assert result.files["png"].read_bytes()[:8] == PNG_SIGNATURE
    # the first window's value, by hand, at the trained and at the initial weights
    final = load_train_checkpoint(stage1_checkpoints["predictable"])
    trained = final.load_model()
    initial = final.initial_model(seed=final.config.seed, vocabularies_of=trained)
    windows = held_out_windows(final, trained, root=tiny_data_root, max_windows=3)
    names = loss_parameter_names(trained, windows)
    for point, model in (("trained", trained), ("initial", initial)):
        by_name = dict(model.named_parameters())
        loss = masked_latent_loss(model, next(windows.batches(1)))
        gradients = torch.autograd.grad(loss, [by_name[n] for n in names])
        expected = sum(float(g.pow(2).sum()) for g in gradients)
        got = result.populations["predictable"].squared_norms[point][0]
        assert got == pytest.approx(expected, rel=1e-5), point


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_landscape_and_fisher_on_the_gpu_match_the_cpu(
    tmp_path, tiny_data_root, stage1_checkpoints
):
    given = {"data_root": tiny_data_root, "checkpoints": stage1_checkpoints}
    cpu, gpu = (
        run_landscape(tmp_path / d, device=d, steps=5, max_windows=4, batch_size=4, **given)
        for d in ("cpu", "cuda")
    )
    for population, land in cpu.landscapes.items():
        on_gpu = gpu.landscapes[population]
        np.testing.assert_allclose(on_gpu.path, land.path, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(on_gpu.surface, land.surface, rtol=1e-3)
    cpu, gpu = (
        run_fisher(tmp_path / f"fisher_{d}", device=d, max_windows=3, **given)
        for d in ("cpu", "cuda")
    )
    for population, fisher in cpu.populations.items():
        for point, norms in fisher.squared_norms.items():
            on_gpu = gpu.populations[population].squared_norms[point]
            np.testing.assert_allclose(on_gpu, norms, rtol=1e-3)


def test_stage1_runs_end_at_the_last_epoch_and_keep_their_command(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for name in ("epoch_epoch=00.ckpt", "epoch_epoch=01.ckpt", "last.ckpt"):
        (folder / name).write_bytes(b"")
    trained = StageResult("poyocap/seed_0/pretrain", ("poyocap", "train"), *[folder] * 3, {}, 1.0)
    trained = replace(trained, last_checkpoint=folder / "last.ckpt")

    def fake_pretrain_runs(out_dir, **kwargs):
        return tmp_path, {"predictable": trained}

    monkeypatch.setattr(populations, "pretrain_runs", fake_pretrain_runs)
    _, runs = populations.stage1_runs(tmp_path, data_root=tmp_path, seed=0)
    assert runs == {
        "predictable": populations.Stage1Run(folder / "epoch_epoch=01.ckpt", ("poyocap", "train"))
    }


def test_given_checkpoints_are_checked_before_anything_runs(tmp_path, stage1_checkpoints):
    given = {"sst": stage1_checkpoints["predictable"], "vip": tmp_path / "missing.ckpt"}
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        populations.stage1_runs(tmp_path / "out", checkpoints=given, data_root=tmp_path, seed=0)
    with pytest.raises(ValueError, match="need the data_root they were trained on"):
        populations.stage1_runs(tmp_path / "out", checkpoints=stage1_checkpoints, seed=0)
    assert not (tmp_path / "out").exists()


def test_a_given_end_point_closes_the_path_of_the_epochs_beside_it(
    tmp_path, tiny_data_root, stage1_checkpoints
):
    folder = stage1_checkpoints["predictable"].parent
    last = write_stage1_checkpoint(folder / "last.ckpt", tiny_data_root, trained=True, scale=0.02)
    middle = folder / "epoch_epoch=01.ckpt"
    for end, length in ((last, 5), (middle, 3)):  # initial, the epochs up to it, the end
        final, models = populations.trajectory(
            populations.Stage1Run(end, None), data_root=tiny_data_root
        )
        assert final.path == end.resolve() and len(models) == length
        ends = dict(load_train_checkpoint(end).load_model().named_parameters())
        assert all(torch.equal(ends[k], v) for k, v in models[-1].named_parameters())


def test_any_named_populations_are_analysed_without_a_ratio(
    tmp_path, tiny_data_root, stage1_checkpoints
):
    given = {"sst": stage1_checkpoints["predictable"], "cux2": stage1_checkpoints["unpredictable"]}
    result = run_fisher(
        tmp_path / "out", data_root=tiny_data_root, checkpoints=given, max_windows=2
    )
    assert list(result.populations) == ["sst", "cux2"]
    assert (
        result.ratio("trained") is None and "predictable / unpredictable" not in result.headline()
    )
    record = json.loads(result.files["json"].read_text())
    assert record["populations"]["sst"]["checkpoint"] == str(given["sst"].resolve())


def test_the_report_links_the_analyses_run_on_its_data(tmp_path):
    data_root, other = tmp_path / "data", tmp_path / "other"
    record = {"data_root": str(data_root), "roughness_ratio": 3.0, "paper_roughness_ratio": 138}
    result_path(tmp_path, "landscape").write_text(json.dumps(record))
    fisher_record = {"data_root": str(other), "paper_ratio": 1.93}
    result_path(tmp_path, "fisher").write_text(json.dumps(fisher_record))
    result_path(tmp_path, "scaling").write_text("{not json")
    lines = analyses_section(tmp_path, data_root, rel=lambda p: p.name)
    assert lines[0].startswith("## Analyses on the same data")
    (linked,) = [line for line in lines if line.startswith("- ")]
    assert "roughness unpredictable / predictable 3x (paper 138x)" in linked
    assert "[landscape.json](landscape.json), [landscape.png](landscape.png)" in linked
    scaling = {"data_root": str(data_root), "monotonic": {"poyocap": {"movie_ssim": False}}}
    result_path(tmp_path, "scaling").write_text(json.dumps(scaling))
    lines = analyses_section(tmp_path, data_root, rel=lambda p: p.name)
    assert "test metric against size: poyocap movie_ssim not monotonic;" in lines[3]
    assert analyses_section(tmp_path / "empty", data_root, rel=str) == []
    with pytest.raises(ValueError, match="unknown analysis 'nope'"):
        result_path(tmp_path, "nope")


def test_random_directions_span_the_unit_square_without_a_path(
    tmp_path, tiny_data_root, stage1_checkpoints
):
    result = run_landscape(
        tmp_path / "out",
        data_root=tiny_data_root,
        checkpoints=stage1_checkpoints,
        directions="random",
        steps=3,
        max_windows=2,
        batch_size=2,
    )
    for land in result.landscapes.values():
        np.testing.assert_array_equal(land.coordinates, [-1.0, 0.0, 1.0])
        assert land.path is None and land.explained is None
        assert np.isfinite(land.surface).all()
