"""The neuron-selection sampler: exact selections, overrides, errors, and the stock data path."""

import numpy as np
import pytest
import torch
import torch_brain
from hypothesis import given, settings
from hypothesis import strategies as st
from temporaldata import ArrayDict, Data, Interval, RegularTimeSeries
from torch_brain.data import Dataset, collate
from torch_brain.data.sampler import RandomFixedWindowSampler
from torch_brain.models import CalciumPOYOPlus
from torch_brain.transforms import Compose, UnitDropout

from poyocap_plugin.neuron_sampler import NeuronSampler, NeuronSelection

# Six units: 0-2 predictable under the paper's thresholds, 3-4 not, 5 has NaN statistics.
SKEWNESS = np.array([0.5, 3.51, 2.0, 3.6, 1.0, np.nan])
KURTOSIS = np.array([1.0, 22.62, 30.0 - 25.0, 5.0, 22.7, 3.0])
CRE_LINES = np.array(["Sst-IRES-Cre"] * 3 + ["Cux2-CreERT2"] * 3)


def make_sample(*, config=None, stats_valid=None, n_frames=4, **columns) -> Data:
    """A 6-unit window whose dF/F column j holds the values 10 * j + t."""
    n_units = len(SKEWNESS)
    units = dict(
        id=np.array([f"u{i}" for i in range(n_units)]),
        skewness=SKEWNESS,
        kurtosis=KURTOSIS,
        cre_line=CRE_LINES,
    )
    if stats_valid is not None:
        units["stats_valid"] = np.asarray(stats_valid)
    units.update(columns)
    df_over_f = (10.0 * np.arange(n_units)[None, :] + np.arange(n_frames)[:, None]).astype(
        np.float32
    )
    extra = {} if config is None else {"config": config}
    return Data(
        session=Data(id="allen_brain_observatory_calcium/123"),
        units=ArrayDict(**units),
        calcium_traces=RegularTimeSeries(df_over_f=df_over_f, sampling_rate=30.0, domain_start=0.0),
        domain=Interval(start=np.array([0.0]), end=np.array([n_frames / 30.0])),
        **extra,
    )


def kept_columns(data: Data) -> list[int]:
    """Which original units the traces hold, decoded from the column values."""
    return (data.calcium_traces.df_over_f[0] // 10).astype(int).tolist()


@pytest.mark.parametrize(
    "kwargs, ids",
    [
        (dict(population="predictable"), ["u0", "u1", "u2"]),
        (dict(population="unpredictable"), ["u3", "u4"]),
        (dict(population="all"), ["u0", "u1", "u2", "u3", "u4"]),
        (dict(population="predictable", skewness_threshold=1.0), ["u0"]),
        (dict(population="unpredictable", kurtosis_threshold=100.0), ["u3"]),
        (dict(population="predictable", criterion="cre_line"), ["u0", "u1", "u2"]),
        (dict(population="unpredictable", criterion="cre_line"), ["u3", "u4"]),
        (
            dict(criterion="cre_line", predictable_cre_lines=["Cux2-CreERT2"]),
            ["u3", "u4"],
        ),
    ],
)
def test_keeps_exactly_the_selected_units_in_order_with_their_columns(kwargs, ids):
    data = make_sample()
    out = NeuronSampler(**kwargs)(data)
    assert out is data  # changes the sample in place
    assert out.units.id.tolist() == ids
    assert kept_columns(out) == [int(i[1:]) for i in ids]
    assert out.calcium_traces.df_over_f.shape == (4, len(ids))
    # every per-unit column is masked with the ids
    assert out.units.skewness.tolist() == SKEWNESS[[int(i[1:]) for i in ids]].tolist()


def test_stats_valid_false_puts_a_neuron_in_no_population():
    valid = [True, False, True, True, False, True]
    assert NeuronSampler(population="predictable")(
        make_sample(stats_valid=valid)
    ).units.id.tolist() == ["u0", "u2"]
    assert NeuronSampler(population="all", criterion="cre_line")(
        make_sample(stats_valid=valid)
    ).units.id.tolist() == ["u0", "u2", "u3"]


def test_recording_config_overrides_the_stage_choice():
    sampler = NeuronSampler(population="predictable")
    config = {"neuron_selection": {"population": "unpredictable"}, "multitask_readout": []}
    assert sampler(make_sample(config=config)).units.id.tolist() == ["u3", "u4"]
    # a config without the key keeps the stage's choice
    assert sampler(make_sample(config={"multitask_readout": []})).units.id.tolist() == [
        "u0",
        "u1",
        "u2",
    ]
    lines = {
        "neuron_selection": {"criterion": "cre_line", "predictable_cre_lines": ["Cux2-CreERT2"]}
    }
    assert sampler(make_sample(config=lines)).units.id.tolist() == ["u3", "u4"]


def test_override_from_an_omegaconf_config():
    from omegaconf import OmegaConf

    config = OmegaConf.create({"neuron_selection": {"population": "all", "min_units": 5}})
    assert len(NeuronSampler()(make_sample(config=config)).units.id) == 5


@pytest.mark.parametrize(
    "override, match",
    [
        ({"populaton": "all"}, r"unknown keys \['populaton'\]; allowed keys are"),
        ({"population": "some"}, r"population must be one of .*got 'some'"),
        ({"min_units": 0}, r"min_units must be at least 1, got 0"),
        ("predictable", r"must be a mapping"),
    ],
)
def test_bad_override_names_the_recording_and_the_key(override, match):
    data = make_sample(config={"neuron_selection": override})
    with pytest.raises(ValueError, match=r"Recording 'allen_brain_observatory_calcium/123'"):
        NeuronSampler()(data)
    with pytest.raises(ValueError, match=match):
        NeuronSampler()(make_sample(config={"neuron_selection": override}))


def test_too_few_selected_neurons_is_an_error_naming_recording_and_counts():
    with pytest.raises(
        ValueError,
        match=r"Recording 'allen_brain_observatory_calcium/123' has 2 of 6 neurons selected as "
        r"unpredictable neurons .* fewer than min_units=3",
    ):
        NeuronSampler(population="unpredictable", min_units=3)(make_sample())
    with pytest.raises(ValueError, match=r"has 0 of 6 neurons"):
        NeuronSampler(population="predictable", skewness_threshold=0.1)(make_sample())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(population="good"), r"population must be one of \['predictable', "),
        (dict(criterion="kurtosis"), r"criterion must be one of \['statistics', 'cre_line'\]"),
        (dict(skewness_threshold=float("nan")), r"skewness_threshold must be finite, got nan"),
        (dict(kurtosis_threshold="22"), r"kurtosis_threshold must be a number, got '22'"),
        (dict(predictable_cre_lines=["Sst"]), r"unknown Cre lines \['Sst'\]; use the allensdk"),
        (dict(predictable_cre_lines="Sst-IRES-Cre"), r"must be a list of Cre lines"),
        (dict(predictable_cre_lines=[]), r"at least one Cre line"),
        (dict(min_units=1.5), r"min_units must be an integer, got 1.5"),
        (dict(field="df_over_f"), r"field must be '<time series>.<attribute>'"),
    ],
)
def test_constructor_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NeuronSampler(**kwargs)


def test_missing_column_misaligned_traces_and_wrong_field_type_are_errors():
    data = make_sample()
    del data.units.kurtosis
    with pytest.raises(KeyError, match=r"units has no 'kurtosis' column .*pipeline"):
        NeuronSampler()(data)
    with pytest.raises(KeyError, match=r"units has no 'cre_line'"):
        data = make_sample()
        del data.units.cre_line
        NeuronSampler(criterion="cre_line")(data)
    data = make_sample()
    data.calcium_traces.df_over_f = data.calcium_traces.df_over_f[:, :5]
    with pytest.raises(ValueError, match=r"has shape \(4, 5\) but units has 6 neurons"):
        NeuronSampler()(data)
    with pytest.raises(TypeError, match=r"'units' of recording .* is a ArrayDict"):
        NeuronSampler(field="units.id")(make_sample())


def test_field_selects_which_time_series_attribute_is_masked():
    data = make_sample()
    data.calcium_traces.events = data.calcium_traces.df_over_f * 2
    NeuronSampler(field="calcium_traces.events")(data)
    assert data.calcium_traces.events[0].tolist() == [0.0, 20.0, 40.0]
    assert data.calcium_traces.df_over_f.shape == (4, 6)  # untouched


def test_selection_describe_and_to_config_round_trip():
    selection = NeuronSelection(population="unpredictable", criterion="cre_line")
    assert selection.to_config() == {
        "population": "unpredictable",
        "criterion": "cre_line",
        "predictable_cre_lines": [
            "Sst-IRES-Cre",
            "Vip-IRES-Cre",
            "Pvalb-IRES-Cre",
            "Ntsr1-Cre_GN220",
        ],
        "min_units": 1,
    }
    assert NeuronSelection().override(selection.to_config(), where="x") == selection
    assert "skewness <= 3.51 and kurtosis <= 22.62" in NeuronSelection().describe()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    n_units=st.integers(min_value=1, max_value=25),
    n_frames=st.integers(min_value=1, max_value=5),
    population=st.sampled_from(["predictable", "unpredictable", "all"]),
    skewness_threshold=st.floats(min_value=-1.0, max_value=10.0),
    kurtosis_threshold=st.floats(min_value=-3.0, max_value=60.0),
    min_units=st.integers(min_value=1, max_value=5),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_property_units_and_traces_stay_aligned_and_never_empty(
    n_units, n_frames, population, skewness_threshold, kurtosis_threshold, min_units, seed
):
    rng = np.random.default_rng(seed)
    skewness = rng.uniform(-1.0, 10.0, n_units)
    kurtosis = rng.uniform(-3.0, 60.0, n_units)
    skewness[rng.random(n_units) < 0.2] = np.nan
    kurtosis[rng.random(n_units) < 0.2] = np.nan
    stats_valid = rng.random(n_units) > 0.1
    df_over_f = np.arange(n_frames * n_units, dtype=np.float32).reshape(n_frames, n_units)
    data = Data(
        session=Data(id="b/s"),
        units=ArrayDict(
            id=np.array([f"u{i}" for i in range(n_units)]),
            skewness=skewness,
            kurtosis=kurtosis,
            stats_valid=stats_valid,
        ),
        calcium_traces=RegularTimeSeries(df_over_f=df_over_f, sampling_rate=30.0, domain_start=0.0),
        domain="auto",
    )
    valid = np.isfinite(skewness) & np.isfinite(kurtosis) & stats_valid
    with np.errstate(invalid="ignore"):
        predictable = (skewness <= skewness_threshold) & (kurtosis <= kurtosis_threshold)
    expected = {
        "predictable": valid & predictable,
        "unpredictable": valid & ~predictable,
        "all": valid,
    }[population]
    sampler = NeuronSampler(
        population=population,
        skewness_threshold=skewness_threshold,
        kurtosis_threshold=kurtosis_threshold,
        min_units=min_units,
    )
    if expected.sum() < min_units:
        with pytest.raises(ValueError, match=rf"has {expected.sum()} of {n_units} neurons"):
            sampler(data)
        return
    out = sampler(data)
    kept = np.flatnonzero(expected)
    assert len(out.units.id) >= min_units >= 1
    assert out.units.id.tolist() == [f"u{i}" for i in kept]
    np.testing.assert_array_equal(out.calcium_traces.df_over_f, df_over_f[:, kept])
    assert out.units.stats_valid.all()


# --- inside torch_brain's stock data path ------------------------------------------------


def _tiny_model(dataset: Dataset) -> CalciumPOYOPlus:
    model = CalciumPOYOPlus(
        sequence_length=1.0,
        latent_step=0.5,
        num_latents_per_step=2,
        dim=16,
        depth=1,
        dim_head=8,
        self_heads=1,
        readout_specs=torch_brain.MODALITY_REGISTRY,
    )
    model.unit_emb.initialize_vocab(dataset.get_unit_ids())
    model.session_emb.initialize_vocab(dataset.get_session_ids())
    return model


STOCK_CONFIG = """
- selection:
    - brainset: allen_brain_observatory_calcium
      sessions: ["700000", "700005"]
  config:
    sampling_intervals_modifier: |
      sampling_intervals = sampling_intervals & data.drifting_gratings.coalesce(0.3)
    multitask_readout:
      - readout_id: drifting_gratings_orientation
        metrics: []
- selection:
    - brainset: allen_brain_observatory_calcium
      sessions: ["700006"]
  config:
    neuron_selection: {population: all}
    sampling_intervals_modifier: |
      sampling_intervals = sampling_intervals & data.drifting_gratings.coalesce(0.3)
    multitask_readout:
      - readout_id: drifting_gratings_orientation
        metrics: []
"""


def test_stock_dataset_with_unit_dropout_and_tokenize_sees_only_selected_neurons(
    curriculum_data_root, tmp_path
):
    config = tmp_path / "dataset.yaml"
    config.write_text(STOCK_CONFIG)
    dataset = Dataset(str(curriculum_data_root), config=str(config), split="train")
    model = _tiny_model(dataset)
    sampler = NeuronSampler(population="predictable")
    dataset.transform = Compose(
        [
            sampler,
            UnitDropout(field="calcium_traces.df_over_f", min_units=2, mode_units=3, max_units=4),
            model.tokenize,
        ]
    )
    prefix = "allen_brain_observatory_calcium"
    # 700000 (Sst): predictable units 1-6; 700005 (Cux2): only unit 0 is predictable;
    # 700006 overrides to all units with valid statistics (0-6).
    allowed = {
        f"{prefix}/700000": {f"{prefix}/700000/roi_{i}" for i in range(1, 7)},
        f"{prefix}/700005": {f"{prefix}/700005/roi_0"},
        f"{prefix}/700006": {f"{prefix}/700006/roi_{i}" for i in range(7)},
    }
    assert sampler.check_dataset(dataset) == {rid: len(ids) for rid, ids in allowed.items()}

    windows = list(
        RandomFixedWindowSampler(
            sampling_intervals=dataset.get_sampling_intervals(),
            window_length=1.0,
            generator=torch.Generator().manual_seed(0),
        )
    )
    np.random.seed(0)  # UnitDropout draws from numpy's global RNG
    seen = {rid: set() for rid in allowed}
    for index in windows:
        inputs = collate([dataset[index]])["model_inputs"]
        tokens = inputs["input_unit_index"][inputs["input_mask"]]
        assert len(tokens) > 0
        names = {model.unit_emb.detokenizer(int(i)) for i in torch.unique(tokens)}
        assert names <= allowed[index.recording_id]
        seen[index.recording_id] |= names
    assert seen[f"{prefix}/700005"] == allowed[f"{prefix}/700005"]
    assert seen[f"{prefix}/700000"] <= allowed[f"{prefix}/700000"]

    batch = collate([dataset[index] for index in windows[:4]])
    output = model(**batch["model_inputs"])
    assert output["drifting_gratings_orientation"].shape[1] == 8


def test_check_dataset_fails_at_set_up_listing_every_recording_with_too_few(
    curriculum_data_root, tmp_path
):
    config = tmp_path / "dataset.yaml"
    config.write_text(STOCK_CONFIG)
    dataset = Dataset(str(curriculum_data_root), config=str(config), split="train")
    with pytest.raises(ValueError, match=r"1 of 3 recordings have too few") as error:
        NeuronSampler(population="predictable", min_units=2).check_dataset(dataset)
    assert "'allen_brain_observatory_calcium/700005' has 1 of 8 neurons" in str(error.value)
    # the same recording fails inside the transform, never as an empty token sequence
    dataset.transform = NeuronSampler(population="predictable", min_units=2)
    rid = "allen_brain_observatory_calcium/700005"
    trials = dataset.get_sampling_intervals()[rid]
    sampler = RandomFixedWindowSampler(sampling_intervals={rid: trials}, window_length=1.0)
    index = next(iter(sampler))
    with pytest.raises(ValueError, match=r"700005' has 1 of 8 neurons selected"):
        dataset[index]


def test_sampler_does_not_touch_other_samples_of_the_recording(curriculum_data_root, tmp_path):
    config = tmp_path / "dataset.yaml"
    config.write_text(STOCK_CONFIG)
    dataset = Dataset(str(curriculum_data_root), config=str(config), split="train")
    rid = "allen_brain_observatory_calcium/700000"
    first = NeuronSampler()(dataset.get(rid, 1.0, 2.0))
    second = dataset.get(rid, 1.0, 2.0)
    assert len(first.units.id) == 6 and len(second.units.id) == 8
    assert second.calcium_traces.df_over_f.shape[1] == 8
    assert first.units.id.tolist() == [f"{rid}/roi_{i}" for i in range(1, 7)]


def test_remembered_mask_is_reused_only_for_the_same_units():
    sampler = NeuronSampler(population="predictable")
    assert sampler(make_sample()).units.id.tolist() == ["u0", "u1", "u2"]
    # the same recording after an upstream transform dropped unit u1: recomputed
    data = make_sample()
    keep = np.array([True, False, True, True, True, True])
    data.units = data.units.select_by_mask(keep)
    data.calcium_traces.df_over_f = data.calcium_traces.df_over_f[:, keep]
    assert sampler(data).units.id.tolist() == ["u0", "u2"]
    assert kept_columns(data) == [0, 2]
    # a per-recording override is its own entry
    config = {"neuron_selection": {"population": "unpredictable"}}
    assert sampler(make_sample(config=config)).units.id.tolist() == ["u3", "u4"]
    assert sampler(make_sample()).units.id.tolist() == ["u0", "u1", "u2"]
