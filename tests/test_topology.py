"""scGraph: reproduction of scgraph-eval, the corrected scores' anchors, bad input."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
import scanpy as sc

from qbm_lite.checks import InputError
from qbm_lite.data.simulate import simulate
from qbm_lite.metrics import SCGRAPH_COLUMNS, scgraph
from qbm_lite.metrics.topology import centroid_distances, graph_agreement, trimmed_centroids


def _lognorm(adata):
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    return adata


@pytest.fixture(scope="module")
def typed():
    """Two batches (weak effect), eight types, log-normalized; PCA and a random embedding."""
    adata = _lognorm(simulate(800, 200, n_batches=2, n_cell_types=8, batch_strength=0.1, seed=3))
    sc.pp.pca(adata, n_comps=10)
    rng = np.random.default_rng(0)
    adata.obsm["X_random"] = rng.normal(size=(adata.n_obs, 10))
    adata.obsm["X_umap_like"] = adata.obsm["X_pca"][:, :2] + rng.normal(0, 0.5, (adata.n_obs, 2))
    return adata


def test_trimmed_centroids_match_scipy_trim_mean():
    from scipy import stats

    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 3))
    labels = np.array(["a"] * 20 + ["b"] * 30)
    C = trimmed_centroids(X, labels, ["b", "a"], trim_rate=0.1)
    assert np.allclose(C[0], stats.trim_mean(X[20:], 0.1, axis=0))
    assert np.allclose(C[1], stats.trim_mean(X[:20], 0.1, axis=0))


def test_centroid_distances_are_column_normalized():
    D = centroid_distances(np.array([[0.0], [1.0], [3.0]]))
    assert np.allclose(D.max(axis=0), 1.0)
    assert np.allclose(np.diag(D), 0.0)
    assert np.isclose(D[1, 0], 1 / 3)  # column 0: distances 0, 1, 3 over 3


def test_graph_agreement_self_inclusion_inflates_a_random_matrix():
    rng = np.random.default_rng(2)
    n = 8
    ref = centroid_distances(rng.normal(size=(n, 5)))
    rand = [centroid_distances(rng.normal(size=(n, 5))) for _ in range(30)]
    corrected = np.mean([graph_agreement(r, ref)["Rank-PCA"] for r in rand])
    inflated = np.mean([graph_agreement(r, ref, include_self=True)["Rank-PCA"] for r in rand])
    assert abs(corrected) < 0.15
    assert inflated > corrected + 0.2
    assert graph_agreement(ref, ref)["Corr-Weighted"] == pytest.approx(1.0)


def test_embedding_equal_to_the_reference_pca_scores_one():
    """One batch: the reference *is* this PCA, so the corrected scores are exactly 1."""
    adata = _lognorm(simulate(500, 200, n_batches=1, n_cell_types=6, seed=4))
    sc.pp.highly_variable_genes(adata, n_top_genes=100)
    sc.pp.pca(adata, n_comps=10, mask_var="highly_variable")
    out = scgraph(adata, ["X_pca"], n_top_genes=100)
    assert np.allclose(out.loc["X_pca"].to_numpy(), 1.0)


def test_corrected_anchors_on_two_batches(typed):
    out = scgraph(typed, {"PCA": "X_pca", "random": "X_random"})
    assert list(out.columns) == list(SCGRAPH_COLUMNS)
    assert (out.loc["PCA"] > 0.9).all()  # the PCA of both batches ≈ their consensus
    assert (out.loc["random"].abs() < 0.35).all()
    inflated = scgraph(typed, {"random": "X_random"}, include_self=True)
    assert inflated.loc["random", "Rank-PCA"] > out.loc["random", "Rank-PCA"] + 0.2
    assert inflated.loc["random", "Corr-Weighted"] == pytest.approx(
        out.loc["random", "Corr-Weighted"]
    )


@pytest.mark.skipif(
    importlib.util.find_spec("scgraph") is None, reason="needs the test extra (scgraph-eval)"
)
def test_reproduces_scgraph_eval(typed, tmp_path):
    path = tmp_path / "fixture.h5ad"
    typed.write_h5ad(path)
    keys = ["X_pca", "X_random", "X_umap_like"]
    before = list(warnings.filters)
    with warnings.catch_warnings():  # scgraph-eval silences every warning at import
        from scgraph import scGraph

        if not hasattr(scGraph, "main"):  # pragma: no cover - the unrelated PyPI "scgraph"
            pytest.skip("the installed `scgraph` is not scgraph-eval")
        ref = scGraph(str(path), batch_key="batch", label_key="cell_type", only_umap=False).main(
            keys
        )
    assert warnings.filters == before
    ours = scgraph(typed, keys, include_self=True)
    for key in keys:
        for col in SCGRAPH_COLUMNS:
            assert ours.loc[key, col] == pytest.approx(float(ref.loc[key, col]), abs=1e-6)


def test_bad_input(typed):
    with pytest.raises(InputError, match="not a column"):
        scgraph(typed, ["X_pca"], label_key="no_such_column")
    with pytest.raises(InputError, match="not in adata.obsm"):
        scgraph(typed, ["X_nope"])
    with pytest.raises(InputError, match="at least 3 cell types"):
        scgraph(typed, ["X_pca"], min_type_cells=10_000)
    with pytest.raises(InputError, match="no batch is large enough"):
        scgraph(typed, ["X_pca"], min_batch_cells=10_000)
    with pytest.raises(InputError, match="empty"):
        scgraph(typed, [])
    bad = typed.copy()
    bad.obs["cell_type"] = bad.obs["cell_type"].astype(object)
    bad.obs.iloc[0, bad.obs.columns.get_loc("cell_type")] = None
    with pytest.raises(InputError, match="missing value"):
        scgraph(bad, ["X_pca"])


def test_paired_ratio_fieller_interval():
    """Fieller's endpoints are exactly where the paired t test of a − R·b starts to reject."""
    from scipy import stats as st

    from qbm_lite.metrics import paired_ratio

    rng = np.random.default_rng(7)
    b = rng.normal(1.0, 0.05, size=5)
    a = 1.2 * b + rng.normal(0, 0.03, size=5)
    r = paired_ratio(a, b, names=("QBM-VAE", "scVI"))
    assert r.ratio == pytest.approx(a.mean() / b.mean())
    assert r.low < r.ratio < r.high
    for end in (r.low, r.high):
        assert st.ttest_1samp(a - end * b, 0.0).pvalue == pytest.approx(0.05, abs=1e-6)
    exact = paired_ratio(2 * b, b)  # no noise in the ratio: the interval collapses
    assert exact.low == pytest.approx(2.0) and exact.high == pytest.approx(2.0)
    noisy = paired_ratio([1.0, 2.0, 3.0], [0.1, -0.1, 0.05])  # denominator not away from 0
    assert np.isinf(noisy.low) and np.isinf(noisy.high)
    assert "Fieller" in str(r)
    with pytest.raises(InputError):
        paired_ratio([1.0, 2.0], [1.0])
