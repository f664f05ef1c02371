"""Timed optimizer runs for fair comparisons: simulated annealing against the simulated CIM.

Both runners start from the same :class:`~qbm_lite.ising.IsingModel` and their timers include
every conversion the solver needs (``to_bqm`` and reading the ``SampleSet`` back in column order
for dwave-samplers' SA; ``to_torch`` for the CIM), so that neither is charged less than a user
would pay. Used by Chapter 2 and ``benchmarks/sampler_bench.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from dwave.samplers import SimulatedAnnealingSampler

from qbm_lite.ising import IsingModel
from qbm_lite.samplers.cim import SimulatedCIMSampler

__all__ = ["TimedRun", "run_annealing", "run_cim", "time_to_target"]


@dataclass
class TimedRun:
    """One timed run: spins ``(reads, n)`` in the model's column order, wall and CPU seconds."""

    spins: np.ndarray
    wall: float
    cpu: float

    def energies(self, model: IsingModel) -> np.ndarray:
        """Energy of every read."""
        return np.asarray(model.energy(self.spins), dtype=np.float64)


def _timed(fn: Callable[[], np.ndarray]) -> TimedRun:
    t0, c0 = time.perf_counter(), time.process_time()
    spins = fn()
    return TimedRun(np.asarray(spins), time.perf_counter() - t0, time.process_time() - c0)


def run_annealing(
    model: IsingModel, num_sweeps: int, num_reads: int = 32, seed: int = 0
) -> TimedRun:
    """dwave-samplers' SA (default geometric schedule) on ``model``, conversions included."""

    def run() -> np.ndarray:
        ss = SimulatedAnnealingSampler().sample(
            model.to_bqm(), num_reads=num_reads, num_sweeps=num_sweeps, seed=seed
        )
        return ss.record.sample[:, [ss.variables.index(i) for i in range(model.n)]]

    return _timed(run)


def run_cim(
    model: IsingModel,
    sampler: SimulatedCIMSampler,
    num_steps: int | None = None,
    num_reads: int = 32,
) -> TimedRun:
    """The CIM optimizer on ``model`` (``num_steps=None``: its default), conversion included."""

    def run() -> np.ndarray:
        h, J = model.to_torch()
        return sampler.optimize_spins(h, J, num_reads, num_steps=num_steps).numpy()

    return _timed(run)


def time_to_target(
    ladder: Sequence[tuple[int, float, TimedRun]], target: float
) -> tuple[int, TimedRun, float] | None:
    """The first rung of ``(budget, median energy, run)`` whose median reaches ``target``.

    Returns ``(budget, run, cumulative_wall)``, where ``cumulative_wall`` adds the wall time of
    every shorter rung (what a user who does not know the right budget pays), or ``None`` when
    no rung reaches the target ("not reached"). Lower energies are better.
    """
    total = 0.0
    for budget, median, run in ladder:
        total += run.wall
        if median <= target + 1e-9 * max(1.0, abs(target)):
            return budget, run, total
    return None
