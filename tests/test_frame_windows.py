import h5py
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from temporaldata import Data
from torch_brain.data import Dataset
from torch_brain.data.sampler import (
    DistributedStitchingFixedWindowSampler,
    RandomFixedWindowSampler,
)

from poyocap_plugin.frame_windows import frame_sampling_intervals
from poyocap_plugin.movie import MovieFrameTargets

from conftest import write_calcium_session

WINDOW_S = 0.033
MODIFIER = (
    "from poyocap_plugin.frame_windows import frame_sampling_intervals\n"
    "sampling_intervals = frame_sampling_intervals(\n"
    f"    data, sampling_intervals, window_s={WINDOW_S}\n"
    ")\n"
)


@pytest.fixture(scope="module")
def movie_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("movie")
    write_calcium_session(root, session_id="800000", natural_movie_repeats=4, movie_frames=10)
    template = root / "allen_brain_observatory_calcium" / "templates" / "natural_movie_one.h5"
    template.parent.mkdir()
    with h5py.File(template, "w") as f:
        f["frames"] = np.random.default_rng(0).integers(0, 256, (10, 8, 16), dtype=np.uint8)
    return root


def _dataset(root, split):
    config = OmegaConf.create(
        [
            {
                "selection": [{"brainset": "allen_brain_observatory_calcium"}],
                "config": {"sampling_intervals_modifier": MODIFIER},
            }
        ]
    )
    template = root / "allen_brain_observatory_calcium" / "templates" / "natural_movie_one.h5"
    return Dataset(
        root=str(root),
        config=config,
        split=split,
        transform=MovieFrameTargets(template_path=template, height=8, width=16),
    )


def test_one_interval_per_frame_of_the_split(movie_root):
    data = Data.load(movie_root / "allen_brain_observatory_calcium" / "800000.h5")
    intervals = frame_sampling_intervals(data, data.test_domain, window_s=WINDOW_S)
    test_frames = np.asarray(data.natural_movie_one.repeat) == 3
    onsets = np.asarray(data.natural_movie_one.start)[test_frames]
    np.testing.assert_allclose(intervals.start, onsets - WINDOW_S / 4)
    assert np.all(intervals.end - intervals.start >= WINDOW_S)
    assert np.all(intervals.start[1:] >= intervals.end[:-1])  # sorted, disjoint


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_window_holds_one_two_photon_frame_and_its_movie_frame(movie_root, split):
    dataset = _dataset(movie_root, split)
    intervals = dataset.get_sampling_intervals()
    sampler = RandomFixedWindowSampler(
        sampling_intervals=intervals,
        window_length=WINDOW_S,
        generator=torch.Generator().manual_seed(0),
    )
    frames = []
    template = dataset.transform.frames
    for index in sampler:
        sample = dataset[index]
        assert sample.calcium_traces.df_over_f.shape[0] == 1
        (frame,) = sample.natural_movie_one.frame
        np.testing.assert_array_equal(sample.natural_movie_one.image[0], template[frame].ravel())
        frames.append(frame)
    expected = 10 * (2 if split == "train" else 1)
    assert len(frames) == expected and sorted(set(frames)) == list(range(10))


def test_evaluation_scores_every_test_frame(movie_root):
    dataset = _dataset(movie_root, "test")
    sampler = DistributedStitchingFixedWindowSampler(
        sampling_intervals=dataset.get_sampling_intervals(),
        window_length=WINDOW_S,
        step=WINDOW_S / 2,
        batch_size=4,
        num_replicas=1,
        rank=0,
    )
    midpoints = set()
    for index in sampler:
        sample = dataset[index]
        midpoints.update(
            np.round(sample.natural_movie_one.timestamps + sample.absolute_start, 6).tolist()
        )
    data = Data.load(movie_root / "allen_brain_observatory_calcium" / "800000.h5")
    test = np.asarray(data.natural_movie_one.repeat) == 3
    expected = np.round(np.asarray(data.natural_movie_one.timestamps)[test], 6)
    assert midpoints == set(expected.tolist())


def test_a_window_longer_than_a_two_photon_frame_is_refused(movie_root):
    data = Data.load(movie_root / "allen_brain_observatory_calcium" / "800000.h5")
    with pytest.raises(ValueError, match=r"window_s=0.05 s must be shorter than one 2-photon"):
        frame_sampling_intervals(data, data.train_domain, window_s=0.05)
    with pytest.raises(ValueError, match="too short to reach the midpoint"):
        frame_sampling_intervals(data, data.train_domain, window_s=0.02)
