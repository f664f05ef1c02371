"""Baselines and controls behind train_methods(): fair schedules, the uniform-prior control,
Harmony and Scanorama against a known batch effect, and seeds."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.decomposition import PCA

from qbm_lite import baselines, data
from qbm_lite.checks import InputError
from qbm_lite.metrics import batch_mixing, label_purity


@pytest.fixture(scope="module")
def prepared():
    raw = data.simulate(240, 120, 2, 3, seed=0)
    return data.prepare(raw, n_top_genes=80, batch_key="batch")


@pytest.fixture(scope="module")
def batchy():
    """A known batch effect that separates the batches in PCA (3 batches x 4 clear cell types,
    every type in every batch)."""
    raw = data.simulate(
        600, 400, 3, 4, batch_strength=0.5, de_prob=0.3, de_scale=1.0, library_shift=0.3, seed=1
    )
    return data.prepare(raw, n_top_genes=200, batch_key="batch")


def test_pca_baseline_matches_scikit_learn(prepared) -> None:
    adata = prepared.copy()
    keys = baselines.train_methods(adata, ["PCA"], "batch", n_pcs=5)
    assert keys == {"PCA": "X_pca"}
    Z = adata.obsm["X_pca"]
    X = adata.X.toarray() if sp.issparse(adata.X) else adata.X
    ref = PCA(n_components=5).fit_transform(X)
    for j in range(5):  # components agree up to sign
        assert abs(np.corrcoef(Z[:, j], ref[:, j])[0, 1]) > 0.99
    assert adata.uns["train_methods"]["PCA"] >= 0


def _last_epoch_kl_weight(model) -> float:
    """The KL weight scvi-tools used in the model's last training epoch, from its plan."""
    from scvi.train._trainingplans import _compute_kl_weight

    plan = model.trainer.lightning_module
    last_epoch = model.trainer.current_epoch - 1  # current_epoch counts finished epochs
    return float(
        _compute_kl_weight(
            last_epoch,
            model.trainer.global_step,
            plan.n_epochs_kl_warmup,
            plan.n_steps_kl_warmup,
            plan.max_kl_weight,
            plan.min_kl_weight,
        )
    )


def test_scvi_kl_weight_reaches_one_within_the_budget(prepared) -> None:
    pytest.importorskip("scvi")
    adata = prepared.copy()
    fitted = baselines.fit_method(adata, "scVI", "batch", n_latent=4, max_epochs=8)
    assert fitted.model.trainer.current_epoch == 8  # the whole budget ran
    assert fitted.model.trainer.lightning_module.n_epochs_kl_warmup == 2
    assert fitted.settings["n_epochs_kl_warmup"] == 2
    assert _last_epoch_kl_weight(fitted.model) == 1.0
    # scvi-tools' own default (400 warm-up epochs) in the same budget: the weight stays low.
    default = baselines.fit_method(
        adata,
        "scVI",
        "batch",
        n_latent=4,
        max_epochs=8,
        kwargs={"train": {"plan_kwargs": {"n_epochs_kl_warmup": 400}}},
    )
    assert _last_epoch_kl_weight(default.model) == pytest.approx(7 / 400)


def test_scvi_default_epochs_match_scvi_tools() -> None:
    pytest.importorskip("scvi")
    from scvi.model._utils import get_max_epochs_heuristic

    for n in (1, 500, 20_000, 20_001, 55_555, 10_000_000):
        assert baselines.scvi_default_max_epochs(n) == get_max_epochs_heuristic(n), n


def test_scvi_tools_baselines_train(prepared) -> None:
    pytest.importorskip("scvi")
    adata = prepared.copy()
    methods = ["scVI", "LDVAE", "AUTOZI"]
    keys = baselines.train_methods(adata, methods, "batch", n_latent=4, max_epochs=2)
    assert keys == {m: baselines.METHODS[m] for m in methods}
    for key in keys.values():
        Z = adata.obsm[key]
        assert Z.shape == (adata.n_obs, 4)
        assert np.all(np.isfinite(Z)) and Z.std() > 0
    assert set(adata.uns["train_methods"]) == set(methods)
    assert adata.uns["train_methods_settings"]["AUTOZI"]["n_epochs_kl_warmup"] == 1


def test_uniform_prior_control_keeps_h_and_j_at_zero(prepared) -> None:
    pytest.importorskip("qbm_lite.vae")
    adata = prepared.copy()
    opts = {"n_latent": 6, "max_epochs": 4, "batch_size": 64}
    control = baselines.fit_method(adata, "Uniform-prior VAE", "batch", **opts)
    prior = control.model.module.prior
    assert torch.count_nonzero(prior.h) == 0 and torch.count_nonzero(prior.J) == 0
    assert control.settings["prior_warmup_epochs"] == 4
    # The same model with the prior learned (after a 1-epoch warm-up) moves h and J.
    learned = baselines.fit_method(adata, "QBM-VAE", "batch", **opts).model.module.prior
    assert learned.h.abs().max() > 1e-3 and learned.J.abs().max() > 1e-3
    # The logits are the unsaturated version of the embedding q.
    q = 1 / (1 + np.exp(-control.extra["_logits"].astype(np.float64)))
    assert np.allclose(q, control.embedding, atol=1e-5)
    with pytest.raises(InputError, match="uniform"):
        baselines.fit_method(
            adata,
            "Uniform-prior VAE",
            "batch",
            **opts,
            kwargs={"train": {"prior_warmup_epochs": 1}},
        )


def test_qbmvae_methods_train(prepared) -> None:
    pytest.importorskip("qbm_lite.vae")
    adata = prepared.copy()
    methods = ["Gaussian VAE", "Uniform-prior VAE", "QBM-VAE"]
    keys = baselines.train_methods(adata, methods, "batch", n_latent=6, max_epochs=2, batch_size=64)
    assert keys == {m: baselines.METHODS[m] for m in methods}
    for key in keys.values():
        Z = adata.obsm[key]
        assert Z.shape == (adata.n_obs, 6) and np.all(np.isfinite(Z))
    assert adata.obsm["X_qbmvae_logits"].shape == (adata.n_obs, 6)
    assert "X_gaussian_vae_logits" not in adata.obsm
    assert not np.allclose(adata.obsm["X_gaussian_vae"], adata.obsm["X_qbmvae"])


@pytest.mark.parametrize("method", ["Harmony", "Scanorama"])
def test_harmony_and_scanorama_remove_a_known_batch_effect(batchy, method) -> None:
    pytest.importorskip({"Harmony": "harmonypy", "Scanorama": "scanorama"}[method])
    adata = batchy.copy()
    keys = baselines.train_methods(adata, ["PCA", method], "batch", n_pcs=20)
    batch, label = adata.obs["batch"], adata.obs["cell_type"]
    mix_before = batch_mixing(adata.obsm[keys["PCA"]], batch)
    mix_after = batch_mixing(adata.obsm[keys[method]], batch)
    pure_before = label_purity(adata.obsm[keys["PCA"]], label)
    pure_after = label_purity(adata.obsm[keys[method]], label)
    assert mix_before < 0.3  # the simulated batch effect separates the batches
    assert mix_after > mix_before + 0.3  # ... and the method mixes them
    assert pure_after > 0.9 and pure_after > pure_before - 0.05  # cell types stay apart
    assert adata.uns["train_methods"][method] > 0


def test_harmony_says_when_it_corrects_nothing() -> None:
    """Batches far apart in PCA space: Harmony's soft clusters are single-batch, its
    per-cluster regression removes nothing, and the wrapper says so instead of returning PCA
    silently; a wider kernel (the suggested fix) then does correct."""
    pytest.importorskip("harmonypy")
    raw = data.simulate(500, 300, 3, 4, batch_strength=2.0, library_shift=0.5, seed=0)
    adata = data.prepare(raw, n_top_genes=150, batch_key="batch")
    with pytest.warns(UserWarning, match="Harmony corrected nothing"):
        baselines.train_methods(adata, ["PCA", "Harmony"], "batch", n_pcs=20)
    np.testing.assert_allclose(adata.obsm["X_harmony"], adata.obsm["X_pca"], atol=1e-5)
    settings = adata.uns["train_methods_settings"]["Harmony"]
    assert settings["batch_purity"] > 0.99 and settings["relative_change"] < 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        baselines.train_methods(
            adata, ["Harmony"], "batch", n_pcs=20, key_suffix="_wide",
            method_kwargs={"Harmony": {"sigma": 0.5}},
        )  # fmt: skip
    wide = adata.uns["train_methods_settings"]["Harmony"]
    assert wide["relative_change"] > 0.01 and wide["batch_purity"] < 0.9


def test_harmony_cluster_purity_on_a_known_assignment() -> None:
    class Result:  # two hard clusters: one pure, one split 3:1 between two batches
        R = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0, 1], [0, 1]], dtype=float)

    batch = np.array(["a", "a", "a", "b", "b", "b"])
    assert baselines.harmony_cluster_purity(Result(), batch) == pytest.approx((1.0 + 0.75) / 2)
    Result.R = Result.R.T  # harmonypy < 2 stored (n_clusters, n_cells)
    assert baselines.harmony_cluster_purity(Result(), batch) == pytest.approx(0.875)


def test_seeds_reproduce_and_differ(prepared) -> None:
    pytest.importorskip("harmonypy")
    adata = prepared.copy()
    methods = ["QBM-VAE", "Harmony"]
    opts = {"n_latent": 6, "max_epochs": 2, "batch_size": 64, "n_pcs": 10}
    runs = baselines.train_methods_seeds(adata, methods, "batch", seeds=(0, 1), **opts)
    assert runs.keys == {s: {m: baselines.seed_key(m, s) for m in methods} for s in (0, 1)}
    assert set(runs.times["seed"]) == {0, 1} and (runs.times["value"] > 0).all()
    again = prepared.copy()
    baselines.train_methods_seeds(again, methods, "batch", seeds=(0,), **opts)
    for m in methods:
        key0, key1 = baselines.seed_key(m, 0), baselines.seed_key(m, 1)
        assert np.allclose(again.obsm[key0], adata.obsm[key0], atol=1e-5), m
        assert not np.allclose(adata.obsm[key0], adata.obsm[key1], atol=1e-3), m
    # score() stacks per-seed tidy tables with a seed column.
    tidy = runs.score(
        adata,
        lambda a, k: __import__("pandas").DataFrame(
            [
                {"method": m, "metric": "mixing", "value": batch_mixing(a.obsm[v], a.obs.batch)}
                for m, v in k.items()
            ]
        ),
    )
    assert list(tidy.columns) == ["method", "metric", "value", "seed"] and len(tidy) == 4


def test_worker_processes_give_the_same_embeddings(prepared) -> None:
    pytest.importorskip("scvi")
    methods = ["PCA", "QBM-VAE", "Gaussian VAE", "scVI"]
    opts = {"n_latent": 4, "max_epochs": 2, "batch_size": 64, "n_pcs": 5, "num_threads": 1}
    here, there = prepared.copy(), prepared.copy()
    one = baselines.train_methods_seeds(here, methods, "batch", seeds=(0, 1), **opts)
    two = baselines.train_methods_seeds(there, methods, "batch", seeds=(0, 1), n_jobs=2, **opts)
    assert one.keys == two.keys and one.settings == two.settings
    assert list(two.times[["method", "seed"]].itertuples(index=False)) == list(
        one.times[["method", "seed"]].itertuples(index=False)
    )
    assert set(here.obsm) == set(there.obsm)
    for key in here.obsm:
        np.testing.assert_allclose(there.obsm[key], here.obsm[key], rtol=0, atol=1e-6, err_msg=key)
    keys = baselines.train_methods(there, ["PCA", "QBM-VAE"], "batch", n_jobs=2, **opts)
    np.testing.assert_allclose(there.obsm[keys["QBM-VAE"]], here.obsm["X_qbmvae_seed0"], atol=1e-6)
    with pytest.raises(InputError, match="n_jobs"):
        baselines.train_methods(there, ["PCA"], "batch", n_jobs=0)


@pytest.mark.default_prior_warmup
def test_warnings_from_worker_processes_reach_the_caller(prepared) -> None:
    # A QBM-VAE whose default prior warm-up outlasts the run warns inside the worker.
    with pytest.warns(UserWarning, match="prior stays uniform"):
        baselines.train_methods(
            prepared.copy(),
            ["QBM-VAE", "PCA"],
            "batch",
            n_latent=4,
            max_epochs=2,
            batch_size=64,
            method_kwargs={"QBM-VAE": {"train": {"prior_warmup_epochs": None}}},
            n_jobs=2,
        )


def test_train_methods_checks_its_input(prepared) -> None:
    adata = prepared.copy()
    with pytest.raises(ValueError, match="unknown method"):
        baselines.train_methods(adata, ["BBKNN"], "batch")
    with pytest.raises(ValueError, match="twice"):
        baselines.train_methods(adata, ["PCA", "PCA"], "batch")
    with pytest.raises(KeyError, match="donor"):
        baselines.train_methods(adata, ["PCA"], "donor")
    with pytest.raises(ValueError, match="not being trained"):
        baselines.train_methods(adata, ["PCA"], "batch", method_kwargs={"scVI": {}})
    with pytest.raises(InputError, match="batch_key"):
        baselines.train_methods(adata, ["Harmony"], None)
    with pytest.raises(InputError, match="string"):
        baselines.train_methods(adata, "PCA", "batch")
    with pytest.raises(InputError, match="seeds"):
        baselines.train_methods_seeds(adata, ["PCA"], "batch", seeds=(0, 0))
    del adata.layers["counts"]
    with pytest.raises(KeyError, match="counts"):
        baselines.train_methods(adata, ["scVI"], "batch")
