"""After the latent: normalized expression, posterior-predictive counts, DE and query mapping.

Known-answer checks on the simulator (which records the true DE genes in ``var``) and bad input
for every new method of :class:`qbm_lite.QBMVAE`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier

from qbm_lite import data
from qbm_lite.vae import QBMVAE
from qbm_lite.vae.rnaseq import fdr_de_prediction

# A short run: lr 5e-3 on minibatches of 64 converges enough in 30 epochs on ~600 cells.
TRAIN = {"max_epochs": 30, "batch_size": 64, "lr": 5e-3, "progress": False}


@pytest.fixture(scope="module")
def sim():
    # Three well separated types, three batches; batch2 is held out as the query. theta=2: the
    # decoder's NB inverse dispersion starts at 1 and moves by about lr per step, so in a test-
    # sized run it can reach the data's dispersion only if that is near 1-3.
    return data.simulate(
        n_cells=900,
        n_genes=200,
        n_batches=3,
        n_cell_types=3,
        de_prob=0.2,
        de_scale=1.0,
        theta=2.0,
        seed=1,
    )


@pytest.fixture(scope="module")
def ref_data(sim):
    return sim[sim.obs["batch"] != "batch2"].copy()


@pytest.fixture(scope="module")
def ref_model(ref_data):
    m = QBMVAE(ref_data, layer="counts", batch_key="batch", n_latent=16, seed=0)
    return m.train(**TRAIN)


# --- normalized expression -----------------------------------------------------------------
def test_normalized_expression_is_a_composition_scaled_to_the_library(ref_model, ref_data):
    ne = ref_model.get_normalized_expression(library_size=1e4, n_samples=2)
    assert ne.shape == (ref_data.n_obs, ref_data.n_vars)
    assert list(ne.columns) == list(ref_data.var_names)
    np.testing.assert_allclose(ne.sum(1).to_numpy(), 1e4, rtol=1e-4)
    latent = ref_model.get_normalized_expression(library_size="latent", return_numpy=True)
    lib = np.asarray(ref_data.layers["counts"].sum(1)).ravel()
    np.testing.assert_allclose(latent.sum(1), lib, rtol=1e-4)
    # Denoised expression correlates with the data's normalized counts, gene by gene means.
    counts = ref_data.layers["counts"].toarray()
    freq = counts / lib[:, None] * 1e4
    assert np.corrcoef(np.log1p(ne.mean(0)), np.log1p(freq.mean(0)))[0, 1] > 0.95


def test_normalized_expression_options(ref_model):
    a = ref_model.get_normalized_expression(indices=[0, 5], batch="batch0", seed=3)
    b = ref_model.get_normalized_expression(indices=[0, 5], batch="batch1", seed=3)
    both = ref_model.get_normalized_expression(indices=[0, 5], batch=["batch0", "batch1"], seed=3)
    np.testing.assert_allclose(both.to_numpy(), (a.to_numpy() + b.to_numpy()) / 2, rtol=1e-5)
    assert not np.allclose(a.to_numpy(), b.to_numpy())  # the batch covariate matters
    samples = ref_model.get_normalized_expression(
        indices=[1, 2, 3], n_samples=4, return_mean=False, gene_list=["gene3", "gene1"]
    )
    assert samples.shape == (4, 3, 2)
    state = torch.get_rng_state()
    ref_model.get_normalized_expression(indices=[0], n_samples=2)
    assert torch.equal(state, torch.get_rng_state())  # the caller's random state is kept


def test_normalized_expression_bad_input(ref_model, ref_data):
    with pytest.raises(ValueError, match="not among the model's genes"):
        ref_model.get_normalized_expression(gene_list=["nope"])
    with pytest.raises(TypeError, match="list of gene names"):
        ref_model.get_normalized_expression(gene_list="gene1")
    with pytest.raises(ValueError, match="library_size must be positive"):
        ref_model.get_normalized_expression(library_size=0)
    with pytest.raises(ValueError, match="'latent'"):
        ref_model.get_normalized_expression(library_size="observed")
    with pytest.raises(ValueError, match="batch must name"):
        ref_model.get_normalized_expression(batch="batch9")
    with pytest.raises(ValueError, match="n_samples"):
        ref_model.get_normalized_expression(n_samples=0)
    with pytest.raises(IndexError, match="indices"):
        ref_model.get_normalized_expression(indices=[10**6])
    with pytest.raises(ValueError, match="prepare_query_anndata"):
        ref_model.get_normalized_expression(ref_data[:, 1:].copy())


# --- posterior-predictive counts ---------------------------------------------------------
def _z_within(data_stat, boot_se, rep_stats) -> float:
    """Share of genes whose data statistic lies within 3 combined standard errors of the
    replicates' mean (data sampling error + Monte-Carlo spread of the replicates)."""
    z = (data_stat - rep_stats.mean(0)) / np.sqrt(boot_se**2 + rep_stats.var(0) + 1e-12)
    return float(np.mean(np.abs(z) < 3))


def test_posterior_predictive_counts_match_the_data_mean_and_variance(ref_model, ref_data):
    counts = ref_data.layers["counts"].toarray()
    draws = ref_model.posterior_predictive_sample(n_samples=20)  # (cells, genes, 20)
    assert draws.shape == (*counts.shape, 20)
    assert np.array_equal(draws, np.round(draws)) and draws.min() >= 0
    rng = np.random.default_rng(0)
    boot = rng.integers(0, counts.shape[0], size=(100, counts.shape[0]))
    boot_mean = np.stack([counts[b].mean(0) for b in boot])
    boot_var = np.stack([counts[b].var(0) for b in boot])
    ok_mean = _z_within(counts.mean(0), boot_mean.std(0), draws.mean(0).T)
    ok_var = _z_within(counts.var(0), boot_var.std(0), draws.var(0).T)
    assert ok_mean > 0.9, ok_mean
    assert ok_var > 0.85, ok_var
    # Control that can fail: Poisson counts with the same means lack the NB's overdispersion.
    mu = ref_model.get_normalized_expression(library_size="latent", return_numpy=True)
    pois = rng.poisson(mu[:, :, None] * np.ones(20)).astype(float)
    assert _z_within(counts.var(0), boot_var.std(0), pois.var(0).T) < ok_var - 0.2


def test_likelihood_draws_have_the_nb_and_zinb_moments(ref_model):
    """The draws use θ as the NB inverse dispersion: Var = μ + μ²/θ (ZINB: times 1 - π)."""
    mu = torch.tensor([[0.5, 10.0, 40.0]]).expand(40000, 3)
    theta = torch.tensor([0.5, 2.0, 8.0])
    params = {"mu": mu, "theta": theta}
    torch.manual_seed(0)
    x = ref_model._draw(params).numpy()
    m, th = mu[0].numpy(), theta.numpy()
    np.testing.assert_allclose(x.mean(0), m, rtol=0.03)
    np.testing.assert_allclose(x.var(0), m + m**2 / th, rtol=0.08)
    pi = 0.3
    ref_model.config["likelihood"] = "zinb"
    try:
        params["pi_logits"] = torch.full_like(mu, float(np.log(pi / (1 - pi))))
        z = ref_model._draw(params).numpy()
    finally:
        ref_model.config["likelihood"] = "nb"
    nb_var = m + m**2 / th
    np.testing.assert_allclose(z.mean(0), (1 - pi) * m, rtol=0.04)
    np.testing.assert_allclose(z.var(0), (1 - pi) * (nb_var + pi * m**2), rtol=0.08)


def test_posterior_predictive_bad_input(ref_model):
    with pytest.raises(ValueError, match="n_samples"):
        ref_model.posterior_predictive_sample(n_samples=-1)
    with pytest.raises(ValueError, match="boolean mask"):
        ref_model.posterior_predictive_sample(indices=np.array([True, False]))
    one = ref_model.posterior_predictive_sample(indices=[0, 1], gene_list=["gene0"], seed=1)
    assert one.shape == (2, 1)
    np.testing.assert_array_equal(
        one, ref_model.posterior_predictive_sample(indices=[0, 1], gene_list=["gene0"], seed=1)
    )


# --- differential expression -------------------------------------------------------------
def test_fdr_de_prediction_known_answer():
    p = np.array([0.5, 1.0, 0.1, 1.0, 0.9])
    # Sorted 1, 1, 0.9, 0.5, 0.1: expected FDR of the top k = 0, 0, 0.033, 0.15, 0.3.
    np.testing.assert_array_equal(fdr_de_prediction(p, 0.05), [False, True, False, True, True])
    assert fdr_de_prediction(p, 0.2).sum() == 4
    with pytest.raises(ValueError, match="fdr_target"):
        fdr_de_prediction(p, 1.0)
    with pytest.raises(ValueError, match="probabilities"):
        fdr_de_prediction(np.array([1.5]), 0.05)


def _true_rho_lfc(var, a: str, b: str) -> np.ndarray:
    """The simulation's true log2 fold change of the composition ρ between two types (no batch)."""
    log_base = np.log(var["base_mean"].to_numpy())
    rho = {}
    for t in (a, b):
        v = log_base + var[f"de_logfc_{t}"].to_numpy()
        rho[t] = np.exp(v - v.max()) / np.exp(v - v.max()).sum()
    return np.log2(rho[a]) - np.log2(rho[b])


@pytest.mark.parametrize("batch_correction", [False, True])
def test_de_ranks_the_truly_differential_genes_first(ref_model, ref_data, batch_correction):
    truth = ref_data.var["de_logfc_type0"] != ref_data.var["de_logfc_type1"]
    assert 20 < truth.sum() < 150  # the simulation has both DE and non-DE genes
    de = ref_model.differential_expression(
        groupby="cell_type",
        group1="type0",
        group2="type1",
        n_samples=2000,
        batch_correction=batch_correction,
    )
    assert len(de) == ref_data.n_vars and set(de["comparison"]) == {"type0 vs type1"}
    score = -np.arange(len(de))  # the table's ranking, best first
    auc = roc_auc_score(truth.loc[de.index].to_numpy(), score)
    # Without batch correction, pairs of cells from different batches add the simulated
    # gene-wise batch factors to the LFC, which blurs the ranking a little.
    assert auc > (0.9 if batch_correction else 0.8), auc
    # Against the true change of the composition ρ (which also moves non-DE genes: ρ is
    # renormalized), the genes called at 5% expected FDR are right and the signs agree.
    rho_lfc = pd.Series(_true_rho_lfc(ref_data.var, "type0", "type1"), index=ref_data.var_names)
    called = de.index[de["is_de_fdr_0.05"]]
    assert len(called) > 10
    assert (rho_lfc.loc[called].abs() > 0.25).mean() > 0.9
    top = de.index[:30]
    assert np.mean(np.sign(de.loc[top, "lfc_mean"]) == np.sign(rho_lfc.loc[top])) > 0.9
    # Control: random halves of the cells carry no signal. Their mean LFCs are near 0, but
    # P(|LFC| > δ) is not, and it still ranks the type markers first: pairs of random cells
    # differ by cell type (the "change" mode counts heterogeneity within groups as change, see
    # the method's docstring), so proba_de is only meaningful between homogeneous groups.
    rng = np.random.default_rng(0)
    idx1 = rng.random(ref_data.n_obs) < 0.5
    null = ref_model.differential_expression(
        idx1=idx1, n_samples=2000, batch_correction=batch_correction
    )
    assert null["lfc_mean"].abs().max() < 0.5 < de["lfc_mean"].abs().quantile(0.8)
    assert null["proba_de"].mean() < de["proba_de"].mean()


def test_de_one_vs_rest_and_vanilla(ref_model):
    res = ref_model.differential_expression(groupby="cell_type", n_samples=300)
    assert set(res["group2"]) == {"rest"} and res["group1"].nunique() == 3
    van = ref_model.differential_expression(
        groupby="cell_type", group1="type0", mode="vanilla", n_samples=300
    )
    assert {"proba_m1", "proba_m2", "bayes_factor"} <= set(van.columns)
    assert "proba_de" not in van.columns


def test_de_bad_input(ref_model):
    de = ref_model.differential_expression
    with pytest.raises(ValueError, match="groupby"):
        de()
    with pytest.raises(ValueError, match="not a category"):
        de(groupby="cell_type", group1="typeX")
    with pytest.raises(ValueError, match="not a column"):
        de(groupby="nope")
    with pytest.raises(ValueError, match="not both"):
        de(groupby="cell_type", idx1=[0, 1])
    with pytest.raises(ValueError, match="empty"):
        de(idx1=[])
    with pytest.raises(ValueError, match="delta"):
        de(groupby="cell_type", group1="type0", delta=0)
    with pytest.raises(ValueError, match="fdr_target"):
        de(groupby="cell_type", group1="type0", fdr_target=0)
    with pytest.raises(ValueError, match="mode"):
        de(groupby="cell_type", group1="type0", mode="wilcoxon")


def test_de_needs_counts():
    rng = np.random.default_rng(0)
    import anndata as ad

    adata = ad.AnnData(X=rng.normal(size=(20, 5)).astype(np.float32))
    adata.obs["g"] = ["a", "b"] * 10
    m = QBMVAE(adata, likelihood="gaussian", n_latent=4)
    with pytest.raises(ValueError, match="count likelihood"):
        m.differential_expression(groupby="g")
    with pytest.raises(ValueError, match="library_size applies to count"):
        m.get_normalized_expression(library_size=1e4)
    assert m.get_normalized_expression(return_numpy=True).shape == (20, 5)


# --- query mapping -------------------------------------------------------------------------
def test_prepare_query_reorders_pads_and_reports(ref_model, sim):
    query = sim[sim.obs["batch"] == "batch2"].copy()
    shuffled = query[:, np.random.default_rng(0).permutation(query.n_vars)[:190]].copy()
    prepared = QBMVAE.prepare_query_anndata(shuffled, ref_model)
    assert list(prepared.var_names) == ref_model.var_names
    report = prepared.uns["query_genes"]
    assert report["n_missing"] == 10 and report["n_found"] == 190
    missing = prepared.var["missing_in_query"].to_numpy()
    assert missing.sum() == 10
    new = prepared.layers["counts"].toarray()
    old = query.layers["counts"].toarray()
    assert sp.issparse(prepared.layers["counts"])
    np.testing.assert_array_equal(new[:, ~missing], old[:, ~missing])
    assert not new[:, missing].any()
    names = QBMVAE.prepare_query_anndata(query, ref_model, return_reference_var_names=True)
    assert list(names) == ref_model.var_names


def test_prepare_query_bad_input(ref_model, sim):
    with pytest.raises(TypeError, match="AnnData"):
        QBMVAE.prepare_query_anndata(np.zeros((3, 3)), ref_model)
    with pytest.raises(TypeError, match="reference_model"):
        QBMVAE.prepare_query_anndata(sim, object())
    other = sim[:5].copy()
    other.var_names = [f"x{i}" for i in range(other.n_vars)]
    with pytest.raises(ValueError, match="shares no gene"):
        QBMVAE.prepare_query_anndata(other, ref_model)
    few = sim[:5, :100].copy()
    with pytest.warns(UserWarning, match="only 100 of the reference's 200 genes"):
        QBMVAE.prepare_query_anndata(few, ref_model)
    dup = sim[:5, :3].copy()
    dup.var_names = ["a", "a", "b"]
    with pytest.raises(ValueError, match="duplicated"):
        QBMVAE.prepare_query_anndata(dup, ref_model)


def _knn_accuracy(z_ref, y_ref, z_query, y_query) -> float:
    clf = KNeighborsClassifier(n_neighbors=15).fit(z_ref, y_ref)
    return float((clf.predict(z_query) == y_query).mean())


def test_query_mapping_keeps_the_reference_and_transfers_labels(ref_model, ref_data, sim):
    query = sim[sim.obs["batch"] == "batch2"].copy()
    z_ref_before = ref_model.get_latent_representation()
    ref_state = {k: v.clone() for k, v in ref_model.module.state_dict().items()}
    qm = QBMVAE.load_query_data(QBMVAE.prepare_query_anndata(query, ref_model), ref_model)
    assert qm.query_info["new_batches"] == ["batch2"]
    assert qm.batch_categories == ["batch0", "batch1", "batch2"]
    assert qm.query_info["n_trainable"] == qm.config["n_hidden"]  # one new decoder column
    qm.train(max_epochs=5, batch_size=128, progress=False, weight_decay=1e-2)
    # The reference model object and the reference cells' latents are unchanged.
    for k, v in ref_model.module.state_dict().items():
        assert torch.equal(v, ref_state[k]), k
    np.testing.assert_array_equal(qm.get_latent_representation(ref_data), z_ref_before)
    # Only the new batch's decoder column moved (even with weight decay).
    new_state = qm.module.state_dict()
    w_old, w_new = ref_state["decoder.body.0.weight"], new_state["decoder.body.0.weight"]
    n_in = w_old.shape[1]
    assert torch.equal(w_new[:, :n_in], w_old)
    assert w_new[:, n_in:].abs().sum() > 0
    for k in ref_state:
        if k != "decoder.body.0.weight":
            assert torch.equal(new_state[k], ref_state[k]), k
    # The query decodes in its own batch now (its counts, its library).
    assert qm.posterior_predictive_sample(indices=[0, 1]).shape == (2, query.n_vars)

    # Label transfer: the query mapped into the reference vs a model trained on all cells.
    y_ref = ref_data.obs["cell_type"].astype(str).to_numpy()
    y_query = query.obs["cell_type"].astype(str).to_numpy()
    mapped = _knn_accuracy(z_ref_before, y_ref, qm.get_latent_representation(), y_query)
    joint = QBMVAE(sim, layer="counts", batch_key="batch", n_latent=16, seed=0)
    joint.train(**TRAIN)
    z_all = joint.get_latent_representation()
    is_q = (sim.obs["batch"] == "batch2").to_numpy()
    together = _knn_accuracy(z_all[~is_q], y_ref, z_all[is_q], y_query)
    assert mapped >= together - 0.05, (mapped, together)
    assert mapped > 0.8


def test_query_without_new_batches_needs_no_training(ref_model, ref_data):
    qm = QBMVAE.load_query_data(ref_data[:50].copy(), ref_model)
    assert qm.query_info == {"new_batches": [], "n_trainable": 0}
    np.testing.assert_array_equal(
        qm.get_latent_representation(), ref_model.get_latent_representation()[:50]
    )


def test_load_query_data_bad_input(ref_model, sim, tmp_path):
    query = sim[sim.obs["batch"] == "batch2"].copy()
    with pytest.raises(ValueError, match="prepare_query_anndata"):
        QBMVAE.load_query_data(query[:, 1:].copy(), ref_model)
    no_batch = query.copy()
    del no_batch.obs["batch"]
    with pytest.raises(ValueError, match="obs\\['batch'\\]"):
        QBMVAE.load_query_data(no_batch, ref_model)
    with pytest.raises(FileNotFoundError):
        QBMVAE.load_query_data(query, tmp_path / "missing.pt")
    path = tmp_path / "ref.pt"
    ref_model.save(path)
    from_path = QBMVAE.load_query_data(query, path)  # a saved reference works too
    assert from_path.query_info["new_batches"] == ["batch2"]
    ref_model.save(tmp_path / "ref_dir")  # scvi-tools' convention: a directory with model.pt
    from_dir = QBMVAE.load_query_data(query, tmp_path / "ref_dir")
    assert from_dir.query_info["new_batches"] == ["batch2"]
    with pytest.raises(ValueError, match="load_query_data"):
        ref_model.get_normalized_expression(query)


def test_sample_prior_needs_an_explicit_batch_and_returns_means(ref_model):
    with pytest.raises(ValueError, match="pass batch="):
        ref_model.sample_prior(4)
    means = ref_model.sample_prior(4, batch="batch1", library_size=1000.0)
    assert means.shape == (4, len(ref_model.var_names))
    np.testing.assert_allclose(means.sum(1), 1000.0, rtol=1e-4)  # NB means at that library
    assert not np.array_equal(means, np.round(means))  # means, not counts
