"""Exact enumeration of small Ising models: energies, log Z, marginals and exact samples.

State ``k`` (an integer in ``[0, 2**n)``) has spin ``s_i = +1`` when bit ``i`` of ``k`` is set and
``-1`` otherwise. Enumeration is vectorized in chunks, so ``n = 20`` takes well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from scipy.special import logsumexp

from qbm_lite.ising import IsingModel, check_spins

__all__ = [
    "MAX_EXACT_SPINS",
    "ExactBoltzmann",
    "all_spin_states",
    "check_enumerable",
    "empirical_distribution",
    "index_to_spins",
    "log_partition_torch",
    "spins_to_index",
    "total_variation",
]

#: Largest number of spins that exact enumeration accepts (2**24 states, about 16 million).
MAX_EXACT_SPINS = 24
_CHUNK = 1 << 16


def check_enumerable(n: int, limit: int = MAX_EXACT_SPINS) -> None:
    """Raise a clear error when ``2**n`` states are too many to enumerate."""
    if n > limit:
        raise ValueError(
            f"exact enumeration of n={n} spins needs 2**{n} states; the limit is n <= {limit}. "
            "Use a Monte-Carlo sampler (GibbsSampler, AnnealingSampler, SimulatedCIMSampler) "
            "or annealed importance sampling instead."
        )


def index_to_spins(index: np.ndarray | int, n: int) -> np.ndarray:
    """Spins (int8, shape ``(..., n)``) of state indices ``index``."""
    index = np.asarray(index, dtype=np.int64)
    bits = (index[..., None] >> np.arange(n, dtype=np.int64)) & 1
    return (2 * bits - 1).astype(np.int8)


def spins_to_index(states: np.ndarray) -> np.ndarray:
    """State indices of spins ``states`` (shape ``(m, n)``), inverse of :func:`index_to_spins`."""
    s = check_spins(states)
    s = s[None, :] if s.ndim == 1 else s
    weights = np.left_shift(np.int64(1), np.arange(s.shape[1], dtype=np.int64))
    return ((s > 0).astype(np.int64) * weights).sum(axis=1)


def all_spin_states(n: int) -> np.ndarray:
    """All ``2**n`` spin states, shape ``(2**n, n)``, dtype int8."""
    check_enumerable(n)
    return index_to_spins(np.arange(2**n), n)


def empirical_distribution(states: np.ndarray, n: int | None = None) -> np.ndarray:
    """Frequencies of each of the ``2**n`` states among the rows of ``states``."""
    s = np.asarray(states)
    n = s.shape[-1] if n is None else n
    check_enumerable(n)
    check_spins(s, n)
    counts = np.bincount(spins_to_index(s), minlength=2**n)
    return counts / counts.sum()


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total-variation distance ``½ Σ |p - q|`` between two distributions."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if p.shape != q.shape:
        raise ValueError(f"distributions have different shapes {p.shape} and {q.shape}.")
    return 0.5 * float(np.abs(p - q).sum())


@dataclass
class ExactBoltzmann:
    """All energies of a small Ising model, and everything exact that follows from them."""

    model: IsingModel

    def __post_init__(self) -> None:
        check_enumerable(self.model.n)

    @cached_property
    def energies(self) -> np.ndarray:
        """Energy of every state, indexed as in :func:`index_to_spins` (float64)."""
        n, h, J = self.model.n, self.model.h, self.model.dense_J()
        out = np.empty(2**n)
        for start in range(0, 2**n, _CHUNK):
            s = index_to_spins(np.arange(start, min(start + _CHUNK, 2**n)), n).astype(np.float64)
            out[start : start + len(s)] = s @ h + 0.5 * np.einsum("ij,ij->i", s @ J, s)
        return out + self.model.offset

    def log_partition(self, beta: float = 1.0) -> float:
        """``log Z(beta) = log Σ_s exp(-beta E(s))``, computed stably in log space."""
        return float(logsumexp(-_check_beta(beta) * self.energies))

    def probabilities(self, beta: float = 1.0) -> np.ndarray:
        """The Boltzmann distribution over all ``2**n`` states."""
        logits = -_check_beta(beta) * self.energies
        return np.exp(logits - logsumexp(logits))

    def _expect(self, beta: float, fn) -> np.ndarray:
        p, n = self.probabilities(beta), self.model.n
        total = 0.0
        for start in range(0, 2**n, _CHUNK):
            idx = np.arange(start, min(start + _CHUNK, 2**n))
            total = total + fn(p[idx], index_to_spins(idx, n).astype(np.float64))
        return total

    def marginals(self, beta: float = 1.0) -> np.ndarray:
        """Exact magnetizations ``<s_i>``."""
        return self._expect(beta, lambda p, s: p @ s)

    def correlations(self, beta: float = 1.0) -> np.ndarray:
        """Exact correlations ``<s_i s_j>`` (ones on the diagonal)."""
        return self._expect(beta, lambda p, s: (s * p[:, None]).T @ s)

    def free_energy(self, beta: float = 1.0) -> float:
        """Helmholtz free energy ``F = -log Z(beta) / beta`` (``beta > 0``), in energy units."""
        beta = _check_beta(beta)
        if beta == 0:
            raise ValueError("the free energy -log Z / beta needs beta > 0.")
        return -self.log_partition(beta) / beta

    def mean_energy(self, beta: float = 1.0) -> float:
        """Exact ``<E>`` at inverse temperature ``beta``."""
        return float(self.probabilities(beta) @ self.energies)

    @property
    def ground_energy(self) -> float:
        """The lowest energy."""
        return float(self.energies.min())

    def ground_states(self, atol: float = 1e-9) -> np.ndarray:
        """All states whose energy is within ``atol`` of the minimum, shape ``(k, n)``."""
        idx = np.flatnonzero(self.energies <= self.ground_energy + atol)
        return index_to_spins(idx, self.model.n)

    def sample(self, num_samples: int, beta: float = 1.0, seed: int | None = None) -> np.ndarray:
        """Exact i.i.d. samples from the Boltzmann distribution, shape ``(num_samples, n)``."""
        rng = np.random.default_rng(seed)
        idx = rng.choice(2**self.model.n, size=int(num_samples), p=self.probabilities(beta))
        return index_to_spins(idx, self.model.n)


def _check_beta(beta: float) -> float:
    beta = float(beta)
    if not np.isfinite(beta) or beta < 0:
        raise ValueError(f"beta must be a finite, non-negative number; got {beta}.")
    return beta


def log_partition_torch(h: torch.Tensor, J: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Differentiable exact ``log Z`` for a small model given as torch tensors ``(h, J)``."""
    n = h.shape[-1]
    check_enumerable(n, limit=20)
    s = torch.as_tensor(all_spin_states(n), dtype=h.dtype, device=h.device)
    energies = s @ h + 0.5 * ((s @ J) * s).sum(-1)
    return torch.logsumexp(-beta * energies, dim=0)
