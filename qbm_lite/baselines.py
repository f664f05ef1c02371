"""Integration baselines and one helper that trains a named set of methods.

Methods (names accepted by :func:`train_methods`, with the ``obsm`` key each writes):

======================  ===================  ==============================================
name                    ``obsm`` key         what it is
======================  ===================  ==============================================
``"PCA"``               ``X_pca``            unintegrated PCA of log-normalized ``X``: the floor
``"scVI"``              ``X_scvi``           scvi-tools ``SCVI`` (NB, batch in the decoder)
``"LDVAE"``             ``X_ldvae``          scvi-tools ``LinearSCVI`` (linear decoder)
``"AUTOZI"``            ``X_autozi``         scvi-tools ``AUTOZI`` (per-gene zero inflation)
``"Gaussian VAE"``      ``X_gaussian_vae``   :class:`qbm_lite.QBMVAE` with ``prior="gaussian"``
``"QBM-VAE"``           ``X_qbmvae``         :class:`qbm_lite.QBMVAE` with ``prior="boltzmann"``
======================  ===================  ==============================================

The scvi-tools models come from the optional extra ``qbm-lite[baselines]``. Every count model
reads raw counts from ``layers[layer]`` and gets the batch as a covariate, so the comparison is
like for like; the Gaussian VAE and the QBM-VAE share the same networks and differ only in the
prior.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from qbm_lite.config import torch_threads

__all__ = ["METHODS", "SCVI_METHODS", "train_methods"]

#: Method name -> obsm key written by :func:`train_methods`.
METHODS: dict[str, str] = {
    "PCA": "X_pca",
    "scVI": "X_scvi",
    "LDVAE": "X_ldvae",
    "AUTOZI": "X_autozi",
    "Gaussian VAE": "X_gaussian_vae",
    "QBM-VAE": "X_qbmvae",
}

#: The methods that need scvi-tools.
SCVI_METHODS = ("scVI", "LDVAE", "AUTOZI")


def _quiet_scvi() -> Any:
    """Import scvi-tools with its cosmetic INFO chatter (banners, set-up logs) turned down.

    Only log levels change; Python warnings are left alone.
    """
    try:
        import scvi
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "scVI, LDVAE and AUTOZI need scvi-tools: `pip install 'qbm-lite[baselines]'`."
        ) from err
    scvi.settings.verbosity = logging.WARNING
    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "scvi"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return scvi


def _train_scvi(
    name: str,
    adata,
    layer: str,
    batch_key: str | None,
    n_latent: int,
    max_epochs: int,
    batch_size: int,
    seed: int,
    progress: bool,
    kwargs: Mapping[str, Any],
) -> np.ndarray:
    scvi = _quiet_scvi()
    scvi.settings.seed = seed
    model_cls = {
        "scVI": scvi.model.SCVI,
        "LDVAE": scvi.model.LinearSCVI,
        "AUTOZI": scvi.model.AUTOZI,
    }[name]
    model_cls.setup_anndata(adata, layer=layer, batch_key=batch_key)
    model = model_cls(adata, n_latent=n_latent, **kwargs)
    with warnings.catch_warnings():
        # Lightning's own call of a torch API that torch deprecated: nothing a user can act on.
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)`")
        model.train(
            max_epochs=max_epochs,
            batch_size=batch_size,
            accelerator="cpu",
            enable_progress_bar=progress,
            enable_model_summary=False,
            logger=False,
            enable_checkpointing=False,
        )
    return np.asarray(model.get_latent_representation(), dtype=np.float32)


def _train_qbmvae(
    prior: str,
    adata,
    layer: str,
    batch_key: str | None,
    n_latent: int,
    max_epochs: int,
    batch_size: int,
    seed: int,
    progress: bool,
    kwargs: Mapping[str, Any],
) -> np.ndarray:
    from qbm_lite.vae import QBMVAE

    kwargs = dict(kwargs)
    train_kwargs = kwargs.pop("train", {})
    model = QBMVAE(
        adata,
        layer=layer,
        batch_key=batch_key,
        likelihood=kwargs.pop("likelihood", "nb"),
        n_latent=n_latent,
        prior=prior,
        seed=seed,
        **kwargs,
    )
    model.train(max_epochs=max_epochs, batch_size=batch_size, progress=progress, **train_kwargs)
    return np.asarray(model.get_latent_representation(), dtype=np.float32)


def _pca(adata, n_comps: int, seed: int) -> np.ndarray:
    import scanpy as sc

    n_comps = int(min(n_comps, adata.n_obs - 1, adata.n_vars - 1))
    return sc.pp.pca(adata.X, n_comps=n_comps, random_state=seed).astype(np.float32)


def _per_method(value: int | Mapping[str, int], name: str, what: str) -> int:
    if isinstance(value, Mapping):
        if name not in value:
            raise KeyError(f"{what} is a mapping without an entry for {name!r}.")
        return int(value[name])
    return int(value)


def train_methods(
    adata,
    methods: Sequence[str] = tuple(METHODS),
    batch_key: str | None = "batch",
    *,
    layer: str = "counts",
    n_latent: int = 10,
    max_epochs: int | Mapping[str, int] = 100,
    batch_size: int = 128,
    n_pcs: int = 50,
    seed: int = 0,
    progress: bool = False,
    method_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    num_threads: int | None = None,
) -> dict[str, str]:
    """Train each named method on ``adata`` and write its embedding to ``adata.obsm``.

    Parameters
    ----------
    adata
        Prepared data (:func:`qbm_lite.data.prepare`): counts in ``layers[layer]``,
        log-normalized ``X``.
    methods
        Names from :data:`METHODS`, in the order to train them.
    batch_key
        Column of ``obs`` with the batch, given to every model as a covariate (``None``: none).
    layer
        Layer with the raw counts.
    n_latent
        Latent dimension of every VAE (the QBM-VAE's number of binary units).
    max_epochs
        Epochs for every VAE, or a mapping ``{method: epochs}``.
    batch_size
        Minibatch size for every VAE.
    n_pcs
        Components of the PCA baseline.
    seed
        Seed for every method.
    progress
        A progress bar over methods (per-epoch bars stay off).
    method_kwargs
        Extra constructor arguments per method, e.g.
        ``{"QBM-VAE": {"sampler": "cim", "train": {"kl_warmup_epochs": 10}}}`` (the ``"train"``
        entry goes to ``QBMVAE.train``) or ``{"scVI": {"n_layers": 2}}``.
    num_threads
        Torch CPU threads while training (restored afterwards); ``None`` keeps the current
        setting. With minibatches of ~100 cells, one thread is often several times faster than
        two on a busy 2-core machine, because the threads mostly wait for each other.

    Returns
    -------
    dict
        ``{method name: obsm key}``, ready for :func:`qbm_lite.metrics.integration_benchmark`.
        Training times (seconds) are stored in ``adata.uns["train_methods"]``.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}.")
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods lists a name twice: {list(methods)}.")
    if batch_key is not None and batch_key not in adata.obs:
        raise KeyError(f"batch_key {batch_key!r} is not a column of adata.obs.")
    needs_counts = [m for m in methods if m != "PCA"]
    if needs_counts and layer not in adata.layers:
        raise KeyError(
            f"adata.layers has no {layer!r}; the count models need raw counts there "
            "(qbm_lite.data.prepare keeps them)."
        )
    method_kwargs = dict(method_kwargs or {})
    extra = [m for m in method_kwargs if m not in methods]
    if extra:
        raise ValueError(f"method_kwargs has entries for methods not being trained: {extra}.")

    with torch_threads(num_threads):
        out: dict[str, str] = {}
        timings = dict(adata.uns.get("train_methods", {}))
        for name in tqdm(list(methods), disable=not progress, desc="methods"):
            kwargs = method_kwargs.get(name, {})
            start = time.perf_counter()
            if name == "PCA":
                Z = _pca(adata, n_pcs, seed)
            else:
                epochs = _per_method(max_epochs, name, "max_epochs")
                common = (
                    adata,
                    layer,
                    batch_key,
                    n_latent,
                    epochs,
                    batch_size,
                    seed,
                    False,
                    kwargs,
                )
                if name in SCVI_METHODS:
                    Z = _train_scvi(name, *common)
                else:
                    Z = _train_qbmvae(
                        "gaussian" if name == "Gaussian VAE" else "boltzmann", *common
                    )
            timings[name] = float(time.perf_counter() - start)
            if not np.all(np.isfinite(Z)):
                raise FloatingPointError(
                    f"{name} produced a non-finite embedding (training diverged)."
                )
            adata.obsm[METHODS[name]] = Z
            out[name] = METHODS[name]
        adata.uns["train_methods"] = timings
        return out
