"""Baselines: PCA, the scvi-tools models and the two QBMVAE variants behind train_methods()."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.decomposition import PCA

from qbm_lite import baselines, data


@pytest.fixture(scope="module")
def prepared():
    raw = data.simulate(240, 120, 2, 3, seed=0)
    return data.prepare(raw, n_top_genes=80, batch_key="batch")


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


def test_qbmvae_methods_train(prepared) -> None:
    pytest.importorskip("qbm_lite.vae")
    adata = prepared.copy()
    keys = baselines.train_methods(
        adata, ["Gaussian VAE", "QBM-VAE"], "batch", n_latent=6, max_epochs=2, batch_size=64
    )
    assert keys == {"Gaussian VAE": "X_gaussian_vae", "QBM-VAE": "X_qbmvae"}
    for key in keys.values():
        Z = adata.obsm[key]
        assert Z.shape == (adata.n_obs, 6) and np.all(np.isfinite(Z))
    assert not np.allclose(adata.obsm["X_gaussian_vae"], adata.obsm["X_qbmvae"])
    # Same seed, same embedding.
    again = prepared.copy()
    baselines.train_methods(again, ["QBM-VAE"], "batch", n_latent=6, max_epochs=2, batch_size=64)
    assert np.allclose(again.obsm["X_qbmvae"], adata.obsm["X_qbmvae"], atol=1e-5)


def test_train_methods_checks_its_input(prepared) -> None:
    adata = prepared.copy()
    with pytest.raises(ValueError, match="unknown method"):
        baselines.train_methods(adata, ["Harmony"], "batch")
    with pytest.raises(ValueError, match="twice"):
        baselines.train_methods(adata, ["PCA", "PCA"], "batch")
    with pytest.raises(KeyError, match="donor"):
        baselines.train_methods(adata, ["PCA"], "donor")
    with pytest.raises(ValueError, match="not being trained"):
        baselines.train_methods(adata, ["PCA"], "batch", method_kwargs={"scVI": {}})
    del adata.layers["counts"]
    with pytest.raises(KeyError, match="counts"):
        baselines.train_methods(adata, ["scVI"], "batch")
