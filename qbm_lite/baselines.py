"""Integration baselines and controls, trained the way their authors intend, over seeds.

Methods (names accepted by :func:`train_methods`, with the ``obsm`` key each writes):

=========================  ======================  ===========================================
name                       ``obsm`` key            what it is
=========================  ======================  ===========================================
``"PCA"``                  ``X_pca``               unintegrated PCA of log-normalized ``X``
``"Harmony"``              ``X_harmony``           harmonypy on that PCA (Korsunsky et al., 2019)
``"Scanorama"``            ``X_scanorama``         Scanorama, log-normalized ``X`` (Hie, 2019)
``"scVI"``                 ``X_scvi``              scvi-tools ``SCVI`` (NB, batch in the decoder)
``"LDVAE"``                ``X_ldvae``             scvi-tools ``LinearSCVI`` (linear decoder)
``"AUTOZI"``               ``X_autozi``            scvi-tools ``AUTOZI`` (per-gene zero inflation)
``"Gaussian VAE"``         ``X_gaussian_vae``      :class:`qbm_lite.QBMVAE`, ``prior="gaussian"``
``"Uniform-prior VAE"``    ``X_uniform_vae``       the QBM-VAE with its prior held uniform (control)
``"QBM-VAE"``              ``X_qbmvae``            :class:`qbm_lite.QBMVAE`, ``prior="boltzmann"``
=========================  ======================  ===========================================

**Fair settings.**

- **scvi-tools models** (Lopez et al., 2018; Svensson et al., 2020; Clivio et al., 2019) warm
  the KL weight up linearly from 0 to 1 over ``n_epochs_kl_warmup`` epochs (scvi-tools 1.4:
  400, with a default of 400 epochs for fewer than 20,000 cells, so the warm-up spans the whole
  default run). Stopped after ``max_epochs < 400`` with that default the KL weight never
  reaches 1 and the model keeps the batch (the issue behind this module measured iLISI ≈ 0.01).
  :func:`train_methods` therefore scales the authors' schedule into the budget: the warm-up
  lasts :func:`scvi_kl_warmup_epochs` ``= max(1, max_epochs // 4)`` epochs, so the weight is 1
  for the last three quarters of training. The QBM-VAE's prior warm-up gets the same share of
  the budget (``prior_warmup_epochs = max_epochs // 4`` unless given).
  Everything else is scvi-tools' default (minibatch 128, Adam 1e-3, 10 % validation cells).
  Override with ``method_kwargs={"scVI": {"train": {"plan_kwargs": {...}}}}``.
- **Harmony**: the standard recipe, harmonypy's defaults on the first ``n_pcs`` principal
  components of log-normalized ``X`` (scanpy's ``sc.external.pp.harmony_integrate`` does the
  same). Harmony regresses the batch out within each of its soft clusters; where the batches do
  not overlap at all in PCA space, every cluster holds one batch and it corrects nothing. Its
  settings record ``relative_change`` (of the PCs, Frobenius norm) and ``batch_purity``
  (:func:`harmony_cluster_purity`), and a ``UserWarning`` says so when the change is below
  :data:`HARMONY_NO_CORRECTION`; the result is kept as Harmony returned it.
- **Scanorama**: ``scanorama.integrate`` on each batch's log-normalized ``X`` with its defaults
  (100 dimensions, 20 neighbours), as in the scIB benchmark (Luecken et al., 2022).
- **Uniform-prior VAE**: the *same* discrete VAE as the QBM-VAE (same networks, relaxation,
  sampler, seed) trained with ``prior_warmup_epochs = max_epochs``: its Boltzmann prior keeps
  ``h = J = 0``, the uniform distribution over the ``2**n_latent`` codes, for the whole run.
  QBM-VAE minus this control isolates what the *learned* Boltzmann prior adds; the control
  minus the Gaussian VAE is what discreteness adds.
- The two discrete VAEs also write the encoder's logits to ``obsm[key + "_logits"]``
  (``X_qbmvae_logits``, ``X_uniform_vae_logits``): ``q = sigmoid(logits)`` saturates near 0 and
  1, which favours compact islands in silhouette and kNN metrics; scoring the logits as well is
  the sensitivity check for that.

**Seeds.**

Every method takes ``seed``. :func:`train_methods_seeds` trains the same methods for several
seeds (keys suffixed ``_seed{s}``) and :meth:`SeedRuns.score` turns any per-seed scoring
function into one tidy table with a ``seed`` column, ready for
:func:`qbm_lite.metrics.summarize` (mean ± sd) and :func:`qbm_lite.metrics.compare` (paired
intervals). PCA is deterministic (its spread over seeds is 0).

The scvi-tools models, harmonypy and scanorama come from the optional extra
``qbm-lite[baselines]``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from qbm_lite.checks import InputError, obs_column
from qbm_lite.config import torch_threads

__all__ = [
    "DISCRETE_METHODS",
    "HARMONY_NO_CORRECTION",
    "METHODS",
    "SCVI_METHODS",
    "FittedMethod",
    "SeedRuns",
    "fit_method",
    "harmony_cluster_purity",
    "protocol_prior_warmup",
    "scvi_default_max_epochs",
    "scvi_kl_warmup_epochs",
    "seed_key",
    "train_methods",
    "train_methods_seeds",
]

#: Method name -> obsm key written by :func:`train_methods`.
METHODS: dict[str, str] = {
    "PCA": "X_pca",
    "Harmony": "X_harmony",
    "Scanorama": "X_scanorama",
    "scVI": "X_scvi",
    "LDVAE": "X_ldvae",
    "AUTOZI": "X_autozi",
    "Gaussian VAE": "X_gaussian_vae",
    "Uniform-prior VAE": "X_uniform_vae",
    "QBM-VAE": "X_qbmvae",
}

#: The methods that need scvi-tools.
SCVI_METHODS = ("scVI", "LDVAE", "AUTOZI")
#: The discrete-latent VAEs (they also write ``obsm[key + "_logits"]``).
DISCRETE_METHODS = ("Uniform-prior VAE", "QBM-VAE")
#: Methods trained by gradient descent on counts (they take ``max_epochs``).
_EPOCH_METHODS = (*SCVI_METHODS, "Gaussian VAE", *DISCRETE_METHODS)


@dataclass
class FittedMethod:
    """One trained method: its embedding, wall time and the settings it ran with.

    Attributes
    ----------
    name, key
        Method name (:data:`METHODS`) and the ``obsm`` key its embedding belongs under.
    embedding
        ``(n_cells, n_dims)`` float32 embedding.
    seconds
        Wall time of fitting and embedding, in seconds.
    settings
        The effective training settings (epochs, warm-ups, dimensions), for reporting.
    model
        The trained model (scvi-tools model, :class:`qbm_lite.QBMVAE`, harmonypy's ``Harmony``)
        or ``None`` (PCA, Scanorama).
    extra
        Further embeddings by ``obsm`` key suffix (the discrete VAEs' ``"_logits"``).
    """

    name: str
    key: str
    embedding: np.ndarray
    seconds: float
    settings: dict[str, Any]
    model: Any = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def scvi_kl_warmup_epochs(max_epochs: int) -> int:
    """KL warm-up epochs :func:`train_methods` gives scvi-tools: ``max(1, max_epochs // 4)``.

    scvi-tools' weight at epoch ``e`` is ``min(1, e / n_epochs_kl_warmup)``, so it is 1 from
    epoch ``n_epochs_kl_warmup`` on, inside any budget of at least 2 epochs.
    """
    return max(1, int(max_epochs) // 4)


def scvi_default_max_epochs(n_obs: int) -> int:
    """scvi-tools' own default number of epochs for ``n_obs`` cells (``min(400, 400 * 20000 / n)``).

    The heuristic of ``scvi.model.get_max_epochs_heuristic`` (scvi-tools 1.x), reproduced here
    so that chapters can state how far a training budget is from the authors' default: small
    data sets get 400 epochs, i.e. about ``400 * n_obs / 128`` minibatch steps.
    """
    if int(n_obs) < 1:
        raise InputError(f"n_obs must be a positive integer; got {n_obs!r}.")
    return max(1, min(round(20_000 / int(n_obs) * 400), 400))


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


def _train_scvi(name: str, adata, opts: dict[str, Any], kwargs: Mapping[str, Any]):
    scvi = _quiet_scvi()
    scvi.settings.seed = opts["seed"]
    model_cls = {
        "scVI": scvi.model.SCVI,
        "LDVAE": scvi.model.LinearSCVI,
        "AUTOZI": scvi.model.AUTOZI,
    }[name]
    kwargs = dict(kwargs)
    train_kwargs = dict(kwargs.pop("train", {}))
    plan_kwargs = dict(train_kwargs.pop("plan_kwargs", {}))
    plan_kwargs.setdefault("n_epochs_kl_warmup", scvi_kl_warmup_epochs(opts["max_epochs"]))
    model_cls.setup_anndata(adata, layer=opts["layer"], batch_key=opts["batch_key"])
    model = model_cls(adata, n_latent=opts["n_latent"], **kwargs)
    with warnings.catch_warnings():
        # Lightning's own call of a torch API that torch deprecated: nothing a user can act on.
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)`")
        model.train(
            max_epochs=opts["max_epochs"],
            batch_size=opts["batch_size"],
            accelerator="cpu",
            enable_progress_bar=False,
            enable_model_summary=False,
            logger=False,
            enable_checkpointing=False,
            plan_kwargs=plan_kwargs,
            **train_kwargs,
        )
    Z = np.asarray(model.get_latent_representation(), dtype=np.float32)
    settings = {
        "max_epochs": opts["max_epochs"],
        "n_epochs_kl_warmup": plan_kwargs["n_epochs_kl_warmup"],
        "batch_size": opts["batch_size"],
    }
    return Z, settings, model, {}


def _encoder_logits(model, adata) -> np.ndarray:
    """The discrete VAE's encoder logits ``log(q / (1 - q))`` for every cell, unsaturated."""
    import torch

    module = model.module
    module.eval()
    with torch.no_grad():
        out = [
            module.inference(x, b, sample=False)["logits"].cpu()
            for x, b in model._minibatches(adata, None, 4096)
        ]
    return torch.cat(out).numpy().astype(np.float32)


def protocol_prior_warmup(max_epochs: int) -> int:
    """Prior warm-up the shared protocol gives the QBM-VAE: a quarter of the budget,
    ``max_epochs // 4`` epochs (the model's own default depends on the number of cells)."""
    return int(max_epochs) // 4


def _train_qbmvae(name: str, adata, opts: dict[str, Any], kwargs: Mapping[str, Any]):
    from qbm_lite.vae import QBMVAE

    kwargs = dict(kwargs)
    train_kwargs = dict(kwargs.pop("train", {}))
    if name == "Uniform-prior VAE":
        if "prior_warmup_epochs" in train_kwargs:
            raise InputError(
                "the Uniform-prior VAE holds its prior uniform for the whole run; do not pass "
                "prior_warmup_epochs for it (train the 'QBM-VAE' to learn the prior)."
            )
        train_kwargs["prior_warmup_epochs"] = opts["max_epochs"]
    elif name == "QBM-VAE":
        train_kwargs.setdefault("prior_warmup_epochs", protocol_prior_warmup(opts["max_epochs"]))
    model = QBMVAE(
        adata,
        layer=opts["layer"],
        batch_key=opts["batch_key"],
        likelihood=kwargs.pop("likelihood", "nb"),
        n_latent=opts["n_latent"],
        prior="gaussian" if name == "Gaussian VAE" else "boltzmann",
        seed=opts["seed"],
        **kwargs,
    )
    model.train(
        max_epochs=opts["max_epochs"],
        batch_size=opts["batch_size"],
        progress=False,
        **train_kwargs,
    )
    Z = np.asarray(model.get_latent_representation(), dtype=np.float32)
    settings = {"max_epochs": opts["max_epochs"], "batch_size": opts["batch_size"]}
    settings.update({k: v for k, v in train_kwargs.items() if isinstance(v, int | float | str)})
    extra = {"_logits": _encoder_logits(model, adata)} if name in DISCRETE_METHODS else {}
    return Z, settings, model, extra


def _pca(adata, n_comps: int, seed: int) -> np.ndarray:
    import scanpy as sc

    n_comps = int(min(n_comps, adata.n_obs - 1, adata.n_vars - 1))
    return sc.pp.pca(adata.X, n_comps=n_comps, random_state=seed).astype(np.float32)


def _train_pca(name: str, adata, opts: dict[str, Any], kwargs: Mapping[str, Any]):
    Z = _pca(adata, opts["n_pcs"], opts["seed"])
    return Z, {"n_pcs": Z.shape[1]}, None, {}


#: Below this relative change of the PCs (Frobenius norm), Harmony counts as having done nothing.
HARMONY_NO_CORRECTION = 1e-3


def _train_harmony(name: str, adata, opts: dict[str, Any], kwargs: Mapping[str, Any]):
    try:
        import harmonypy
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("Harmony needs harmonypy: `pip install 'qbm-lite[baselines]'`.") from err
    logging.getLogger("harmonypy").setLevel(logging.WARNING)
    pcs = _pca(adata, opts["n_pcs"], opts["seed"])
    meta = pd.DataFrame({"batch": adata.obs[opts["batch_key"]].astype(str).to_numpy()})
    ho = harmonypy.run_harmony(
        pcs, meta, "batch", random_state=opts["seed"], verbose=False, **dict(kwargs)
    )
    Z = np.asarray(ho.Z_corr, dtype=np.float32)
    if Z.shape != pcs.shape:  # harmonypy < 0.1 returned (n_pcs, n_cells)
        Z = Z.T
    change = float(np.linalg.norm(Z - pcs) / max(np.linalg.norm(pcs), 1e-12))
    purity = harmony_cluster_purity(ho, meta["batch"].to_numpy())
    if change < HARMONY_NO_CORRECTION:
        sigma = kwargs.get("sigma", 0.1)
        warnings.warn(
            f"Harmony corrected nothing (relative change of the PCs {change:.1e}): each of its "
            f"soft clusters holds essentially one batch (median batch purity {purity:.3f}), so "
            "its per-cluster regression has no batch effect left to remove. The batches do not "
            f"overlap in PCA space at harmonypy's kernel width sigma={sigma}; its embedding "
            "equals PCA's. That is Harmony's result on these data, kept as it is; to try a wider "
            "kernel, pass method_kwargs={'Harmony': {'sigma': 0.5}}.",
            UserWarning,
            stacklevel=2,
        )
    settings = {"n_pcs": pcs.shape[1], "relative_change": round(change, 4), "batch_purity": purity}
    return Z, settings, ho, {}


def harmony_cluster_purity(ho, batch: np.ndarray) -> float:
    """Median over Harmony's soft clusters of the largest batch's share of the cluster.

    Parameters
    ----------
    ho
        harmonypy's result (``harmonypy.run_harmony``), whose ``R`` holds the soft cluster
        assignments, shape ``(n_cells, n_clusters)`` (``(n_clusters, n_cells)`` before
        harmonypy 2).
    batch
        Batch label per cell, shape ``(n_cells,)``.

    Returns
    -------
    float
        In ``[1 / n_batches, 1]``: 1 when every cluster holds one batch only. Harmony regresses
        the batch out *within* each cluster (Korsunsky et al., 2019), so at purity 1 it has
        nothing to correct.
    """
    R = np.asarray(ho.R, dtype=np.float64)
    if R.shape[0] != len(batch):
        R = R.T
    codes, _ = pd.factorize(pd.Series(batch))
    counts = R.T @ np.eye(codes.max() + 1)[codes]  # (n_clusters, n_batches), soft cell counts
    share = counts.max(axis=1) / np.maximum(counts.sum(axis=1), 1e-12)
    return round(float(np.median(share)), 3)


def _train_scanorama(name: str, adata, opts: dict[str, Any], kwargs: Mapping[str, Any]):
    try:
        import scanorama
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Scanorama needs scanorama: `pip install 'qbm-lite[baselines]'`."
        ) from err
    import scipy.sparse as sp

    batch = adata.obs[opts["batch_key"]].astype(str).to_numpy()
    groups = [np.flatnonzero(batch == b) for b in pd.unique(batch)]
    X = adata.X.tocsr() if sp.issparse(adata.X) else np.asarray(adata.X)
    genes = [str(g) for g in adata.var_names]
    kwargs = {"dimred": min(100, adata.n_vars - 1, adata.n_obs - 1), **dict(kwargs)}
    # scanorama prints progress with print() even at verbose=0; keep chapters' outputs clean.
    with contextlib.redirect_stdout(io.StringIO()):
        parts, _ = scanorama.integrate(
            [X[idx] for idx in groups],
            [genes] * len(groups),
            verbose=0,
            seed=opts["seed"],
            **kwargs,
        )
    Z = np.empty((adata.n_obs, parts[0].shape[1]), dtype=np.float32)
    for idx, part in zip(groups, parts, strict=True):
        Z[idx] = part
    return Z, {"dimred": Z.shape[1]}, None, {}


_TRAINERS: dict[str, Callable] = {
    "PCA": _train_pca,
    "Harmony": _train_harmony,
    "Scanorama": _train_scanorama,
    **dict.fromkeys(SCVI_METHODS, _train_scvi),
    **dict.fromkeys(("Gaussian VAE", *DISCRETE_METHODS), _train_qbmvae),
}


def _per_method(value: int | Mapping[str, int], name: str, what: str) -> int:
    if isinstance(value, Mapping):
        if name not in value:
            raise InputError(
                f"{what} is a mapping without an entry for {name!r}; add one or pass one integer."
            )
        value = value[name]
    if int(value) < 1:
        raise InputError(f"{what} for {name!r} must be a positive integer; got {value!r}.")
    return int(value)


def _check_methods(adata, methods: Sequence[str], batch_key: str | None, layer: str) -> None:
    if isinstance(methods, str):
        raise InputError(f"methods must be a list of names; got the string {methods!r}.")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InputError(f"unknown method(s) {unknown}; choose from {list(METHODS)}.")
    if len(set(methods)) != len(methods):
        raise InputError(f"methods lists a name twice: {list(methods)}.")
    needs_batch = [m for m in methods if m in ("Harmony", "Scanorama")]
    if batch_key is None:
        if needs_batch:
            raise InputError(f"{needs_batch} integrate batches: pass batch_key (an obs column).")
    else:
        obs_column(adata, batch_key, role="batch_key", kind="categorical")
    needs_counts = [m for m in methods if m in _EPOCH_METHODS]
    if needs_counts and layer not in adata.layers:
        raise InputError(
            f"adata.layers has no {layer!r}; {needs_counts} need raw counts there "
            "(qbm_lite.data.prepare keeps them in layers['counts'])."
        )


def fit_method(
    adata,
    name: str,
    batch_key: str | None = "batch",
    *,
    layer: str = "counts",
    n_latent: int = 10,
    max_epochs: int = 100,
    batch_size: int = 128,
    n_pcs: int = 50,
    seed: int = 0,
    kwargs: Mapping[str, Any] | None = None,
) -> FittedMethod:
    """Train one named method and return its embedding, wall time, settings and model.

    :func:`train_methods` calls this for each method; call it directly to inspect a trained
    model (e.g. a scvi-tools model's training plan, or the prior of the Uniform-prior VAE).
    Parameters are those of :func:`train_methods` for one method (``kwargs``: that method's
    entry of ``method_kwargs``). Nothing is written to ``adata`` except the scvi-tools
    registration that ``setup_anndata`` adds.

    Raises
    ------
    qbm_lite.checks.InputError
        Unknown method, missing ``batch_key`` column or count layer, bad epochs.
    FloatingPointError
        The method produced a non-finite embedding (training diverged).
    """
    _check_methods(adata, [name], batch_key, layer)
    opts = {
        "layer": layer,
        "batch_key": batch_key,
        "n_latent": int(n_latent),
        "max_epochs": _per_method(max_epochs, name, "max_epochs"),
        "batch_size": int(batch_size),
        "n_pcs": int(n_pcs),
        "seed": int(seed),
    }
    start = time.perf_counter()
    Z, settings, model, extra = _TRAINERS[name](name, adata, opts, kwargs or {})
    seconds = float(time.perf_counter() - start)
    if not np.all(np.isfinite(Z)):
        raise FloatingPointError(f"{name} produced a non-finite embedding (training diverged).")
    return FittedMethod(name, METHODS[name], Z, seconds, settings, model, extra)


def seed_key(name: str, seed: int) -> str:
    """``obsm`` key of method ``name`` trained with ``seed`` by :func:`train_methods_seeds`."""
    return f"{METHODS[name]}_seed{int(seed)}"


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
    key_suffix: str = "",
    n_jobs: int = 1,
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
        Column of ``obs`` with the batch, given to every model as a covariate (``None``: none;
        not allowed with Harmony or Scanorama).
    layer
        Layer with the raw counts.
    n_latent
        Latent dimension of every VAE (the discrete VAEs' number of binary units).
    max_epochs
        Epochs for every VAE, or a mapping ``{method: epochs}``. The scvi-tools models' KL
        warm-up is fitted inside it (see the module docstring).
    batch_size
        Minibatch size for every VAE.
    n_pcs
        Components of the PCA baseline and of Harmony's input.
    seed
        Seed for every method.
    progress
        A progress bar over methods (per-epoch bars stay off).
    method_kwargs
        Extra constructor arguments per method, e.g.
        ``{"QBM-VAE": {"sampler": "cim", "train": {"kl_warmup_epochs": 10}}}`` (the ``"train"``
        entry goes to the model's ``train``), ``{"scVI": {"n_layers": 2}}``,
        ``{"Harmony": {"theta": 1.0}}`` or ``{"Scanorama": {"knn": 10}}``.
    num_threads
        Torch CPU threads while training (restored afterwards); ``None`` keeps the current
        setting. With minibatches of ~100 cells, one thread is often several times faster than
        two on a busy 2-core machine, because the threads mostly wait for each other.
    key_suffix
        Appended to every ``obsm`` key (:func:`train_methods_seeds` uses ``"_seed{s}"``).
    n_jobs
        Methods trained at once, each in its own worker process (``concurrent.futures`` with
        the ``spawn`` start method) with ``num_threads`` torch threads; ``1`` trains them one
        after the other in this process. Every method is seeded on its own, so the embeddings
        do not depend on ``n_jobs``; wall times do (methods then share the cores). Warnings
        raised in a worker are re-issued here.

    Returns
    -------
    dict
        ``{method name: obsm key}``, ready for :func:`qbm_lite.metrics.integration_benchmark`.
        Wall times (seconds) are stored in ``adata.uns["train_methods"]`` and the effective
        settings in ``adata.uns["train_methods_settings"]`` (both keyed by method name).

    Raises
    ------
    qbm_lite.checks.InputError
        Unknown or repeated method, missing ``batch_key`` column or count layer,
        ``method_kwargs`` for a method not being trained.
    """
    tasks = _method_tasks(
        adata,
        methods,
        batch_key,
        [seed],
        layer=layer,
        n_latent=n_latent,
        max_epochs=max_epochs,
        batch_size=batch_size,
        n_pcs=n_pcs,
        method_kwargs=method_kwargs,
    )
    fitted = _fit_tasks(adata, batch_key, tasks, num_threads, n_jobs, progress)
    return {f.name: _write_fitted(adata, f, key_suffix) for f in fitted}


def _method_tasks(
    adata,
    methods: Sequence[str],
    batch_key: str | None,
    seeds: Sequence[int],
    *,
    layer: str = "counts",
    n_latent: int = 10,
    max_epochs: int | Mapping[str, int] = 100,
    batch_size: int = 128,
    n_pcs: int = 50,
    method_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[_Task]:
    """Check the request and list one ``(method, seed, fit_method options)`` task per pair."""
    _check_methods(adata, methods, batch_key, layer)
    method_kwargs = dict(method_kwargs or {})
    extra = [m for m in method_kwargs if m not in methods]
    if extra:
        raise InputError(
            f"method_kwargs has entries for methods not being trained: {extra}; remove them "
            "or add the methods."
        )
    return [
        (
            name,
            int(seed),
            {
                "layer": layer,
                "n_latent": n_latent,
                "max_epochs": _per_method(max_epochs, name, "max_epochs")
                if name in _EPOCH_METHODS
                else 1,
                "batch_size": batch_size,
                "n_pcs": n_pcs,
                "kwargs": method_kwargs.get(name, {}),
            },
        )
        for seed in seeds
        for name in methods
    ]


def _write_fitted(adata, fitted: FittedMethod, key_suffix: str) -> str:
    """Store one fitted method's embeddings in ``obsm`` and its time and settings in ``uns``."""
    key = fitted.key + key_suffix
    adata.obsm[key] = fitted.embedding
    for suffix, Z in fitted.extra.items():
        adata.obsm[key.replace(fitted.key, fitted.key + suffix, 1)] = Z
    for slot, value in (
        ("train_methods", fitted.seconds),
        ("train_methods_settings", fitted.settings),
    ):
        entries = dict(adata.uns.get(slot, {}))
        entries[fitted.name] = value
        adata.uns[slot] = entries
    return key


_Task = tuple[str, int, dict[str, Any]]


def _fit_one(adata, batch_key: str | None, task: _Task) -> FittedMethod:
    """Fit one ``(method, seed, options)`` task and drop its model: only the embeddings are kept
    (many models at once would fill memory, and scvi-tools models do not travel between
    processes cheaply)."""
    name, seed, options = task
    fitted = fit_method(adata, name, batch_key, seed=seed, **options)
    fitted.model = None
    return fitted


def _fit_task(adata, batch_key: str | None, task: _Task, num_threads: int | None):
    """:func:`_fit_one` in a worker process; returns the result and the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught, torch_threads(num_threads):
        fitted = _fit_one(adata, batch_key, task)
    return fitted, [(w.message, w.category, w.filename, w.lineno) for w in caught]


def _fit_tasks(
    adata,
    batch_key: str | None,
    tasks: Sequence[_Task],
    num_threads: int | None,
    n_jobs: int,
    progress: bool,
) -> list[FittedMethod]:
    """Fit every task, in order, on ``n_jobs`` worker processes (1: here, one by one)."""
    if int(n_jobs) < 1:
        raise InputError(f"n_jobs must be a positive integer; got {n_jobs}.")
    if int(n_jobs) == 1:
        with torch_threads(num_threads):
            return [
                _fit_one(adata, batch_key, task)
                for task in tqdm(tasks, disable=not progress, desc="methods")
            ]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # "spawn": fresh interpreters (forking a process that holds torch threads is unsafe).
    context = multiprocessing.get_context("spawn")
    results = []
    with ProcessPoolExecutor(min(int(n_jobs), len(tasks)), mp_context=context) as pool:
        futures = [pool.submit(_fit_task, adata, batch_key, task, num_threads) for task in tasks]
        for future in tqdm(futures, disable=not progress, desc="methods"):
            fitted, issued = future.result()
            for message, category, filename, lineno in issued:
                warnings.warn_explicit(message, category, filename, lineno)
            results.append(fitted)
    return results


@dataclass
class SeedRuns:
    """Methods trained over several seeds by :func:`train_methods_seeds`.

    Attributes
    ----------
    keys
        ``{seed: {method name: obsm key}}``.
    times
        Tidy table of wall times: ``method``, ``metric`` (``"train seconds"``), ``value``,
        ``seed``.
    settings
        ``{method name: effective settings}`` (the same for every seed).
    """

    keys: dict[int, dict[str, str]]
    times: pd.DataFrame
    settings: dict[str, dict[str, Any]]

    @property
    def seeds(self) -> list[int]:
        """The seeds, in training order."""
        return list(self.keys)

    def score(
        self,
        adata,
        fn: Callable[[Any, dict[str, str]], pd.DataFrame],
        progress: bool = False,
    ) -> pd.DataFrame:
        """Score every seed with ``fn(adata, {method: obsm key})`` and stack the results.

        ``fn`` returns a tidy table (``method``, ``metric``, ``value``; e.g.
        ``lambda a, k: integration_benchmark(a, k, "batch", "cell_type", plot=False).tidy``);
        the result adds the ``seed`` column, ready for :func:`qbm_lite.metrics.summarize` and
        :func:`qbm_lite.metrics.compare`.
        """
        frames = []
        for seed in tqdm(self.seeds, disable=not progress, desc="scoring seeds"):
            tidy = fn(adata, self.keys[seed])
            if not isinstance(tidy, pd.DataFrame) or not {"method", "value"} <= set(tidy):
                raise InputError(
                    "the scoring function must return a tidy DataFrame with 'method', 'metric' "
                    f"and 'value' columns; got {type(tidy).__name__}."
                )
            frames.append(tidy.assign(seed=seed))
        return pd.concat(frames, ignore_index=True)


def train_methods_seeds(
    adata,
    methods: Sequence[str] = tuple(METHODS),
    batch_key: str | None = "batch",
    *,
    seeds: Sequence[int] = (0, 1, 2),
    progress: bool = False,
    n_jobs: int = 1,
    **kwargs: Any,
) -> SeedRuns:
    """Train every method once per seed; embeddings go to ``obsm[seed_key(name, seed)]``.

    Parameters
    ----------
    adata, methods, batch_key
        As in :func:`train_methods`.
    seeds
        Distinct non-negative seeds (3 is the minimum for a paired *t* interval worth reading).
    progress
        A progress bar over the (method, seed) pairs.
    n_jobs
        Worker processes that train (method, seed) pairs at once, as in :func:`train_methods`;
        the embeddings do not depend on it.
    **kwargs
        Passed to :func:`train_methods` (``max_epochs``, ``n_latent``, ``method_kwargs``, ...).

    Returns
    -------
    SeedRuns
        The keys per seed, the wall times as a tidy table, the settings.

    Raises
    ------
    qbm_lite.checks.InputError
        No seeds, a repeated or negative seed, and everything :func:`train_methods` refuses.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise InputError(f"seeds must be distinct non-negative integers; got {seeds}.")
    if "key_suffix" in kwargs or "seed" in kwargs:
        raise InputError("train_methods_seeds sets seed and key_suffix itself; pass seeds=.")
    train_options = {k: v for k, v in kwargs.items() if k not in ("num_threads",)}
    tasks = _method_tasks(adata, methods, batch_key, seeds, **train_options)
    fitted = _fit_tasks(adata, batch_key, tasks, kwargs.get("num_threads"), n_jobs, progress)
    keys: dict[int, dict[str, str]] = {seed: {} for seed in seeds}
    rows = []
    for (name, seed, _), f in zip(tasks, fitted, strict=True):
        keys[seed][name] = _write_fitted(adata, f, f"_seed{seed}")
        rows.append({"method": name, "metric": "train seconds", "value": f.seconds, "seed": seed})
    settings = {m: dict(adata.uns["train_methods_settings"][m]) for m in methods}
    return SeedRuns(keys=keys, times=pd.DataFrame(rows), settings=settings)
