"""Boltzmann machines and restricted Boltzmann machines (RBMs) in torch.

Two energy-based models over binary data ``x ∈ {0, 1}^n``, ``p(x) = exp(-E(x)) / Z``:

- :class:`RBM`: visible units ``v ∈ {0,1}^V`` and hidden units ``h ∈ {0,1}^H`` with the usual
  energy ``E(v, h) = -a·v - b·h - vᵀWh`` (the convention of scikit-learn's ``BernoulliRBM``), and
  the free energy ``F(v) = -a·v - Σ_j softplus(b_j + (vW)_j)`` with ``p(v) = exp(-F(v)) / Z``;
- :class:`BoltzmannMachine`: a fully connected, fully visible machine whose parameters are an Ising
  model ``(h, J)`` in the convention of :mod:`qbm_lite.ising`: a data vector ``x`` is the spin
  state ``s = 2x - 1`` with energy ``E(s) = h·s + Σ_{i<j} J_ij s_i s_j`` (the form of the QBM-VAE
  prior).

Both train by maximum likelihood with ``fit``: the gradient of the average log-likelihood is a
*positive phase* (statistics of the data) minus a *negative phase* (the same statistics under the
model), and the negative phase comes from contrastive divergence (``method="cd"``), persistent
chains (``method="pcd"``) or any :class:`~qbm_lite.samplers.base.SpinSampler` (``sampler=...``)
that receives the model as an Ising problem from ``to_ising()``.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from qbm_lite.ais import AISResult, ais_ising, ais_rbm
from qbm_lite.config import torch_generator
from qbm_lite.exact import MAX_EXACT_SPINS, ExactBoltzmann, check_enumerable, index_to_spins
from qbm_lite.ising import IsingModel
from qbm_lite.samplers.base import SpinSampler
from qbm_lite.samplers.gibbs import gibbs_sweeps

__all__ = ["BoltzmannMachine", "RBM", "check_binary", "gradient_bias_variance"]

Method = Literal["cd", "pcd"]
Monitor = Literal["auto", "exact", "pll", "none"]
LRSchedule = Literal["constant", "linear", "cosine"]
OptimizerName = Literal["sgd", "adam"]
PartitionMethod = Literal["exact", "ais"]
Reduction = Literal["mean", "none"]

#: Largest number of states summed by the "exact" monitor at every epoch (log2).
_MONITOR_EXACT_LIMIT = 20
#: Samples used by the per-epoch monitor (a fixed subset, to keep epochs cheap).
_MONITOR_SAMPLES = 1000
_CHUNK = 1 << 14


def check_binary(X: Any, n: int, name: str = "X") -> torch.Tensor:
    """Check that ``X`` is an ``(m, n)`` array of 0/1 values and return it as a float tensor.

    Raises
    ------
    TypeError
        If ``X`` is not a numpy array or torch tensor (or array-like).
    ValueError
        If the shape is wrong or a value is not exactly 0 or 1.
    """
    if isinstance(X, torch.Tensor):
        t = X.detach()
    elif hasattr(X, "toarray"):
        raise TypeError(f"{name} is a sparse matrix; pass a dense array (X.toarray()).")
    else:
        try:
            arr = np.asarray(X)
        except Exception as err:  # pragma: no cover - exotic inputs
            raise TypeError(
                f"{name} must be a numpy array or torch tensor; got {type(X)}."
            ) from err
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers 0/1; got dtype {arr.dtype}.")
        t = torch.as_tensor(arr)
    if t.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (samples, {n}); got shape {tuple(t.shape)}. "
            "For a single sample use X[None, :]."
        )
    if t.shape[1] != n:
        raise ValueError(f"{name} has {t.shape[1]} columns but the model has {n} visible units.")
    if t.shape[0] == 0:
        raise ValueError(f"{name} has no rows; pass at least one sample.")
    t = t.to(torch.float64) if not t.is_floating_point() else t
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values; it must hold 0/1 values only.")
    if not ((t == 0) | (t == 1)).all():
        hint = (
            "it looks like ±1 spins: convert with x = (s + 1) / 2"
            if ((t == -1) | (t == 1)).all()
            else "binarize it first, e.g. (X > 0.5).astype(np.float32)"
        )
        raise ValueError(f"{name} must be binary (0/1 values only); {hint}.")
    return t


def gradient_bias_variance(
    estimates: list[dict[str, torch.Tensor]], exact: dict[str, torch.Tensor]
) -> dict[str, float]:
    """Bias and spread of repeated gradient estimates against the exact gradient.

    All parameters are flattened into one vector. With ``R`` estimates ``ĝ_r`` (``R >= 2``) and
    the exact ``g``: ``std = sqrt(tr Cov(ĝ))`` (the typical distance of one estimate from their
    mean), ``bias = sqrt(max(0, |mean(ĝ) - g|² - tr Cov(ĝ) / R))`` (the distance of their
    expectation from ``g``, with the noise of the finite mean removed), ``rmse`` the root mean
    squared distance of one estimate from ``g``, and ``norm = |g|`` for scale.
    """
    if len(estimates) < 2:
        raise ValueError(
            f"need at least 2 estimates to separate bias from noise; got {len(estimates)}."
        )
    names = sorted(exact)
    g = torch.cat([exact[n].detach().double().flatten() for n in names])
    G = torch.stack(
        [torch.cat([e[n].detach().double().flatten() for n in names]) for e in estimates]
    )
    R = G.shape[0]
    mean = G.mean(0)
    var = float(((G - mean) ** 2).sum(1).sum() / (R - 1))
    bias2 = float(((mean - g) ** 2).sum()) - var / R
    return {
        "bias": math.sqrt(max(bias2, 0.0)),
        "std": math.sqrt(var),
        "rmse": float(((G - g) ** 2).sum(1).mean().sqrt()),
        "norm": float(g.norm()),
    }


class _NoBar:
    """Stands in for a tqdm bar when progress is off (and keeps tqdm unimported)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int | None, desc: str, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)


def _schedule_factor(kind: LRSchedule, fraction: float) -> float:
    fraction = min(max(fraction, 0.0), 1.0)
    if kind == "constant":
        return 1.0
    if kind == "linear":
        return 1.0 - fraction
    return 0.5 * (1.0 + math.cos(math.pi * fraction))


class _Optimizer:
    """SGD with momentum, or Adam, on gradients that are computed by hand (no autograd).

    Written out instead of ``torch.optim`` because the update is four lines and importing
    ``torch.optim`` costs seconds on first use.
    """

    def __init__(
        self,
        params: dict[str, nn.Parameter],
        kind: OptimizerName,
        lr: float,
        momentum: float,
        weight_decay: dict[str, float],
    ) -> None:
        self.params, self.kind, self.lr = params, kind, lr
        self.momentum, self.weight_decay = momentum, weight_decay
        self.m = {n: torch.zeros_like(p) for n, p in params.items()}
        self.v = {n: torch.zeros_like(p) for n, p in params.items()} if kind == "adam" else {}
        self.t = 0

    @torch.no_grad()
    def step(self, grads: dict[str, torch.Tensor]) -> None:
        """Apply one update with the gradients ``grads`` (of the loss, by parameter name)."""
        self.t += 1
        for name, p in self.params.items():
            g = grads[name].to(p.dtype)
            if self.weight_decay[name]:
                g = g + self.weight_decay[name] * p
            if self.kind == "sgd":
                self.m[name].mul_(self.momentum).add_(g)
                p.sub_(self.lr * self.m[name])
            else:
                b1, b2, eps = 0.9, 0.999, 1e-8
                self.m[name].mul_(b1).add_(g, alpha=1 - b1)
                self.v[name].mul_(b2).addcmul_(g, g, value=1 - b2)
                m_hat = self.m[name] / (1 - b1**self.t)
                v_hat = self.v[name] / (1 - b2**self.t)
                p.sub_(self.lr * m_hat / (v_hat.sqrt() + eps))


class _EnergyModel(nn.Module):
    """Training loop, likelihoods and history shared by the RBM and the Boltzmann machine."""

    n_visible: int

    def __init__(self) -> None:
        super().__init__()
        self.history: list[dict[str, float]] = []
        self.chains: torch.Tensor | None = None  # persistent (PCD) chains, visible units
        self._base_rates: torch.Tensor | None = None

    # --- to be provided by subclasses ---------------------------------------------------------
    def _unnormalized_log_prob(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _statistics(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def _gibbs(self, x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:  # noqa
        raise NotImplementedError  # pragma: no cover

    def _from_spins(self, spins: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _init_from_data(self, X: torch.Tensor) -> None:  # pragma: no cover
        raise NotImplementedError

    def _exact_cost_log2(self) -> int:  # pragma: no cover
        raise NotImplementedError

    def pseudo_log_likelihood(self, X: Any) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def to_ising(self) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def model_statistics(self) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def log_partition(self, method: PartitionMethod = "exact", **ais_kwargs: Any) -> float:
        raise NotImplementedError  # pragma: no cover

    # --- shared -------------------------------------------------------------------------------
    @property
    def _param(self) -> torch.Tensor:
        return next(self.parameters())

    def _as_data(self, X: Any, name: str = "X") -> torch.Tensor:
        p = self._param
        return check_binary(X, self.n_visible, name).to(device=p.device, dtype=p.dtype)

    def log_likelihood(
        self,
        X: Any,
        *,
        log_z: float | None = None,
        method: PartitionMethod = "exact",
        reduction: Reduction = "mean",
        **ais_kwargs: Any,
    ) -> float | np.ndarray:
        """Log-likelihood ``log p(x)`` of binary data ``X`` (average per sample by default).

        Parameters
        ----------
        X
            Data, shape ``(m, n_visible)``, 0/1 values.
        log_z
            A log partition function computed before (skips recomputing it).
        method
            How to compute ``log Z`` when ``log_z`` is not given: ``"exact"`` or ``"ais"``.
        reduction
            ``"mean"`` for the average (a float) or ``"none"`` for one value per sample.
        **ais_kwargs
            Passed to :meth:`log_partition` for ``method="ais"``.
        """
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none'; got {reduction!r}.")
        x = self._as_data(X).double()
        if log_z is None:
            log_z = self.log_partition(method, **ais_kwargs)
        with torch.no_grad():
            lp = self._unnormalized_log_prob(x).cpu().numpy() - log_z
        return float(lp.mean()) if reduction == "mean" else lp

    def statistics(self, X: Any) -> dict[str, torch.Tensor]:
        """Sufficient statistics of the data ``X`` averaged over its rows, by parameter name.

        The gradient of the average log-likelihood is ``statistics(X) - model_statistics()``
        (positive minus negative phase). A sampled negative phase replaces
        ``model_statistics()`` by ``statistics(samples)`` (for an RBM, the hidden units of the
        samples are summed out analytically: only their visible part is used).
        """
        with torch.no_grad():
            return self._statistics(self._as_data(X))

    def exact_gradient(self, X: Any) -> dict[str, torch.Tensor]:
        """Exact gradient of the average log-likelihood of ``X``, by parameter name.

        ``statistics(X) - model_statistics()``, where the model statistics are exact sums over
        all states (see :meth:`model_statistics`): the reference against which sampled
        gradients (CD, PCD, any sampler) are measured.
        """
        pos, neg = self.statistics(X), self.model_statistics()
        return {n: pos[n] - neg[n] for n in pos}

    @property
    def history_df(self):
        """The training history as a pandas DataFrame (one row per epoch)."""
        import pandas as pd

        return pd.DataFrame(self.history)

    def _negative_samples(
        self,
        batch: torch.Tensor,
        method: Method,
        k: int,
        num_chains: int,
        sampler: SpinSampler | None,
        gen: torch.Generator,
    ) -> torch.Tensor:
        if sampler is not None:
            h, J = self.to_ising()
            spins = sampler.sample_spins(h, J, num_chains, beta=1.0)
            if spins.shape != (num_chains, h.shape[0]):
                raise ValueError(
                    f"the sampler returned shape {tuple(spins.shape)}; expected "
                    f"({num_chains}, {h.shape[0]}). Check its sample_spins implementation."
                )
            return self._from_spins(spins.to(device=batch.device, dtype=batch.dtype))
        if method == "cd":
            return self._gibbs(batch, k, gen)
        if self.chains is None or self.chains.shape != (num_chains, self.n_visible):
            self.chains = (
                torch.rand((num_chains, self.n_visible), generator=gen, device=batch.device) < 0.5
            ).to(batch.dtype)
        self.chains = self._gibbs(self.chains.to(batch.dtype), k, gen)
        return self.chains

    def _monitor(self, kind: Monitor, X: torch.Tensor, X_val: torch.Tensor | None) -> dict:
        if kind == "none":
            return {}
        out: dict[str, float] = {}
        with torch.no_grad():
            if kind == "exact":
                log_z = self.log_partition("exact")
                out["train_ll"] = self.log_likelihood(X, log_z=log_z)
                if X_val is not None:
                    out["val_ll"] = self.log_likelihood(X_val, log_z=log_z)
            else:
                out["train_pll"] = float(self.pseudo_log_likelihood(X).mean())
                if X_val is not None:
                    out["val_pll"] = float(self.pseudo_log_likelihood(X_val).mean())
        return out

    def fit(
        self,
        X: Any,
        *,
        epochs: int | None = 50,
        batch_size: int = 64,
        lr: float = 0.02,
        method: Method = "pcd",
        k: int = 1,
        sampler: SpinSampler | None = None,
        num_chains: int | None = None,
        optimizer: OptimizerName = "adam",
        momentum: float = 0.5,
        weight_decay: float = 0.0,
        lr_schedule: LRSchedule = "linear",
        monitor: Monitor = "auto",
        X_val: Any = None,
        monitor_every: int | None = None,
        max_time: float | None = None,
        init_from_data: bool = True,
        seed: int | None = 0,
        progress: bool = True,
    ) -> _EnergyModel:
        """Train by stochastic maximum likelihood; returns ``self``.

        Parameters
        ----------
        X
            Training data ``(m, n_visible)`` with 0/1 values.
        epochs
            Passes over the data (None: train until ``max_time``). The defaults (50 epochs of
            PCD-1 with Adam at ``lr=0.02`` decaying linearly to 0, monitored once at the end)
            train an RBM(64, 16) on the 8x8 digits in about a second and beat scikit-learn's
            ``BernoulliRBM`` at its best learning rate given the same time
            (``benchmarks/rbm_bench.py``).
        batch_size
            Minibatch size of the positive phase.
        lr
            Initial learning rate.
        method
            ``"cd"`` (CD-k: chains start at the minibatch) or ``"pcd"`` (persistent chains), both
            with the model's own Gibbs sampler; ignored when ``sampler`` is given.
        k
            Gibbs steps per update for CD/PCD.
        sampler
            Any :class:`~qbm_lite.samplers.base.SpinSampler` (Gibbs, annealing, the simulated CIM):
            the negative phase is drawn from it at ``beta = 1`` on the problem ``to_ising()``.
        num_chains
            Number of negative-phase samples per update (default: ``batch_size``; CD always uses
            one chain per data point).
        optimizer
            ``"sgd"`` (with ``momentum``) or ``"adam"``.
        momentum
            SGD momentum.
        weight_decay
            L2 penalty on the weights/couplings (not on the biases/fields).
        lr_schedule
            ``"constant"``, ``"linear"`` or ``"cosine"`` decay over the run (over epochs, or over
            ``max_time`` when that is reached first).
        monitor
            Recorded each epoch in :attr:`history`: ``"exact"`` log-likelihood (small models),
            ``"pll"`` pseudo-log-likelihood, ``"auto"`` (exact when cheap, else PLL) or ``"none"``.
            Computed on at most 1000 training samples, and on ``X_val`` if given; its cost is not
            counted in the ``time`` column (cumulative training seconds over all ``fit`` calls).
        X_val
            Optional validation data for the monitor.
        monitor_every
            Compute the monitor every this many epochs and after the last one (default
            ``None``: only after the last one, which keeps monitoring cheap).
        max_time
            Stop after this many seconds of training (monitoring excluded).
        init_from_data
            On the first call, set the visible biases/fields to the data's log-odds (Hinton, 2012).
        seed
            Seed for minibatch order and the model's own Gibbs chains.
        progress
            Show a tqdm progress bar over epochs.

        Raises
        ------
        ValueError
            For invalid options or data (the message names the argument).
        FloatingPointError
            When training diverges: the negative-phase samples, a gradient or (after a step) a
            parameter is NaN or infinite. Training stops at the first such update, the
            parameters keep (or are restored to) their last finite values, and the message says
            what diverged and what to try (a smaller ``lr``, Adam, weight decay).
        """
        if epochs is None and max_time is None:
            raise ValueError("give epochs, max_time or both; with neither, training never stops.")
        if epochs is not None and int(epochs) < 1:
            raise ValueError(f"epochs must be a positive integer; got {epochs}.")
        if method not in ("cd", "pcd"):
            raise ValueError(f"method must be 'cd' or 'pcd'; got {method!r}.")
        if monitor not in ("auto", "exact", "pll", "none"):
            raise ValueError(f"monitor must be 'auto', 'exact', 'pll' or 'none'; got {monitor!r}.")
        if lr_schedule not in ("constant", "linear", "cosine"):
            raise ValueError(
                f"lr_schedule must be 'constant', 'linear' or 'cosine'; got {lr_schedule!r}."
            )
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam'; got {optimizer!r}.")
        if sampler is not None and not isinstance(sampler, SpinSampler):
            raise TypeError(
                f"sampler must implement sample_spins(h, J, num_samples, *, beta) (a SpinSampler); "
                f"got {type(sampler).__name__}. Wrap a dimod sampler in DimodSamplerAdapter."
            )
        every = None if monitor_every is None else int(monitor_every)
        if int(batch_size) < 1 or int(k) < 1 or (every is not None and every < 1):
            raise ValueError("batch_size, k and monitor_every must be positive integers.")
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive, finite learning rate; got {lr}.")
        data = self._as_data(X)
        val = None if X_val is None else self._as_data(X_val, "X_val")
        if monitor == "auto":
            monitor = "exact" if self._exact_cost_log2() <= _MONITOR_EXACT_LIMIT else "pll"
        gen = torch_generator(seed, data.device)
        if init_from_data and not self.history:
            self._init_from_data(data)
        self._base_rates = data.mean(0).detach().clone()
        num_chains = int(batch_size if num_chains is None else num_chains)
        if num_chains < 1:
            raise ValueError(f"num_chains must be a positive integer; got {num_chains}.")
        mon_idx = torch.randperm(data.shape[0], generator=gen, device=data.device)[
            :_MONITOR_SAMPLES
        ]
        mon_data = data[mon_idx]
        opt = self._optimizer(optimizer, lr, momentum, weight_decay)
        n_batches = math.ceil(data.shape[0] / int(batch_size))
        total_steps = None if epochs is None else int(epochs) * n_batches
        epoch0 = len(self.history)
        time0 = self.history[-1]["time"] if self.history else 0.0  # cumulative over fit calls
        elapsed, step, epoch = 0.0, 0, 0
        bar = _progress_bar(epochs, type(self).__name__, progress)
        stop = False
        while not stop:
            t0 = time.perf_counter()
            order = torch.randperm(data.shape[0], generator=gen, device=data.device)
            for start in range(0, data.shape[0], int(batch_size)):
                frac = 0.0 if total_steps is None else step / total_steps
                if max_time is not None:
                    frac = max(frac, (elapsed + time.perf_counter() - t0) / max_time)
                opt.lr = lr * _schedule_factor(lr_schedule, frac)
                batch = data[order[start : start + int(batch_size)]]
                chains = batch.shape[0] if (sampler is None and method == "cd") else num_chains
                with torch.no_grad():
                    neg = self._negative_samples(batch, method, int(k), chains, sampler, gen)
                    pos_stats, neg_stats = self._statistics(batch), self._statistics(neg)
                    # gradient of the negative average log-likelihood: negative - positive phase
                    grads = {n: neg_stats[n] - pos_stats[n] for n in pos_stats}
                    where = f"epoch {epoch0 + epoch + 1}, update {step + 1}"
                    self._check_finite_update(neg, grads, where, lr, sampler)
                    backup = {n: p.detach().clone() for n, p in self.named_parameters()}
                    opt.step(grads)
                    self._after_step()
                    self._check_finite_parameters(backup, where, lr)
                step += 1
                if max_time is not None and elapsed + time.perf_counter() - t0 >= max_time:
                    stop = True
                    break
            elapsed += time.perf_counter() - t0
            epoch += 1
            record = {"epoch": epoch0 + epoch, "time": time0 + elapsed, "lr": opt.lr}
            last = stop or (epochs is not None and epoch >= int(epochs))
            if last or (every is not None and epoch % every == 0):
                record.update(self._monitor(monitor, mon_data, val))
            self.history.append(record)
            bar.update(1)
            bar.set_postfix({k_: round(v, 3) for k_, v in record.items() if k_ not in ("epoch",)})
            if epochs is not None and epoch >= int(epochs):
                stop = True
        bar.close()
        return self

    def _check_finite_update(
        self,
        negative: torch.Tensor,
        grads: dict[str, torch.Tensor],
        where: str,
        lr: float,
        sampler: SpinSampler | None,
    ) -> None:
        """Raise before a step whose negative samples or gradients are not finite."""
        if not torch.isfinite(negative).all():
            source = type(sampler).__name__ if sampler is not None else "the model's Gibbs chains"
            raise FloatingPointError(
                f"{type(self).__name__}.fit stopped at {where}: the negative-phase samples from "
                f"{source} contain NaN or infinite values. The parameters keep their last finite "
                "values. Check that the sampler returns ±1 spins for a finite problem."
            )
        bad = [n for n, g in grads.items() if not torch.isfinite(g).all()]
        if bad:
            raise FloatingPointError(
                f"{type(self).__name__}.fit stopped at {where}: the gradient of {', '.join(bad)} "
                f"is not finite (NaN or inf). The parameters keep their last finite values. "
                f"Try a smaller lr (now {lr:g}), optimizer='adam', or weight_decay > 0."
            )

    def _check_finite_parameters(
        self, backup: dict[str, torch.Tensor], where: str, lr: float
    ) -> None:
        """After a step: restore ``backup`` and raise if a parameter became NaN or infinite."""
        bad = [n for n, p in self.named_parameters() if not torch.isfinite(p).all()]
        if not bad:
            return
        with torch.no_grad():
            for n, p in self.named_parameters():
                p.copy_(backup[n])
        raise FloatingPointError(
            f"{type(self).__name__}.fit diverged at {where}: {', '.join(bad)} became NaN or "
            f"infinite after the optimizer step. The parameters were restored to their last "
            f"finite values. Try a smaller lr (now {lr:g}), optimizer='adam' (whose steps are "
            "bounded by lr), or weight_decay > 0."
        )

    def _optimizer(
        self, name: OptimizerName, lr: float, momentum: float, weight_decay: float
    ) -> _Optimizer:
        decay = {
            n: (weight_decay if n in self._decayed_names else 0.0)
            for n, _ in self.named_parameters()
        }
        return _Optimizer(dict(self.named_parameters()), name, lr, momentum, decay)

    _decayed_names: tuple[str, ...] = ()

    def _after_step(self) -> None:
        """Hook run after every optimizer step (e.g. to keep couplings symmetric)."""


class RBM(_EnergyModel):
    """A restricted Boltzmann machine with binary visible and hidden units.

    Energy ``E(v, h) = -a·v - b·h - vᵀWh`` over ``v ∈ {0,1}^V``, ``h ∈ {0,1}^H``; parameters
    ``W`` ``(V, H)``, ``visible_bias`` ``a`` and ``hidden_bias`` ``b``.

    Parameters
    ----------
    n_visible
        Number of visible units ``V``.
    n_hidden
        Number of hidden units ``H``.
    init_std
        Standard deviation of the initial weights (Hinton, 2012: 0.01).
    seed
        Seed of the initial weights.
    """

    _decayed_names = ("W",)

    def __init__(
        self, n_visible: int, n_hidden: int, *, init_std: float = 0.01, seed: int | None = 0
    ) -> None:
        super().__init__()
        for name, val in (("n_visible", n_visible), ("n_hidden", n_hidden)):
            if not isinstance(val, int | np.integer) or val < 1:
                raise ValueError(f"{name} must be a positive integer; got {val!r}.")
        self.n_visible, self.n_hidden = int(n_visible), int(n_hidden)
        gen = torch_generator(seed)
        self.W = nn.Parameter(init_std * torch.randn(self.n_visible, self.n_hidden, generator=gen))
        self.visible_bias = nn.Parameter(torch.zeros(self.n_visible))
        self.hidden_bias = nn.Parameter(torch.zeros(self.n_hidden))

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}"

    # --- energies and conditionals ------------------------------------------------------------
    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Joint energy ``E(v, h)`` of batches ``v`` ``(m, V)`` and ``h`` ``(m, H)``."""
        return -(v @ self.visible_bias) - (h @ self.hidden_bias) - ((v @ self.W) * h).sum(-1)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """Free energy ``F(v) = -log Σ_h exp(-E(v, h))`` of a batch ``v`` ``(m, V)``."""
        return -(v @ self.visible_bias) - F.softplus(v @ self.W + self.hidden_bias).sum(-1)

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """``p(h_j = 1 | v) = sigmoid(b_j + (vW)_j)``."""
        return torch.sigmoid(v @ self.W + self.hidden_bias)

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        """``p(v_i = 1 | h) = sigmoid(a_i + (W h)_i)``."""
        return torch.sigmoid(h @ self.W.T + self.visible_bias)

    def _unnormalized_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        W, a, b = self.W.double(), self.visible_bias.double(), self.hidden_bias.double()
        x = x.double()
        return x @ a + F.softplus(x @ W + b).sum(-1)

    def _exact_cost_log2(self) -> int:
        return min(self.n_visible, self.n_hidden)

    def _gibbs(self, v: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
        for _ in range(k):
            h = torch.bernoulli(self.hidden_probs(v), generator=gen)
            v = torch.bernoulli(self.visible_probs(h), generator=gen)
        return v

    def _statistics(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        ph = self.hidden_probs(v)  # Rao-Blackwellized: the hidden units are summed out
        return {"W": v.T @ ph / v.shape[0], "visible_bias": v.mean(0), "hidden_bias": ph.mean(0)}

    def _from_spins(self, spins: torch.Tensor) -> torch.Tensor:
        return (spins[:, : self.n_visible] + 1.0) / 2.0

    def _init_from_data(self, X: torch.Tensor) -> None:
        p = X.mean(0).clamp(1e-3, 1 - 1e-3)
        with torch.no_grad():
            self.visible_bias.copy_(torch.log(p / (1 - p)))

    # --- Ising conversion ---------------------------------------------------------------------
    def to_ising(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The RBM as an Ising problem ``(h, J)`` over ``V + H`` spins (visible units first).

        With ``v = (s_v + 1) / 2`` and ``h = (s_h + 1) / 2``, ``E(v, h) = offset + h_isingᵀs +
        Σ_{i<j} J_ij s_i s_j`` where ``J_vh = -W/4``, ``h_v = -a/2 - W·1/4``,
        ``h_h = -b/2 - Wᵀ·1/4`` and ``offset = -Σa/2 - Σb/2 - ΣW/4`` (see :meth:`to_ising_model`).
        Returned detached, on the parameters' device and dtype.
        """
        W, a, b = self.W.detach(), self.visible_bias.detach(), self.hidden_bias.detach()
        V, H = self.n_visible, self.n_hidden
        h = torch.cat([-a / 2 - W.sum(1) / 4, -b / 2 - W.sum(0) / 4])
        J = torch.zeros(V + H, V + H, dtype=W.dtype, device=W.device)
        J[:V, V:] = -W / 4
        J[V:, :V] = -W.T / 4
        return h, J

    def to_ising_model(self) -> IsingModel:
        """The RBM as an :class:`~qbm_lite.ising.IsingModel` whose energies equal ``E(v, h)``."""
        h, J = self.to_ising()
        offset = -(
            self.visible_bias.sum() / 2 + self.hidden_bias.sum() / 2 + self.W.sum() / 4
        ).item()
        return IsingModel(h.double().cpu().numpy(), J.double().cpu().numpy(), offset)

    @classmethod
    def from_ising(cls, h: torch.Tensor, J: torch.Tensor, n_visible: int) -> RBM:
        """Inverse of :meth:`to_ising`: the RBM whose first ``n_visible`` spins are visible.

        ``J`` must be bipartite (no visible-visible or hidden-hidden couplings). The offset is
        not needed: it does not change the distribution.
        """
        h, J = torch.as_tensor(h), torch.as_tensor(J)
        n = h.shape[0]
        if J.shape != (n, n) or not 0 < n_visible < n:
            raise ValueError(
                f"need h (n,), J (n, n) and 0 < n_visible < n; got h {tuple(h.shape)}, "
                f"J {tuple(J.shape)}, n_visible={n_visible}."
            )
        V = int(n_visible)
        scale = max(1.0, float(J.abs().max()))
        if J[:V, :V].abs().max() > 1e-9 * scale or J[V:, V:].abs().max() > 1e-9 * scale:
            raise ValueError(
                "J couples two visible or two hidden units; an RBM needs a bipartite J "
                "(use BoltzmannMachine.from_ising for a general model)."
            )
        W = -4.0 * J[:V, V:]
        model = cls(V, n - V)
        with torch.no_grad():
            model.W.copy_(W)
            model.visible_bias.copy_(-2.0 * h[:V] - W.sum(1) / 2)
            model.hidden_bias.copy_(-2.0 * h[V:] - W.sum(0) / 2)
        return model

    # --- partition function, likelihoods ------------------------------------------------------
    def log_partition(self, method: PartitionMethod = "exact", **ais_kwargs: Any) -> float:
        """``log Z``: ``"exact"`` sums over the smaller layer (at most 2**24 states); ``"ais"``
        runs :meth:`ais` (keyword arguments are passed on) and returns its estimate."""
        if method == "ais":
            return self.ais(**ais_kwargs).log_z
        if method != "exact":
            raise ValueError(f"method must be 'exact' or 'ais'; got {method!r}.")
        small = min(self.n_visible, self.n_hidden)
        try:
            check_enumerable(small, MAX_EXACT_SPINS)
        except ValueError as err:
            raise ValueError(
                f"exact log Z of an RBM sums over its smaller layer ({small} units, 2**{small} "
                f"states); the limit is {MAX_EXACT_SPINS}. Use log_partition(method='ais')."
            ) from err
        W, a, b = (
            self.W.detach().double(),
            self.visible_bias.detach().double(),
            (self.hidden_bias.detach().double()),
        )
        if self.n_hidden > self.n_visible:  # sum over v instead: swap the roles of the layers
            W, a, b = W.T, b, a
        parts = []
        with torch.no_grad():
            for start in range(0, 2**small, _CHUNK):
                idx = np.arange(start, min(start + _CHUNK, 2**small))
                hs = torch.as_tensor((index_to_spins(idx, small) + 1) // 2, dtype=W.dtype)
                hs = hs.to(W.device)
                parts.append(torch.logsumexp(hs @ b + F.softplus(hs @ W.T + a).sum(-1), 0))
        return float(torch.logsumexp(torch.stack(parts), 0))

    def model_statistics(self) -> dict[str, torch.Tensor]:
        """Exact model expectations ``E_p[v hᵀ]``, ``E_p[v]``, ``E_p[h]`` (the negative phase).

        Summed over the ``2**min(V, H)`` states of the smaller layer with the other layer's
        conditional means, as :meth:`log_partition` does (at most 2**24 states; 2**16 takes a
        fraction of a second). Keys and shapes as :meth:`statistics`; float64 computation,
        returned in the parameters' dtype.
        """
        small = min(self.n_visible, self.n_hidden)
        try:
            check_enumerable(small, MAX_EXACT_SPINS)
        except ValueError as err:
            raise ValueError(
                f"exact model statistics of an RBM sum over its smaller layer ({small} units); "
                f"the limit is {MAX_EXACT_SPINS}. Estimate them from samples instead."
            ) from err
        W, a, b = (p.detach().double() for p in (self.W, self.visible_bias, self.hidden_bias))
        swap = self.n_hidden > self.n_visible  # enumerate v instead of h
        if swap:
            W, a, b = W.T, b, a
        # enumerate the small layer u (bias b) with the other layer x (bias a) summed out
        chunks = [np.arange(i, min(i + _CHUNK, 2**small)) for i in range(0, 2**small, _CHUNK)]

        def layer(idx: np.ndarray) -> torch.Tensor:
            u = torch.as_tensor((index_to_spins(idx, small) + 1) // 2, dtype=W.dtype)
            return u.to(W.device)

        with torch.no_grad():
            log_w = torch.cat(
                [layer(c) @ b + F.softplus(layer(c) @ W.T + a).sum(-1) for c in chunks]
            )
            p = torch.softmax(log_w, 0)
            xu = torch.zeros_like(W)
            x_mean, u_mean = torch.zeros_like(a), torch.zeros_like(b)
            for c in chunks:
                u, pc = layer(c), p[c[0] : c[-1] + 1]
                x_given_u = torch.sigmoid(u @ W.T + a)  # (chunk, other layer)
                xu += (x_given_u * pc[:, None]).T @ u
                x_mean += pc @ x_given_u
                u_mean += pc @ u
        dtype = self.W.dtype
        if swap:  # x is the hidden layer, u the visible one
            return {
                "W": xu.T.to(dtype),
                "visible_bias": u_mean.to(dtype),
                "hidden_bias": x_mean.to(dtype),
            }
        return {
            "W": xu.to(dtype),
            "visible_bias": x_mean.to(dtype),
            "hidden_bias": u_mean.to(dtype),
        }

    def sample_exact(
        self, n: int, *, seed: int | None = 0, return_hidden: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``n`` i.i.d. samples from the RBM itself, without Markov chains.

        The smaller layer is drawn from its exact marginal (an enumeration of its
        ``2**min(V, H)`` states, as in :meth:`log_partition`), the other layer from its
        conditional: the reference against which chains and samplers are judged. Returns 0/1
        visible vectors ``(n, V)`` (and hidden ``(n, H)`` when ``return_hidden``).
        """
        if int(n) < 1:
            raise ValueError(f"n must be a positive integer; got {n}.")
        small = min(self.n_visible, self.n_hidden)
        check_enumerable(small, MAX_EXACT_SPINS)
        W, a, b = (p.detach().double() for p in (self.W, self.visible_bias, self.hidden_bias))
        swap = self.n_hidden > self.n_visible
        if swap:
            W, a, b = W.T, b, a
        gen = torch_generator(seed, W.device)
        with torch.no_grad():
            log_w = []
            for start in range(0, 2**small, _CHUNK):
                idx = np.arange(start, min(start + _CHUNK, 2**small))
                u = torch.as_tensor((index_to_spins(idx, small) + 1) // 2, dtype=W.dtype)
                u = u.to(W.device)
                log_w.append(u @ b + F.softplus(u @ W.T + a).sum(-1))
            probs = torch.softmax(torch.cat(log_w), 0)
            pick = torch.multinomial(probs, int(n), replacement=True, generator=gen)
            u = torch.as_tensor((index_to_spins(pick.cpu().numpy(), small) + 1) // 2)
            u = u.to(device=W.device, dtype=W.dtype)
            x = torch.bernoulli(torch.sigmoid(u @ W.T + a), generator=gen)
        v, hid = (u, x) if swap else (x, u)
        v, hid = v.to(self.W.dtype), hid.to(self.W.dtype)
        return (v, hid) if return_hidden else v

    def ais(
        self,
        *,
        num_chains: int = 200,
        num_betas: int = 1000,
        base_rates: Any = None,
        seed: int | None = 0,
        progress: bool = False,
    ) -> AISResult:
        """Annealed importance sampling of ``log Z`` (see :func:`qbm_lite.ais.ais_rbm`).

        The base model has the visible biases of ``base_rates`` (pixel means; by default those
        of the last training data, else uniform).
        """
        rates = self._base_rates if base_rates is None else torch.as_tensor(base_rates)
        base = None
        if rates is not None:
            p = rates.detach().double().clamp(1e-3, 1 - 1e-3).to(self.W.device)
            base = torch.log(p / (1 - p))
        return ais_rbm(
            self.W,
            self.visible_bias,
            self.hidden_bias,
            base_visible_bias=base,
            num_chains=num_chains,
            num_betas=num_betas,
            seed=seed,
            progress=progress,
        )

    def pseudo_log_likelihood(self, X: Any) -> torch.Tensor:
        """``Σ_i log p(v_i | v_{-i})`` per sample (all ``V`` single-unit flips, exact)."""
        v = self._as_data(X).double()
        W, a, b = (
            self.W.detach().double(),
            self.visible_bias.detach().double(),
            (self.hidden_bias.detach().double()),
        )
        out = []
        with torch.no_grad():
            for chunk in v.split(256):
                pre = chunk @ W + b  # (m, H)
                sign = 1.0 - 2.0 * chunk  # change of v_i when flipped
                f0 = -(chunk @ a) - F.softplus(pre).sum(-1)  # (m,)
                pre_flip = pre[:, None, :] + sign[:, :, None] * W[None]  # (m, V, H)
                f1 = -(chunk @ a)[:, None] - sign * a - F.softplus(pre_flip).sum(-1)
                out.append(F.logsigmoid(f1 - f0[:, None]).sum(-1))
        return torch.cat(out)

    # --- generation ---------------------------------------------------------------------------
    def gibbs_chain(
        self, v: Any, num_steps: int, *, record_every: int = 1, seed: int | None = 0
    ) -> torch.Tensor:
        """Run block-Gibbs chains from the 0/1 states ``v`` ``(m, V)`` and record them.

        Returns the visible states at steps ``0, record_every, 2 record_every, ...`` (step 0 is
        ``v``), shape ``(num_steps // record_every + 1, m, V)``: the raw material for mixing
        diagnostics.
        """
        if int(num_steps) < 0 or int(record_every) < 1:
            raise ValueError("num_steps must be >= 0 and record_every a positive integer.")
        x = self._as_data(v, "v")
        gen = torch_generator(seed, x.device)
        states = [x]
        with torch.no_grad():
            for step in range(1, int(num_steps) + 1):
                x = self._gibbs(x, 1, gen)
                if step % int(record_every) == 0:
                    states.append(x)
        return torch.stack(states)

    def sample(
        self,
        n: int,
        *,
        num_steps: int = 1000,
        sampler: SpinSampler | None = None,
        seed: int | None = 0,
        return_hidden: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Draw ``n`` visible vectors (0/1): ``num_steps`` of block Gibbs from random states, or
        one call of ``sampler`` on :meth:`to_ising` when given."""
        if int(n) < 1:
            raise ValueError(f"n must be a positive integer; got {n}.")
        with torch.no_grad():
            if sampler is not None:
                h, J = self.to_ising()
                x = (sampler.sample_spins(h, J, int(n), beta=1.0) + 1.0) / 2.0
                v, hid = x[:, : self.n_visible], x[:, self.n_visible :]
            else:
                gen = torch_generator(seed, self.W.device)
                v = torch.rand(int(n), self.n_visible, generator=gen, device=self.W.device) < 0.5
                v = self._gibbs(v.to(self.W.dtype), int(num_steps), gen)
                hid = torch.bernoulli(self.hidden_probs(v), generator=gen)
        return (v, hid) if return_hidden else v


class BoltzmannMachine(_EnergyModel):
    """A fully connected, fully visible Boltzmann machine with Ising parameters ``(h, J)``.

    A data vector ``x ∈ {0,1}^n`` is the spin state ``s = 2x - 1`` with energy
    ``E(s) = h·s + Σ_{i<j} J_ij s_i s_j`` (:mod:`qbm_lite.ising`'s convention); ``J`` is used
    through :meth:`couplings`, its symmetric, zero-diagonal part.

    Parameters
    ----------
    n
        Number of units.
    init_std
        Standard deviation of the initial couplings.
    seed
        Seed of the initial couplings.
    """

    _decayed_names = ("J",)

    def __init__(self, n: int, *, init_std: float = 0.01, seed: int | None = 0) -> None:
        super().__init__()
        if not isinstance(n, int | np.integer) or n < 2:
            raise ValueError(f"n must be an integer >= 2; got {n!r}.")
        self.n_visible = int(n)
        gen = torch_generator(seed)
        upper = torch.triu(init_std * torch.randn(self.n, self.n, generator=gen), 1)
        self.h = nn.Parameter(torch.zeros(self.n))
        self.J = nn.Parameter(upper + upper.T)

    @property
    def n(self) -> int:
        """Number of units."""
        return self.n_visible

    def extra_repr(self) -> str:
        return f"n={self.n}"

    def couplings(self) -> torch.Tensor:
        """The symmetric, zero-diagonal coupling matrix (differentiable)."""
        J = 0.5 * (self.J + self.J.T)
        return J - torch.diag(torch.diagonal(J))

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """Energy of a batch ``x`` ``(m, n)`` of 0/1 vectors (``s = 2x - 1``; differentiable)."""
        s = 2.0 * x - 1.0
        return s @ self.h + 0.5 * ((s @ self.couplings()) * s).sum(-1)

    def _unnormalized_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        # in float64, like log Z: float32 energies overflow long before the parameters do
        s = 2.0 * x.double() - 1.0
        h, J = self.h.detach().double(), self.couplings().detach().double()
        return -(s @ h + 0.5 * ((s @ J) * s).sum(-1))

    def _exact_cost_log2(self) -> int:
        return self.n

    def _gibbs(self, x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
        blocks = [torch.tensor([i], device=x.device) for i in range(self.n)]
        h, J = self.to_ising()
        s = gibbs_sweeps(2.0 * x - 1.0, h, J, 1.0, k, blocks, "heat-bath", gen)
        return (s + 1.0) / 2.0

    def _statistics(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        # dE/dh = s and dE/dJ_ij = s_i s_j (each pair once); these are -E[dE/dθ].
        s = 2.0 * x - 1.0
        corr = s.T @ s / s.shape[0]
        corr = corr - torch.diag(torch.diagonal(corr))
        return {"h": -s.mean(0), "J": -corr}

    def _from_spins(self, spins: torch.Tensor) -> torch.Tensor:
        return (spins + 1.0) / 2.0

    def _init_from_data(self, X: torch.Tensor) -> None:
        m = (2.0 * X - 1.0).mean(0).clamp(-0.998, 0.998)
        with torch.no_grad():
            self.h.copy_(-torch.atanh(m))  # independent spins with the data's magnetizations

    def _after_step(self) -> None:
        with torch.no_grad():
            self.J.copy_(self.couplings())

    # --- Ising conversion ---------------------------------------------------------------------
    def to_ising(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h, J)`` (detached): the model's energy of ``s = 2x - 1`` is the Ising energy."""
        return self.h.detach().clone(), self.couplings().detach()

    def to_ising_model(self) -> IsingModel:
        """The model as an :class:`~qbm_lite.ising.IsingModel` over spins (offset 0)."""
        h, J = self.to_ising()
        return IsingModel(h.double().cpu().numpy(), J.double().cpu().numpy())

    @classmethod
    def from_ising(cls, h: Any, J: Any) -> BoltzmannMachine:
        """A machine with fields ``h`` ``(n,)`` and symmetric, zero-diagonal couplings ``J``."""
        model_check = IsingModel(
            torch.as_tensor(h).double().cpu().numpy(), torch.as_tensor(J).double().cpu().numpy()
        )
        model = cls(model_check.n)
        with torch.no_grad():
            model.h.copy_(torch.as_tensor(model_check.h))
            model.J.copy_(torch.as_tensor(model_check.dense_J()))
        return model

    # --- partition function, likelihoods ------------------------------------------------------
    def log_partition(self, method: PartitionMethod = "exact", **ais_kwargs: Any) -> float:
        """``log Z``: ``"exact"`` enumerates the ``2**n`` states (n <= 24); ``"ais"`` runs
        :meth:`ais` (keyword arguments are passed on)."""
        if method == "ais":
            return self.ais(**ais_kwargs).log_z
        if method != "exact":
            raise ValueError(f"method must be 'exact' or 'ais'; got {method!r}.")
        try:
            check_enumerable(self.n, MAX_EXACT_SPINS)
        except ValueError as err:
            raise ValueError(
                f"exact log Z of a Boltzmann machine with n={self.n} units needs 2**{self.n} "
                f"states; the limit is n <= {MAX_EXACT_SPINS}. Use log_partition(method='ais')."
            ) from err
        return ExactBoltzmann(self.to_ising_model()).log_partition()

    def model_statistics(self) -> dict[str, torch.Tensor]:
        """Exact model expectations ``-E_p[s]`` (key ``"h"``) and ``-E_p[s sᵀ]`` (key ``"J"``,
        zero diagonal) by enumerating the ``2**n`` states (n <= 24), matching :meth:`statistics`."""
        try:
            check_enumerable(self.n, MAX_EXACT_SPINS)
        except ValueError as err:
            raise ValueError(
                f"exact model statistics of a Boltzmann machine with n={self.n} units need "
                f"2**{self.n} states; the limit is n <= {MAX_EXACT_SPINS}. Sample them instead."
            ) from err
        exact = ExactBoltzmann(self.to_ising_model())
        corr = exact.correlations(1.0)
        np.fill_diagonal(corr, 0.0)
        dtype, device = self.h.dtype, self.h.device
        return {
            "h": -torch.as_tensor(exact.marginals(1.0), dtype=dtype, device=device),
            "J": -torch.as_tensor(corr, dtype=dtype, device=device),
        }

    def ais(
        self,
        *,
        num_chains: int = 200,
        num_betas: int = 1000,
        sweeps_per_beta: int = 1,
        seed: int | None = 0,
        progress: bool = False,
    ) -> AISResult:
        """Annealed importance sampling of ``log Z`` (see :func:`qbm_lite.ais.ais_ising`)."""
        h, J = self.to_ising()
        return ais_ising(
            h,
            J,
            num_chains=num_chains,
            num_betas=num_betas,
            sweeps_per_beta=sweeps_per_beta,
            seed=seed,
            progress=progress,
        )

    def pseudo_log_likelihood(self, X: Any) -> torch.Tensor:
        """``Σ_i log p(x_i | x_{-i})`` per sample: ``log sigmoid(-2 s_i f_i)``, ``f = h + Js``."""
        s = 2.0 * self._as_data(X).double() - 1.0
        h, J = (t.double() for t in self.to_ising())
        return F.logsigmoid(-2.0 * s * (h + s @ J)).sum(-1)

    # --- generation ---------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        *,
        num_steps: int = 1000,
        sampler: SpinSampler | None = None,
        seed: int | None = 0,
    ) -> torch.Tensor:
        """Draw ``n`` 0/1 vectors: ``num_steps`` sequential Gibbs sweeps from random states, or
        one call of ``sampler`` on :meth:`to_ising` when given."""
        if int(n) < 1:
            raise ValueError(f"n must be a positive integer; got {n}.")
        with torch.no_grad():
            if sampler is not None:
                h, J = self.to_ising()
                return (sampler.sample_spins(h, J, int(n), beta=1.0) + 1.0) / 2.0
            gen = torch_generator(seed, self.h.device)
            x = torch.rand(int(n), self.n, generator=gen, device=self.h.device) < 0.5
            return self._gibbs(x.to(self.h.dtype), int(num_steps), gen)
