"""Simulated annealing from dwave-samplers (the maintained home of ``neal``), as an optimizer and
as a fixed-temperature Boltzmann sampler for the torch fast path."""

from __future__ import annotations

from typing import Any

import dimod
import numpy as np
import torch
from dwave.samplers import SimulatedAnnealingSampler

from qbm_lite.ising import IsingModel
from qbm_lite.samplers.base import DimodSamplerAdapter, check_problem

__all__ = ["AnnealingSampler", "fixed_beta_schedule"]


def fixed_beta_schedule(beta: float, num_sweeps: int, warmup: float = 0.5) -> np.ndarray:
    """A schedule that warms up geometrically from ``beta/10`` to ``beta`` and then holds it.

    The warm-up helps the chains leave their random starting states; the holding phase is
    ordinary Metropolis sampling at ``beta``, so the final states are (approximately) Boltzmann.
    """
    n_warm = int(round(warmup * num_sweeps))
    ramp = np.geomspace(beta / 10.0, beta, n_warm, endpoint=False) if n_warm else np.empty(0)
    return np.concatenate([ramp, np.full(num_sweeps - n_warm, beta)])


class AnnealingSampler:
    """dwave-samplers' ``SimulatedAnnealingSampler`` behind the torch :class:`SpinSampler` API.

    ``sample_spins(h, J, n, beta=b)`` samples at fixed inverse temperature ``b`` (after a short
    warm-up); :meth:`optimize` runs an ordinary annealing schedule to find low energies.
    Each call draws a fresh seed from the sampler's own generator, so repeated calls differ but
    a run is reproducible from ``seed``.
    """

    def __init__(self, num_sweeps: int = 1000, seed: int | None = None, warmup: float = 0.5):
        if int(num_sweeps) < 1:
            raise ValueError(f"num_sweeps must be a positive integer; got {num_sweeps}.")
        if not 0.0 <= float(warmup) < 1.0:
            raise ValueError(f"warmup must be a fraction in [0, 1); got {warmup}.")
        self.num_sweeps = int(num_sweeps)
        self.warmup = float(warmup)
        self.sampler = SimulatedAnnealingSampler()
        self._rng = np.random.default_rng(seed)

    def _seed(self) -> int:
        return int(self._rng.integers(2**31 - 1))

    def sample_spins(
        self, h: torch.Tensor, J: torch.Tensor, num_samples: int, *, beta: float = 1.0
    ) -> torch.Tensor:
        """Approximately Boltzmann samples at ``beta`` as a ``(num_samples, n)`` tensor."""
        check_problem(h, J, num_samples, beta)
        schedule = fixed_beta_schedule(beta, self.num_sweeps, self.warmup)
        adapter = DimodSamplerAdapter(
            self.sampler,
            beta_kwargs=lambda b: {"beta_schedule_type": "custom", "beta_schedule": schedule},
            seed=self._seed(),
        )
        return adapter.sample_spins(h, J, num_samples, beta=beta)

    def optimize(self, model: IsingModel, num_reads: int = 32, **kwargs: Any) -> dimod.SampleSet:
        """Anneal ``model`` with dwave-samplers' default geometric schedule.

        A model whose fields and couplings are all zero has every state as a ground state;
        dwave-samplers would warn that it cannot set a temperature range, so uniformly random
        states are returned directly.
        """
        kwargs.setdefault("num_sweeps", self.num_sweeps)
        kwargs.setdefault("seed", self._seed())
        bqm = model.to_bqm()
        if not np.any(model.h) and not (model.J != 0).sum():
            rng = np.random.default_rng(kwargs["seed"])
            spins = rng.choice(np.array([-1, 1], dtype=np.int8), size=(int(num_reads), model.n))
            return dimod.SampleSet.from_samples_bqm((spins, list(bqm.variables)), bqm)
        return self.sampler.sample(bqm, num_reads=num_reads, **kwargs)
