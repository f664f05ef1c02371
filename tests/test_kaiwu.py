"""The Kaiwu (real CIM) adapter, tested with a stand-in solver over exact enumeration."""

from __future__ import annotations

import sys

import dimod
import dimod.testing
import numpy as np
import pytest
import torch

from qbm_lite.exact import ExactBoltzmann, all_spin_states, empirical_distribution, total_variation
from qbm_lite.ising import IsingModel
from qbm_lite.samplers import SpinSampler
from qbm_lite.samplers.cim import spin_glass
from qbm_lite.samplers.kaiwu import (
    EnumerationIsingSolver,
    KaiwuSampler,
    from_kaiwu_solutions,
    kaiwu_cim_optimizer,
    reduce_precision,
    to_kaiwu_matrix,
)


def test_kaiwu_matrix_reproduces_dimod_energies():
    model = spin_glass(6, seed=0, field_std=0.5)
    M = to_kaiwu_matrix(model.h, model.dense_J())
    states = all_spin_states(6).astype(float)
    for aux in (1.0, -1.0):
        sigma = np.hstack([states * aux, np.full((64, 1), aux)])  # global flip: same energy
        H = -np.einsum("ki,ij,kj->k", sigma, M, sigma)
        np.testing.assert_allclose(H, model.energy(states), atol=1e-12)
    np.testing.assert_array_equal(
        from_kaiwu_solutions(-np.hstack([states, np.ones((64, 1))]), 6), states
    )


def test_adapter_finds_ground_states_through_the_stand_in():
    model = spin_glass(10, seed=3, field_std=0.4)
    sampler = KaiwuSampler(EnumerationIsingSolver(num_solutions=4, seed=0), precision_bits=None)
    assert isinstance(sampler, SpinSampler) and isinstance(sampler, dimod.Sampler)
    ss = sampler.sample(model.to_bqm(), num_reads=9)
    dimod.testing.assert_sampleset_energies(ss, model.to_bqm())
    assert len(ss) == 9
    assert ss.record.energy.max() == pytest.approx(ExactBoltzmann(model).ground_energy)
    Q, _ = model.to_qubo()  # a BINARY problem comes back in 0/1
    ssq = sampler.sample_qubo({(i, j): Q[i, j] for i, j in zip(*np.nonzero(Q), strict=True)})
    assert ssq.vartype is dimod.BINARY


def test_adapter_keeps_the_boltzmann_distribution_of_the_stand_in():
    """A stand-in sampling exp(-b H) of the unrounded matrix gives exp(-b E) on the problem."""
    model = spin_glass(8, seed=5, field_std=0.3)
    h, J = model.to_torch(dtype=torch.float64)
    solver = EnumerationIsingSolver(num_solutions=5000, beta=0.8, seed=1)
    s = KaiwuSampler(solver, precision_bits=None).sample_spins(h, J, 20_000)
    assert s.dtype == torch.float64 and s.shape == (20_000, 8)
    p = ExactBoltzmann(model).probabilities(0.8)
    assert total_variation(empirical_distribution(s.numpy()), p) < 0.05


def test_precision_reduction_to_8_bits():
    M = np.array([[0, 0.22, 0.198], [0.22, 0, 0.197], [0.198, 0.197, 0]])
    M_int, factor = reduce_precision(M)
    np.testing.assert_array_equal(M_int, [[0, 127, 114], [127, 0, 114], [114, 114, 0]])
    assert factor == pytest.approx(127 / 0.22)
    with pytest.warns(UserWarning, match="erased 1 couplings"):
        reduce_precision(np.array([[0, 0.001, 1.0], [0.001, 0, 1.0], [1.0, 1.0, 0]]))
    # an 8-bit device still solves a problem whose coefficients it represents exactly
    model = IsingModel([1.0, 0.0, -2.0], [[0, 2.0, -1.0], [2.0, 0, 1.0], [-1.0, 1.0, 0]])
    ss = KaiwuSampler(EnumerationIsingSolver(seed=0)).sample(model.to_bqm(), num_reads=3)
    assert ss.first.energy == pytest.approx(ExactBoltzmann(model).ground_energy)


def test_bad_solvers_and_outputs_get_clear_errors():
    with pytest.raises(TypeError, match="solve"):
        KaiwuSampler(object())
    with pytest.raises(ValueError, match="precision_bits"):
        KaiwuSampler(EnumerationIsingSolver(), precision_bits=1)

    class Wrong:
        def solve(self, M):
            return np.ones((2, M.shape[0] - 1))

    h, J = spin_glass(4, seed=0).to_torch()
    with pytest.raises(ValueError, match="expected \\(k, 5\\)"):
        KaiwuSampler(Wrong()).sample_spins(h, J, 2)

    class Empty:
        def solve(self, M):
            return np.empty((0, M.shape[0]))

    with pytest.raises(RuntimeError, match="max_calls"):
        KaiwuSampler(Empty(), max_calls=3).sample_spins(h, J, 2)


def test_kaiwu_is_imported_lazily(monkeypatch):
    monkeypatch.setitem(sys.modules, "kaiwu", None)  # as if not installed
    with pytest.raises(ImportError, match="pip install kaiwu"):
        kaiwu_cim_optimizer()
