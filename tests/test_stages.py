"""The table of stages, variants and arms: complete, consistent with its Literals and the paper."""

from pathlib import Path
from typing import get_args

from poyocap_plugin.configs import __file__ as configs_init
from poyocap_plugin.workflow.settings import CurriculumSettings
from poyocap_plugin.workflow.stages import (
    ARMS,
    CURRICULUM_ARMS,
    METRICS,
    STAGES,
    TABLE3_ARMS,
    VARIANTS,
    Stage,
    Variant,
)


def test_the_literals_name_exactly_the_table_rows():
    assert tuple(STAGES) == get_args(Stage)
    assert tuple(VARIANTS) == get_args(Variant)


def test_every_stage_points_at_a_shipped_config_a_setting_and_a_metric():
    shipped = {p.stem for p in Path(configs_init).parent.glob("*.yaml")}
    for stage, spec in STAGES.items():
        assert spec.config_name in shipped, stage
        assert isinstance(getattr(CurriculumSettings(), spec.epochs_setting), int), stage
        assert spec.metric is None or spec.metric in METRICS, stage
        assert (spec.metric is None) == (spec.test_metric is None), stage


def test_arms_use_known_variants_and_the_paper_rows_are_table3():
    assert all(spec.variant in VARIANTS for spec in ARMS.values())
    assert set(CURRICULUM_ARMS) <= set(ARMS)
    assert {a: ARMS[a].paper for a in TABLE3_ARMS} == {
        "poyocap": (0.593, 0.555),
        "from_scratch": (0.528, 0.492),
        "inhibitory_ssl": (0.544, 0.537),
        "reverse_ssl": (0.489, 0.213),
        "mixed_ssl": (0.543, 0.313),
    }
