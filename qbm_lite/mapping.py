"""Reference mapping: train a method on reference cells only, then embed new (query) cells.

The strict classification scheme (``scheme="holdout-batch-retrain"`` of
:func:`qbm_lite.metrics.classification_benchmark`) needs, per method, an *embedder*: a callable
``(reference, query, seed) -> (Z_reference, Z_query)`` that trains the method on the reference
AnnData and maps the query cells into the trained latent space without training on them.
:func:`reference_embedder` builds one for the package's methods; the metric only ever sees the
callable (data → model → embeddings → metrics).

How each method maps query cells:

``"PCA"``
    Principal axes fitted on the reference's log-normalized ``X`` (scikit-learn ``PCA``); the
    query is projected on them.
``"scVI"``
    scvi-tools' documented query mapping (scArches; Lotfollahi et al., 2022):
    ``SCVI.prepare_query_anndata(query, reference_model)``, ``SCVI.load_query_data(query,
    reference_model)``, a short query training (only the new batch's weights are free) and
    ``get_latent_representation()``. The reference model has scvi-tools' defaults unless
    ``method_kwargs`` says otherwise, except the KL warm-up, which is scaled into the epoch
    budget (``max(1, max_epochs // 4)`` epochs) as the shared comparison protocol does.
``"Gaussian VAE"``, ``"QBM-VAE"``, ``"Uniform-prior VAE"``
    :class:`qbm_lite.QBMVAE` trained on the reference, then ``get_latent_representation(query)``.
    With ``encode_covariates=False`` (the default) the encoder never reads the batch: ``q(z | x)``
    depends on the counts only, so the query's latent is well defined although its batch is new.
    Where the model has scArches-style query mapping (``QBMVAE.prepare_query_anndata`` /
    ``load_query_data``) that path is used; without it, the query is passed to
    ``get_latent_representation`` with its batch column set to a reference category (the model
    checks that batch labels are known, since it builds the decoder's one-hot), which the encoder
    does not read. Both give the same latent. A model that encodes covariates would need a trained
    embedding of the new batch (scArches surgery); that path is refused here with a clear error. The
    uniform-prior VAE is the QBM-VAE whose Boltzmann prior is held at ``h = J = 0`` (the uniform
    distribution over binary codes) for the whole training (``prior_warmup_epochs = max_epochs``):
    the control that isolates the learned Boltzmann prior.

LDVAE and AUTOZI have no query mapping in scvi-tools (their classes lack ``ArchesMixin``), so
they are not offered.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from qbm_lite.checks import InputError, check_choice

__all__ = ["MAPPABLE", "reference_embedder"]

#: Methods with a reference-mapping embedder.
MAPPABLE: tuple[str, ...] = ("PCA", "scVI", "Gaussian VAE", "QBM-VAE", "Uniform-prior VAE")


def _pca_embedder(n_pcs: int):
    def embed(reference, query, seed: int) -> tuple[np.ndarray, np.ndarray]:
        import scipy.sparse as sp
        from sklearn.decomposition import PCA

        Xr = reference.X.toarray() if sp.issparse(reference.X) else np.asarray(reference.X)
        Xq = query.X.toarray() if sp.issparse(query.X) else np.asarray(query.X)
        k = int(min(n_pcs, Xr.shape[0] - 1, Xr.shape[1] - 1))
        pca = PCA(n_components=k, random_state=seed).fit(Xr)
        return pca.transform(Xr).astype(np.float32), pca.transform(Xq).astype(np.float32)

    return embed


def _scvi_embedder(
    layer: str,
    batch_key: str,
    n_latent: int,
    max_epochs: int,
    query_epochs: int,
    batch_size: int,
    kwargs: Mapping[str, Any],
):
    def embed(reference, query, seed: int) -> tuple[np.ndarray, np.ndarray]:
        from qbm_lite.baselines import _quiet_scvi

        scvi = _quiet_scvi()
        scvi.settings.seed = seed
        trainer = {
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
            "enable_checkpointing": False,
        }
        # The fair-comparison protocol's KL warm-up: scvi-tools' linear schedule scaled into the
        # epoch budget (its default of 400 epochs would keep the KL weight below 1).
        plan = {"n_epochs_kl_warmup": max(1, int(max_epochs) // 4)}
        reference = reference.copy()
        scvi.model.SCVI.setup_anndata(reference, layer=layer, batch_key=batch_key)
        model = scvi.model.SCVI(reference, n_latent=n_latent, **kwargs)
        with warnings.catch_warnings():
            # Lightning's own call of a torch API that torch deprecated: nothing to act on.
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)`")
            model.train(max_epochs=max_epochs, batch_size=batch_size, plan_kwargs=plan, **trainer)
            query = query.copy()
            scvi.model.SCVI.prepare_query_anndata(query, model)
            mapped = scvi.model.SCVI.load_query_data(query, model)
            # scArches keeps the frozen reference layers in eval mode on purpose (frozen
            # batch-norm statistics and dropout); Lightning notes that it found them so.
            warnings.filterwarnings(
                "ignore", message=r"Found \d+ module\(s\) in eval mode", module="lightning"
            )
            mapped.train(
                max_epochs=query_epochs,
                batch_size=batch_size,
                plan_kwargs={"weight_decay": 0.0},
                **trainer,
            )
        Z_ref = np.asarray(model.get_latent_representation(), dtype=np.float32)
        Z_query = np.asarray(mapped.get_latent_representation(), dtype=np.float32)
        return Z_ref, Z_query

    return embed


def _qbmvae_embedder(
    prior: str,
    layer: str,
    batch_key: str | None,
    n_latent: int,
    max_epochs: int,
    batch_size: int,
    kwargs: Mapping[str, Any],
    uniform: bool = False,
):
    kwargs = dict(kwargs)
    train_kwargs = dict(kwargs.pop("train", {}))
    likelihood = kwargs.pop("likelihood", "nb")
    if uniform:
        train_kwargs["prior_warmup_epochs"] = max_epochs
    elif prior == "boltzmann":  # the protocol of train_methods
        from qbm_lite.baselines import protocol_prior_warmup

        train_kwargs.setdefault("prior_warmup_epochs", protocol_prior_warmup(max_epochs))
    if kwargs.get("encode_covariates", False):
        raise InputError(
            "reference mapping of a QBMVAE that encodes covariates needs the new batch's "
            "embedding trained (scArches surgery), which this embedder does not do; use "
            "encode_covariates=False (the default: the encoder does not read the batch)."
        )

    def embed(reference, query, seed: int) -> tuple[np.ndarray, np.ndarray]:
        from qbm_lite.vae import QBMVAE

        model = QBMVAE(
            reference,
            layer=layer,
            batch_key=batch_key,
            likelihood=likelihood,
            n_latent=n_latent,
            prior=prior,
            seed=seed,
            **kwargs,
        )
        model.train(max_epochs=max_epochs, batch_size=batch_size, progress=False, **train_kwargs)
        Z_ref = np.asarray(model.get_latent_representation(), dtype=np.float32)
        return Z_ref, _map_query(model, query, batch_key)

    return embed


def _map_query(model, query, batch_key: str | None) -> np.ndarray:
    """The query's latent under a trained QBMVAE whose encoder does not read the batch."""
    query = query.copy()
    if hasattr(type(model), "load_query_data"):
        # The model's own scArches path (QBMVAE's ArchesMixin): the new batch extends the
        # decoder's covariate; the encoder is frozen and batch-free, so no query training can
        # change the latent and none is run.
        query = type(model).prepare_query_anndata(query, model)
        mapped = type(model).load_query_data(query, model)
        return np.asarray(mapped.get_latent_representation(), dtype=np.float32)
    if batch_key is not None and model.batch_categories:
        # The encoder does not read the batch (encode_covariates=False); the column only has to
        # hold a known category for the model's input check.
        query.obs[batch_key] = model.batch_categories[0]
    return np.asarray(model.get_latent_representation(query), dtype=np.float32)


def reference_embedder(
    method: str,
    *,
    layer: str = "counts",
    batch_key: str | None = "batch",
    n_latent: int = 10,
    max_epochs: int = 100,
    query_epochs: int = 20,
    batch_size: int = 128,
    n_pcs: int = 50,
    method_kwargs: Mapping[str, Any] | None = None,
):
    """An embedder ``(reference, query, seed) -> (Z_reference, Z_query)`` for ``method``.

    Parameters
    ----------
    method
        One of :data:`MAPPABLE`.
    layer
        Layer with raw counts (the count models); PCA reads the log-normalized ``X``.
    batch_key
        ``obs`` column with the batch, a covariate of every count model, as in
        :func:`qbm_lite.baselines.train_methods`.
    n_latent, max_epochs, batch_size
        Latent size, reference training epochs and minibatch size.
    query_epochs
        scVI only: epochs of the query model's training (scvi-tools' surgery; only the new
        batch's weights train, the encoder is frozen).
    n_pcs
        Components of the PCA embedder.
    method_kwargs
        Extra constructor arguments (``{"train": {...}}`` goes to ``QBMVAE.train``).

    Returns
    -------
    callable
        The embedder, for ``classification_benchmark(..., embedders={method: embedder})``.

    Raises
    ------
    qbm_lite.checks.InputError
        A method without reference mapping, or a QBMVAE that encodes covariates.
    """
    check_choice("method", method, MAPPABLE)
    kwargs = dict(method_kwargs or {})
    if method == "PCA":
        return _pca_embedder(n_pcs)
    if method == "scVI":
        if batch_key is None:
            raise InputError("scVI's query mapping needs batch_key (the reference batches).")
        return _scvi_embedder(
            layer, batch_key, n_latent, max_epochs, query_epochs, batch_size, kwargs
        )
    prior = "gaussian" if method == "Gaussian VAE" else "boltzmann"
    uniform = method == "Uniform-prior VAE"
    return _qbmvae_embedder(
        prior, layer, batch_key, n_latent, max_epochs, batch_size, kwargs, uniform
    )
