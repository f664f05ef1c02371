"""The AnnData-facing QBM-VAE model (the scvi-tools way: model over a torch-only module)."""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from qbm_lite.checks import check_choice
from qbm_lite.config import get_device, seed_everything
from qbm_lite.data.loader import CellLoader, RowReader, cell_matrix, scan_counts
from qbm_lite.samplers.base import SpinSampler
from qbm_lite.samplers.exact import ExactSampler
from qbm_lite.samplers.gibbs import GibbsSampler
from qbm_lite.vae.likelihoods import LikelihoodName
from qbm_lite.vae.module import COUNT_LIKELIHOODS, PriorName, VAEModule
from qbm_lite.vae.persistence import model_file_for_load, model_file_for_save, plain
from qbm_lite.vae.query import ArchesMixin
from qbm_lite.vae.relaxations import RelaxationName
from qbm_lite.vae.rnaseq import RNASeqMixin
from qbm_lite.vae.scvi_compat import resolve_accelerator, translate_train_kwargs
from qbm_lite.vae.training import (
    LogZMethod,
    Trainer,
    TrainingDivergedError,
    default_max_epochs,
    default_prior_warmup_epochs,
    distributed_context,
)

__all__ = ["QBMVAE", "default_sampler", "make_sampler"]

SamplerName = Literal["gibbs", "exact", "annealing", "cim"]
_LIKELIHOODS = ("nb", "zinb", "gaussian", "bernoulli")
_PRIORS = ("boltzmann", "gaussian")
_FORMAT_VERSION = 2


def default_sampler(seed: int | None = 0) -> GibbsSampler:
    """The training default: persistent Gibbs chains advanced by one sweep per step.

    Persistent chains (PCD) track the slowly changing prior, so one sweep per step is enough and
    the sampler costs a small fraction of a training step (see ``benchmarks/train_bench.py``).
    """
    return GibbsSampler(num_sweeps=1, persistent=True, seed=seed)


def make_sampler(sampler: SpinSampler | SamplerName | None, seed: int | None = 0) -> SpinSampler:
    """Resolve a sampler given by name (``"gibbs"``, ``"exact"``, ``"annealing"``, ``"cim"``)."""
    if sampler is None or sampler == "gibbs":
        return default_sampler(seed)
    if isinstance(sampler, str):
        if sampler == "exact":
            return ExactSampler(seed=seed)
        if sampler == "annealing":
            from qbm_lite.samplers.annealing import AnnealingSampler

            return AnnealingSampler(num_sweeps=100, seed=seed)
        if sampler == "cim":
            from qbm_lite.samplers.cim import SimulatedCIMSampler

            return SimulatedCIMSampler(seed=seed)
        raise ValueError(
            f"sampler must be a SpinSampler or one of 'gibbs', 'exact', 'annealing', 'cim'; "
            f"got {sampler!r}."
        )
    if not hasattr(sampler, "sample_spins"):
        raise TypeError(
            f"sampler must implement sample_spins(h, J, num_samples, beta=...); got "
            f"{type(sampler).__name__}. Wrap dimod samplers in DimodSamplerAdapter."
        )
    return sampler


def check_values(vals: np.ndarray, likelihood: str, where: str) -> None:
    """Check stored values (a dense block, or a sparse block's non-zeros) for ``likelihood``:
    finite always; non-negative integers for counts; {0, 1} for Bernoulli.

    Raises
    ------
    TypeError
        For non-numeric storage (e.g. strings or objects).
    ValueError
        Naming the problem and the fix.
    """
    vals = np.asarray(vals)
    if vals.dtype.kind not in "biuf":
        raise TypeError(
            f"{where} has dtype {vals.dtype}, not numbers; convert it, e.g. "
            "adata.X = adata.X.astype(np.float32)."
        )
    if vals.dtype.kind in "biu":
        finite = True
    else:
        finite = bool(np.isfinite(vals).all())
    if not finite:
        raise ValueError(
            f"{where} contains NaN or infinite values; remove or impute them before training."
        )
    if likelihood in COUNT_LIKELIHOODS:
        if (vals < 0).any():
            raise ValueError(
                f"{where} has negative values, but likelihood={likelihood!r} models counts; "
                "pass raw counts (e.g. layer='counts') or use likelihood='gaussian'."
            )
        if vals.dtype.kind == "f" and (vals != np.round(vals)).any():
            raise ValueError(
                f"{where} has non-integer values, but likelihood={likelihood!r} models counts; "
                "pass raw counts (e.g. layer='counts') or use likelihood='gaussian' for "
                "log-normalized data."
            )
    if likelihood == "bernoulli" and not np.isin(vals, (0, 1)).all():
        raise ValueError(
            f"{where} has values other than 0 and 1, but likelihood='bernoulli' needs binary "
            "data; binarize it first (e.g. X > threshold)."
        )


def _as_name(name: str, value: Any) -> str | None:
    """A str option given possibly as ``np.str_``; None stays None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string or None; got {type(value).__name__}.")
    return str(value)


class QBMVAE(RNASeqMixin, ArchesMixin):
    """A VAE with a Boltzmann-machine prior over binary latents (or a Gaussian prior).

    Parameters
    ----------
    adata
        AnnData with cells in rows: in memory (dense or sparse, any numeric dtype, views
        included), backed (``anndata.read_h5ad(path, backed="r")``) or with a zarr / dask
        matrix. Rows are read per minibatch (:mod:`qbm_lite.data.loader`); the whole matrix is
        never densified.
    layer
        Layer holding the data (``None`` for ``adata.X``). Counts for ``"nb"``/``"zinb"``.
    batch_key
        Column of ``adata.obs`` with the batch; injected into the decoder as a one-hot covariate.
    likelihood
        ``"nb"``, ``"zinb"``, ``"gaussian"`` (log-normalized data) or ``"bernoulli"`` (binary).
    n_latent, n_hidden, n_layers
        Latent units and network sizes. The defaults (32 units, ``relaxation_beta=4``) were chosen
        by ``benchmarks/latent_defaults_bench.py``: 10 units with ``beta=8`` saturate into a few
        dozen codes. Above 20 units ``log Z`` is not enumerated (see ``history`` and
        :meth:`get_elbo`); at 17-20 units enumerating it every epoch costs seconds per epoch.
    prior
        ``"boltzmann"`` (the QBM-VAE) or ``"gaussian"`` (the plain VAE with the same networks).
    sampler
        Negative-phase sampler: a :class:`~qbm_lite.samplers.base.SpinSampler` or one of
        ``"gibbs"`` (default: persistent chains, one sweep per step), ``"exact"``,
        ``"annealing"``, ``"cim"``.
    seed
        Seed for weights, minibatches and noise (runs are reproducible on the CPU).
    relaxation, relaxation_beta
        Relaxation of the binary latents (``"overlapping"`` or ``"spike-exp"``) and its sharpness.
    encode_covariates
        Also feed the batch to the encoder.
    dropout
        Dropout rate in the encoder.
    num_negative
        Negative-phase samples per training step (per process under DDP).
    device
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.

    Attributes
    ----------
    history
        Per-epoch lists: ``train_loss``, ``train_reconstruction``, ``train_kl`` (means over cells),
        the same with ``validation_`` when there is a validation split, ``time_sampler``,
        ``time_networks`` and ``time_epoch`` (seconds) and ``epoch``. For the Boltzmann prior
        also ``log_z``, ``log_z_std_err`` and ``log_z_method``: ``"exact"`` (enumeration,
        ``n_latent <= 20``; standard error 0), ``"ais"`` (an annealed-importance-sampling
        estimate with its standard error, which is then the standard error of that epoch's KL
        and loss values) or ``"none"`` (``log_z`` is NaN and that epoch's KL and loss values
        omit ``log Z``). See ``train``'s ``log_z``.
    module
        The torch module (:class:`~qbm_lite.vae.module.VAEModule`).

    Examples
    --------
    >>> model = QBMVAE(adata, layer="counts", batch_key="batch", likelihood="nb")  # doctest: +SKIP
    >>> model.train(max_epochs=50, batch_size=128)  # doctest: +SKIP
    >>> adata.obsm["X_qbmvae"] = model.get_latent_representation()  # doctest: +SKIP
    """

    def __init__(
        self,
        adata,
        layer: str | None = None,
        batch_key: str | None = None,
        likelihood: LikelihoodName = "nb",
        n_latent: int = 32,
        n_hidden: int = 128,
        n_layers: int = 1,
        prior: PriorName = "boltzmann",
        sampler: SpinSampler | SamplerName | None = None,
        seed: int = 0,
        relaxation: RelaxationName = "overlapping",
        relaxation_beta: float = 4.0,
        encode_covariates: bool = False,
        dropout: float = 0.1,
        num_negative: int = 128,
        device: str = "auto",
        *,
        _batch_categories: list[str] | None = None,
    ) -> None:
        layer, batch_key = _as_name("layer", layer), _as_name("batch_key", batch_key)
        likelihood, prior = _as_name("likelihood", likelihood), _as_name("prior", prior)
        relaxation = _as_name("relaxation", relaxation)
        if isinstance(sampler, str):
            sampler = str(sampler)
        check_choice("likelihood", likelihood, _LIKELIHOODS)
        check_choice("prior", prior, _PRIORS)
        for name, value in (("n_latent", n_latent), ("n_hidden", n_hidden)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer; got {value}.")
        if int(n_layers) < 0:
            raise ValueError(f"n_layers must be a non-negative integer; got {n_layers}.")
        self.config: dict[str, Any] = {
            "layer": layer,
            "batch_key": batch_key,
            "likelihood": likelihood,
            "n_latent": int(n_latent),
            "n_hidden": int(n_hidden),
            "n_layers": int(n_layers),
            "prior": prior,
            "sampler": sampler if isinstance(sampler, str) or sampler is None else "custom",
            "seed": int(seed),
            "relaxation": relaxation,
            "relaxation_beta": float(relaxation_beta),
            "encode_covariates": bool(encode_covariates),
            "dropout": float(dropout),
            "num_negative": int(num_negative),
        }
        self.device = get_device(str(device))
        self.seed = int(seed)
        self._check_adata(adata)
        self.var_names = [str(v) for v in adata.var_names]
        self.batch_categories = (
            [str(c) for c in _batch_categories]
            if _batch_categories is not None
            else self._batch_categories(adata)
        )
        self.adata = adata
        self._reader = RowReader(cell_matrix(adata, layer))
        self._batch_codes = self._codes(adata)
        scan = scan_counts(
            self._reader,
            check=partial(check_values, likelihood=likelihood, where=self._where()),
            lgamma=likelihood in COUNT_LIKELIHOODS,
        )
        self.library_median = float(np.median(scan.library))
        self.x_lgamma = (
            None
            if scan.lgamma_sum is None
            else torch.as_tensor(scan.lgamma_sum, dtype=torch.float32, device=self.device)
        )
        seed_everything(self.seed)
        self.sampler = make_sampler(sampler, self.seed) if prior == "boltzmann" else None
        self.module = VAEModule(
            n_input=adata.n_vars,
            likelihood=likelihood,
            prior=prior,
            sampler=self.sampler,
            n_batch=len(self.batch_categories),
            n_latent=int(n_latent),
            n_hidden=int(n_hidden),
            n_layers=int(n_layers),
            dropout=float(dropout),
            relaxation=relaxation,
            relaxation_beta=float(relaxation_beta),
            encode_covariates=bool(encode_covariates),
            num_negative=int(num_negative),
        ).to(self.device)
        self.history: dict[str, list] = {}
        self.epochs_trained = 0
        self.is_trained = False
        self._optimizer: torch.optim.Optimizer | None = None
        self._prior_warmup_epochs: int | None = None
        self._prior_warmup_is_default = False

    # --- data --------------------------------------------------------------------------------
    def _where(self) -> str:
        layer = self.config["layer"]
        return "adata.X" if layer is None else f"adata.layers[{layer!r}]"

    def _check_adata(self, adata) -> None:
        try:
            import anndata
        except ImportError as err:  # pragma: no cover - anndata is a dependency
            raise ImportError("QBMVAE needs the anndata package.") from err
        if not isinstance(adata, anndata.AnnData):
            raise TypeError(f"adata must be an AnnData object; got {type(adata).__name__}.")
        if adata.n_obs == 0 or adata.n_vars == 0:
            raise ValueError(
                f"adata is empty ({adata.n_obs} cells x {adata.n_vars} features); "
                "pass an AnnData with at least one cell and one feature."
            )
        key = self.config["batch_key"]
        if key is not None and key not in adata.obs:
            raise ValueError(
                f"batch_key {key!r} is not a column of adata.obs (columns: "
                f"{list(adata.obs.columns)}); pass an existing column or batch_key=None."
            )
        cell_matrix(adata, self.config["layer"])  # the layer exists

    def _batch_categories(self, adata) -> list[str]:
        key = self.config["batch_key"]
        if key is None:
            return []
        col = adata.obs[key]
        if col.isna().any():
            raise ValueError(
                f"adata.obs[{key!r}] has {int(col.isna().sum())} missing values; fill them "
                "(e.g. with 'unknown') or drop those cells before training."
            )
        if isinstance(col.dtype, pd.CategoricalDtype):
            return [str(c) for c in col.cat.categories]
        return sorted({str(c) for c in col.unique()})

    def _codes(self, adata) -> np.ndarray | None:
        """Integer batch code per cell (None without batches)."""
        if len(self.batch_categories) < 2:
            return None
        col = adata.obs[self.config["batch_key"]]
        if col.isna().any():
            raise ValueError(
                f"adata.obs[{self.config['batch_key']!r}] has {int(col.isna().sum())} missing "
                "values; fill them or drop those cells."
            )
        labels = col.astype(str).to_numpy()
        lookup = {c: i for i, c in enumerate(self.batch_categories)}
        unknown = sorted(set(labels) - set(lookup))
        if unknown:
            raise ValueError(
                f"batches {unknown[:5]} were not seen when the model was set up "
                f"(known: {self.batch_categories[:10]}); use the same batch labels."
            )
        return np.fromiter((lookup[v] for v in labels), dtype=np.int64, count=len(labels))

    def _source(self, adata=None) -> tuple[RowReader, np.ndarray | None]:
        """Reader and batch codes of ``adata`` (checked against the model) or of the training
        data."""
        if adata is None or adata is self.adata:
            return self._reader, self._batch_codes
        self._check_adata(adata)
        self._check_genes(adata)
        reader = RowReader(cell_matrix(adata, self.config["layer"]))
        check = partial(check_values, likelihood=self.config["likelihood"], where=self._where())
        scan_counts(reader, check=check)  # one streaming pass: clear errors for bad values
        return reader, self._codes(adata)

    def _loader(
        self,
        adata=None,
        indices: np.ndarray | None = None,
        batch_size: int = 1024,
        shuffle: bool = False,
        **kwargs: Any,
    ) -> CellLoader:
        """A :class:`~qbm_lite.data.loader.CellLoader` over ``adata`` (default: the training
        data) yielding :class:`~qbm_lite.data.loader.Minibatch` es on the model's device."""
        reader, codes = self._source(adata)
        return CellLoader(
            reader,
            indices=indices,
            batch_codes=codes,
            n_batch=self.module.n_batch,
            batch_size=int(batch_size),
            shuffle=shuffle,
            seed=self.seed,
            device=self.device,
            **kwargs,
        )

    def _minibatches(
        self,
        adata=None,
        indices: np.ndarray | None = None,
        batch_size: int = 1024,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """Cells of ``adata`` in order, as ``(x, batch_onehot)`` tensors on the model's device.

        The internal iterator every output method uses, so nothing densifies a whole matrix.

        Parameters
        ----------
        adata
            AnnData with the model's genes (checked); None for the training data.
        indices
            Rows to visit, in this order (default all).
        batch_size
            Cells per minibatch.

        Yields
        ------
        tuple of torch.Tensor
            ``x`` ``(b, n_vars)`` float32 and the one-hot batch ``(b, n_batch)`` or None.
        """
        for mb in self._loader(adata, indices, batch_size):
            yield mb.x, mb.batch

    def _check_genes(self, adata) -> None:
        names = [str(v) for v in adata.var_names]
        if names != self.var_names:
            missing = [g for g in self.var_names if g not in set(names)][:5]
            raise ValueError(
                f"adata's genes do not match the model's ({len(names)} vs {len(self.var_names)} "
                f"features; first missing: {missing}); subset and order adata as in training, "
                "e.g. adata[:, model.var_names]."
            )

    # --- training ----------------------------------------------------------------------------
    def train(
        self,
        max_epochs: int | None = None,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        train_size: float = 0.9,
        early_stopping: bool = False,
        patience: int = 10,
        kl_warmup_epochs: int = 0,
        progress: bool = True,
        prior_warmup_epochs: int | None = None,
        accelerator: str | None = None,
        log_z: LogZMethod = "auto",
        log_z_every: int | None = None,
        ais_kwargs: dict[str, Any] | None = None,
        block_size: int | None = None,
        **kwargs: Any,
    ) -> QBMVAE:
        """Train with Adam on minibatches read by :mod:`qbm_lite.data.loader`
        (:class:`~qbm_lite.vae.training.Trainer` runs the loop).

        Under ``torchrun`` (an initialized ``torch.distributed`` group) the same call trains
        data-parallel with PyTorch DDP: see :mod:`qbm_lite.vae.training`.

        Parameters
        ----------
        max_epochs
            Passes over the training cells; None chooses ``min(round(20,000 / n_cells × 400),
            400)`` as scvi-tools does.
        batch_size
            Cells per minibatch (per process under DDP).
        lr, weight_decay
            Adam's settings. The optimizer's state carries over between ``train`` calls on the
            same device, so ``train(4)`` twice equals ``train(8)``.
        train_size
            Fraction of cells used for training; the rest is the validation split (1.0 for none).
        early_stopping
            Stop when the validation loss has not improved for ``patience`` epochs and restore
            the best weights. For priors above 20 units the monitored loss omits ``log Z``
            (a constant per epoch would otherwise change the comparison).
        kl_warmup_epochs
            Linearly increase the KL weight from 0 to 1 over this many epochs (counted over all
            calls). The Boltzmann prior's only loss is the KL and Adam's steps do not depend on
            the gradient's scale, so this does not slow the prior's learning; see
            ``prior_warmup_epochs``.
        progress
            Show a progress bar.
        prior_warmup_epochs
            Boltzmann prior only: hold the prior's ``h`` and ``J`` fixed during the model's first
            this many epochs (counted over all calls) and learn them jointly afterwards. A fresh
            prior has ``h = J = 0``, the uniform distribution over the ``2**n_latent`` codes, so
            the warm-up optimizes the ELBO of a VAE with a fixed uniform binary prior. Without
            it the encoder and a prior learned from the first step can fall into posterior
            collapse: the prior follows the aggregate posterior, the KL pulls every cell to the
            prior's modes, and all cells end on one code. ``None`` keeps the value in force;
            on a model's first call it is
            :func:`~qbm_lite.vae.training.default_prior_warmup_epochs` of the number of cells
            (a quarter of ``max_epochs=None``'s epochs, 100 below 20,000 cells), which does not
            depend on the call, so ``train(4)`` twice equals ``train(8)``. A call that ends
            inside this default warm-up warns that the prior stays uniform. ``0`` learns the
            prior from the start.
        accelerator
            Lightning's names: ``"gpu"``/``"cuda"``, ``"cpu"``, ``"auto"``; None keeps the
            model's device.
        log_z
            How the Boltzmann prior's ``log Z`` enters the KL and loss values in
            :attr:`history`: ``"exact"`` (enumeration every epoch, ``n_latent <= 20``),
            ``"ais"`` (AIS every ``log_z_every`` epochs and at the call's last epoch),
            ``"none"``, or ``"auto"``: exact up to 20 units, AIS above. Training itself never
            needs ``log Z`` (its gradient comes from the negative phase).
        log_z_every
            AIS every this many epochs (None: only at the last epoch of the call).
        ais_kwargs
            Settings of :func:`qbm_lite.ais.ais_ising` (default 200 chains, 1,000 temperatures).
        block_size
            Cells per contiguous block of the block-shuffled sampler (None: 1 in memory, a full
            shuffle; 512 on disk).
        **kwargs
            scvi-tools' names: ``early_stopping_patience``, ``enable_progress_bar``,
            ``validation_size``, ``n_epochs_kl_warmup``, ``plan_kwargs`` (``lr``,
            ``weight_decay``, ``n_epochs_kl_warmup``), ``early_stopping_monitor``
            (``"elbo_validation"``). Others raise a ``TypeError`` naming the equivalent.

        Returns
        -------
        QBMVAE
            ``self``; per-epoch loss terms and timings are appended to :attr:`history`.

        Raises
        ------
        TrainingDivergedError
            At the first NaN or infinite loss or gradient (the weights stay those of the last
            finite step; finished epochs stay in :attr:`history`).
        """
        explicit = dict(locals())
        explicit.pop("self"), explicit.pop("kwargs")
        opts = translate_train_kwargs(kwargs, explicit)
        patience = opts.get("patience", patience)
        progress = opts.get("progress", progress)
        train_size = opts.get("train_size", train_size)
        kl_warmup_epochs = opts.get("kl_warmup_epochs", kl_warmup_epochs)
        lr = float(opts.get("lr", lr))
        weight_decay = float(opts.get("weight_decay", weight_decay))
        n = self.adata.n_obs
        if max_epochs is None:
            max_epochs = default_max_epochs(n)
        if int(max_epochs) < 1 or int(batch_size) < 1:
            raise ValueError("max_epochs and batch_size must be positive integers.")
        if not 0 < train_size <= 1:
            raise ValueError(f"train_size must be in (0, 1]; got {train_size}.")
        if prior_warmup_epochs is None:
            if self._prior_warmup_epochs is None:
                self._prior_warmup_epochs = default_prior_warmup_epochs(n)
                self._prior_warmup_is_default = True
        elif int(prior_warmup_epochs) < 0:
            raise ValueError(
                f"prior_warmup_epochs must be a non-negative integer or None; got "
                f"{prior_warmup_epochs}."
            )
        else:
            self._prior_warmup_epochs = int(prior_warmup_epochs)
            self._prior_warmup_is_default = False
        self._warn_if_prior_stays_uniform(int(max_epochs))
        self._to_device(resolve_accelerator(accelerator, self.device))
        train_idx, val_idx = self._split(train_size)
        if early_stopping and len(val_idx) == 0:
            raise ValueError("early_stopping needs a validation split: use train_size < 1.")
        rank, world = distributed_context()
        train_loader = self._loader(
            None,
            train_idx,
            batch_size,
            shuffle=True,
            block_size=block_size,
            rank=rank,
            world_size=world,
        )
        val_loader = self._loader(None, val_idx, 2048) if len(val_idx) else None
        trainer = Trainer(
            self.module,
            self.history,
            lr=lr,
            weight_decay=weight_decay,
            optimizer=self._optimizer,
            kl_warmup_epochs=kl_warmup_epochs,
            prior_warmup_epochs=self._prior_warmup_epochs,
            early_stopping=early_stopping,
            patience=patience,
            log_z=log_z,
            log_z_every=log_z_every,
            ais_kwargs=ais_kwargs,
            x_lgamma=self.x_lgamma,
            seed=self.seed,
            progress=progress,
        )
        self._optimizer = trainer.optimizer

        def count_epoch(_: int) -> None:
            self.epochs_trained += 1
            self.is_trained = True

        try:
            trainer.fit(train_loader, val_loader, int(max_epochs), self.epochs_trained, count_epoch)
        except TrainingDivergedError:
            self.module.eval()
            raise
        self.is_trained = True
        return self

    def _warn_if_prior_stays_uniform(self, max_epochs: int) -> None:
        """Warn when the default warm-up keeps a learnable prior uniform for the whole call."""
        warmup = self._prior_warmup_epochs or 0
        if (
            not self._prior_warmup_is_default
            or self.config["prior"] != "boltzmann"
            or self.epochs_trained + max_epochs > warmup
        ):
            return
        warnings.warn(
            f"the Boltzmann prior stays uniform (h = J = 0) for this whole call: its warm-up "
            f"lasts {warmup} epochs (counted over all train calls; the default is a quarter of "
            f"scvi-tools' default epochs for {self.adata.n_obs} cells) and the model will have "
            f"trained {self.epochs_trained + max_epochs}. Train longer or pass "
            f"prior_warmup_epochs= (e.g. max_epochs // 4) to learn the prior.",
            UserWarning,
            stacklevel=3,
        )

    def _split(self, train_size: float) -> tuple[np.ndarray, np.ndarray]:
        n = self.adata.n_obs
        order = np.random.default_rng(self.seed).permutation(n)
        n_train = max(1, int(round(train_size * n)))
        if n - n_train < 1:
            n_train = n
        return np.sort(order[:n_train]), np.sort(order[n_train:])

    def _to_device(self, device: torch.device) -> None:
        if device == self.device:
            return
        self.module.to(device)
        if self.x_lgamma is not None:
            self.x_lgamma = self.x_lgamma.to(device)
        self.device = device
        self._optimizer = None  # Adam's state lives on the old device

    # --- outputs -----------------------------------------------------------------------------
    def _warn_untrained(self, what: str, stacklevel: int = 4) -> None:
        if not self.is_trained:
            warnings.warn(
                f"{what} of a model that has not been trained: the weights are random. Call "
                "model.train() first (or QBMVAE.load a trained model).",
                UserWarning,
                stacklevel=stacklevel,  # the caller of the (no_grad-decorated) method
            )

    @torch.no_grad()
    def get_latent_representation(
        self,
        adata=None,
        indices: np.ndarray | None = None,
        give_mean: bool = True,
        batch_size: int = 4096,
    ) -> np.ndarray:
        """Latent coordinates of each cell, ``(n_cells, n_latent)``, streamed in minibatches.

        For the Boltzmann prior this is the posterior probability ``q(z_i = 1 | x)`` of each bit
        (the mean of the discrete latent the prior is defined on; continuous, so neighbourhood
        graphs and UMAP work on it). For the Gaussian prior it is the posterior mean.
        ``give_mean=False`` returns one draw instead (relaxed ``ζ``, or a Gaussian sample).
        ``indices`` selects cells (scvi-tools' argument). Warns for an untrained model.
        """
        self._warn_untrained("get_latent_representation")
        self.module.eval()
        out = []
        for x, b in self._minibatches(adata, indices, batch_size):
            out.append(self.module.inference(x, b, sample=not give_mean)["z"].cpu())
        return torch.cat(out).numpy()

    def _eval_batches(self, adata, fn, batch_size: int) -> np.ndarray:
        self.module.eval()
        torch.manual_seed(self.seed)
        vals = [fn(x, b).cpu() for x, b in self._minibatches(adata, None, batch_size)]
        return torch.cat(vals).numpy()

    def get_elbo(
        self, adata=None, log_z: float | str | None = None, batch_size: int = 1024
    ) -> np.ndarray:
        """Per-cell ELBO (one latent draw).

        ``log_z``: None for the exact ``log Z`` of the Boltzmann prior (``n_latent <= 20``),
        ``"ais"`` for an AIS estimate (:meth:`log_partition_ais`), or a number.
        """
        lz = self._log_z(log_z)
        return self._eval_batches(adata, lambda x, b: self.module.elbo(x, b, lz), batch_size)

    def get_marginal_ll(
        self,
        adata=None,
        n_samples: int = 100,
        log_z: float | str | None = None,
        batch_size: int = 256,
    ) -> np.ndarray:
        """Per-cell importance-weighted estimate of ``log p(x)`` with ``n_samples`` samples.

        ``log_z`` as in :meth:`get_elbo`.
        """
        lz = self._log_z(log_z)
        return self._eval_batches(
            adata, lambda x, b: self.module.marginal_ll(x, b, n_samples, lz), batch_size
        )

    def _log_z(self, log_z: float | str | None):
        if self.module.prior_name != "boltzmann":
            return None
        if log_z is None:
            if self.config["n_latent"] > 20:
                raise ValueError(
                    f"Exact log Z needs n_latent <= 20 (this prior has {self.config['n_latent']}); "
                    "pass log_z='ais' for an annealed-importance-sampling estimate, or a number."
                )
            with torch.no_grad():
                return self.module.prior.log_partition()
        if log_z == "ais":
            return self.log_partition_ais().log_z
        if isinstance(log_z, str):
            raise ValueError(f"log_z must be None, 'ais' or a number; got {log_z!r}.")
        return float(log_z)

    def log_partition_ais(self, num_chains: int = 500, num_betas: int = 2000, **kwargs: Any):
        """AIS estimate of the Boltzmann prior's ``log Z`` (:func:`qbm_lite.ais.ais_ising`).

        Returns the :class:`~qbm_lite.ais.AISResult` (estimate, standard error, weights).
        """
        if self.module.prior_name != "boltzmann":
            raise ValueError("log_partition_ais needs prior='boltzmann'.")
        from qbm_lite.ais import ais_ising

        prior = self.module.prior
        kwargs.setdefault("seed", self.seed)
        return ais_ising(
            prior.h.detach(),
            prior.J.detach(),
            num_chains=num_chains,
            num_betas=num_betas,
            **kwargs,
        )

    @torch.no_grad()
    def sample_prior(
        self,
        n: int,
        batch: str | None = None,
        library_size: float | None = None,
        sampler: SpinSampler | None = None,
    ) -> np.ndarray:
        """Draw ``n`` latent codes from the prior and decode them to expected data (means).

        Returns the decoder's **means**, not counts: expected counts (NB/ZINB, at
        ``library_size``, default the median training library; ZINB's dropout included), the
        mean (Gaussian) or pixel probabilities (Bernoulli), shape ``(n, n_features)``. For
        counts drawn from the likelihood use :meth:`posterior_predictive_sample`. The Boltzmann
        prior is sampled exactly when ``n_latent <= 16`` and by long Gibbs chains otherwise,
        unless a ``sampler`` is given. A model with a batch covariate needs ``batch`` (one of
        ``batch_categories``): the decoder's output depends on it.
        """
        module = self.module
        module.eval()
        torch.manual_seed(self.seed)
        if module.prior_name == "boltzmann":
            if sampler is None:
                sampler = (
                    ExactSampler(seed=self.seed)
                    if self.config["n_latent"] <= 16
                    else GibbsSampler(num_sweeps=500, seed=self.seed)
                )
            bits = (module.prior.sample(n, sampler) + 1) / 2
            z = module.relaxation.given_bits(bits.float())
        else:
            z = torch.randn(n, self.config["n_latent"], device=self.device)
        b = None
        if module.n_batch:
            if batch is None:
                raise ValueError(
                    f"this model decodes with a batch covariate; pass batch= one of "
                    f"{self.batch_categories}."
                )
            name = str(batch)
            if name not in self.batch_categories:
                raise ValueError(f"batch {batch!r} unknown; choose from {self.batch_categories}.")
            b = torch.zeros(n, module.n_batch, device=self.device)
            b[:, self.batch_categories.index(name)] = 1.0
        lib = torch.full((n, 1), float(library_size or self.library_median), device=self.device)
        params = module.generative(z, b, lib)
        if self.config["likelihood"] in COUNT_LIKELIHOODS:
            mean = params["mu"]
            if "pi_logits" in params:
                mean = mean * torch.sigmoid(-params["pi_logits"])
        elif self.config["likelihood"] == "gaussian":
            mean = params["mean"]
        else:
            mean = torch.sigmoid(params["logits"])
        return mean.cpu().numpy()

    # --- persistence -------------------------------------------------------------------------
    def save(
        self,
        dir_path: str | os.PathLike,
        overwrite: bool = False,
        save_anndata: bool = False,
    ) -> Path:
        """Save weights and plain-Python settings with ``torch.save`` (loadable with
        ``weights_only=True``), the scvi-tools way.

        Parameters
        ----------
        dir_path
            A directory (created with its parents if missing) that receives ``model.pt``; a
            path ending in ``.pt`` or ``.pth`` is written as that file instead.
        overwrite
            Replace an existing model file (default False: raise ``FileExistsError``).
        save_anndata
            Also write the training AnnData as ``adata.h5ad`` next to ``model.pt`` (in-memory
            AnnData and the directory form only).

        Returns
        -------
        pathlib.Path
            The model file written. Under DDP only rank 0 writes (other ranks return the path).

        Notes
        -----
        The sampler object is not saved (only its name); pass a custom one again to
        :meth:`load`. The optimizer's state is not saved either.
        """
        target = Path(dir_path).expanduser()
        rank, _ = distributed_context()
        if rank != 0:
            return target
        target = model_file_for_save(dir_path, overwrite)
        state = {
            "format_version": _FORMAT_VERSION,
            "config": plain(dict(self.config), "config"),
            "state_dict": {k: v.detach().cpu() for k, v in self.module.state_dict().items()},
            "var_names": [str(v) for v in self.var_names],
            "batch_categories": [str(c) for c in self.batch_categories],
            "history": plain({k: list(v) for k, v in self.history.items()}, "history"),
            "epochs_trained": int(self.epochs_trained),
            "prior_warmup_epochs": self._prior_warmup_epochs,
            "prior_warmup_is_default": self._prior_warmup_is_default,
        }
        torch.save(state, target)
        if save_anndata:
            if target.name != "model.pt" or self.adata.isbacked:
                raise ValueError(
                    "save_anndata=True needs a directory path and an in-memory AnnData; write "
                    "a backed AnnData yourself (it is already on disk)."
                )
            self.adata.write_h5ad(target.parent / "adata.h5ad")
        return target

    @classmethod
    def load(
        cls,
        dir_path: str | os.PathLike,
        adata=None,
        sampler: SpinSampler | SamplerName | None = None,
        device: str = "auto",
        accelerator: str | None = None,
    ) -> QBMVAE:
        """Load a model saved with :meth:`save` onto ``adata`` (same genes, same order).

        The model is built through the constructor with the saved settings, then the saved
        weights, history and epoch count are restored.

        Parameters
        ----------
        dir_path
            The directory given to :meth:`save` (holding ``model.pt``) or the saved file.
        adata
            AnnData with the training genes in the training order (and the same layer and
            batch column). None reads ``adata.h5ad`` saved next to the model
            (``save_anndata=True``).
        sampler
            Negative-phase sampler for further training. Default: the saved sampler name, or
            persistent Gibbs chains if a custom sampler object was used.
        device, accelerator
            ``"auto"``, ``"cpu"`` or ``"cuda"`` (``accelerator``, scvi-tools' name, wins when
            given; ``"gpu"`` means CUDA).

        Raises
        ------
        FileNotFoundError
            If there is no saved model at ``dir_path``.
        ValueError
            If ``adata``'s genes differ from the saved ones, or the file is of an unknown
            format.
        """
        path = model_file_for_load(dir_path)
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "config" not in state or "state_dict" not in state:
            raise ValueError(f"{path} was not written by QBMVAE.save.")
        if adata is None:
            h5ad = path.parent / "adata.h5ad"
            if not h5ad.is_file():
                raise ValueError(
                    f"pass adata: no adata.h5ad was saved next to {path} (save_anndata=True)."
                )
            import anndata

            adata = anndata.read_h5ad(h5ad)
        names = [str(v) for v in adata.var_names]
        if names != list(state["var_names"]):
            missing = [g for g in state["var_names"] if g not in set(names)][:5]
            raise ValueError(
                f"adata's genes do not match the saved model's ({len(names)} vs "
                f"{len(state['var_names'])} features; first missing: {missing}); subset and "
                "order adata as in training, e.g. adata[:, saved_var_names]."
            )
        config = dict(state["config"])
        saved_sampler = config.pop("sampler", None)
        if sampler is None and saved_sampler not in (None, "custom"):
            sampler = saved_sampler
        if accelerator is not None:
            device = str(resolve_accelerator(accelerator, torch.device("cpu")))
        accepted = set(inspect.signature(cls.__init__).parameters)
        kwargs = {k: v for k, v in config.items() if k in accepted}
        model = cls(
            adata,
            sampler=sampler,
            device=device,
            _batch_categories=list(state["batch_categories"]),
            **kwargs,
        )
        model.config["sampler"] = saved_sampler
        model.module.load_state_dict(state["state_dict"])
        model.module.eval()
        model.history = {k: list(v) for k, v in state["history"].items()}
        model.epochs_trained = int(state["epochs_trained"])
        model.is_trained = model.epochs_trained > 0
        model._prior_warmup_epochs = state.get("prior_warmup_epochs")
        model._prior_warmup_is_default = bool(state.get("prior_warmup_is_default", False))
        return model

    def __repr__(self) -> str:
        c = self.config
        return (
            f"QBMVAE(prior={c['prior']!r}, likelihood={c['likelihood']!r}, "
            f"n_latent={c['n_latent']}, cells={self.adata.n_obs}, features={len(self.var_names)}, "
            f"batches={len(self.batch_categories)}, epochs_trained={self.epochs_trained})"
        )
