"""NormalizeDfOverF: z-scores with the stored training-split statistics."""

import numpy as np
import pytest
from temporaldata import ArrayDict, Data, RegularTimeSeries

from poyocap_plugin.normalize import NormalizeDfOverF


def recording(df_over_f, **stats):
    units = dict(id=np.array(["a", "b", "c"]))
    units.update(stats)
    return Data(
        session=Data(id="s1"),
        units=ArrayDict(**units),
        calcium_traces=RegularTimeSeries(
            df_over_f=np.asarray(df_over_f, dtype=np.float32), sampling_rate=30.0, domain_start=0.0
        ),
        domain="auto",
    )


def test_values_are_z_scored_per_neuron_and_missing_values_stay_missing_or_are_filled():
    def normalized(**options):
        data = recording(
            [[1.0, 0.2, np.nan], [3.0, np.nan, 5.0]],
            df_over_f_mean=np.array([2.0, 0.3, np.nan]),  # c has no statistics
            df_over_f_std=np.array([1.0, 0.1, np.nan]),
        )
        return NormalizeDfOverF(**options)(data).calcium_traces.df_over_f

    out = normalized()
    np.testing.assert_allclose(out, [[-1.0, -1.0, np.nan], [1.0, np.nan, np.nan]], atol=1e-5)
    assert out.dtype == np.float32
    filled = normalized(fill_missing=0.0)
    np.testing.assert_allclose(filled, [[-1.0, -1.0, 0.0], [1.0, 0.0, 0.0]], atol=1e-5)


def test_a_recording_without_statistics_names_the_fix():
    data = recording(np.zeros((2, 3)))
    with pytest.raises(KeyError, match=r"'s1' has no units.df_over_f_mean.*--reprocess"):
        NormalizeDfOverF()(data)


def test_columns_must_match_the_units():
    data = recording(np.zeros((2, 3)), df_over_f_mean=np.zeros(3), df_over_f_std=np.ones(3))
    data.calcium_traces.df_over_f = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="2 columns but there are 3 units"):
        NormalizeDfOverF()(data)
