"""The brainset's facts: defined once in poyocap_plugin.brainset, and the pipeline's copies agree.

The pipeline runs in brainsets' isolated environment and cannot import the plugin, so it
keeps its own constants; these tests fail when one side changes without the other.
"""

from pathlib import Path, PurePosixPath

import yaml

from poyocap_plugin import brainset
from poyocap_plugin.configs import __file__ as configs_init

from conftest import PIPELINE_DIR, load_pipeline_module


def test_the_pipeline_directory_is_the_brainset_id():
    assert PIPELINE_DIR.name == brainset.BRAINSET_ID
    assert load_pipeline_module("pipeline").BRAINSET_ID == brainset.BRAINSET_ID


def test_the_pipeline_copies_equal_the_plugin_facts():
    pipeline = load_pipeline_module("pipeline")
    neuron_stats = load_pipeline_module("neuron_stats")
    nm1_template = load_pipeline_module("nm1_template")
    assert pipeline.NWB_SUBDIR == brainset.NWB_SUBDIR
    assert neuron_stats.SKEWNESS_THRESHOLD == brainset.PAPER_SKEWNESS_THRESHOLD
    assert neuron_stats.KURTOSIS_THRESHOLD == brainset.PAPER_KURTOSIS_THRESHOLD
    stored = PurePosixPath(
        brainset.BRAINSET_ID, nm1_template.TEMPLATE_SUBDIR, nm1_template.TEMPLATE_FILE
    )
    assert stored == brainset.TEMPLATE_RELATIVE_PATH


def _yaml_values(node, key):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _yaml_values(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _yaml_values(item, key)


def test_shipped_configs_use_the_paper_thresholds_or_refer_to_them():
    """A threshold written as a number in a YAML must be the constant; better, written once."""
    seen = {"skewness_threshold": [], "kurtosis_threshold": []}
    for path in Path(configs_init).parent.rglob("*.yaml"):
        config = yaml.safe_load(path.read_text())
        for key, values in seen.items():
            values += [(path.name, v) for v in _yaml_values(config, key)]
    expected = {
        "skewness_threshold": brainset.PAPER_SKEWNESS_THRESHOLD,
        "kurtosis_threshold": brainset.PAPER_KURTOSIS_THRESHOLD,
    }
    for key, values in seen.items():
        assert values, f"no shipped config sets {key}"
        numbers = [(name, v) for name, v in values if not isinstance(v, str)]
        assert all(v == expected[key] for _, v in numbers), numbers


def test_shipped_stage2_configs_agree_with_the_facts():
    """YAML cannot import a constant; what it writes out must equal it."""
    from poyocap_plugin.frame_layout import PAPER_FRAME_HEIGHT_PX, PAPER_FRAME_WIDTH_PX

    configs = Path(configs_init).parent
    movie = yaml.safe_load((configs / "poyocap_finetune_movie.yaml").read_text())
    assert movie["model"]["sequence_length"] == brainset.MOVIE_WINDOW_S
    decoder = movie["model"]["frame_decoder"]
    assert (decoder["height"], decoder["width"]) == (PAPER_FRAME_HEIGHT_PX, PAPER_FRAME_WIDTH_PX)
    template = movie["movie_targets"]["template_path"]
    assert template == "${data_root}/" + str(brainset.TEMPLATE_RELATIVE_PATH)

    (group,) = yaml.safe_load((configs / "dataset" / "allen_calcium_nm1_frames.yaml").read_text())
    assert f"window_s={brainset.MOVIE_WINDOW_S})" in group["config"]["sampling_intervals_modifier"]
    (readout,) = group["config"]["multitask_readout"]
    assert readout["readout_id"] == brainset.MOVIE_READOUT
    (metric,) = readout["metrics"]
    size = (metric["metric"]["height"], metric["metric"]["width"])
    assert size == (PAPER_FRAME_HEIGHT_PX, PAPER_FRAME_WIDTH_PX)
