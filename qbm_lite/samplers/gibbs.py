"""Batched Gibbs (heat-bath) and Metropolis Monte-Carlo in torch: many chains at once.

A *sweep* visits every spin once. With ``schedule="sequential"`` spins are updated one at a time;
with ``schedule="checkerboard"`` the coupling graph is coloured and all spins of one colour (which
do not interact) are updated together — two colours on a bipartite lattice, so a sweep is two
vectorized updates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import networkx as nx
import numpy as np
import torch

from qbm_lite.config import torch_generator
from qbm_lite.samplers.base import TorchDimodSampler, check_problem, random_spins

__all__ = ["GibbsSampler", "colour_classes", "gibbs_sweeps"]

Schedule = Literal["sequential", "checkerboard"]
Rule = Literal["heat-bath", "metropolis"]


def colour_classes(J: torch.Tensor) -> list[torch.Tensor]:
    """Groups of mutually uncoupled spins (a greedy graph colouring of ``J != 0``)."""
    Jd = (J.to_dense() if J.layout != torch.strided else J).detach().cpu().numpy()
    graph = nx.from_numpy_array((Jd != 0).astype(np.int8))
    colours = nx.greedy_color(graph, strategy="largest_first")
    groups: dict[int, list[int]] = {}
    for node, c in colours.items():
        groups.setdefault(c, []).append(node)
    return [torch.tensor(sorted(g), dtype=torch.long) for _, g in sorted(groups.items())]


def gibbs_sweeps(
    s: torch.Tensor,
    h: torch.Tensor,
    J: torch.Tensor,
    beta: float,
    num_sweeps: int,
    blocks: list[torch.Tensor],
    rule: Rule = "heat-bath",
    generator: torch.Generator | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Run ``num_sweeps`` sweeps over ``blocks`` on chains ``s`` ``(chains, n)``; returns ``s``."""
    s = s.clone()
    for sweep in range(num_sweeps):
        for block in blocks:
            field = h[block] + s @ J[:, block]  # local field f_i: E = s_i f_i + rest
            u = torch.rand(field.shape, generator=generator, device=s.device, dtype=s.dtype)
            if rule == "heat-bath":
                p_up = torch.sigmoid(-2.0 * beta * field)
                s[:, block] = torch.where(u < p_up, 1.0, -1.0).to(s.dtype)
            else:
                delta = -2.0 * s[:, block] * field  # energy change of flipping
                accept = u < torch.exp(-beta * delta)
                s[:, block] = torch.where(accept, -s[:, block], s[:, block])
        if callback is not None:
            callback(sweep, s)
    return s


class GibbsSampler(TorchDimodSampler):
    """Batched Markov-chain Monte-Carlo sampler for Ising models at inverse temperature ``beta``.

    Parameters
    ----------
    num_sweeps
        Sweeps per call (each of the ``num_samples`` chains returns its final state).
    schedule
        ``"sequential"`` or ``"checkerboard"`` (graph-coloured block updates).
    rule
        ``"heat-bath"`` (Gibbs) or ``"metropolis"``.
    persistent
        Keep the chains between calls and continue from them (persistent CD), when the
        number of chains and spins match.
    seed
        Seed of the sampler's own random generator.
    """

    def __init__(
        self,
        num_sweeps: int = 100,
        schedule: Schedule = "sequential",
        rule: Rule = "heat-bath",
        persistent: bool = False,
        seed: int | None = None,
    ) -> None:
        if schedule not in ("sequential", "checkerboard"):
            raise ValueError(f"schedule must be 'sequential' or 'checkerboard'; got {schedule!r}.")
        if rule not in ("heat-bath", "metropolis"):
            raise ValueError(f"rule must be 'heat-bath' or 'metropolis'; got {rule!r}.")
        if int(num_sweeps) < 1:
            raise ValueError(f"num_sweeps must be a positive integer; got {num_sweeps}.")
        self.num_sweeps = int(num_sweeps)
        self.schedule = schedule
        self.rule = rule
        self.persistent = persistent
        self.seed = seed
        self.chains: torch.Tensor | None = None
        self._generators: dict[str, torch.Generator] = {}

    def _generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch_generator(self.seed, device)
        return self._generators[key]

    def _blocks(self, J: torch.Tensor) -> list[torch.Tensor]:
        if self.schedule == "checkerboard":
            return [b.to(J.device) for b in colour_classes(J)]
        return [torch.tensor([i], device=J.device) for i in range(J.shape[0])]

    def initial_chains(self, num_chains: int, n: int, like: torch.Tensor) -> torch.Tensor:
        """Persistent chains when they fit, otherwise uniformly random ±1 states."""
        if self.persistent and self.chains is not None and self.chains.shape == (num_chains, n):
            return self.chains.to(device=like.device, dtype=like.dtype)
        return random_spins((num_chains, n), self._generator(like.device), like)

    def sample_spins(
        self,
        h: torch.Tensor,
        J: torch.Tensor,
        num_samples: int,
        *,
        beta: float = 1.0,
        callback: Callable[[int, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """Run ``num_samples`` chains for ``num_sweeps`` sweeps and return their final states."""
        check_problem(h, J, num_samples, beta)
        h, J = h.detach(), (J.to_dense() if J.layout != torch.strided else J).detach()
        s = self.initial_chains(int(num_samples), h.shape[0], h)
        s = gibbs_sweeps(
            s,
            h,
            J,
            float(beta),
            self.num_sweeps,
            self._blocks(J),
            self.rule,
            self._generator(h.device),
            callback,
        )
        if self.persistent:
            self.chains = s
        return s

    def sample(self, bqm, num_reads: int = 10, beta: float | None = None, seed=None, **kwargs):
        """dimod entry point; ``seed`` makes the draw reproducible."""
        if seed is not None:
            self._generators = {"cpu": torch_generator(seed)}
        return super().sample(bqm, num_reads=num_reads, beta=beta, **kwargs)
