"""Statistics over seeds: the mean with its 95 % CI, and the paired comparison of two arms.

POYO-CAP (Bae et al., ICLR 2026) reports Table 3 as mean +- 95 % CI over 3 seeds and
compares arms with a paired t-test. The interval here is the two-sided Student-t interval,
``mean +- t_{0.975, n-1} * s / sqrt(n)`` with the sample standard deviation ``s``
(``ddof=1``); the paper does not say how it computed its own. Two arms are paired by seed:
the same seed gives both arms the same data, splits and initial draw of the shared parts,
so the per-seed differences carry the comparison, tested with :func:`scipy.stats.ttest_rel`.

With one value there is no spread to estimate: no interval and no test, and nothing that
prints a gain may be built from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CONFIDENCE", "SIGNIFICANCE_LEVEL", "MeanCI", "PairedComparison", "mean_ci95", "paired"]

CONFIDENCE = 0.95
"""Coverage of every interval the workflow prints."""
SIGNIFICANCE_LEVEL = 0.05
"""A paired difference with p below this is called significant."""
_EQUAL_TOLERANCE = 1e-12  # relative: differences this close are one value (float rounding)


def _finite(values: Sequence[float], name: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in values)
    if not values:
        raise ValueError(f"{name} needs at least one value, got none")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name} needs finite values, got {list(values)!r}")
    return values


def _t_half_width(values: tuple[float, ...]) -> float:
    """``t_{0.975, n-1} * s / sqrt(n)`` for ``n >= 2`` values."""
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return float(stats.t.ppf((1.0 + CONFIDENCE) / 2.0, n - 1)) * sd / math.sqrt(n)


@dataclass(frozen=True)
class MeanCI:
    """The mean of per-seed values and its 95 % Student-t interval.

    Attributes:
        values: The per-seed values, in seed order.
        half_width: ``t_{0.975, n-1} * s / sqrt(n)``; None with one value.
    """

    values: tuple[float, ...]
    half_width: float | None

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def ci95(self) -> tuple[float, float] | None:
        """``(low, high)``, or None with one value."""
        if self.half_width is None:
            return None
        return (self.mean - self.half_width, self.mean + self.half_width)

    def __str__(self) -> str:
        """``0.600 ± 0.248``, or ``0.600`` with one value."""
        if self.half_width is None:
            return f"{self.mean:.3f}"
        return f"{self.mean:.3f} ± {self.half_width:.3f}"


def mean_ci95(values: Sequence[float]) -> MeanCI:
    """The mean of ``values`` with its 95 % Student-t interval (none for one value).

    Example::

        >>> summary = mean_ci95([0.5, 0.6, 0.7])
        >>> round(summary.mean, 3), round(summary.half_width, 3)
        (0.6, 0.248)

    Raises:
        ValueError: If ``values`` is empty or holds a non-finite value.
    """
    values = _finite(values, "mean_ci95")
    return MeanCI(values, _t_half_width(values) if len(values) > 1 else None)


@dataclass(frozen=True)
class PairedComparison:
    """Arm ``a`` minus arm ``b``, paired by seed.

    Attributes:
        a, b: The arms compared (``a - b``).
        differences: ``a - b`` per seed, in seed order (at least two).
        p: Two-sided p-value of the paired t-test (:func:`scipy.stats.ttest_rel`); None
            when every difference is zero (the t statistic is 0/0).
    """

    a: str
    b: str
    differences: tuple[float, ...]
    p: float | None

    @property
    def mean_difference(self) -> MeanCI:
        """The mean difference and its 95 % interval (the paired t-test's own interval)."""
        return MeanCI(self.differences, _t_half_width(self.differences))

    @property
    def significant(self) -> bool:
        """``p < SIGNIFICANCE_LEVEL``."""
        return self.p is not None and self.p < SIGNIFICANCE_LEVEL

    def __str__(self) -> str:
        """``+0.010 ± 0.005, p = 0.030`` (with ``, not significant`` where p >= 0.05)."""
        difference = self.mean_difference
        p = "p n/a (every seed gave the same value)" if self.p is None else f"p = {self.p:.3f}"
        verdict = "" if self.significant else ", not significant"
        return f"{difference.mean:+.3f} ± {difference.half_width:.3f}, {p}{verdict}"


def paired(
    a_values: Sequence[float], b_values: Sequence[float], *, a: str, b: str
) -> PairedComparison:
    """Compare arm ``a`` with arm ``b`` over seeds: the differences and a paired t-test.

    Args:
        a_values: Arm ``a``'s value per seed.
        b_values: Arm ``b``'s value for the same seeds, in the same order.
        a, b: The arms' names.

    Raises:
        ValueError: If the two differ in length, hold fewer than two seeds, or hold a
            non-finite value.
    """
    from scipy import stats

    a_values, b_values = _finite(a_values, f"arm {a!r}"), _finite(b_values, f"arm {b!r}")
    if len(a_values) != len(b_values):
        raise ValueError(
            f"a paired comparison needs one value per seed in both arms; got {len(a_values)} "
            f"for {a!r} and {len(b_values)} for {b!r}"
        )
    if len(a_values) < 2:
        raise ValueError(
            f"a paired comparison of {a!r} and {b!r} needs at least two seeds, got "
            f"{len(a_values)}: one seed cannot tell a difference from seed-to-seed noise"
        )
    differences = tuple(x - y for x, y in zip(a_values, b_values, strict=True))
    spread = max(differences) - min(differences)
    if spread <= _EQUAL_TOLERANCE * max(1.0, *map(abs, differences)):
        # no spread: the t statistic is 0/0 or infinite (scipy would warn and divide by zero)
        p = None if abs(differences[0]) <= _EQUAL_TOLERANCE else 0.0
    else:
        p = float(stats.ttest_rel(a_values, b_values).pvalue)
    return PairedComparison(a=a, b=b, differences=differences, p=p)
