"""The training loop of the (QBM-)VAE, outside the AnnData model (scvi-tools' training plan,
minGPT's ``Trainer``).

:class:`Trainer` owns the loop, the optimizer, the warm-ups, early stopping, divergence checks,
the ``log Z`` bookkeeping of the Boltzmann prior and the per-epoch ``history``. It sees a torch
module whose ``forward`` returns a :class:`~qbm_lite.vae.module.LossOutput` and loaders that yield
:class:`~qbm_lite.data.loader.Minibatch` es; it does not know where the cells come from.

Data-parallel training (PyTorch DDP). When ``torch.distributed`` is initialized (``torchrun``
sets it up; see :mod:`qbm_lite.train`), the trainer wraps the module in
:class:`torch.nn.parallel.DistributedDataParallel`, so every gradient, the prior's ``h`` and
``J`` included, is averaged over the ranks after each backward pass. Each rank

- reads its own, equally long share of every epoch (:class:`~qbm_lite.data.loader.BlockSampler`),
  so all ranks run the same number of steps and no all-reduce waits forever;
- draws its own relaxation noise and its own negative phase (seeds offset by the rank), so the
  averaged ``∇ log Z`` uses ``world_size × num_negative`` samples: each rank's estimate
  ``−mean ∇E(s⁻)`` is unbiased for ``−E_p[∇E]`` (exactly, for an exact sampler), and the mean of
  unbiased estimates is unbiased with ``world_size`` times less variance;
- all-reduces the epoch's loss totals before they reach ``history`` and takes early-stopping and
  divergence decisions on all-reduced values, so every rank stops at the same step.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from qbm_lite.data.loader import Minibatch

__all__ = [
    "LogZMethod",
    "Trainer",
    "TrainingDivergedError",
    "default_max_epochs",
    "distributed_context",
]

LogZMethod = Literal["auto", "exact", "ais", "none"]


class TrainingDivergedError(FloatingPointError):
    """A loss or a gradient became NaN or infinite; the weights are those of the last finite
    step."""


def default_max_epochs(n_cells: int) -> int:
    """scvi-tools' rule for ``max_epochs=None``: ``min(round(20,000 / n_cells × 400), 400)``."""
    return max(1, min(round(20_000 / max(int(n_cells), 1) * 400), 400))


def default_prior_warmup_epochs(n_cells: int) -> int:
    """Default length of the Boltzmann prior's warm-up (epochs over all ``train`` calls): a
    quarter of :func:`default_max_epochs`, i.e. 100 below 20,000 cells and 2 at a million.

    It depends on the data, not on a call's ``max_epochs``, so that splitting a training into
    several calls does not change it (scvi-tools' KL warm-up, ``n_epochs_kl_warmup = 400``, is
    likewise fixed rather than a share of ``max_epochs``).
    """
    return max(1, default_max_epochs(n_cells) // 4)


def distributed_context() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialized ``torch.distributed`` group, else ``(0, 1)``."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _epoch_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def _reseed_sampler(sampler: Any, seed: int) -> None:
    """Give a sampler with its own generator a new seed (rank offset under DDP)."""
    if sampler is not None and hasattr(sampler, "seed"):
        sampler.seed = int(seed)
        if hasattr(sampler, "_generators"):
            sampler._generators = {}
        if hasattr(sampler, "chains"):
            sampler.chains = None


class Trainer:
    """Adam on minibatches, with warm-ups, early stopping and per-epoch ``history``.

    Parameters
    ----------
    module
        A :class:`~qbm_lite.vae.module.VAEModule` (``forward(x, batch, negative, kl_weight,
        x_lgamma_sum) -> LossOutput``).
    history
        The dict of lists to append epoch rows to (the model's :attr:`history`).
    lr, weight_decay
        Adam's settings.
    optimizer
        An optimizer to continue with (its state carries over between ``train`` calls); a new
        Adam if None.
    kl_warmup_epochs, prior_warmup_epochs
        Warm-ups, counted in epochs since the model was created (over all ``train`` calls).
    early_stopping, patience
        Stop when the monitored validation loss has not improved for ``patience`` epochs and
        restore the best weights.
    log_z, log_z_every, ais_kwargs
        How the KL's ``log Z`` is valued in ``history`` (Boltzmann prior): ``"exact"`` by
        enumeration every epoch (``n_latent <= 20``), ``"ais"`` by annealed importance sampling
        every ``log_z_every`` epochs and at the last epoch of the call (``None``: at the last
        epoch only), ``"none"`` never (the KL and loss then omit ``log Z``), ``"auto"``:
        exact when ``n_latent <= 20``, else AIS. ``ais_kwargs`` go to
        :func:`qbm_lite.ais.ais_ising`.
    x_lgamma
        Per-cell count constant ``Σ_g lgamma(x_g + 1)`` for all AnnData rows, ``(n_obs,)`` on the
        device, or None.
    seed
        Base seed; each epoch seeds torch with ``(seed, epoch, rank)``.
    progress
        Show a progress bar (rank 0 only).
    """

    def __init__(
        self,
        module: nn.Module,
        history: dict[str, list],
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: torch.optim.Optimizer | None = None,
        kl_warmup_epochs: int = 0,
        prior_warmup_epochs: int = 0,
        early_stopping: bool = False,
        patience: int = 10,
        log_z: LogZMethod = "auto",
        log_z_every: int | None = None,
        ais_kwargs: dict[str, Any] | None = None,
        x_lgamma: torch.Tensor | None = None,
        seed: int = 0,
        progress: bool = False,
    ) -> None:
        self.module = module
        self.history = history
        self.boltzmann = getattr(module, "prior_name", None) == "boltzmann"
        self.rank, self.world_size = distributed_context()
        if optimizer is None:
            optimizer = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
        else:
            for group in optimizer.param_groups:
                group["lr"], group["weight_decay"] = float(lr), float(weight_decay)
        self.optimizer = optimizer
        self.kl_warmup_epochs = int(kl_warmup_epochs)
        self.prior_warmup_epochs = int(prior_warmup_epochs)
        self.early_stopping, self.patience = bool(early_stopping), int(patience)
        self.log_z = self._resolve_log_z(log_z)
        self.log_z_every = None if log_z_every is None else int(log_z_every)
        self.ais_kwargs = {"num_chains": 200, "num_betas": 1000, **(ais_kwargs or {})}
        self.x_lgamma = x_lgamma
        self.seed = int(seed)
        self.progress = bool(progress) and self.rank == 0
        self.net = self._wrap(module)

    # --- set-up ---------------------------------------------------------------------------
    def _resolve_log_z(self, log_z: str) -> str:
        if log_z not in ("auto", "exact", "ais", "none"):
            raise ValueError(f"log_z must be 'auto', 'exact', 'ais' or 'none'; got {log_z!r}.")
        if not self.boltzmann:
            return "none"
        n = self.module.n_latent
        if log_z == "auto":
            return "exact" if n <= 20 else "ais"
        if log_z == "exact" and n > 20:
            raise ValueError(
                f"log_z='exact' enumerates 2**n_latent states and needs n_latent <= 20 (this "
                f"prior has {n}); use log_z='ais' for an estimate with a standard error."
            )
        return log_z

    def _wrap(self, module: nn.Module) -> nn.Module:
        if self.world_size == 1:
            return module
        if self.boltzmann:
            _reseed_sampler(module.prior.sampler, self.seed + 104_729 * (self.rank + 1))
        device = next(module.parameters()).device
        ids = [device.index if device.index is not None else 0] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    # --- the loop -------------------------------------------------------------------------
    def fit(
        self,
        train_loader: Any,
        val_loader: Any | None,
        max_epochs: int,
        start_epoch: int,
        on_epoch_end: Callable[[int], None] | None = None,
    ) -> int:
        """Train for ``max_epochs`` epochs starting at epoch number ``start_epoch``.

        Returns the number of epochs run (fewer than ``max_epochs`` after early stopping).

        Raises
        ------
        TrainingDivergedError
            At the first non-finite loss or gradient, before the optimizer step (the weights
            are those of the last finite step; ``history`` keeps the finished epochs).
        """
        from tqdm.auto import tqdm

        best, best_state, bad = math.inf, None, 0
        last = start_epoch + int(max_epochs) - 1
        bar = tqdm(range(start_epoch, last + 1), disable=not self.progress, desc="training")
        done = 0
        for epoch in bar:
            row, monitor = self._epoch(train_loader, val_loader, epoch, epoch == last)
            for k, v in row.items():
                self.history.setdefault(k, []).append(v)
            done += 1
            if on_epoch_end is not None:
                on_epoch_end(epoch)
            bar.set_postfix(loss=f"{row['train_loss']:.2f}")
            if self.early_stopping:
                if monitor < best - 1e-6:
                    best, bad = monitor, 0
                    best_state = copy.deepcopy(self.module.state_dict())
                else:
                    bad += 1
                if self._broadcast_flag(bad >= self.patience):
                    break
        if self.early_stopping and best_state is not None:
            self.module.load_state_dict(best_state)
        self.module.eval()
        return done

    def _broadcast_flag(self, flag: bool) -> bool:
        if self.world_size == 1:
            return flag
        t = torch.tensor([float(flag)], device=self._device)
        torch.distributed.broadcast(t, src=0)
        return bool(t.item())

    @property
    def _device(self) -> torch.device:
        return next(self.module.parameters()).device

    def _epoch(
        self, train_loader: Any, val_loader: Any | None, epoch: int, is_last: bool
    ) -> tuple[dict[str, Any], float]:
        torch.manual_seed(_epoch_seed(self.seed, epoch, self.rank))
        kl_weight = min(1.0, (epoch + 1) / self.kl_warmup_epochs) if self.kl_warmup_epochs else 1.0
        learn_prior = epoch >= self.prior_warmup_epochs
        prior = self.module.prior if self.boltzmann else None
        if self.log_z == "exact":  # the training KL's value uses log Z at the epoch's start
            prior.log_z_cache = self._exact_log_z()
        elif self.boltzmann:
            prior.log_z_cache = 0.0  # values omit log Z; an estimate is added below
        train_loader.set_epoch(epoch)
        row = self._train_epoch(train_loader, kl_weight, learn_prior, epoch)
        log_z, std_err, method = self._log_z_now(epoch, is_last)
        if self.boltzmann:
            if self.log_z != "exact" and method == "ais":
                row["train_kl"] += log_z
                row["train_loss"] += kl_weight * log_z
            row["log_z"], row["log_z_std_err"], row["log_z_method"] = log_z, std_err, method
        monitor = row["train_loss"]
        if val_loader is not None:
            torch.manual_seed(_epoch_seed(self.seed, epoch, 2**20))  # same on every rank
            cache = (0.0 if method == "none" else log_z) if self.boltzmann else None
            val = self.evaluate(val_loader, kl_weight, cache)
            row.update({f"validation_{k}": v for k, v in val.items()})
            # Monitor a quantity with the same log Z convention every epoch.
            monitor = val["loss"]
            if self.boltzmann and self.log_z != "exact" and method != "none":
                monitor -= kl_weight * log_z
        row["epoch"] = float(epoch)
        if self.boltzmann:
            prior.log_z_cache = None
        return row, monitor

    def _log_z_now(self, epoch: int, is_last: bool) -> tuple[float, float, str]:
        if self.log_z == "exact":
            return self._exact_log_z(), 0.0, "exact"
        if self.log_z == "ais":
            every = self.log_z_every
            if is_last or (every is not None and (epoch + 1) % every == 0):
                return self._ais_log_z(epoch)
        return math.nan, math.nan, "none"

    @torch.no_grad()
    def _exact_log_z(self) -> float:
        return float(self.module.prior.log_partition())

    def _ais_log_z(self, epoch: int) -> tuple[float, float, str]:
        from qbm_lite.ais import ais_ising

        prior = self.module.prior
        kwargs = {"seed": _epoch_seed(self.seed, epoch, 3), **self.ais_kwargs}
        res = ais_ising(prior.h.detach(), prior.J.detach(), **kwargs)
        return float(res.log_z), float(res.std_err), "ais"

    def _train_epoch(
        self, loader: Iterable[Minibatch], kl_weight: float, learn_prior: bool, epoch: int
    ) -> dict[str, Any]:
        module, net, opt = self.module, self.net, self.optimizer
        module.train()
        device = self._device
        totals = torch.zeros(4, device=device, dtype=torch.float64)
        t_sampler = t_net = 0.0
        t_start = time.perf_counter()
        for step, mb in enumerate(loader):
            negative = None
            t1 = time.perf_counter()
            if self.boltzmann:
                negative = module.prior.negative_phase()
                self._sync(device)
                t0, t1 = t1, time.perf_counter()
                t_sampler += t1 - t0
            xl = None
            if self.x_lgamma is not None:
                xl = self.x_lgamma[torch.as_tensor(mb.index, device=device)]
            out = net(mb.x, mb.batch, negative, kl_weight, xl)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            if not learn_prior:
                # Prior warm-up: Adam skips parameters without a gradient (no state, no decay).
                for p in module.prior.parameters():
                    p.grad = None
            self._check_finite(out, epoch, step)
            opt.step()
            self._sync(device)
            t_net += time.perf_counter() - t1
            n = float(mb.x.shape[0])
            terms = torch.stack([out.loss, out.reconstruction, out.kl]).detach().double()
            totals += torch.cat([terms * n, torch.tensor([n], device=device, dtype=torch.float64)])
        if self.world_size > 1:
            torch.distributed.all_reduce(totals)
        loss, recon, kl = (totals[:3] / totals[3]).tolist()
        return {
            "train_loss": loss,
            "train_reconstruction": recon,
            "train_kl": kl,
            "time_sampler": t_sampler,
            "time_networks": t_net,
            "time_epoch": time.perf_counter() - t_start,
        }

    def _check_finite(self, out: Any, epoch: int, step: int) -> None:
        grads = [p.grad for p in self.module.parameters() if p.grad is not None]
        gnorm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        bad = (~torch.isfinite(out.loss.detach()) | ~torch.isfinite(gnorm)).float().reshape(1)
        if self.world_size > 1:
            torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)
        if bad.item() == 0:
            return
        terms = {k: float(v.detach()) for k, v in vars(out).items()}
        what = [k for k, v in terms.items() if not math.isfinite(v)] or ["the gradient"]
        lr = self.optimizer.param_groups[0]["lr"]
        raise TrainingDivergedError(
            f"training diverged at epoch {epoch}, step {step}: {', '.join(what)} became "
            f"non-finite (loss terms {terms}, gradient norm {float(gnorm):.3g}). The model keeps "
            f"the weights of the last finite step. Try a smaller learning rate (lr={lr:g} now, "
            "e.g. 10x smaller), kl_warmup_epochs, or for likelihood='gaussian' check that the "
            "data are log-normalized (not raw counts)."
        )

    @staticmethod
    def _sync(device: torch.device) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    @torch.no_grad()
    def evaluate(
        self, loader: Iterable[Minibatch], kl_weight: float = 1.0, log_z: float | None = None
    ) -> dict[str, float]:
        """Mean loss terms over ``loader``'s cells (eval mode). For the Boltzmann prior the KL's
        value uses ``log_z`` (the exact value when enumerable and ``log_z`` is None)."""
        module = self.module
        module.eval()
        device = self._device
        if self.boltzmann:
            if log_z is None and module.n_latent <= 20:
                log_z = self._exact_log_z()
            module.prior.log_z_cache = 0.0 if log_z is None else float(log_z)
            # The value uses log_z_cache; the negative samples only shape the gradient.
            negative = torch.ones(1, module.n_latent, device=device)
        else:
            negative = None
        totals = torch.zeros(4, device=device, dtype=torch.float64)
        for mb in loader:
            xl = None
            if self.x_lgamma is not None:
                xl = self.x_lgamma[torch.as_tensor(mb.index, device=device)]
            out = module(mb.x, mb.batch, negative, kl_weight, xl)
            n = float(mb.x.shape[0])
            terms = torch.stack([out.loss, out.reconstruction, out.kl]).double()
            totals += torch.cat([terms * n, torch.tensor([n], device=device, dtype=torch.float64)])
        if self.boltzmann:
            module.prior.log_z_cache = None
        loss, recon, kl = (totals[:3] / totals[3]).tolist()
        return {"loss": loss, "reconstruction": recon, "kl": kl}
