"""Figures of decoded frames: which windows they show, and the ridge baseline's PNGs."""

import numpy as np
from PIL import Image

from poyocap_plugin.workflow.baselines import Baseline, DecodedFrames, MovieBaselines
from poyocap_plugin.workflow.render import render_ridge_frames, shown_windows


def test_shown_windows_spread_evenly_and_never_repeat():
    assert shown_windows(10, 6).tolist() == [0, 2, 4, 5, 7, 9]
    assert shown_windows(3, 8).tolist() == [0, 1, 2]  # fewer windows than asked for
    assert shown_windows(1, 8).tolist() == [0]


def test_ridge_frames_are_one_png_per_recording_with_frames(tmp_path):
    """True frames (top) over ridge frames (bottom); a recording without windows has none."""
    frames = np.linspace(0.0, 255.0, 5 * 6).reshape(5, 6)
    movie = MovieBaselines(
        baselines=(Baseline("ridge", 0.5),),
        ridge_frames={
            "allen_brain_observatory_calcium/600000": DecodedFrames(frames, 255.0 - frames),
            "allen_brain_observatory_calcium/600001": DecodedFrames(
                np.zeros((0, 6)), np.zeros((0, 6))
            ),
        },
        height=2,
        width=3,
    )
    paths = render_ridge_frames(movie, tmp_path / "ridge", frames_per_recording=3)
    assert paths == [tmp_path / "ridge" / "600000.png"]
    with Image.open(paths[0]) as image:
        assert image.format == "PNG"
        assert image.size == (660, 260)  # 3 frames of 2.2 in, 2.6 in high, 100 dpi
