"""Exact Boltzmann sampling by enumeration: the reference every other sampler is checked against."""

from __future__ import annotations

import torch

from qbm_lite.config import torch_generator
from qbm_lite.exact import all_spin_states, check_enumerable
from qbm_lite.ising import ising_energy
from qbm_lite.samplers.base import TorchDimodSampler, check_problem

__all__ = ["ExactSampler"]


class ExactSampler(TorchDimodSampler):
    """I.i.d. samples from ``exp(-beta E) / Z`` by enumerating all ``2**n`` states (n <= 20)."""

    max_spins = 20

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._generators: dict[str, torch.Generator] = {}

    def _generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch_generator(self.seed, device)
        return self._generators[key]

    def sample_spins(
        self, h: torch.Tensor, J: torch.Tensor, num_samples: int, *, beta: float = 1.0
    ) -> torch.Tensor:
        """Draw ``num_samples`` exact samples, returned as ``(num_samples, n)`` ±1 spins."""
        check_problem(h, J, num_samples, beta)
        check_enumerable(h.shape[0], self.max_spins)
        h, J = h.detach(), (J.to_dense() if J.layout != torch.strided else J).detach()
        states = torch.as_tensor(all_spin_states(h.shape[0]), dtype=h.dtype, device=h.device)
        probs = torch.softmax(-beta * ising_energy(states, h, J).double(), dim=0)
        idx = torch.multinomial(
            probs, int(num_samples), replacement=True, generator=self._generator(h.device)
        )
        return states[idx]

    def sample(self, bqm, num_reads: int = 10, beta: float | None = None, seed=None, **kwargs):
        """dimod entry point; ``seed`` makes the draw reproducible."""
        if seed is not None:
            self._generators = {"cpu": torch_generator(seed)}
        return super().sample(bqm, num_reads=num_reads, beta=beta, **kwargs)
