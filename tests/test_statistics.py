"""Statistics over seeds: the Student-t interval and the paired t-test, against scipy."""

import math

import numpy as np
import pytest
from scipy import stats

from poyocap_plugin.workflow.statistics import MeanCI, mean_ci95, paired


class TestMeanCI95:
    def test_three_values_give_the_t_interval(self):
        """Half-width = t_{0.975, 2} * s / sqrt(3), s the sample standard deviation (0.1)."""
        summary = mean_ci95([0.5, 0.6, 0.7])
        assert summary.mean == pytest.approx(0.6)
        assert summary.half_width == pytest.approx(4.302652729911275 * 0.1 / math.sqrt(3))
        assert str(summary) == "0.600 ± 0.248"

    def test_interval_matches_scipy(self):
        values = [0.51, 0.55, 0.58, 0.49, 0.6]
        low, high = stats.t.interval(
            0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values)
        )
        assert mean_ci95(values).ci95 == pytest.approx((low, high))

    def test_one_value_has_no_interval(self):
        summary = mean_ci95([0.4])
        assert summary == MeanCI((0.4,), None)
        assert summary.ci95 is None and str(summary) == "0.400"

    def test_identical_values_give_zero_width(self):
        assert mean_ci95([0.3, 0.3]).half_width == 0.0

    @pytest.mark.parametrize(
        ("values", "match"), [([], "at least one value"), ([0.1, math.nan], "finite values")]
    )
    def test_rejects_bad_input(self, values, match):
        with pytest.raises(ValueError, match=match):
            mean_ci95(values)


class TestPaired:
    cap = [0.60, 0.62, 0.65, 0.59]
    scratch = [0.50, 0.55, 0.58, 0.57]

    def test_difference_interval_and_p_match_scipy_ttest_rel(self):
        comparison = paired(self.cap, self.scratch, a="poyocap", b="scratch")
        expected = stats.ttest_rel(self.cap, self.scratch)
        assert comparison.differences == pytest.approx((0.10, 0.07, 0.07, 0.02))
        assert comparison.mean_difference.mean == pytest.approx(0.065)
        assert comparison.mean_difference.ci95 == pytest.approx(
            tuple(expected.confidence_interval(0.95))
        )
        assert comparison.p == pytest.approx(expected.pvalue)
        assert comparison.p < 0.05 and comparison.significant
        assert str(comparison) == f"+0.065 ± 0.053, p = {expected.pvalue:.3f}"

    def test_a_difference_within_the_noise_is_not_significant(self):
        comparison = paired([0.60, 0.50, 0.70], [0.55, 0.56, 0.66], a="a", b="b")
        assert comparison.p == pytest.approx(
            stats.ttest_rel([0.6, 0.5, 0.7], [0.55, 0.56, 0.66]).pvalue
        )
        assert comparison.p >= 0.05 and not comparison.significant
        assert str(comparison).endswith(", not significant")

    def test_equal_arms_have_no_p(self):
        comparison = paired([0.125, 0.125], [0.125, 0.125], a="a", b="b")
        assert comparison.p is None and not comparison.significant
        assert "p n/a" in str(comparison) and str(comparison).endswith("not significant")

    def test_a_constant_nonzero_difference_is_certain(self):
        comparison = paired([0.3, 0.4, 0.5], [0.2, 0.3, 0.4], a="a", b="b")
        assert comparison.p == 0.0 and comparison.significant
        assert comparison.mean_difference.mean == pytest.approx(0.1)

    @pytest.mark.parametrize(
        ("a_values", "b_values", "match"),
        [
            ([0.5], [0.4], "needs at least two seeds, got 1: one seed cannot tell"),
            ([0.5, 0.6], [0.4], "got 2 for 'a' and 1 for 'b'"),
            ([0.5, math.inf], [0.4, 0.5], "arm 'a' needs finite values"),
        ],
    )
    def test_rejects_bad_input(self, a_values, b_values, match):
        with pytest.raises(ValueError, match=match):
            paired(a_values, b_values, a="a", b="b")
