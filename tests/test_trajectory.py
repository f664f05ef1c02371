"""Trajectory metrics: scIB agreement, known-truth anchors, root vote, disconnection, bad input."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import torch
from scipy import stats

from qbm_lite.checks import InputError
from qbm_lite.data.simulate import lineage_edges, simulate
from qbm_lite.ising import ising_energy
from qbm_lite.metrics import (
    diffusion_pseudotime,
    paga_agreement,
    prior_energy,
    pseudotime_spearman,
    trajectory_conservation,
)
from qbm_lite.metrics.trajectory import dpt_from_diffmap, lineage_adjacency, vote_root


@pytest.fixture(scope="module")
def branching():
    """One batch of a branching path, log-normalized, with its PCA and its true pseudotime."""
    adata = simulate(600, 200, n_batches=1, n_cell_types=6, trajectory="branching", seed=1)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=10)
    adata.obsm["X_true"] = adata.obs[["pseudotime"]].to_numpy()
    rng = np.random.default_rng(0)
    adata.obsm["X_random"] = rng.normal(size=(adata.n_obs, 5))
    return adata


def test_lineage_graph_of_the_simulator():
    assert lineage_edges("branching", 6) == [
        ("type0", "type1"),
        ("type2", "type3"),
        ("type4", "type5"),
        ("type1", "type2"),
        ("type1", "type4"),
    ]
    assert lineage_edges("linear", 3) == [("type0", "type1"), ("type1", "type2")]
    adata = simulate(60, 20, n_cell_types=6, trajectory="branching", seed=0)
    lineage = adata.uns["simulation"]["lineage"]
    edges = list(zip(lineage["parent"], lineage["child"], strict=True))
    assert edges == lineage_edges("branching", 6)
    A = lineage_adjacency(["type0", "type1", "type2"], lineage_edges("branching", 6))
    assert A.tolist() == [[0, 1, 0], [1, 0, 1], [0, 1, 0]]


def test_true_pseudotime_embedding_scores_one(branching):
    score = trajectory_conservation(branching, "X_true", "pseudotime", label_key="cell_type")
    assert score > 0.995
    assert pseudotime_spearman(branching, "X_true") > 0.99
    # scanpy's stationary cut (λ ≥ 0.9994) drops the slow components of this 1-D graph.
    legacy = trajectory_conservation(
        branching, "X_true", "pseudotime", label_key="cell_type", stationary="scanpy"
    )
    assert legacy < score - 0.1


def test_random_embedding_scores_near_half(branching):
    score = trajectory_conservation(branching, "X_random", "pseudotime", label_key="cell_type")
    assert abs(score - 0.5) < 0.1
    assert pseudotime_spearman(branching, "X_pca") > 0.8


def test_dpt_formula_and_stationary_rules():
    rng = np.random.default_rng(3)
    psi = rng.normal(size=(20, 4))
    lam = np.array([1.0, 0.9998, 0.9, 0.5])
    d = dpt_from_diffmap(psi, lam, root=2, n_dcs=4)
    w = np.array([1.0, 0.9998 / 0.0002, 9.0, 1.0])
    expected = np.sqrt((((psi[2] - psi) * w) ** 2).sum(1))
    assert np.allclose(d, expected / expected.max())
    d_scanpy = dpt_from_diffmap(psi, lam, root=2, n_dcs=4, stationary="scanpy")
    w[1] = 1.0  # scanpy: λ ≥ 0.9994 counts as stationary
    expected = np.sqrt((((psi[2] - psi) * w) ** 2).sum(1))
    assert np.allclose(d_scanpy, expected / expected.max())
    assert d[2] == 0.0


def test_first_rule_equals_scanpy_dpt_when_no_slow_component(branching):
    kw = dict(root_cell=0, n_neighbors=15)
    ours = diffusion_pseudotime(branching.obsm["X_pca"], **kw)
    assert (ours.eigenvalues[1:] < 0.9994).all()  # the rules can only agree then
    legacy = diffusion_pseudotime(branching.obsm["X_pca"], stationary="scanpy", **kw)
    assert np.allclose(ours.pseudotime, legacy.pseudotime, atol=1e-5)


def test_root_vote():
    # Components 0 and 2: the group lies below the mean, so its minimum gets the vote; in
    # component 1 it lies above, so its maximum does.
    diffmap = np.array(
        [[0.0, 5.0, 0.0], [1.0, 9.0, 1.0], [2.0, 8.0, 9.0], [9.0, 0.0, 9.0], [9.0, 0.0, 9.0]]
    )
    assert vote_root(diffmap, np.array([0, 1, 2])) == 0  # votes: cell 0: 2, cell 1: 1
    assert vote_root(diffmap, np.array([1, 2]), n_vote_dims=2) == 1  # tie: first cell wins
    with pytest.raises(InputError, match="no cell in the largest connected component"):
        vote_root(diffmap, np.array([], dtype=int))


def test_root_group_default_is_earliest_and_root_cell_by_name(branching):
    res = pseudotime_spearman(branching, "X_true", return_dpt=True)[1]
    assert branching.obs["cell_type"].iloc[res.root] == "type0"
    # The vote picks an extreme of the earliest group: the earliest cell of the path here.
    assert branching.obs["pseudotime"].iloc[res.root] < 0.01
    name = branching.obs_names[res.root]
    by_name = trajectory_conservation(branching, "X_true", "pseudotime", root_cell=name)
    voted = trajectory_conservation(branching, "X_true", "pseudotime", label_key="cell_type")
    assert by_name == pytest.approx(voted)
    late = trajectory_conservation(
        branching, "X_true", "pseudotime", label_key="cell_type", root_group="type5"
    )
    assert late < 0.5  # rooted at a tip, the order runs backwards along that branch


def _two_pieces(n=300, seed=0):
    """A 1-D path cut in two: the second piece is far away, so the kNN graph splits."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.random(n))
    x = t.copy()
    far = t > 0.8
    x[far] += 100.0
    adata = sc.AnnData(obs=pd.DataFrame({"t": t}, index=[f"c{i}" for i in range(n)]))
    adata.obs["group"] = pd.Categorical(np.where(t < 0.2, "early", "late"))
    adata.obsm["X"] = x[:, None]
    return adata, far


def test_cells_outside_the_largest_component():
    adata, far = _two_pieces()
    res = diffusion_pseudotime(adata.obsm["X"], np.flatnonzero(adata.obs["group"] == "early"))
    assert res.n_outside == far.sum()
    assert np.array_equal(~res.in_component, far)
    assert (res.pseudotime[far] == 0).all()
    zero = trajectory_conservation(adata, "X", "t", label_key="group", outside="zero")
    drop = trajectory_conservation(adata, "X", "t", label_key="group", outside="drop")
    t = adata.obs["t"].to_numpy()
    rho_zero = stats.spearmanr(t, res.pseudotime).statistic
    rho_drop = stats.spearmanr(t[~far], res.pseudotime[~far]).statistic
    assert zero == pytest.approx((rho_zero + 1) / 2)
    assert drop == pytest.approx((rho_drop + 1) / 2)
    assert drop > 0.99 > zero  # cutting the late cells off is penalized only by "zero"
    # Per batch: a batch wholly cut off has a constant DPT; "zero" counts it as ρ = 0, "drop"
    # (and scIB's mean) skips it.
    adata.obs["b"] = pd.Categorical(np.where(far, "far", "near"))
    kw = dict(label_key="group", batch_key="b")
    zero_b = trajectory_conservation(adata, "X", "t", outside="zero", **kw)
    drop_b = trajectory_conservation(adata, "X", "t", outside="drop", **kw)
    assert zero_b == pytest.approx(((rho_drop + 0.0) / 2 + 1) / 2)
    assert drop_b == pytest.approx((rho_drop + 1) / 2)


def test_per_batch_mean(branching):
    adata = branching.copy()
    adata.obs["half"] = pd.Categorical(np.where(np.arange(adata.n_obs) % 2 == 0, "a", "b"))
    score = trajectory_conservation(
        adata, "X_pca", "pseudotime", label_key="cell_type", batch_key="half"
    )
    res = pseudotime_spearman(adata, "X_pca", return_dpt=True)[1]
    t = adata.obs["pseudotime"].to_numpy()
    rhos = [stats.spearmanr(t[i::2], res.pseudotime[i::2]).statistic for i in (0, 1)]
    assert score == pytest.approx((np.mean(rhos) + 1) / 2)


@pytest.mark.skipif(importlib.util.find_spec("scib") is None, reason="needs the test extra (scib)")
def test_agrees_with_scib(branching):
    adata = branching.copy()
    before = list(warnings.filters)
    with warnings.catch_warnings():  # scib changes the warning filters at import
        import scib

        warnings.simplefilter("ignore")  # scib's own deprecation noise, not ours

        post = adata.copy()
        sc.pp.neighbors(post, use_rep="X_pca", n_neighbors=15, random_state=0)
        ref = scib.metrics.trajectory_conservation(
            adata, post, label_key="cell_type", pseudotime_key="pseudotime"
        )
    assert warnings.filters == before
    ours = trajectory_conservation(
        adata, "X_pca", "pseudotime", label_key="cell_type", stationary="scanpy"
    )
    assert ours == pytest.approx(ref, abs=1e-6)
    default = trajectory_conservation(adata, "X_pca", "pseudotime", label_key="cell_type")
    assert default == pytest.approx(ref, abs=1e-3)  # no slow component here (test above)


def test_paga_agreement(branching):
    lineage = branching.uns["simulation"]["lineage"]
    # Geometry of the truth: the stem on a line, the branches going off at an angle.
    t = branching.obs["pseudotime"].to_numpy()
    arm = np.clip(t - 0.5, 0, None)
    side = np.where(branching.obs["branch"].to_numpy() == "A", 1.0, -1.0)
    branching.obsm["X_tree"] = np.c_[np.minimum(t, 0.5) + arm, side * arm]
    true_scores, conn = paga_agreement(branching, "X_tree", lineage, return_connectivities=True)
    # The first stretches of the two branches touch at the branch point, so PAGA links them too.
    assert true_scores["paga_auc"] > 0.85
    assert true_scores["paga_recall"] >= 0.8
    assert conn.shape == (6, 6)
    # The types laid out on a line in an order where no two neighbours share a lineage edge.
    order = {"type0": 0, "type3": 1, "type1": 2, "type5": 3, "type2": 4, "type4": 5}
    pos = branching.obs["cell_type"].astype(str).map(order).to_numpy(dtype=float)
    jitter = np.random.default_rng(1).random(branching.n_obs)
    branching.obsm["X_wrong"] = (pos + jitter)[:, None]
    wrong = paga_agreement(branching, "X_wrong", lineage)
    assert wrong["paga_auc"] < 0.5 < true_scores["paga_auc"] - 0.3
    with pytest.raises(InputError, match="no edges"):
        paga_agreement(branching, "X_tree", [])


def test_prior_energy_matches_the_ising_energy():
    rng = np.random.default_rng(5)
    n = 6
    h = rng.normal(size=n)
    J = np.triu(rng.normal(size=(n, n)), 1)
    J = J + J.T
    q = rng.random((7, n))
    expected = ising_energy(torch.tensor(2 * q - 1), torch.tensor(h), torch.tensor(J)).numpy()
    assert np.allclose(prior_energy(q, h, J), expected)
    with pytest.raises(InputError, match="symmetric"):
        prior_energy(q, h, J + np.triu(np.ones((n, n)), 1))
    with pytest.raises(InputError, match="must be"):
        prior_energy(q[:, :3], h, J)


def test_bad_input(branching):
    adata = branching.copy()
    adata.obs["pt_nan"] = adata.obs["pseudotime"].to_numpy().copy()
    adata.obs.iloc[:5, adata.obs.columns.get_loc("pt_nan")] = np.nan
    with pytest.raises(InputError, match="5 missing value"):
        trajectory_conservation(adata, "X_pca", "pt_nan", label_key="cell_type")
    ok = trajectory_conservation(adata, "X_pca", "pt_nan", label_key="cell_type", dropna=True)
    assert 0.0 <= ok <= 1.0
    with pytest.raises(InputError, match="root_group 'typeX' has no cells"):
        trajectory_conservation(
            adata, "X_pca", "pseudotime", label_key="cell_type", root_group="typeX"
        )
    with pytest.raises(InputError, match="not a column"):
        trajectory_conservation(adata, "X_pca", "no_such_column", label_key="cell_type")
    with pytest.raises(InputError, match="not in adata.obsm"):
        trajectory_conservation(adata, "X_nope", "pseudotime", label_key="cell_type")
    with pytest.raises(InputError, match="needs label_key"):
        trajectory_conservation(adata, "X_pca", "pseudotime")
    # More diffusion components asked for than computed, or than the graph has cells for.
    with pytest.raises(InputError, match="n_dcs=20"):
        trajectory_conservation(adata, "X_true", "pseudotime", label_key="cell_type", n_dcs=20)
    with pytest.raises(InputError, match="root vote uses 5"):
        trajectory_conservation(
            adata, "X_true", "pseudotime", label_key="cell_type", n_comps=4, n_dcs=4,
            n_vote_dims=5,
        )  # fmt: skip
    small = adata[:12].copy()
    with pytest.raises(InputError, match="need more cells"):
        trajectory_conservation(small, "X_true", "pseudotime", label_key="cell_type", n_neighbors=5)
    with pytest.raises(InputError, match="outside"):
        trajectory_conservation(
            adata, "X_pca", "pseudotime", label_key="cell_type", outside="ignore"
        )


def test_knn_graph_reaches_scanpy_as_a_sparse_matrix():
    """pynndescent 0.7 returns a ``csr_array``, which scanpy 1.11 cannot read; through
    ``SparseMatrixOutput`` the same transformer's graph reaches scanpy and gives scanpy's own
    exact graph (a brute-force transformer returning ``csr_array`` stands in for pynndescent,
    whose compilation takes a minute)."""
    import scipy.sparse as sp
    from sklearn.neighbors import KNeighborsTransformer

    from qbm_lite.metrics.trajectory import SparseMatrixOutput, _approximate_knn

    class ArrayOutput(KNeighborsTransformer):
        def fit_transform(self, X, y=None):  # noqa: N803
            return sp.csr_array(super().fit_transform(X, y))

    X = np.random.default_rng(0).normal(size=(300, 5)).astype(np.float32)
    exact = sc.AnnData(obs=pd.DataFrame(index=[str(i) for i in range(300)]))
    exact.obsm["X"] = X
    sc.pp.neighbors(exact, use_rep="X", n_neighbors=10)  # scanpy's exact default below 8192
    wrapped = exact.copy()
    transformer = SparseMatrixOutput(ArrayOutput(n_neighbors=10, algorithm="brute"))
    sc.pp.neighbors(wrapped, use_rep="X", n_neighbors=10, transformer=transformer)
    np.testing.assert_allclose(
        wrapped.obsp["connectivities"].toarray(), exact.obsp["connectivities"].toarray(), atol=1e-6
    )
    # scanpy keeps a transformer's whole distance graph (here one neighbour more per row than
    # its exact default keeps); the neighbours both keep are the same, at the same distances.
    a, b = exact.obsp["distances"].toarray(), wrapped.obsp["distances"].toarray()
    assert np.all(b[a > 0] > 0)
    np.testing.assert_allclose(b[a > 0], a[a > 0], rtol=1e-5)
    assert transformer.get_params()["n_neighbors"] == 10
    # Below scanpy's switch to approximate neighbours nothing is wrapped; from it on the
    # transformer carries scanpy's pynndescent settings.
    assert _approximate_knn(8191, 15, 0) is None
    pytest.importorskip("pynndescent")
    big = _approximate_knn(10_000, 15, 0)
    params = big.get_params()
    assert params["n_neighbors"] == 15 and params["n_trees"] == 10 and params["n_iters"] == 13
