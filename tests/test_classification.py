"""Cell-type classification on embeddings: splits that never leak, scores checked against
scikit-learn, perfect and useless embeddings, paired comparisons, close subtypes, bad input."""

from __future__ import annotations

import warnings

import anndata as ad
import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from qbm_lite.checks import InputError
from qbm_lite.data import simulate
from qbm_lite.metrics import classification_benchmark, compare
from qbm_lite.metrics.classification import (
    CLASSIFICATION_METRICS,
    confusion_counts,
    holdout_batch_splits,
    per_class_scores,
    random_splits,
    scores_from_confusion,
)

matplotlib.use("Agg")


def _toy(n: int = 360, n_types: int = 4, n_batches: int = 3, seed: int = 0) -> ad.AnnData:
    """Balanced labels and batches; embeddings: one-hot of the label, pure noise, cell index."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_types
    batch = (np.arange(n) // n_types) % n_batches
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical([f"t{t}" for t in labels]),
            "batch": pd.Categorical([f"b{b}" for b in batch]),
        },
        index=[f"c{i}" for i in range(n)],
    )
    adata = ad.AnnData(X=rng.normal(size=(n, 5)).astype(np.float32), obs=obs)
    adata.obsm["X_onehot"] = np.eye(n_types)[labels]
    adata.obsm["X_noise"] = rng.normal(size=(n, 6))
    adata.obsm["X_index"] = np.c_[np.arange(n), rng.normal(size=(n, 2))]
    return adata


class _Spy:
    """A classifier that records the cells (column 0 = cell index) it is fitted and tested on."""

    log: list[dict[str, np.ndarray]] = []

    def fit(self, X, y):
        self.entry = {"fit": X[:, 0].astype(int), "classes": np.unique(y)}
        self.log.append(self.entry)
        return self

    def predict(self, X):
        self.entry["predict"] = X[:, 0].astype(int)
        return np.full(X.shape[0], self.entry["classes"][0])


def _spy_factory(seed: int, n_train: int) -> _Spy:
    return _Spy()


# --- scores against scikit-learn ------------------------------------------------------------
def test_scores_agree_with_scikit_learn():
    # 4 true types; "d" is never predicted, "e" is predicted but never true.
    y_true = np.array(list("aaaabbbccccccdd") + ["a", "b"])
    y_pred = np.array(list("aabacbbccccacbe") + ["e", "b"])
    labels = ["a", "b", "c", "d", "e"]
    counts = confusion_counts(y_true, y_pred, labels)
    np.testing.assert_array_equal(counts, skm.confusion_matrix(y_true, y_pred, labels=labels))
    got = scores_from_confusion(counts)
    present = ["a", "b", "c", "d"]
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    with warnings.catch_warnings():  # scikit-learn warns that "e" is not a true class
        warnings.simplefilter("ignore", UserWarning)
        assert got["balanced_accuracy"] == pytest.approx(
            skm.balanced_accuracy_score(y_true, y_pred)
        )
    for avg in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=present, average=avg, zero_division=0
        )
        assert got[f"precision_{avg}"] == pytest.approx(p)
        assert got[f"recall_{avg}"] == pytest.approx(r)
        assert got[f"f1_{avg}"] == pytest.approx(f)
    pc = per_class_scores(counts)
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(pc["precision"], p)
    np.testing.assert_allclose(pc["recall"], r)
    np.testing.assert_allclose(pc["f1"], f)
    np.testing.assert_array_equal(pc["support"], s)
    assert list(got) == list(CLASSIFICATION_METRICS)


def test_a_wrong_confusion_changes_the_scores():
    counts = np.array([[5, 1], [2, 2]])
    assert scores_from_confusion(counts) != scores_from_confusion(counts.T)
    with pytest.raises(InputError, match="no test cells"):
        scores_from_confusion(np.zeros((2, 2)))


# --- no leakage -----------------------------------------------------------------------------
def test_random_splits_partition_the_cells_and_stratify():
    y = np.repeat(["a", "b", "c"], [50, 30, 20])
    splits = random_splits(y, n_splits=5, seed=1)
    tests = np.concatenate([te for _, _, te in splits])
    np.testing.assert_array_equal(np.sort(tests), np.arange(y.size))
    for _, tr, te in splits:
        assert np.intersect1d(tr, te).size == 0
        assert tr.size + te.size == y.size
        assert (y[te] == "c").sum() == 4  # stratified: 20 / 5


@pytest.mark.parametrize("scheme", ["random", "holdout-batch"])
def test_no_test_cell_reaches_training(scheme):
    adata = _toy()
    _Spy.log = []
    res = classification_benchmark(
        adata, ["X_index"], "cell_type", "batch", scheme=scheme, classifier=_spy_factory,
        plot=False,
    )  # fmt: skip
    n_folds = res.scores["fold"].nunique()
    assert len(_Spy.log) == n_folds == (5 if scheme == "random" else 3)
    batch = adata.obs["batch"].astype(str).to_numpy()
    seen_test = []
    for entry, fold in zip(_Spy.log, pd.unique(res.scores["fold"]), strict=True):
        fit, test = entry["fit"], entry["predict"]
        assert np.intersect1d(fit, test).size == 0
        assert fit.size + test.size == adata.n_obs
        if scheme == "holdout-batch":
            assert set(batch[test]) == {fold}
            assert fold not in set(batch[fit])
        seen_test.append(test)
    np.testing.assert_array_equal(np.sort(np.concatenate(seen_test)), np.arange(adata.n_obs))


def test_retrain_scheme_never_shows_the_held_out_batch_to_the_embedder():
    adata = _toy()
    calls = []

    def embedder(reference, query, seed):
        calls.append((set(reference.obs_names), set(query.obs_names), seed))
        lab_r = reference.obs["cell_type"].cat.codes.to_numpy()
        lab_q = query.obs["cell_type"].cat.codes.to_numpy()
        return np.eye(4)[lab_r], np.eye(4)[lab_q]

    res = classification_benchmark(
        adata, None, "cell_type", "batch", scheme="holdout-batch-retrain",
        classifier="knn", embedders={"spy": embedder}, seed=3, plot=False,
    )  # fmt: skip
    assert len(calls) == 3
    for (ref, query, seed), fold in zip(calls, sorted(adata.obs["batch"].unique()), strict=True):
        held_out = set(adata.obs_names[adata.obs["batch"] == fold])
        assert query == held_out
        assert ref.isdisjoint(held_out)
        assert ref | query == set(adata.obs_names)
        assert seed == 3
    assert res.scores.query("metric == 'f1_macro'")["value"].min() == pytest.approx(1.0)


# --- perfect and useless embeddings ---------------------------------------------------------
@pytest.mark.parametrize("classifier", ["xgboost", "logistic", "knn"])
@pytest.mark.parametrize("scheme", ["random", "holdout-batch"])
def test_one_hot_of_the_label_scores_one(classifier, scheme):
    res = classification_benchmark(
        _toy(), ["X_onehot"], "cell_type", "batch", scheme=scheme, classifier=classifier,
        plot=False,
    )  # fmt: skip
    np.testing.assert_allclose(res.scores["value"], 1.0)
    conf = res.confusion["X_onehot"]
    np.testing.assert_allclose(conf.to_numpy(), np.eye(4))


@pytest.mark.parametrize("classifier", ["xgboost", "logistic", "knn"])
def test_a_random_embedding_scores_near_chance(classifier):
    res = classification_benchmark(
        _toy(n=800), ["X_noise"], "cell_type", "batch", scheme="random", classifier=classifier,
        plot=False,
    )  # fmt: skip
    mean = res.summary().loc["X_noise", "balanced_accuracy"]
    assert 0.15 < mean < 0.35  # chance is 1/4


def test_identical_embeddings_give_no_difference():
    adata = _toy()
    adata.obsm["X_copy"] = adata.obsm["X_noise"].copy()
    res = classification_benchmark(
        adata, {"A": "X_noise", "B": "X_copy"}, "cell_type", "batch", scheme="random",
        classifier="logistic", plot=False,
    )  # fmt: skip
    cmp = res.compare("A", "B", "f1_macro")
    assert cmp.low <= 0.0 <= cmp.high and cmp.verdict == "no difference"
    assert compare(res.scores, "A", "B", "accuracy").mean == 0.0
    # ...and a real difference is found: one-hot vs noise.
    adata.obsm["X_onehot2"] = adata.obsm["X_onehot"]
    res = classification_benchmark(
        adata, {"good": "X_onehot2", "noise": "X_noise"}, "cell_type", "batch",
        scheme="random", classifier="logistic", plot=False,
    )  # fmt: skip
    assert res.compare("good", "noise").verdict == "good higher"


# --- results layout -------------------------------------------------------------------------
def test_results_layout_pairs_unseen_and_figure():
    adata = _toy()
    # t3 lives only in batch b0: holding out b0 must report it, never drop it.
    t3 = (adata.obs["cell_type"] == "t3").to_numpy()
    adata.obs["batch"] = np.where(t3, "b0", adata.obs["batch"].astype(str))
    adata.obs["batch"] = adata.obs["batch"].astype("category")

    def always_t0(seed, n_train):
        class Const:
            def fit(self, X, y):
                return self

            def predict(self, X):
                return np.full(X.shape[0], "t0")

        return Const()

    res = classification_benchmark(
        adata, {"one-hot": "X_onehot"}, "cell_type", "batch", classifier="knn",
        close_pairs=[("t0", "t1"), ("t1", "t2")],
    )  # fmt: skip
    assert set(res.scores.columns) >= {"method", "fold", "seed", "metric", "value"}
    assert res.unseen.to_dict("records") == [
        {"method": "one-hot", "fold": "b0", "cell_type": "t3", "n_cells": int(t3.sum())}
    ]
    b0 = res.per_class.query("fold == 'b0' and cell_type == 't3'")
    assert b0["recall"].item() == 0.0 and b0["support"].item() == t3.sum()
    assert res.figure is not None
    np.testing.assert_allclose(res.confusion["one-hot"].sum(axis=1), 1.0)
    summary = res.summary()
    assert list(summary.columns) == ["f1_macro", "f1_macro_sd", "balanced_accuracy",
                                     "balanced_accuracy_sd"]  # fmt: skip

    res = classification_benchmark(
        adata, {"const": "X_onehot"}, "cell_type", scheme="random", classifier=always_t0,
        close_pairs=[("t0", "t1")], plot=False,
    )  # fmt: skip
    row = res.pairs.iloc[0]
    assert (row.a_as_b, row.b_as_a) == (0.0, 1.0)
    assert row.n_b == (adata.obs["cell_type"] == "t1").sum()


# --- close subtypes with known truth --------------------------------------------------------
def test_simulated_subtypes_are_additive_and_have_an_answer_key():
    base = simulate(n_cells=300, n_genes=60, n_cell_types=4, seed=2)
    split = simulate(n_cells=300, n_genes=60, n_cell_types=4, n_subtypes=2, seed=2)
    np.testing.assert_array_equal(
        split.obs["parent_type"].astype(str), base.obs["cell_type"].astype(str)
    )
    assert list(split.obs["cell_type"].cat.categories) == [
        "type0a", "type0b", "type1a", "type1b", "type2", "type3"
    ]  # fmt: skip
    assert split.uns["simulation"]["close_pairs"] == [["type0a", "type0b"], ["type1a", "type1b"]]
    assert "parent_type" not in base.obs
    with pytest.raises(ValueError, match="n_subtypes"):
        simulate(n_cells=50, n_cell_types=2, n_subtypes=3)
    with pytest.raises(ValueError, match="n_subtypes"):
        simulate(n_cells=50, trajectory="linear", n_subtypes=1)


def _log_pca(adata, n_comps=15):
    from sklearn.decomposition import PCA

    X = adata.X.toarray()
    Y = np.log1p(X / X.sum(1, keepdims=True) * 1e4)
    return PCA(n_components=n_comps, random_state=0).fit_transform(Y)


def test_close_pair_confusion_follows_the_true_subtype_difference():
    """Identical halves are confused at chance (~0.5); well-separated halves much less."""
    confusion = {}
    for scale in (0.0, 1.5):
        adata = simulate(
            n_cells=800, n_genes=150, n_cell_types=3, n_subtypes=1, subtype_de_scale=scale,
            batch_strength=0.0, de_prob=0.3, seed=4,
        )  # fmt: skip
        adata.obsm["X_pca"] = _log_pca(adata)
        res = classification_benchmark(
            adata, ["X_pca"], "cell_type", scheme="random", classifier="logistic",
            close_pairs=[("type0a", "type0b")], plot=False,
        )  # fmt: skip
        confusion[scale] = res.pairs["confusion"].item()
    assert 0.35 < confusion[0.0] < 0.65
    assert confusion[1.5] < 0.2


# --- bad input ------------------------------------------------------------------------------
def test_bad_input_is_refused_with_the_fix():
    adata = _toy()
    call = {"obsm_keys": ["X_onehot"], "label_key": "cell_type", "batch_key": "batch"}
    missing = adata.copy()
    missing.obs["cell_type"] = missing.obs["cell_type"].astype(object)
    missing.obs.iloc[3, 0] = np.nan
    with pytest.raises(InputError, match="missing value"):
        classification_benchmark(missing, **call, plot=False)
    with pytest.warns(UserWarning, match="left out 1 cell"):
        res = classification_benchmark(missing, **call, dropna=True, plot=False)
    assert res.per_class["support"].sum() == missing.n_obs - 1
    cont = adata.copy()
    cont.obs["size"] = np.random.default_rng(0).normal(size=cont.n_obs)
    with pytest.raises(InputError, match="looks continuous"):
        classification_benchmark(cont, ["X_onehot"], "size", "batch", plot=False)
    with pytest.raises(InputError, match="not in adata.obsm"):
        classification_benchmark(adata, ["X_nope"], "cell_type", "batch", plot=False)
    nan = adata.copy()
    nan.obsm["X_noise"][5, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        classification_benchmark(nan, ["X_noise"], "cell_type", "batch", plot=False)
    one = adata.copy()
    one.obs["batch"] = pd.Categorical(["b0"] * one.n_obs)
    with pytest.raises(InputError, match="at least 2 batches"):
        classification_benchmark(one, **call, scheme="holdout-batch", plot=False)
    with pytest.raises(InputError, match="pass batch_key"):
        classification_benchmark(adata, ["X_onehot"], "cell_type", plot=False)
    with pytest.raises(InputError, match="embedders"):
        classification_benchmark(adata, **call, scheme="holdout-batch-retrain", plot=False)
    with pytest.raises(InputError, match="scheme must be one of"):
        classification_benchmark(adata, **call, scheme="loo", plot=False)
    with pytest.raises(InputError, match="classifier must be one of"):
        classification_benchmark(adata, **call, classifier="svm", plot=False)
    with pytest.raises(InputError, match="close pair"):
        classification_benchmark(adata, **call, close_pairs=[("t0", "zz")], plot=False)
    with pytest.raises(InputError, match="too few"):
        classification_benchmark(adata, **call, scheme="random", n_splits=200, plot=False)
    with pytest.raises(InputError, match="at least 2 batches"):
        holdout_batch_splits(np.array(["x"] * 5))


# --- reference mapping ----------------------------------------------------------------------
def _counts_data():
    from qbm_lite.data import prepare

    adata = simulate(n_cells=240, n_genes=80, n_cell_types=3, n_batches=3, seed=1)
    return prepare(adata, n_top_genes=80)


def test_pca_embedder_projects_the_query_on_reference_axes():
    from qbm_lite.mapping import reference_embedder

    adata = _counts_data()
    ref, query = adata[:160].copy(), adata[160:].copy()
    Z_ref, Z_query = reference_embedder("PCA", n_pcs=5)(ref, query, 0)
    assert Z_ref.shape == (160, 5) and Z_query.shape == (80, 5)
    # The query's projection does not depend on the other query cells.
    _, Z_one = reference_embedder("PCA", n_pcs=5)(ref, query[:1].copy(), 0)
    np.testing.assert_allclose(Z_one[0], Z_query[0], rtol=1e-4, atol=1e-4)


def test_qbmvae_embedder_maps_an_unseen_batch_through_the_encoder_alone():
    from qbm_lite.mapping import reference_embedder

    adata = _counts_data()
    is_b2 = (adata.obs["batch"] == "batch2").to_numpy()
    ref, query = adata[~is_b2].copy(), adata[is_b2].copy()
    embed = reference_embedder("QBM-VAE", n_latent=4, max_epochs=2, batch_size=64)
    Z_ref, Z_query = embed(ref, query, 0)
    assert Z_ref.shape == (ref.n_obs, 4) and Z_query.shape == (query.n_obs, 4)
    assert np.isfinite(Z_query).all()
    with pytest.raises(InputError, match="encode_covariates"):
        reference_embedder("QBM-VAE", method_kwargs={"encode_covariates": True})
    with pytest.raises(InputError, match="method must be one of"):
        reference_embedder("AUTOZI")


def test_query_mapping_equals_the_encoder_on_the_query_cells():
    """Whichever path maps the query (scArches mixin or a known batch label), the latent is the
    frozen encoder's output on the query's counts."""
    from qbm_lite import QBMVAE
    from qbm_lite.mapping import _map_query

    adata = _counts_data()
    is_b2 = (adata.obs["batch"] == "batch2").to_numpy()
    ref, query = adata[~is_b2].copy(), adata[is_b2].copy()
    model = QBMVAE(ref, layer="counts", batch_key="batch", n_latent=4, seed=0)
    model.train(max_epochs=1, batch_size=64, progress=False)
    as_known = query.copy()
    as_known.obs["batch"] = "batch0"
    np.testing.assert_allclose(
        _map_query(model, query, "batch"), model.get_latent_representation(as_known), atol=1e-6
    )


def test_the_encoder_ignores_the_batch_label():
    """What the QBM-VAE mapping relies on: without encode_covariates, q(z|x) ignores the batch."""
    from qbm_lite import QBMVAE

    adata = _counts_data()
    model = QBMVAE(adata, layer="counts", batch_key="batch", n_latent=4, seed=0)
    model.train(max_epochs=1, batch_size=64, progress=False)
    other = adata.copy()
    other.obs["batch"] = pd.Categorical(
        np.roll(adata.obs["batch"].astype(str).to_numpy(), 7),
        categories=adata.obs["batch"].cat.categories,
    )
    np.testing.assert_allclose(
        model.get_latent_representation(adata), model.get_latent_representation(other)
    )


def test_scvi_embedder_uses_scvi_tools_query_mapping():
    pytest.importorskip("scvi")
    from qbm_lite.mapping import reference_embedder

    adata = _counts_data()
    is_b2 = (adata.obs["batch"] == "batch2").to_numpy()
    ref, query = adata[~is_b2].copy(), adata[is_b2].copy()
    embed = reference_embedder("scVI", n_latent=3, max_epochs=2, query_epochs=1, batch_size=64)
    Z_ref, Z_query = embed(ref, query, 0)
    assert Z_ref.shape == (ref.n_obs, 3) and Z_query.shape == (query.n_obs, 3)
    assert np.isfinite(Z_ref).all() and np.isfinite(Z_query).all()
    assert "_scvi_uuid" not in ref.uns  # the caller's AnnData is not registered or changed
