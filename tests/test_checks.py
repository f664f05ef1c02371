"""Shared argument checks (qbm_lite.checks) and the paired statistics (qbm_lite.metrics.stats)."""

from __future__ import annotations

from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from qbm_lite.checks import InputError, check_choice, drop_missing, obs_column, obsm_array
from qbm_lite.metrics import compare, paired_difference, summarize


def _adata() -> ad.AnnData:
    obs = pd.DataFrame(
        {"batch": ["a", "b", None, "a"], "t": [0.1, 0.2, 0.3, np.nan]},
        index=[f"c{i}" for i in range(4)],
    )
    adata = ad.AnnData(X=np.zeros((4, 2), dtype=np.float32), obs=obs)
    adata.obsm["X_ok"] = np.arange(8.0).reshape(4, 2)
    adata.obsm["X_nan"] = np.array([[0, 1], [np.nan, 1], [0, 1], [0, 1]], dtype=float)
    return adata


def test_input_error_is_both_value_and_key_error_with_a_plain_message() -> None:
    err = InputError("column 'x' is missing")
    assert isinstance(err, ValueError) and isinstance(err, KeyError)
    assert str(err) == "column 'x' is missing"  # not quoted, unlike KeyError


def test_check_choice_reads_literals_and_unwraps_numpy_strings() -> None:
    assert check_choice("mode", np.str_("b"), Literal["a", "b"]) == "b"
    assert type(check_choice("mode", np.str_("b"), ("a", "b"))) is str
    with pytest.raises(InputError, match=r"mode must be one of \('a', 'b'\); got 'c'"):
        check_choice("mode", "c", Literal["a", "b"])


def test_obs_column_names_the_column_and_the_count() -> None:
    adata = _adata()
    with pytest.raises(InputError, match=r"'batch'.*1 missing value\(s\) out of 4"):
        obs_column(adata, "batch", role="batch_key")
    assert obs_column(adata, "batch", allow_missing=True).isna().sum() == 1
    with pytest.raises(InputError, match="columns:"):
        obs_column(adata, "donor")
    with pytest.raises(InputError, match="must be numeric"):
        obs_column(adata.copy(), "batch", kind="numeric", allow_missing=True)


def test_drop_missing_is_explicit_and_counts() -> None:
    adata = _adata()
    sub, n = drop_missing(adata, ["batch", "t"])
    assert n == 2 and sub.n_obs == 2 and list(sub.obs_names) == ["c0", "c1"]
    same, n0 = drop_missing(adata[:2], ["batch"])
    assert n0 == 0 and same.n_obs == 2


def test_obsm_array_checks_key_shape_and_finiteness() -> None:
    adata = _adata()
    assert obsm_array(adata, "X_ok").shape == (4, 2)
    with pytest.raises(InputError, match="1 cell"):
        obsm_array(adata, "X_nan")
    with pytest.raises(InputError, match="keys:"):
        obsm_array(adata, "X_missing")
    with pytest.raises(InputError, match="at least 3"):
        obsm_array(adata, "X_ok", min_dims=3)


def test_paired_t_interval_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1, 8), rng.normal(0.5, 1, 8)
    res = paired_difference(a, b, method="t", confidence=0.9)
    ref = stats.ttest_rel(a, b).confidence_interval(confidence_level=0.9)
    assert np.isclose(res.low, ref.low) and np.isclose(res.high, ref.high)
    assert np.isclose(res.mean, np.mean(a - b))


def test_identical_methods_give_no_difference_and_a_shift_is_found() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=5)
    same = paired_difference(a, a.copy())
    assert same.low <= 0 <= same.high and same.verdict == "no difference"
    shifted = paired_difference(a + 1.0 + 0.01 * rng.normal(size=5), a)
    assert shifted.significant and shifted.verdict == "a higher" and shifted.low > 0.9


def test_bootstrap_interval_covers_the_mean_and_is_seeded() -> None:
    d = np.array([0.1, 0.3, -0.05, 0.2, 0.15, 0.05])
    r1 = paired_difference(d, np.zeros_like(d), seed=3)
    r2 = paired_difference(d, np.zeros_like(d), seed=3)
    assert r1.low == r2.low and r1.low < d.mean() < r1.high
    assert d.min() <= r1.low and r1.high <= d.max()


def test_summarize_matches_a_hand_computation() -> None:
    tidy = pd.DataFrame(
        {
            "method": ["A"] * 3 + ["B"] * 3,
            "metric": ["Total"] * 6,
            "seed": [0, 1, 2] * 2,
            "value": [0.5, 0.7, 0.6, 0.4, 0.4, 0.7],
        }
    )
    s = summarize(tidy)
    assert np.isclose(s.loc[("A", "Total"), "mean"], 0.6)
    assert np.isclose(s.loc[("A", "Total"), "sd"], np.sqrt(((0.1**2) * 2) / 2))
    assert s.loc[("B", "Total"), "n"] == 3
    c = compare(tidy, "A", "B", "Total", method="t")
    assert np.allclose(c.differences, [0.1, 0.3, -0.1]) and c.verdict == "no difference"


def test_compare_refuses_bad_tables() -> None:
    tidy = pd.DataFrame({"method": ["A", "B"], "metric": ["m", "m"], "value": [1.0, 2.0]})
    with pytest.raises(InputError, match="no column to pair on"):
        compare(tidy, "A", "B", "m")
    tidy["seed"] = [0, 0]
    with pytest.raises(InputError, match="'C'"):
        compare(tidy, "A", "C", "m")
    with pytest.raises(InputError, match="at least 2 pairs"):
        compare(tidy, "A", "B", "m")
    with pytest.raises(InputError, match="pair up"):
        paired_difference([1, 2, 3], [1, 2])
