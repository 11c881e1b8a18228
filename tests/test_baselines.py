"""Baselines: the mean frame and ridge decoders on toys with known answers, and both
stages' baselines on the test frames and trials of a run's own dataset config."""

import shutil

import h5py
import numpy as np
import pytest
import torch
from temporaldata import Data

from poyocap_plugin.brainset import BRAINSET_ID, TEMPLATE_RELATIVE_PATH
from poyocap_plugin.workflow.baselines import (
    Baseline,
    dg_baselines,
    evaluate_movie_baselines,
    mean_frame_decoder,
    movie_split,
    movie_ssim,
    ridge_decoder,
)
from poyocap_plugin.workflow.checkpoints import load_train_checkpoint
from poyocap_plugin.workflow.probe import linear_probe_accuracy

from conftest import write_calcium_session

HEIGHT, WIDTH = 16, 32
C1 = (0.01 * 255) ** 2  # SSIM's luminance constant at data_range 255


def constant_frames(*levels: float) -> np.ndarray:
    return np.stack([np.full(HEIGHT * WIDTH, level) for level in levels])


class TestMeanFrame:
    def test_is_the_mean_of_the_training_frames(self):
        train = np.random.default_rng(0).uniform(0, 255, (5, HEIGHT * WIDTH))
        decoded = mean_frame_decoder(train, 3)
        assert decoded.shape == (3, HEIGHT * WIDTH)
        assert np.array_equal(decoded, np.tile(train.mean(axis=0), (3, 1)))

    def test_ssim_of_constant_frames_matches_a_hand_computation(self):
        """Constant frames have no contrast: SSIM is the luminance term
        (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1), here with mu_x = 150, the mean of 100
        and 200, against test frames of 100 and 220."""
        decoded = mean_frame_decoder(constant_frames(100.0, 200.0), 2)
        ssim = movie_ssim(decoded, constant_frames(100.0, 220.0), height=HEIGHT, width=WIDTH)

        def luminance(x, y):
            return (2 * x * y + C1) / (x**2 + y**2 + C1)

        assert ssim == pytest.approx((luminance(150, 100) + luminance(150, 220)) / 2, rel=1e-6)


class TestRidge:
    def test_recovers_a_linear_map(self):
        rng = np.random.default_rng(0)
        weights = rng.normal(0.0, 4.0, (6, HEIGHT * WIDTH))
        activity = rng.normal(size=(200, 6))
        frames = 128.0 + activity @ weights  # inside [0, 255] for these draws
        assert frames.min() > 0 and frames.max() < 255
        decoded = ridge_decoder(activity[:150], frames[:150], activity[150:])
        assert np.abs(decoded - frames[150:]).max() < 0.5
        assert movie_ssim(decoded, frames[150:], height=HEIGHT, width=WIDTH) > 0.999

    def test_decoded_frames_are_clipped_to_grey_levels(self):
        activity = np.arange(10.0)[:, None]
        decoded = ridge_decoder(activity, 100.0 * activity @ np.ones((1, 4)), activity + 100)
        assert decoded.max() == 255.0

    def test_shapes_are_checked(self):
        with pytest.raises(ValueError, match=r"ridge_decoder needs .*got \(4, 2\), \(3, 5\)"):
            ridge_decoder(np.zeros((4, 2)), np.zeros((3, 5)), np.zeros((1, 2)))


def test_an_unknown_baseline_is_named():
    with pytest.raises(ValueError, match="baseline 'median' is not one of"):
        Baseline("median", 0.1)
    assert Baseline("ridge", 0.2).metric == "movie_ssim"
    assert Baseline("logistic", 0.5).metric == "dg_accuracy"


# --- both stages on a run's own dataset config -------------------------------------------

MOVIE_SAMPLING = (
    "from poyocap_plugin.frame_windows import frame_sampling_intervals\n"
    "sampling_intervals = frame_sampling_intervals(data, sampling_intervals, window_s=0.033)\n"
)
DG_SAMPLING = "sampling_intervals = sampling_intervals & data.drifting_gratings.coalesce(0.3)\n"
FRAMES = 12
TEMPLATE = np.random.default_rng(0).integers(0, 256, (FRAMES, HEIGHT, WIDTH), dtype=np.uint8)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("baselines")
    for i in range(2):
        write_calcium_session(
            root, session_id=f"60000{i}", seed=i, natural_movie_repeats=4, movie_frames=FRAMES
        )
    (root / TEMPLATE_RELATIVE_PATH).parent.mkdir()
    with h5py.File(root / TEMPLATE_RELATIVE_PATH, "w") as f:
        f["frames"] = TEMPLATE
    return root


def write_run(path, data_root, *, movie: bool):
    """A checkpoint of a stage-2 run as train.py saves it; only its config is read."""
    readout = "natural_movie_one_image" if movie else "drifting_gratings_orientation"
    transforms = [
        {"_target_": "poyocap_plugin.normalize.NormalizeDfOverF"},
        {"_target_": "poyocap_plugin.neuron_sampler.NeuronSampler", "population": "unpredictable"},
    ]
    if movie:
        transforms.append(
            {
                "_target_": "poyocap_plugin.movie.MovieFrameTargets",
                "template_path": "${data_root}/" + str(TEMPLATE_RELATIVE_PATH),
                "height": HEIGHT,
                "width": WIDTH,
            }
        )
    config = {
        "model": {
            "_target_": "poyocap_plugin.models.CAPOYO",
            "sequence_length": 0.033 if movie else 1.9,
            "readouts": {readout: 1.0},
            "frame_decoder": {"height": HEIGHT, "width": WIDTH},
        },
        "data_root": str(data_root),
        "dataset": [
            {
                "selection": [{"brainset": BRAINSET_ID}],
                "config": {
                    "sampling_intervals_modifier": MOVIE_SAMPLING if movie else DG_SAMPLING,
                    "multitask_readout": [{"readout_id": readout, "metrics": []}],
                },
            }
        ],
        "eval_transforms": transforms,
    }
    torch.save({"state_dict": {}, "hyper_parameters": config}, path)
    return path


def read_session(data_root, session_id) -> Data:
    with h5py.File(data_root / BRAINSET_ID / f"{session_id}.h5", "r") as f:
        return Data.from_hdf5(f).materialize()


def test_movie_baselines_score_the_test_repeat_against_the_training_mean(data_root, tmp_path):
    """The test frames are the last repeat's; the mean frame is the mean of the training
    repeats' (0 and 1) frames of the template: the same for both recordings."""
    checkpoint = write_run(tmp_path / "movie.ckpt", data_root, movie=True)
    baselines = {b.name: b.value for b in evaluate_movie_baselines(checkpoint).baselines}
    flat = TEMPLATE.reshape(FRAMES, -1).astype(np.float64)
    expected = movie_ssim(
        mean_frame_decoder(np.concatenate([flat, flat]), FRAMES), flat, height=HEIGHT, width=WIDTH
    )
    assert list(baselines) == ["mean_frame", "ridge"]
    assert baselines["mean_frame"] == pytest.approx(expected)
    assert -1.0 <= baselines["ridge"] <= 1.0


def test_movie_baselines_keep_the_ridge_decoders_test_frames(data_root, tmp_path):
    """Per test recording, every test window's true frame (the template, in time order)
    and the ridge decoder's prediction of it, which score as the ``ridge`` baseline."""
    checkpoint = write_run(tmp_path / "movie.ckpt", data_root, movie=True)
    movie = evaluate_movie_baselines(checkpoint)
    run = load_train_checkpoint(checkpoint)
    train, test = movie_split(run, "train"), movie_split(run, "test")
    flat = TEMPLATE.reshape(FRAMES, -1).astype(np.float64)
    assert (movie.height, movie.width) == (HEIGHT, WIDTH)
    assert list(movie.ridge_frames) == [f"{BRAINSET_ID}/600000", f"{BRAINSET_ID}/600001"]
    for recording, frames in movie.ridge_frames.items():
        assert np.array_equal(frames.true, flat)
        fit = train[recording]
        expected = ridge_decoder(fit.activity, fit.frames, test[recording].activity)
        assert np.array_equal(frames.decoded, expected)
    scores = [
        movie_ssim(f.decoded, f.true, height=HEIGHT, width=WIDTH)
        for f in movie.ridge_frames.values()
    ]
    assert {b.name: b.value for b in movie.baselines}["ridge"] == pytest.approx(np.mean(scores))


def test_movie_baselines_refuse_a_dg_run(data_root, tmp_path):
    checkpoint = write_run(tmp_path / "dg.ckpt", data_root, movie=False)
    with pytest.raises(ValueError, match="is not a movie run: it has no 'natural_movie_one_image'"):
        evaluate_movie_baselines(checkpoint)


def test_dg_baselines_fit_on_training_trials_and_score_test_trials(data_root, tmp_path):
    """Logistic regression on each trial's mean dF/F of the unpredictable neurons,
    recomputed here from the stored session, averaged over the recordings."""
    checkpoint = write_run(tmp_path / "dg.ckpt", data_root, movie=False)
    baselines = {b.name: b.value for b in dg_baselines(checkpoint)}

    expected = []
    for session_id in ("600000", "600001"):
        data = read_session(data_root, session_id)
        keep = ~np.asarray(data.units.is_predictable)
        traces = np.asarray(data.calcium_traces.df_over_f)[:, keep]
        times = np.arange(len(traces)) / data.calcium_traces.sampling_rate
        trials = data.drifting_gratings

        def split(domain, trials=trials, traces=traces, times=times):
            inside = [
                np.any((domain.start < end) & (domain.end > start))
                for start, end in zip(trials.start, trials.end, strict=True)
            ]
            features = [
                traces[(times >= start) & (times < end)].mean(0)
                for start, end in zip(trials.start[inside], trials.end[inside], strict=True)
            ]
            return np.stack(features), trials.orientation_id[inside]

        expected.append(linear_probe_accuracy(*split(data.train_domain), *split(data.test_domain)))
    assert baselines == {"chance": 0.125, "logistic": pytest.approx(np.mean(expected))}
    assert baselines["logistic"] > 0.5  # each neuron prefers one direction: decodable


def test_missing_dff_reads_as_the_neurons_mean_in_the_baselines(data_root, tmp_path):
    """NormalizeDfOverF keeps a missing value NaN (the model leaves it out); the linear
    baselines read it as the neuron's mean, 0, and still score."""
    root = tmp_path / "with_nan"
    shutil.copytree(data_root, root)
    for path in (root / BRAINSET_ID).glob("*.h5"):
        with h5py.File(path, "r+") as f:
            traces = f["calcium_traces/df_over_f"]
            values = traces[()]
            values[::7, 0] = np.nan  # one neuron misses every 7th frame
            traces[...] = values
    movie = evaluate_movie_baselines(write_run(tmp_path / "movie.ckpt", root, movie=True))
    dg = dg_baselines(write_run(tmp_path / "dg.ckpt", root, movie=False))
    for baseline in [*movie.baselines, *dg]:
        assert np.isfinite(baseline.value), baseline.name
