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
