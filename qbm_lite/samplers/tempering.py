"""Parallel tempering (replica-exchange Monte Carlo) for Ising models, batched in torch.

Each of ``num_samples`` independent chains carries ``K`` replicas of the system at inverse
temperatures ``beta_1 < beta_2 < ... < beta_K = beta``. Every sweep updates every replica by
heat-bath Gibbs sampling at its own temperature, and then proposes to exchange the states of
neighbouring replicas ``k, k+1``, accepted with probability

    min(1, exp[(beta_k - beta_{k+1}) (E(s_k) - E(s_{k+1}))]),

which keeps the product distribution ``prod_k exp(-beta_k E(s_k)) / Z(beta_k)`` invariant. A state
trapped in one valley at the target temperature can climb the ladder, cross the barrier where it is
low, and come back down: the classical cure for the slow mixing of single-spin chains at low
temperature (Swendsen & Wang 1986; Geyer 1991; Hukushima & Nemoto 1996; review: Earl & Deem 2005).
Only the coldest replica (``beta_K = beta``) is returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from qbm_lite.config import torch_generator
from qbm_lite.samplers.base import TorchDimodSampler, check_problem, random_spins

__all__ = ["ParallelTemperingSampler", "geometric_ladder"]


def geometric_ladder(num_replicas: int, beta_min_ratio: float) -> np.ndarray:
    """Relative inverse temperatures ``beta_k / beta``, geometric from ``beta_min_ratio`` to 1.

    A geometric spacing keeps the swap acceptance roughly constant along the ladder when the heat
    capacity is (Earl & Deem 2005). Returns an increasing float64 array of length ``num_replicas``.
    """
    if int(num_replicas) < 1:
        raise ValueError(f"num_replicas must be a positive integer; got {num_replicas}.")
    if not 0.0 < float(beta_min_ratio) <= 1.0:
        raise ValueError(f"beta_min_ratio must lie in (0, 1]; got {beta_min_ratio}.")
    if int(num_replicas) == 1:
        return np.ones(1)
    return np.geomspace(float(beta_min_ratio), 1.0, int(num_replicas))


def _energies(s: torch.Tensor, h: torch.Tensor, J: torch.Tensor) -> torch.Tensor:
    """Ising energies ``h·s + ½ sᵀJs`` of the rows of ``s`` ``(..., n)``."""
    return s @ h + 0.5 * ((s @ J) * s).sum(-1)


class ParallelTemperingSampler(TorchDimodSampler):
    """Replica-exchange Monte Carlo: heat-bath sweeps at ``K`` temperatures plus neighbour swaps.

    Parameters
    ----------
    num_sweeps
        Sweeps per call; each sweep updates every spin of every replica once (sequentially) and is
        followed by one round of swap proposals (even pairs on even sweeps, odd pairs on odd ones).
    num_replicas
        Number of temperatures ``K`` per chain (``K = 1`` is plain sequential Gibbs sampling).
    beta_min_ratio
        Hottest replica's inverse temperature as a fraction of the target ``beta`` (geometric
        ladder, see :func:`geometric_ladder`); ignored when ``ladder`` is given.
    ladder
        Explicit relative inverse temperatures, increasing, ending at 1 (the target replica).
    persistent
        Keep all replicas between calls and continue from them when the shapes match.
    seed
        Seed of the sampler's own random generator.

    Attributes
    ----------
    swap_acceptance
        After a call: the acceptance rate of swaps between replicas ``k`` and ``k + 1``, shape
        ``(K - 1,)`` (numpy). Rates near 0 mean two temperatures are too far apart.

    Notes
    -----
    The cost per sweep is ``K`` times that of a Gibbs sweep. Cost is comparable with other
    samplers at equal *sweeps times replicas*. Cluster moves (Swendsen-Wang, Wolff) are the other
    classical cure for slow mixing, on ferromagnets; they do not help frustrated spin glasses.
    """

    def __init__(
        self,
        num_sweeps: int = 100,
        num_replicas: int = 8,
        beta_min_ratio: float = 0.2,
        ladder: Sequence[float] | None = None,
        persistent: bool = False,
        seed: int | None = None,
    ) -> None:
        if int(num_sweeps) < 1:
            raise ValueError(f"num_sweeps must be a positive integer; got {num_sweeps}.")
        if ladder is None:
            rel = geometric_ladder(num_replicas, beta_min_ratio)
        else:
            rel = np.asarray(ladder, dtype=np.float64)
            if (
                rel.ndim != 1
                or rel.size < 1
                or not np.all(np.isfinite(rel))
                or np.any(rel <= 0)
                or np.any(np.diff(rel) <= 0)
                or rel[-1] != 1.0
            ):
                raise ValueError(
                    "ladder must be a strictly increasing 1-D sequence of positive numbers "
                    f"ending at 1.0 (the target temperature); got {list(rel)}."
                )
        self.num_sweeps = int(num_sweeps)
        self.ladder = rel
        self.persistent = persistent
        self.seed = seed
        self.replicas: torch.Tensor | None = None
        self.swap_acceptance = np.zeros(max(rel.size - 1, 0))
        self._generators: dict[str, torch.Generator] = {}

    @property
    def parameters(self) -> dict[str, list]:
        return {"num_reads": [], "beta": [], "seed": []}

    @property
    def num_replicas(self) -> int:
        """Number of temperatures ``K``."""
        return int(self.ladder.size)

    def _generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch_generator(self.seed, device)
        return self._generators[key]

    def _initial(self, K: int, chains: int, n: int, like: torch.Tensor) -> torch.Tensor:
        if self.persistent and self.replicas is not None and self.replicas.shape == (K, chains, n):
            return self.replicas.to(device=like.device, dtype=like.dtype)
        return random_spins((K, chains, n), self._generator(like.device), like)

    def sample_spins(
        self,
        h: torch.Tensor,
        J: torch.Tensor,
        num_samples: int,
        *,
        beta: float = 1.0,
        callback: Callable[[int, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """Run ``num_samples`` ladders; return their coldest replicas, ``(num_samples, n)``.

        ``callback(sweep, cold)``, if given, sees the ``(num_samples, n)`` coldest replicas after
        every sweep and its swaps (so :func:`qbm_lite.observables.sample_trace` can record them).
        """
        check_problem(h, J, num_samples, beta)
        h, J = h.detach(), (J.to_dense() if J.is_sparse else J).detach()
        n, K, chains = h.shape[0], self.num_replicas, int(num_samples)
        gen = self._generator(h.device)
        betas = torch.as_tensor(float(beta) * self.ladder, dtype=h.dtype, device=h.device)
        s = self._initial(K, chains, n, h)
        accepted = torch.zeros(max(K - 1, 0), dtype=torch.float64)
        proposed = torch.zeros(max(K - 1, 0), dtype=torch.float64)
        bcol = betas[:, None]  # (K, 1), broadcast over chains
        for sweep in range(self.num_sweeps):
            for i in range(n):  # heat-bath update of spin i in every replica of every chain
                field = h[i] + s @ J[:, i]  # (K, chains)
                u = torch.rand(field.shape, generator=gen, device=h.device, dtype=h.dtype)
                s[:, :, i] = torch.where(u < torch.sigmoid(-2.0 * bcol * field), 1.0, -1.0)
            if K > 1:
                self._swap(s, _energies(s, h, J), betas, sweep % 2, gen, accepted, proposed)
            if callback is not None:
                callback(sweep, s[-1])
        if K > 1:
            self.swap_acceptance = (accepted / proposed.clamp(min=1)).numpy()
        if self.persistent:
            self.replicas = s
        return s[-1].clone()

    @staticmethod
    def _swap(
        s: torch.Tensor,
        E: torch.Tensor,
        betas: torch.Tensor,
        parity: int,
        gen: torch.Generator,
        accepted: torch.Tensor,
        proposed: torch.Tensor,
    ) -> None:
        """Propose swaps of pairs ``(k, k+1)`` with ``k % 2 == parity``; updates ``s`` in place."""
        lower = torch.arange(parity, s.shape[0] - 1, 2, device=s.device)
        if lower.numel() == 0:
            return
        upper = lower + 1
        log_acc = (betas[lower] - betas[upper])[:, None] * (E[lower] - E[upper])  # (pairs, chains)
        u = torch.rand(log_acc.shape, generator=gen, device=s.device, dtype=s.dtype)
        swap = torch.log(u) < log_acc
        lo, up = s[lower].clone(), s[upper].clone()
        mask = swap[:, :, None]
        s[lower] = torch.where(mask, up, lo)
        s[upper] = torch.where(mask, lo, up)
        accepted[lower.cpu()] += swap.double().sum(1).cpu()
        proposed[lower.cpu()] += float(swap.shape[1])

    def sample(self, bqm, num_reads: int = 10, beta: float | None = None, seed=None, **kwargs):
        """dimod entry point; ``seed`` makes the draw reproducible."""
        if seed is not None:
            self._generators = {"cpu": torch_generator(seed)}
        return super().sample(bqm, num_reads=num_reads, beta=beta, **kwargs)
