"""Integration metrics: the scib-metrics wrapper and the quick batch-mixing score."""

from __future__ import annotations

import anndata as ad
import matplotlib
import numpy as np
import pandas as pd
import pytest

from qbm_lite import metrics
from qbm_lite.plotting.singlecell import plot_benchmark

matplotlib.use("Agg")


def _toy(n_per: int = 40, seed: int = 0) -> ad.AnnData:
    """4 cell types x 2 batches; "good" mixes batches and keeps types, "bad" splits batches."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), 2 * n_per)
    batch = np.tile(np.repeat([0, 1], n_per), 4)
    centers = rng.normal(0, 6, size=(4, 8))
    good = centers[labels] + rng.normal(0, 1, size=(len(labels), 8))
    bad = good.copy()
    bad[:, 0] += 25 * batch  # each batch in its own place
    noise = rng.normal(0, 1, size=(len(labels), 8))  # no biology at all
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical([f"b{b}" for b in batch]),
            "cell_type": pd.Categorical([f"t{t}" for t in labels]),
        },
        index=[f"c{i}" for i in range(len(labels))],
    )
    adata = ad.AnnData(X=rng.normal(size=(len(labels), 20)).astype(np.float32), obs=obs)
    adata.obsm["X_good"], adata.obsm["X_bad"], adata.obsm["X_noise"] = good, bad, noise
    adata.obsm["X_pca"] = bad  # the "unintegrated" reference for the PCR comparison
    return adata


@pytest.fixture(scope="module")
def result() -> metrics.IntegrationBenchmark:
    adata = _toy()
    keys = {"good": "X_good", "bad": "X_bad", "noise": "X_noise"}
    return metrics.integration_benchmark(adata, keys, "batch", "cell_type", metrics="light")


def test_benchmark_returns_expected_columns(result: metrics.IntegrationBenchmark) -> None:
    assert list(result.tidy.columns) == ["method", "metric", "metric_type", "value"]
    assert set(result.tidy["method"]) == {"good", "bad", "noise"}
    assert {"Bio conservation", "Batch correction", "Aggregate score"} == set(
        result.tidy["metric_type"]
    )
    for col in (
        "Bio conservation",
        "Batch correction",
        "Total",
        "iLISI",
        "cLISI",
        "Silhouette label",
        "Isolated labels",
        "Graph connectivity",
        "PCR comparison",
    ):
        assert col in result.scores.columns, col
    assert result.scores["Total"].is_monotonic_decreasing
    assert result.preset == "light"
    assert result.figure is not None and len(result.figure.axes) >= 2


def test_benchmark_ranks_embeddings_sensibly(result: metrics.IntegrationBenchmark) -> None:
    s = result.scores
    assert s.loc["good", "Total"] > s.loc["bad", "Total"]
    assert s.loc["good", "Batch correction"] > s.loc["bad", "Batch correction"]
    assert s.loc["good", "Bio conservation"] > s.loc["noise", "Bio conservation"]
    # The aggregate is scIB's weighting of the two class means.
    expected = 0.6 * s["Bio conservation"] + 0.4 * s["Batch correction"]
    assert np.allclose(s["Total"], expected)
    bio = result.tidy.query("metric_type == 'Bio conservation' and method == 'good'")["value"]
    assert np.isclose(bio.mean(), s.loc["good", "Bio conservation"])


def test_benchmark_checks_its_input() -> None:
    adata = _toy(10)
    with pytest.raises(KeyError, match="X_missing"):
        metrics.integration_benchmark(adata, ["X_missing"], "batch", "cell_type")
    with pytest.raises(KeyError, match="donor"):
        metrics.integration_benchmark(adata, ["X_good"], "donor", "cell_type")
    with pytest.raises(ValueError, match="metrics"):
        metrics.integration_benchmark(adata, ["X_good"], "batch", "cell_type", metrics="huge")
    adata.obsm["X_nan"] = np.full_like(adata.obsm["X_good"], np.nan)
    with pytest.raises(ValueError, match="NaN"):
        metrics.integration_benchmark(adata, ["X_nan"], "batch", "cell_type")


def test_batch_mixing_against_brute_force() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    batch = rng.integers(0, 3, size=60)
    k = 5
    # Brute force with an independent neighbour search.
    d = np.linalg.norm(X[:, None] - X[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1)[:, :k]
    other = (batch[idx] != batch[:, None]).mean(1).mean()
    counts = np.bincount(batch)
    expected = np.mean(1 - (counts[batch] - 1) / 59)
    assert np.isclose(metrics.batch_mixing(X, batch, n_neighbors=k), other / expected)


def test_batch_mixing_extremes() -> None:
    rng = np.random.default_rng(2)
    batch = np.repeat([0, 1], 100)
    mixed = rng.normal(size=(200, 2))
    split = mixed + 100 * batch[:, None]
    assert metrics.batch_mixing(mixed, batch) > 0.85
    assert metrics.batch_mixing(split, batch) == 0.0
    with pytest.raises(ValueError, match="two batches"):
        metrics.batch_mixing(mixed, np.zeros(200))


def test_plot_benchmark_needs_aggregates() -> None:
    with pytest.raises(ValueError, match="aggregate"):
        plot_benchmark(pd.DataFrame({"iLISI": [0.5]}, index=["m"]))


def test_missing_annotations_get_one_clear_error_or_an_explicit_drop() -> None:
    """Issue 9.6: NaN labels or batches are named with their count, never an extra category."""
    adata = _toy(25)  # scib-metrics needs more than 90 cells for its neighbour graph
    adata.obs["cell_type"] = adata.obs["cell_type"].astype(object)
    adata.obs.iloc[[0, 5, 9], adata.obs.columns.get_loc("cell_type")] = np.nan
    with pytest.raises(metrics.integration.InputError, match=r"'cell_type'.*3 missing"):
        metrics.integration_benchmark(adata, ["X_good"], "batch", "cell_type", metrics="light")
    with pytest.warns(UserWarning, match="left out 3 cell"):
        res = metrics.integration_benchmark(
            adata, ["X_good"], "batch", "cell_type", metrics="light", plot=False, dropna=True
        )
    assert np.isfinite(res.scores.loc["X_good", "Total"])
    batch = adata.obs["batch"].astype(object).to_numpy()
    batch[3] = None
    with pytest.raises(ValueError, match="1 missing"):
        metrics.batch_mixing(adata.obsm["X_good"], batch)


def test_continuous_label_column_is_refused() -> None:
    adata = _toy(10)
    adata.obs["score"] = np.random.default_rng(0).normal(size=adata.n_obs)
    with pytest.raises(ValueError, match="continuous"):
        metrics.integration_benchmark(adata, ["X_good"], "batch", "score", metrics="light")


def test_totals_without_silhouettes_by_hand(result: metrics.IntegrationBenchmark) -> None:
    s = result.scores
    # Light preset: bio without silhouettes is cLISI alone; batch is iLISI, graph
    # connectivity and PCR comparison (no BRAS in this preset).
    bio = s["cLISI"]
    batch = (s["iLISI"] + s["Graph connectivity"] + s["PCR comparison"]) / 3
    assert np.allclose(s["Bio (no silhouettes)"], bio)
    assert np.allclose(s["Batch (no silhouettes)"], batch)
    assert np.allclose(s["Total (no silhouettes)"], 0.6 * bio + 0.4 * batch)
    assert list(result.totals(silhouettes=False).columns) == [
        *metrics.AGGREGATES,
        *metrics.AGGREGATES_NO_SILHOUETTE,
    ]
    assert "Total (no silhouettes)" not in result.metrics and "iLISI" in result.metrics
    no_sil = result.tidy.query("metric == 'Total (no silhouettes)'")
    assert set(no_sil["metric_type"]) == {"Aggregate score"} and len(no_sil) == 3


def test_isolated_labels_is_silhouette_label_when_every_type_is_in_every_batch(
    result: metrics.IntegrationBenchmark,
) -> None:
    """The degeneracy of issue 10.3: balanced types in every batch make the two metrics equal."""
    assert result.isolated_is_silhouette
    s = result.scores
    assert np.allclose(s["Isolated labels"], s["Silhouette label"], atol=1e-6)
    adata = _toy(10)
    assert metrics.isolated_labels_are_all_labels(adata, "batch", "cell_type")
    keep = ~((adata.obs["cell_type"] == "t0") & (adata.obs["batch"] == "b1")).to_numpy()
    assert not metrics.isolated_labels_are_all_labels(adata[keep], "batch", "cell_type")


def test_negative_pcr_is_recorded_and_its_warning_filtered() -> None:
    import warnings

    adata = _toy(25)
    adata.obsm["X_pca"] = adata.obsm["X_good"]  # mixed reference: "bad" adds batch variance
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning that escapes fails the test
        res = metrics.integration_benchmark(
            adata,
            {"good": "X_good", "bad": "X_bad"},
            "batch",
            "cell_type",
            metrics="light",
            plot=False,
        )
    assert res.scores.loc["bad", "PCR comparison"] == 0.0
    assert "bad" in res.pcr_clipped


def test_seed_summary_matches_a_hand_computation() -> None:
    tidy = pd.DataFrame(
        {
            "method": ["A"] * 3 + ["B"] * 3,
            "metric": ["Total"] * 6,
            "value": [0.2, 0.4, 0.9, 0.1, 0.3, 0.5],
            "seed": [0, 1, 2] * 2,
        }
    )
    summary = metrics.summarize(tidy)
    assert summary.loc[("A", "Total"), "mean"] == pytest.approx(0.5)
    # sd with ddof=1: sqrt((0.3² + 0.1² + 0.4²) / 2) = sqrt(0.13)
    assert summary.loc[("A", "Total"), "sd"] == pytest.approx(np.sqrt(0.13))
    assert summary.loc[("B", "Total"), "sd"] == pytest.approx(0.2)
    table = metrics.seed_table(tidy, ["Total"])
    assert list(table.index) == ["A", "B"] and table.loc["A", "Total"] == "0.500 ± 0.361"
    with pytest.raises(ValueError, match="not in the table"):
        metrics.seed_table(tidy, ["iLISI"])
    diff = metrics.metric_differences(tidy, "A", "B", method="t")
    # Paired differences 0.1, 0.1, 0.4: mean 0.2, sd sqrt(0.03), t(0.975, 2) = 4.303.
    half = 4.302652729911275 * np.sqrt(0.03) / np.sqrt(3)
    assert diff.loc["Total", "mean"] == pytest.approx(0.2)
    assert diff.loc["Total", "low"] == pytest.approx(0.2 - half)
    assert diff.loc["Total", "verdict"] == "no difference"  # 0.2 - 0.43 < 0


def test_label_purity_against_brute_force() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 3))
    labels = rng.integers(0, 4, size=50)
    d = np.linalg.norm(X[:, None] - X[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1)[:, :6]
    assert np.isclose(
        metrics.label_purity(X, labels, n_neighbors=6), (labels[idx] == labels[:, None]).mean()
    )
    with pytest.raises(ValueError, match="missing"):
        metrics.label_purity(X, [None] + list(labels[1:]))
