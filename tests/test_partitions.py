"""Curriculum partitions: arguments, disjoint subjects, criteria (see test_datasets.py for
the partitions of every variant as written to YAML)."""

import pytest

from poyocap_plugin.predictability import read_unit_statistics
from poyocap_plugin.workflow.partitions import plan_curriculum
from tests.conftest import write_calcium_session


def test_subject_in_two_lines_is_refused(tmp_path):
    for session_id, line in (("1", "Sst-IRES-Cre"), ("2", "Cux2-CreERT2")):
        write_calcium_session(
            tmp_path,
            session_id=session_id,
            cre_line=line,
            subject_id="m0",
            natural_movie_repeats=3,
        )
    stats = read_unit_statistics(tmp_path)
    with pytest.raises(ValueError, match=r"subjects \['m0'\] would be in both pretraining"):
        plan_curriculum(stats, variants=["poyocap"])


def test_a_stage_without_sessions_names_the_variant(tmp_path):
    write_calcium_session(tmp_path, session_id="1", cre_line="Cux2-CreERT2")
    stats = read_unit_statistics(tmp_path)
    with pytest.raises(ValueError, match=r"poyocap_pretrain would hold no session.*--variant"):
        plan_curriculum(stats, variants=["poyocap"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(variants=["poyo"]), r"variants must be a non-empty subset"),
        (dict(mixed_fraction=1.0), r"mixed_fraction must be in \(0, 1\), got 1.0"),
        (dict(on_too_few="skip"), r"on_too_few must be one of \['error', 'exclude'\]"),
        (dict(predictable_cre_lines=["Ntsr1-Cre_GN220"]), r"inhibitory_ssl pretrains on"),
        (dict(criterion="cre", variants=["poyocap"]), r"criterion must be one of"),
    ],
)
def test_plan_arguments_are_validated(curriculum_data_root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plan_curriculum(read_unit_statistics(curriculum_data_root), **kwargs)


def test_cre_line_criterion_keeps_every_valid_neuron_of_the_lines(curriculum_data_root):
    plan = plan_curriculum(
        read_unit_statistics(curriculum_data_root), variants=["poyocap"], criterion="cre_line"
    )
    pretrain = plan.stages[0]
    assert pretrain.groups[0].n_selected == (7,) * 5  # all but the NaN unit
    assert pretrain.groups[0].selection.to_config()["predictable_cre_lines"][0] == "Sst-IRES-Cre"
