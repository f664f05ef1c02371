"""Seed summaries and paired comparisons over tidy result tables.

Every metric family in :mod:`qbm_lite.metrics` returns (or can be turned into) a *tidy* table:
one row per measurement with the columns ``method``, ``metric``, ``value``, and ``seed``,
``fold`` or ``batch`` where the measurement has one (:data:`TIDY_COLUMNS`, :data:`PAIR_COLUMNS`).
Tables of different families therefore concatenate, and the two functions here work on any of
them:

- :func:`summarize`: mean, standard deviation (``ddof=1``) and count per method and metric;
- :func:`compare`: the paired differences ``a − b`` over the shared seeds / folds / held-out
  batches, with a confidence interval. When the interval contains 0 the verdict is
  ``"no difference"``: the data cannot tell the two methods apart.

Pairing matters: two methods scored on the same seed or fold share that split's difficulty, so
the differences vary much less than the scores themselves (a paired design; e.g. Dietterich,
1998, on comparing classifiers). With very few pairs (3 seeds) every interval is wide, and the
percentile bootstrap's is too narrow (it can only recombine the observed differences), so
:func:`paired_difference` also offers Student's *t* interval, which is the safer choice below
about ten pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from qbm_lite.checks import InputError, check_choice

__all__ = [
    "PAIR_COLUMNS",
    "TIDY_COLUMNS",
    "PairedComparison",
    "PairedRatio",
    "compare",
    "paired_difference",
    "paired_ratio",
    "summarize",
]

#: Columns every tidy result table has.
TIDY_COLUMNS = ("method", "metric", "value")
#: Columns that identify a repeated measurement (paired between methods) when present.
PAIR_COLUMNS = ("seed", "fold", "batch")

IntervalMethod = Literal["bootstrap", "t"]


@dataclass
class PairedComparison:
    """Paired differences ``a − b`` and their confidence interval.

    Attributes
    ----------
    a, b
        The two methods' names.
    metric
        The metric compared.
    differences
        ``(n_pairs,)`` the per-pair differences ``a − b``.
    mean, low, high
        Their mean and the ``confidence`` interval for it.
    confidence
        Coverage of the interval (e.g. 0.95).
    method
        ``"bootstrap"`` (percentile bootstrap of the mean) or ``"t"`` (Student's *t*).
    """

    a: str
    b: str
    metric: str
    differences: np.ndarray = field(repr=False)
    mean: float
    low: float
    high: float
    confidence: float
    method: str

    @property
    def n(self) -> int:
        """Number of pairs."""
        return int(self.differences.size)

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0."""
        return not (self.low <= 0.0 <= self.high)

    @property
    def verdict(self) -> str:
        """``"no difference"`` when the interval contains 0, else which method is higher."""
        if not self.significant:
            return "no difference"
        return f"{self.a} higher" if self.mean > 0 else f"{self.b} higher"

    def __str__(self) -> str:
        pct = round(100 * self.confidence)
        return (
            f"{self.a} − {self.b} ({self.metric}): {self.mean:+.3f} "
            f"[{pct}% CI {self.low:+.3f}, {self.high:+.3f}; n={self.n}, {self.method}] "
            f"→ {self.verdict}"
        )

    def as_row(self) -> dict[str, object]:
        """The comparison as one row of a table."""
        return {
            "a": self.a,
            "b": self.b,
            "metric": self.metric,
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "verdict": self.verdict,
        }


def paired_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    method: IntervalMethod = "bootstrap",
    n_boot: int = 10_000,
    seed: int = 0,
    names: tuple[str, str] = ("a", "b"),
    metric: str = "value",
) -> PairedComparison:
    """Mean of the paired differences ``a[i] − b[i]`` with a confidence interval.

    Parameters
    ----------
    a, b
        ``(n_pairs,)`` scores of two methods on the same seeds / folds, in the same order.
    confidence
        Interval coverage, in (0, 1).
    method
        ``"bootstrap"``: percentile interval of the mean over ``n_boot`` resamples of the pairs
        (Efron & Tibshirani, 1993); ``"t"``: Student's *t* interval (``scipy.stats.t``).
    n_boot, seed
        Bootstrap resamples and their random seed.
    names, metric
        Labels carried into the result.

    Raises
    ------
    qbm_lite.checks.InputError
        Different lengths, fewer than 2 pairs, non-finite scores, a bad option.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise InputError(f"a and b must pair up; got {x.size} and {y.size} scores.")
    if x.size < 2:
        raise InputError(f"a paired comparison needs at least 2 pairs; got {x.size}.")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise InputError("scores must be finite; a method produced NaN or infinite values.")
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence must be in (0, 1); got {confidence}.")
    check_choice("method", method, IntervalMethod)
    d = x - y
    mean = float(d.mean())
    alpha = 1.0 - confidence
    if method == "t":
        sem = float(d.std(ddof=1) / np.sqrt(d.size))
        half = float(stats.t.ppf(1.0 - alpha / 2, df=d.size - 1)) * sem
        low, high = mean - half, mean + half
    else:
        rng = np.random.default_rng(seed)
        means = d[rng.integers(0, d.size, size=(int(n_boot), d.size))].mean(axis=1)
        low, high = (float(v) for v in np.quantile(means, [alpha / 2, 1.0 - alpha / 2]))
    return PairedComparison(
        a=names[0],
        b=names[1],
        metric=metric,
        differences=d,
        mean=mean,
        low=float(low),
        high=float(high),
        confidence=confidence,
        method=method,
    )


def _check_tidy(tidy: pd.DataFrame) -> None:
    if not isinstance(tidy, pd.DataFrame):
        raise InputError(f"expected a tidy pandas DataFrame; got {type(tidy).__name__}.")
    missing = [c for c in TIDY_COLUMNS if c not in tidy.columns]
    if missing:
        raise InputError(
            f"the table lacks the tidy columns {missing} (has {list(tidy.columns)}); results "
            "must have one row per measurement with 'method', 'metric' and 'value'."
        )


def summarize(tidy: pd.DataFrame, by: Sequence[str] = ("method", "metric")) -> pd.DataFrame:
    """Mean, standard deviation (``ddof=1``; NaN for one value) and count of ``value``.

    Returns a frame indexed by ``by`` with columns ``mean``, ``sd`` and ``n``.
    """
    _check_tidy(tidy)
    return tidy.groupby(list(by), sort=False)["value"].agg(mean="mean", sd="std", n="count")


def compare(
    tidy: pd.DataFrame,
    a: str,
    b: str,
    metric: str,
    *,
    pair_on: Sequence[str] | None = None,
    **kwargs,
) -> PairedComparison:
    """Paired comparison of methods ``a`` and ``b`` on ``metric`` in a tidy table.

    Parameters
    ----------
    tidy
        Long table with ``method``, ``metric``, ``value`` and the pairing columns.
    a, b
        Method names (values of the ``method`` column).
    metric
        Value of the ``metric`` column to compare.
    pair_on
        Columns identifying a pair; default: those of :data:`PAIR_COLUMNS` present.
    **kwargs
        Passed to :func:`paired_difference` (``confidence``, ``method``, ``n_boot``, ``seed``).

    Raises
    ------
    qbm_lite.checks.InputError
        Unknown method or metric, no pairing column, a pair measured twice, fewer than 2 pairs.
    """
    _check_tidy(tidy)
    pair_on = [c for c in PAIR_COLUMNS if c in tidy.columns] if pair_on is None else list(pair_on)
    if not pair_on:
        raise InputError(
            f"no column to pair on: the table needs one of {PAIR_COLUMNS} (or pass pair_on)."
        )
    rows = tidy[tidy["metric"] == metric]
    if rows.empty:
        raise InputError(f"metric {metric!r} is not in the table ({sorted(tidy.metric.unique())}).")
    sides = []
    for name in (a, b):
        side = rows[rows["method"] == name]
        if side.empty:
            known = sorted(rows["method"].unique())
            raise InputError(f"method {name!r} is not in the table ({known}).")
        if side.duplicated(pair_on).any():
            raise InputError(f"method {name!r} has more than one {metric!r} value per {pair_on}.")
        sides.append(side.set_index(pair_on)["value"])
    joined = pd.concat(sides, axis=1, keys=["a", "b"], join="inner")
    return paired_difference(
        joined["a"].to_numpy(), joined["b"].to_numpy(), names=(a, b), metric=metric, **kwargs
    )


@dataclass
class PairedRatio:
    """Ratio of two methods' mean scores over paired measurements, with Fieller's interval.

    Attributes
    ----------
    a, b, metric
        Labels.
    ratio
        ``mean(a) / mean(b)``.
    low, high
        The ``confidence`` interval; ``-inf`` / ``inf`` when ``mean(b)`` is not clearly away
        from 0 (the interval is then unbounded: the data cannot pin the ratio down).
    n, confidence
        Number of pairs and coverage.
    """

    a: str
    b: str
    metric: str
    ratio: float
    low: float
    high: float
    n: int
    confidence: float

    def __str__(self) -> str:
        pct = round(100 * self.confidence)
        return (
            f"{self.a} / {self.b} ({self.metric}): {self.ratio:.3f} "
            f"[{pct}% CI {self.low:.3f}, {self.high:.3f}; n={self.n}, Fieller]"
        )


def paired_ratio(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    names: tuple[str, str] = ("a", "b"),
    metric: str = "value",
) -> PairedRatio:
    """``mean(a) / mean(b)`` for paired scores, with Fieller's confidence interval.

    The interval is the set of ratios ``R`` that a paired Student's *t* test of
    ``a − R·b = 0`` does not reject (Fieller, 1954): the roots of the quadratic
    ``(ā − R b̄)² = t² (s_aa − 2 R s_ab + R² s_bb) / n``. It accounts for the pairing and the
    noise of the denominator, and needs no positive scores (unlike a log-ratio interval).

    Raises
    ------
    qbm_lite.checks.InputError
        As :func:`paired_difference`; also ``mean(b) == 0``.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    paired_difference(x, y, confidence=confidence, method="t")  # the same input checks
    n = x.size
    mx, my = x.mean(), y.mean()
    if my == 0:
        raise InputError(f"the mean of {names[1]!r} is 0; a ratio is undefined.")
    cov = np.cov(np.vstack([x, y]), ddof=1)
    t2 = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) ** 2 / n
    qa = my**2 - t2 * cov[1, 1]
    qb = -2.0 * (mx * my - t2 * cov[0, 1])
    qc = mx**2 - t2 * cov[0, 0]
    disc = qb**2 - 4 * qa * qc
    if qa <= 0 or disc < 0:
        low, high = -np.inf, np.inf
    else:
        root = np.sqrt(disc)
        low, high = (-qb - root) / (2 * qa), (-qb + root) / (2 * qa)
    return PairedRatio(
        a=names[0],
        b=names[1],
        metric=metric,
        ratio=float(mx / my),
        low=float(low),
        high=float(high),
        n=n,
        confidence=confidence,
    )
