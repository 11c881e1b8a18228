import copy
import pickle

import h5py
import numpy as np
import pytest
from PIL import Image
from temporaldata import Data, Interval
from torch_brain.nn.multitask_readout import prepare_for_multitask_readout
from torch_brain.registry import MODALITY_REGISTRY

import poyocap_plugin.modalities  # noqa: F401  (registers natural_movie_one_image)
import poyocap_plugin.movie as movie
from poyocap_plugin.brainset import TEMPLATE_RELATIVE_PATH
from poyocap_plugin.movie import TEMPLATE_DATASET, MovieFrameTargets
from poyocap_plugin.workflow.simulate import natural_movie_one_template

N_TEMPLATE_FRAMES = 12
STORED_HW = (32, 64)
FRAME_S = 1 / 30  # one NM1 frame lasts ~33 ms


@pytest.fixture(scope="module")
def template() -> np.ndarray:
    return natural_movie_one_template(
        seed=0, height=STORED_HW[0], width=STORED_HW[1], n_frames=N_TEMPLATE_FRAMES
    )


@pytest.fixture
def template_path(tmp_path, template):
    """The template file as the brainset pipeline stores it (nm1_template.py)."""
    path = tmp_path / TEMPLATE_RELATIVE_PATH
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as f:
        f.create_dataset(TEMPLATE_DATASET, data=template, chunks=(1, *STORED_HW))
        f.attrs["height"], f.attrs["width"] = STORED_HW
    return path


def _session(frames: np.ndarray) -> Data:
    """A session showing the given template frames back to back from t = 1 s."""
    start = 1.0 + np.arange(len(frames)) * FRAME_S
    return Data(
        session=Data(id="900001"),
        natural_movie_one=Interval(
            start=start,
            end=start + FRAME_S,
            timestamps=start + FRAME_S / 2,
            frame=frames.astype(np.int64),
            repeat=np.zeros(len(frames), dtype=np.int64),
            timekeys=["start", "end", "timestamps"],
        ),
        domain=Interval(start=np.array([0.0]), end=np.array([1.0 + len(frames) * FRAME_S + 1])),
    )


def _window(data: Data, presentation: int) -> Data:
    """The sliced window starting at a presentation's start, one 2-photon frame long."""
    start = data.natural_movie_one.start[presentation]
    return data.slice(start + 1e-4, start + 0.9 * FRAME_S)


def test_frame_index_gives_the_exact_template_frame(template_path, template):
    data = _session(np.array([3, 7, 7, 0, 11]))
    transform = MovieFrameTargets(template_path=template_path, height=32, width=64)
    for presentation, frame in enumerate([3, 7, 7, 0, 11]):
        window = transform(_window(data, presentation))
        image = window.natural_movie_one.image
        assert window.natural_movie_one.frame.tolist() == [frame]
        assert image.dtype == np.float32 and image.shape == (1, 32 * 64)
        np.testing.assert_array_equal(image[0].reshape(32, 64), template[frame])


def test_presentations_whose_midpoint_lies_in_the_window_get_their_images(template_path, template):
    data = _session(np.arange(6))
    # overlaps frames 1-3; midpoints of 1 and 2 inside, frame 3's at the (open) end
    window = data.slice(1.0 + 1.5 * FRAME_S, 1.0 + 3.5 * FRAME_S)
    assert len(window.natural_movie_one) == 3
    MovieFrameTargets(template_path=template_path, height=32, width=64)(window)
    np.testing.assert_array_equal(window.natural_movie_one.frame, [1, 2])
    np.testing.assert_array_equal(window.natural_movie_one.image, template[[1, 2]].reshape(2, -1))


def test_a_window_without_presentations_gets_no_images(template_path):
    data = _session(np.arange(4))
    window = MovieFrameTargets(template_path=template_path, height=32, width=64)(
        data.slice(0.0, 0.5)
    )
    assert window.natural_movie_one.image.shape == (0, 32 * 64)


def test_changes_data_in_place_and_returns_it(template_path):
    window = _window(_session(np.arange(3)), 1)
    assert MovieFrameTargets(template_path=template_path, height=32, width=64)(window) is window


def test_resizes_with_lanczos_when_the_model_size_differs(template_path, template):
    transform = MovieFrameTargets(template_path=template_path, height=16, width=32)
    window = transform(_window(_session(np.array([5, 9])), 1))
    expected = Image.fromarray(template[9]).resize((32, 16), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(
        window.natural_movie_one.image.reshape(16, 32), np.asarray(expected)
    )
    assert transform.frames.shape == (N_TEMPLATE_FRAMES, 16, 32)


def test_lazy_window_from_hdf5(template_path, template, tmp_path):
    session_path = tmp_path / "900001.h5"
    with h5py.File(session_path, "w") as f:
        _session(np.array([4, 2, 8])).to_hdf5(f)
    transform = MovieFrameTargets(template_path=template_path, height=32, width=64)
    with h5py.File(session_path, "r") as f:
        window = transform(_window(Data.from_hdf5(f, lazy=True), 2))
        np.testing.assert_array_equal(
            window.get_nested_attribute("natural_movie_one.image"), template[[8]].reshape(1, -1)
        )


def test_template_is_read_once_per_process_and_never_pickled(template_path, monkeypatch):
    opened = []
    real_file = h5py.File

    def counting_file(path, *args, **kwargs):
        opened.append(str(path))
        return real_file(path, *args, **kwargs)

    monkeypatch.setattr(movie.h5py, "File", counting_file)
    data = _session(np.arange(5))
    transform = MovieFrameTargets(template_path=template_path, height=16, width=32)
    assert opened == []  # building it reads nothing
    for presentation in range(5):
        transform(_window(data, presentation))
    assert opened == [str(template_path)]

    # A DataLoader worker receives the transform pickled: without the frames, read anew.
    payload = pickle.dumps(transform)
    assert len(payload) < 1000
    worker_copy = pickle.loads(payload)
    for presentation in range(5):
        worker_copy(_window(data, presentation))
    assert opened == [str(template_path)] * 2
    assert copy.copy(worker_copy).template_path == template_path


def test_prepare_for_multitask_readout_finds_the_images(template_path, template):
    """value_key of the registered natural_movie_one_image modality picks the images up."""
    window = _window(_session(np.array([6, 1])), 1)
    MovieFrameTargets(template_path=template_path, height=32, width=64)(window)
    window.config = {"multitask_readout": [{"readout_id": "natural_movie_one_image"}]}
    timestamps, values, readout_index, weights, eval_mask = prepare_for_multitask_readout(
        window, MODALITY_REGISTRY
    )
    image = values["natural_movie_one_image"]
    assert image.dtype == np.float32 and image.shape == (1, 32 * 64)
    np.testing.assert_array_equal(image, template[[1]].reshape(1, -1))
    assert readout_index.tolist() == [MODALITY_REGISTRY["natural_movie_one_image"].id]


def test_missing_template_names_the_file(tmp_path):
    path = tmp_path / TEMPLATE_RELATIVE_PATH
    transform = MovieFrameTargets(template_path=path, height=16, width=32)
    with pytest.raises(FileNotFoundError, match=rf"template '{path}' does not exist"):
        transform(_window(_session(np.arange(2)), 0))


def test_larger_size_than_stored_names_the_file_and_the_fix(template_path):
    transform = MovieFrameTargets(template_path=template_path, height=64, width=128)
    match = (
        r"natural_movie_one.h5' is stored at 32x64 and cannot give 64x128"
        r".*--template-size 64 128"
    )
    with pytest.raises(ValueError, match=match):
        transform(_window(_session(np.arange(2)), 0))


def test_template_without_frames_dataset_names_the_file(tmp_path):
    path = tmp_path / "template.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("movie", data=np.zeros((2, 4, 8), dtype=np.uint8))
    transform = MovieFrameTargets(template_path=path, height=4, width=8)
    with pytest.raises(KeyError, match=r"template.h5' has no dataset 'frames' \(found \['movie'\]"):
        transform(_window(_session(np.arange(2)), 0))


def test_template_of_wrong_dtype_names_the_file(tmp_path):
    path = tmp_path / "template.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("frames", data=np.zeros((2, 4, 8), dtype=np.float32))
    transform = MovieFrameTargets(template_path=path, height=4, width=8)
    with pytest.raises(
        ValueError, match=r"template.h5'.*uint8; got shape \(2, 4, 8\), dtype float32"
    ):
        transform(_window(_session(np.arange(2)), 0))


def test_frame_index_outside_the_template_names_it(template_path):
    data = _session(np.array([2, N_TEMPLATE_FRAMES + 3]))
    transform = MovieFrameTargets(template_path=template_path, height=32, width=64)
    match = (
        r"session '900001'.*indices \[15\] lie outside the 12 frames of template "
        r"'.*natural_movie_one.h5'"
    )
    with pytest.raises(ValueError, match=match):
        transform(_window(data, 1))


def test_window_without_natural_movie_one_is_an_error(template_path):
    data = Data(
        session=Data(id="900002"), domain=Interval(start=np.array([0.0]), end=np.array([1.0]))
    )
    transform = MovieFrameTargets(template_path=template_path, height=32, width=64)
    with pytest.raises(KeyError, match=r"needs data.natural_movie_one.frame.*session '900002'"):
        transform(data)


@pytest.mark.parametrize("key, value", [("height", 0), ("width", 2.5), ("height", True)])
def test_rejects_bad_sizes(template_path, key, value):
    kwargs = {"height": 16, "width": 32, key: value}
    with pytest.raises(ValueError, match=rf"{key} must be a positive number of pixels; got"):
        MovieFrameTargets(template_path=template_path, **kwargs)
