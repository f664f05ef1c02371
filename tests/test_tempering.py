"""Parallel tempering against exact enumeration, and where it beats plain Gibbs sampling.

Tolerances follow tests/test_samplers.py: a sampler's total-variation distance (TV) to the exact
distribution must be within 1.5x the largest TV of several i.i.d. exact samples of the same size,
and the tolerance is shown to reject exact samples at a 20 % wrong temperature.
"""

from __future__ import annotations

import dimod
import dimod.testing
import numpy as np
import pytest
import torch

import qbm_lite
from qbm_lite.exact import ExactBoltzmann, empirical_distribution, index_to_spins, total_variation
from qbm_lite.ising import IsingModel, sherrington_kirkpatrick
from qbm_lite.samplers import GibbsSampler, ParallelTemperingSampler
from qbm_lite.samplers.tempering import geometric_ladder

NUM_SAMPLES = 10_000


def _tolerance(eb: ExactBoltzmann, beta: float, num_samples: int, reps: int = 6) -> float:
    p = eb.probabilities(beta)
    tvs = [
        total_variation(empirical_distribution(eb.sample(num_samples, beta, seed=k), eb.model.n), p)
        for k in range(reps)
    ]
    return 1.5 * max(tvs)


def _tv(model: IsingModel, spins: torch.Tensor, beta: float) -> float:
    p = ExactBoltzmann(model).probabilities(beta)
    return total_variation(empirical_distribution(spins.numpy(), model.n), p)


def _two_valleys(n: int = 10, coupling: float = 1.0, field: float = 0.15) -> IsingModel:
    """A fully connected ferromagnet with a weak field: two deep valleys of unequal weight."""
    J = -coupling * (np.ones((n, n)) - np.eye(n)) / 2
    return IsingModel(np.full(n, -field), J)


@pytest.mark.parametrize("beta", [0.5, 1.5])
def test_parallel_tempering_matches_exact_distribution(beta):
    model = sherrington_kirkpatrick(9, seed=3)
    rng = np.random.default_rng(0)
    model = IsingModel(rng.normal(0, 0.3, 9), model.dense_J() * 1.5)
    eb = ExactBoltzmann(model)
    h, J = model.to_torch(dtype=torch.float64)
    pt = ParallelTemperingSampler(num_sweeps=60, num_replicas=5, beta_min_ratio=0.2, seed=1)
    spins = pt.sample_spins(h, J, NUM_SAMPLES, beta=beta)
    assert spins.shape == (NUM_SAMPLES, 9) and set(spins.unique().tolist()) == {-1.0, 1.0}
    tol = _tolerance(eb, beta, NUM_SAMPLES)
    assert _tv(model, spins, beta) < tol
    # the tolerance has power: exact samples at a 20 % wrong temperature are rejected
    wrong = eb.sample(NUM_SAMPLES, beta * 1.2, seed=99)
    assert total_variation(empirical_distribution(wrong, 9), eb.probabilities(beta)) > tol
    assert pt.swap_acceptance.shape == (4,) and np.all(pt.swap_acceptance > 0.05)


def test_parallel_tempering_crosses_a_barrier_that_traps_gibbs():
    model, beta = _two_valleys(), 1.0
    eb = ExactBoltzmann(model)
    h, J = model.to_torch(dtype=torch.float64)
    # the exact weight of the valley with m > 0 (favoured by the field)
    p = eb.probabilities(beta)
    m_states = index_to_spins(np.arange(2**model.n), model.n).sum(1)
    p_plus = p[m_states > 0].sum() / p[m_states != 0].sum()
    assert p_plus > 0.95
    ladder = geometric_ladder(8, 0.1)
    pt = ParallelTemperingSampler(num_sweeps=30, ladder=ladder, seed=0)
    gibbs = GibbsSampler(num_sweeps=30 * 8, seed=0)  # the same number of spin updates
    frac = {}
    for name, sampler in (("pt", pt), ("gibbs", gibbs)):
        m = sampler.sample_spins(h, J, 4000, beta=beta).sum(1)
        frac[name] = float((m > 0).sum() / (m != 0).sum())
    # Gibbs chains stay in the valley their random start fell into (about half each way)
    assert abs(frac["gibbs"] - 0.5) < 0.15, frac
    assert abs(frac["pt"] - p_plus) < 0.03, (frac, p_plus)


def test_single_replica_is_gibbs_and_persistence_continues():
    model = sherrington_kirkpatrick(6, seed=0)
    h, J = model.to_torch(dtype=torch.float64)
    pt = ParallelTemperingSampler(num_sweeps=30, num_replicas=1, persistent=True, seed=2)
    s = pt.sample_spins(h, J, 5000, beta=1.0)
    assert _tv(model, s, 1.0) < _tolerance(ExactBoltzmann(model), 1.0, 5000)
    first = pt.replicas.clone()
    seen = []
    pt.sample_spins(h, J, 5000, beta=1.0, callback=lambda k, cold: seen.append((k, cold.shape)))
    assert seen == [(k, (5000, 6)) for k in range(30)]
    first = pt.replicas.clone()
    pt.num_sweeps = 1
    pt.sample_spins(h, J, 5000, beta=1.0)
    # one more sweep from the stored replicas changes only part of them
    assert 0.0 < float((pt.replicas != first).double().mean()) < 0.6


def test_dimod_interface_and_top_level_export():
    assert qbm_lite.ParallelTemperingSampler is ParallelTemperingSampler
    bqm = dimod.BQM.from_ising({0: 0.3, 1: -0.2, 2: 0.0}, {(0, 1): -1.0, (1, 2): 0.5})
    sampler = ParallelTemperingSampler(num_sweeps=5, num_replicas=3)
    ss = sampler.sample(bqm, num_reads=7, beta=1.0, seed=0)
    dimod.testing.assert_sampleset_energies(ss, bqm)
    assert len(ss) == 7
    ss2 = sampler.sample(bqm, num_reads=7, beta=1.0, seed=0)
    assert np.array_equal(ss.record.sample, ss2.record.sample)
    binary = sampler.sample(dimod.BQM.from_qubo({(0, 1): 1.0, (0, 0): -1.0}), num_reads=3, seed=1)
    assert binary.vartype is dimod.BINARY


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="num_sweeps"):
        ParallelTemperingSampler(num_sweeps=0)
    with pytest.raises(ValueError, match="beta_min_ratio"):
        ParallelTemperingSampler(beta_min_ratio=0.0)
    with pytest.raises(ValueError, match="ending at 1.0"):
        ParallelTemperingSampler(ladder=[0.5, 0.8])
    with pytest.raises(ValueError, match="increasing"):
        ParallelTemperingSampler(ladder=[0.8, 0.5, 1.0])
    with pytest.raises(ValueError, match="num_replicas"):
        ParallelTemperingSampler(num_replicas=0)
    h, J = torch.zeros(3), torch.zeros(3, 3)
    with pytest.raises(ValueError, match="beta"):
        ParallelTemperingSampler().sample_spins(h, J, 4, beta=-1.0)
