"""The AnnData-facing QBM-VAE model (the scvi-tools way: model over a torch-only module)."""

from __future__ import annotations

import copy
import math
import os
import time
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from qbm_lite.config import get_device, seed_everything, torch_generator
from qbm_lite.samplers.base import SpinSampler
from qbm_lite.samplers.exact import ExactSampler
from qbm_lite.samplers.gibbs import GibbsSampler
from qbm_lite.vae.likelihoods import LikelihoodName
from qbm_lite.vae.module import COUNT_LIKELIHOODS, PriorName, VAEModule
from qbm_lite.vae.query import ArchesMixin
from qbm_lite.vae.relaxations import RelaxationName
from qbm_lite.vae.rnaseq import RNASeqMixin

__all__ = ["QBMVAE", "default_sampler", "make_sampler"]

SamplerName = Literal["gibbs", "exact", "annealing", "cim"]
_LIKELIHOODS = ("nb", "zinb", "gaussian", "bernoulli")
_PRIORS = ("boltzmann", "gaussian")
_FORMAT_VERSION = 1


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


def _check_choice(name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ValueError(f"{name} must be one of {options}; got {value!r}.")


def _matrix(adata, layer: str | None):
    if layer is None:
        return adata.X
    if layer not in adata.layers:
        raise ValueError(
            f"layer {layer!r} is not in adata.layers (available: {list(adata.layers.keys())}); "
            "pass one of those, or layer=None to use adata.X."
        )
    return adata.layers[layer]


def _check_values(X, likelihood: str, where: str) -> None:
    """Finite values always; non-negative integers for counts; {0, 1} for Bernoulli."""
    vals = X.data if sp.issparse(X) else np.asarray(X)
    if not np.isfinite(vals).all():
        raise ValueError(
            f"{where} contains NaN or infinite values; remove or impute them before training."
        )
    if likelihood in COUNT_LIKELIHOODS:
        if (vals < 0).any():
            raise ValueError(
                f"{where} has negative values, but likelihood={likelihood!r} models counts; "
                "pass raw counts (e.g. layer='counts') or use likelihood='gaussian'."
            )
        if (vals != np.round(vals)).any():
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


class QBMVAE(RNASeqMixin, ArchesMixin):
    """A VAE with a Boltzmann-machine prior over binary latents (or a Gaussian prior).

    Parameters
    ----------
    adata
        AnnData with cells in rows.
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
        Negative-phase samples per training step.
    device
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.

    Attributes
    ----------
    history
        Per-epoch lists: ``train_loss``, ``train_reconstruction``, ``train_kl`` (means over cells),
        the same with ``validation_`` when there is a validation split, ``time_sampler``,
        ``time_networks`` and ``time_epoch`` (seconds), ``log_z`` (exact, Boltzmann prior with
        ``n_latent <= 20``) and ``epoch``. For the Boltzmann prior the KL's value includes the
        exact ``log Z`` when ``n_latent <= 20`` (training: ``log Z`` at the start of the epoch;
        validation: the current one) and omits it for larger priors.
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
    ) -> None:
        _check_choice("likelihood", likelihood, _LIKELIHOODS)
        _check_choice("prior", prior, _PRIORS)
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
        self.device = get_device(device)
        self.seed = int(seed)
        self._check_adata(adata)
        self.var_names = [str(v) for v in adata.var_names]
        self.batch_categories = self._batch_categories(adata)
        self.adata = adata
        self.X, self.B = self._tensors(adata)
        self.x_lgamma = self._lgamma_const(self.X)
        self.library_median = float(self.X.sum(1).median()) if self.X.shape[0] else 1.0
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
        self.history: dict[str, list[float]] = {}
        self.epochs_trained = 0
        self.is_trained = False
        self._last_negative: torch.Tensor | None = None

    # --- data --------------------------------------------------------------------------------
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
        where = (
            "adata.X" if self.config["layer"] is None else f"adata.layers[{self.config['layer']!r}]"
        )
        _check_values(_matrix(adata, self.config["layer"]), self.config["likelihood"], where)

    def _batch_categories(self, adata) -> list[str]:
        key = self.config["batch_key"]
        if key is None:
            return []
        col = adata.obs[key]
        if col.isna().any():
            raise ValueError(f"adata.obs[{key!r}] has missing values; fill them before training.")
        if isinstance(col.dtype, pd.CategoricalDtype):
            return [str(c) for c in col.cat.categories]
        return sorted({str(c) for c in col.unique()})

    def _tensors(self, adata) -> tuple[torch.Tensor, torch.Tensor | None]:
        X = _matrix(adata, self.config["layer"])
        X = X.toarray() if sp.issparse(X) else np.asarray(X)
        Xt = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32), device=self.device)
        if len(self.batch_categories) < 2:
            return Xt, None
        labels = adata.obs[self.config["batch_key"]].astype(str).to_numpy()
        lookup = {c: i for i, c in enumerate(self.batch_categories)}
        unknown = sorted(set(labels) - set(lookup))
        if unknown:
            raise ValueError(
                f"batches {unknown[:5]} were not seen when the model was set up "
                f"(known: {self.batch_categories[:10]}); use the same batch labels."
            )
        codes = torch.as_tensor([lookup[v] for v in labels], device=self.device)
        B = torch.nn.functional.one_hot(codes, len(self.batch_categories)).float()
        return Xt, B

    def _lgamma_const(self, X: torch.Tensor) -> torch.Tensor | None:
        """Per-cell ``Σ_g lgamma(x_g + 1)`` for count likelihoods (a data constant)."""
        if self.config["likelihood"] not in COUNT_LIKELIHOODS:
            return None
        return torch.cat([torch.lgamma(c + 1).sum(-1) for c in X.split(4096)])

    def _data(self, adata=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if adata is None or adata is self.adata:
            return self.X, self.B
        self._check_adata(adata)
        self._check_genes(adata)
        return self._tensors(adata)

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
        max_epochs: int = 100,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        train_size: float = 0.9,
        early_stopping: bool = False,
        patience: int = 10,
        kl_warmup_epochs: int = 0,
        progress: bool = True,
        prior_warmup_epochs: int | None = None,
    ) -> QBMVAE:
        """Train with Adam on random minibatches of tensors kept on the device.

        Parameters
        ----------
        max_epochs
            Passes over the training cells.
        batch_size
            Cells per minibatch.
        lr, weight_decay
            Adam's settings.
        train_size
            Fraction of cells used for training; the rest is the validation split (1.0 for none).
        early_stopping
            Stop when the validation loss has not improved for ``patience`` epochs and restore
            the best weights.
        kl_warmup_epochs
            Linearly increase the KL weight from 0 to 1 over this many epochs. The Boltzmann
            prior's only loss is the KL and Adam's steps do not depend on the gradient's scale,
            so this does not slow the prior's learning; see ``prior_warmup_epochs``.
        progress
            Show a progress bar.
        prior_warmup_epochs
            Boltzmann prior only: hold the prior's ``h`` and ``J`` fixed during the model's first
            this many epochs (counted over all calls, like the KL warm-up) and learn them jointly
            afterwards. A fresh prior has ``h = J = 0``, the uniform distribution over the
            ``2**n_latent`` codes, so the warm-up optimizes the ELBO of a VAE with a fixed
            uniform binary prior. Without it the encoder and a prior learned from the first step
            can fall into posterior collapse: the prior follows the aggregate posterior, the
            KL pulls every cell to the prior's modes, and all cells end on one code. ``None``
            (default) uses a quarter of ``max_epochs``; ``0`` learns the prior from the start
            (the behaviour before this option existed). Ignored for the Gaussian prior.

        Returns
        -------
        QBMVAE
            ``self``; per-epoch loss terms and timings are appended to :attr:`history`.
        """
        if int(max_epochs) < 1 or int(batch_size) < 1:
            raise ValueError("max_epochs and batch_size must be positive integers.")
        if not 0 < train_size <= 1:
            raise ValueError(f"train_size must be in (0, 1]; got {train_size}.")
        if prior_warmup_epochs is None:
            prior_warmup_epochs = int(max_epochs) // 4
        if int(prior_warmup_epochs) < 0:
            raise ValueError(
                f"prior_warmup_epochs must be a non-negative integer or None; got "
                f"{prior_warmup_epochs}."
            )
        n = self.X.shape[0]
        gen = np.random.default_rng(self.seed)
        order = gen.permutation(n)
        n_train = max(1, int(round(train_size * n)))
        if n - n_train < 1:
            n_train = n
        train_idx = torch.as_tensor(order[:n_train], device=self.device)
        val_idx = torch.as_tensor(order[n_train:], device=self.device)
        if early_stopping and len(val_idx) == 0:
            raise ValueError("early_stopping needs a validation split: use train_size < 1.")
        seed_everything(self.seed + self.epochs_trained)
        tgen = torch_generator(self.seed + self.epochs_trained, self.device)
        opt = torch.optim.Adam(self.module.parameters(), lr=lr, weight_decay=weight_decay)
        best, best_state, bad_epochs = math.inf, None, 0
        log_z: float | None = None
        bar = tqdm(range(int(max_epochs)), disable=not progress, desc="training")
        for _ in bar:
            epoch = self.epochs_trained
            kl_weight = min(1.0, (epoch + 1) / kl_warmup_epochs) if kl_warmup_epochs else 1.0
            exact = self.module.prior_name == "boltzmann" and self.config["n_latent"] <= 20
            if exact:  # the KL's value uses log Z from the start of the epoch
                if log_z is None:
                    log_z = self._exact_log_z()
                self.module.prior.log_z_cache = log_z
            learn_prior = epoch >= int(prior_warmup_epochs)
            row = self._train_epoch(train_idx, int(batch_size), opt, tgen, kl_weight, learn_prior)
            if exact:
                log_z = self._exact_log_z()
                self.module.prior.log_z_cache = None
                row["log_z"] = log_z
            if len(val_idx):
                row.update(
                    {
                        f"validation_{k}": v
                        for k, v in self._evaluate(val_idx, kl_weight, log_z).items()
                    }
                )
            row["epoch"] = float(epoch)
            for k, v in row.items():
                self.history.setdefault(k, []).append(v)
            self.epochs_trained += 1
            bar.set_postfix(loss=f"{row['train_loss']:.2f}")
            if early_stopping:
                if row["validation_loss"] < best - 1e-6:
                    best, bad_epochs = row["validation_loss"], 0
                    best_state = copy.deepcopy(self.module.state_dict())
                else:
                    bad_epochs += 1
                    if bad_epochs >= patience:
                        break
        if early_stopping and best_state is not None:
            self.module.load_state_dict(best_state)
        self.is_trained = True
        self.module.eval()
        return self

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def _train_epoch(
        self, idx, batch_size, opt, tgen, kl_weight, learn_prior: bool = True
    ) -> dict[str, float]:
        module = self.module
        module.train()
        boltzmann = module.prior_name == "boltzmann"
        perm = idx[torch.randperm(len(idx), generator=tgen, device=self.device)]
        totals = torch.zeros(3, device=self.device)
        t_sampler = t_net = 0.0
        t_start = time.perf_counter()
        for start in range(0, len(perm), batch_size):
            b_idx = perm[start : start + batch_size]
            xb = self.X[b_idx]
            bb = None if self.B is None else self.B[b_idx]
            negative = None
            t1 = time.perf_counter()
            if boltzmann:
                negative = module.prior.negative_phase()
                self._sync()
                t0, t1 = t1, time.perf_counter()
                t_sampler += t1 - t0
            xl = None if self.x_lgamma is None else self.x_lgamma[b_idx]
            out = module.loss(xb, bb, negative, kl_weight, xl)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            if not learn_prior:
                # Prior warm-up: Adam skips parameters without a gradient (no state, no decay).
                for p in module.prior.parameters():
                    p.grad = None
            opt.step()
            self._sync()
            t_net += time.perf_counter() - t1
            terms = torch.stack([out.loss, out.reconstruction, out.kl]).detach()
            totals += terms * len(b_idx)
        self._last_negative = negative
        loss, recon, kl = (totals / len(perm)).tolist()
        return {
            "train_loss": loss,
            "train_reconstruction": recon,
            "train_kl": kl,
            "time_sampler": t_sampler,
            "time_networks": t_net,
            "time_epoch": time.perf_counter() - t_start,
        }

    @torch.no_grad()
    def _exact_log_z(self) -> float:
        return float(self.module.prior.log_partition())

    @torch.no_grad()
    def _evaluate(
        self, idx, kl_weight: float = 1.0, log_z: float | None = None, chunk: int = 2048
    ) -> dict[str, float]:
        self.module.eval()
        exact = self.module.prior_name != "boltzmann" or self.config["n_latent"] <= 20
        if exact and self.module.prior_name == "boltzmann":
            self.module.prior.log_z_cache = self._exact_log_z() if log_z is None else log_z
        totals = torch.zeros(3, device=self.device)
        for start in range(0, len(idx), chunk):
            b_idx = idx[start : start + chunk]
            bb = None if self.B is None else self.B[b_idx]
            xl = None if self.x_lgamma is None else self.x_lgamma[b_idx]
            # The KL's value uses log_z_cache (exact log Z) when enumerable; the negative samples
            # only shape the gradient, which is not needed here.
            neg = self._last_negative
            if neg is None and self.module.prior_name == "boltzmann":
                neg = self.module.prior.negative_phase()
            out = self.module.loss(self.X[b_idx], bb, neg, kl_weight, xl)
            totals += torch.stack([out.loss, out.reconstruction, out.kl]) * len(b_idx)
        if self.module.prior_name == "boltzmann":
            self.module.prior.log_z_cache = None
        loss, recon, kl = (totals / len(idx)).tolist()
        return {"loss": loss, "reconstruction": recon, "kl": kl}

    # --- outputs -----------------------------------------------------------------------------
    @torch.no_grad()
    def get_latent_representation(self, adata=None, batch_size: int = 4096) -> np.ndarray:
        """Deterministic latent coordinates of each cell, ``(n_cells, n_latent)``.

        For the Boltzmann prior this is the posterior probability ``q(z_i = 1 | x)`` of each bit
        (the mean of the discrete latent the prior is defined on; continuous, so neighbourhood
        graphs and UMAP work on it). For the Gaussian prior it is the posterior mean.
        """
        X, B = self._data(adata)
        self.module.eval()
        out = []
        for start in range(0, X.shape[0], batch_size):
            bb = None if B is None else B[start : start + batch_size]
            inf = self.module.inference(X[start : start + batch_size], bb, sample=False)
            out.append(inf["z"].cpu())
        return torch.cat(out).numpy()

    def _eval_batches(self, adata, fn, batch_size: int) -> np.ndarray:
        X, B = self._data(adata)
        self.module.eval()
        torch.manual_seed(self.seed)
        vals = []
        for start in range(0, X.shape[0], batch_size):
            bb = None if B is None else B[start : start + batch_size]
            vals.append(fn(X[start : start + batch_size], bb).cpu())
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
    def save(self, path: str | os.PathLike, overwrite: bool = True) -> None:
        """Save weights and plain-Python settings with ``torch.save`` (loadable with
        ``weights_only=True``). The sampler object is not saved; pass it again to :meth:`load`."""
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
        torch.save(
            {
                "format_version": _FORMAT_VERSION,
                "config": dict(self.config),
                "state_dict": {k: v.cpu() for k, v in self.module.state_dict().items()},
                "var_names": list(self.var_names),
                "batch_categories": list(self.batch_categories),
                "history": {k: list(v) for k, v in self.history.items()},
                "epochs_trained": self.epochs_trained,
            },
            path,
        )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        adata,
        sampler: SpinSampler | SamplerName | None = None,
        device: str = "auto",
    ) -> QBMVAE:
        """Load a model saved with :meth:`save` onto ``adata`` (same genes, same order).

        Parameters
        ----------
        path
            File written by :meth:`save`.
        adata
            AnnData with the training genes in the training order (and the same layer and
            batch column).
        sampler
            Negative-phase sampler for further training. Default: the saved sampler name, or
            persistent Gibbs chains if a custom sampler object was used.
        device
            ``"auto"``, ``"cpu"`` or ``"cuda"``.
        """
        state = torch.load(path, map_location="cpu", weights_only=True)
        config = dict(state["config"])
        names = [str(v) for v in adata.var_names]
        if names != list(state["var_names"]):
            missing = [g for g in state["var_names"] if g not in set(names)][:5]
            raise ValueError(
                f"adata's genes do not match the saved model's ({len(names)} vs "
                f"{len(state['var_names'])} features; first missing: {missing}); subset and "
                "order adata as in training, e.g. adata[:, saved_var_names]."
            )
        saved_sampler = config.pop("sampler")
        if sampler is None and saved_sampler not in (None, "custom"):
            sampler = saved_sampler
        model = cls.__new__(cls)
        model.config = {**config, "sampler": saved_sampler}
        model.device = get_device(device)
        model.seed = int(config["seed"])
        model._check_adata(adata)
        model.var_names = list(state["var_names"])
        model.batch_categories = list(state["batch_categories"])
        model.adata = adata
        model.X, model.B = model._tensors(adata)
        model.x_lgamma = model._lgamma_const(model.X)
        model.library_median = float(model.X.sum(1).median())
        model.sampler = (
            make_sampler(sampler, model.seed) if config["prior"] == "boltzmann" else None
        )
        model.module = VAEModule(
            n_input=adata.n_vars,
            likelihood=config["likelihood"],
            prior=config["prior"],
            sampler=model.sampler,
            n_batch=len(model.batch_categories),
            n_latent=config["n_latent"],
            n_hidden=config["n_hidden"],
            n_layers=config["n_layers"],
            dropout=config["dropout"],
            relaxation=config["relaxation"],
            relaxation_beta=config["relaxation_beta"],
            encode_covariates=config["encode_covariates"],
            num_negative=config["num_negative"],
        )
        model.module.load_state_dict(state["state_dict"])
        model.module.to(model.device).eval()
        model.history = {k: list(v) for k, v in state["history"].items()}
        model.epochs_trained = int(state["epochs_trained"])
        model.is_trained = model.epochs_trained > 0
        model._last_negative = None
        return model

    def __repr__(self) -> str:
        c = self.config
        return (
            f"QBMVAE(prior={c['prior']!r}, likelihood={c['likelihood']!r}, "
            f"n_latent={c['n_latent']}, cells={self.X.shape[0]}, features={self.X.shape[1]}, "
            f"batches={len(self.batch_categories)}, epochs_trained={self.epochs_trained})"
        )
