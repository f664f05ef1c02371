"""Naive mean field against exact enumeration: the Gibbs-Bogoliubov bound, the KL identity,
the fixed point, and the high-temperature limit."""

from __future__ import annotations

import numpy as np
import pytest

from qbm_lite.exact import ExactBoltzmann, index_to_spins
from qbm_lite.ising import IsingModel, ferromagnet_2d, sherrington_kirkpatrick
from qbm_lite.meanfield import factorial_entropy, mean_field, mean_field_free_energy


def _sk_with_fields(n: int = 10, seed: int = 0) -> IsingModel:
    base = sherrington_kirkpatrick(n, seed=seed)
    rng = np.random.default_rng(seed)
    return IsingModel(rng.normal(0, 0.5, n), base.dense_J(), offset=0.7)


def _factorial_probs(m: np.ndarray) -> np.ndarray:
    s = index_to_spins(np.arange(2 ** len(m)), len(m)).astype(float)
    return np.prod((1 + s * m) / 2, axis=1)


@pytest.mark.parametrize("beta", [0.3, 1.0, 3.0])
def test_gibbs_bogoliubov_bound_and_kl_identity(beta):
    model = _sk_with_fields()
    eb = ExactBoltzmann(model)
    res = mean_field(model, beta)
    assert res.converged
    F = eb.free_energy(beta)
    assert res.free_energy >= F - 1e-12
    # KL(q || p) = beta (F[q] - F), by enumeration, for the solution and for an arbitrary q
    for m in (res.magnetizations, np.random.default_rng(1).uniform(-0.9, 0.9, model.n)):
        q, p = _factorial_probs(m), eb.probabilities(beta)
        kl = float(np.sum(np.where(q > 0, q * (np.log(q) - np.log(p)), 0.0)))
        assert kl == pytest.approx(beta * (mean_field_free_energy(model, m, beta) - F), abs=1e-9)


def test_solution_is_a_fixed_point_and_a_minimum_along_each_coordinate():
    model, beta = _sk_with_fields(seed=2), 1.5
    res = mean_field(model, beta, tol=1e-13)
    m, h, J = res.magnetizations, model.h, model.dense_J()
    np.testing.assert_allclose(m, np.tanh(-beta * (h + J @ m)), atol=1e-10)
    for i in range(model.n):
        for delta in (-1e-3, 1e-3):
            moved = m.copy()
            moved[i] = np.clip(moved[i] + delta, -1, 1)
            assert mean_field_free_energy(model, moved, beta) >= res.free_energy - 1e-12


def test_high_temperature_magnetizations_approach_exact_ones():
    model = _sk_with_fields(seed=3)
    eb = ExactBoltzmann(model)
    errors = []
    for beta in (0.05, 0.1, 0.2):
        m_mf = mean_field(model, beta).magnetizations
        errors.append(np.abs(m_mf - eb.marginals(beta)).max())
    # the first correction (Onsager reaction term) is O(beta^2 m): errors shrink faster than beta
    assert errors[0] < errors[1] < errors[2]
    assert errors[0] < 0.25 * errors[2]
    assert errors[0] < 1e-3


def test_ferromagnet_orders_below_the_mean_field_critical_temperature():
    # on the square lattice (4 neighbours, J = -1) mean field predicts T_c = 4 (the exact value
    # is 2.269): it overestimates ordering because it neglects fluctuations
    model = ferromagnet_2d(6)
    assert np.abs(mean_field(model, 1 / 3.5).magnetizations).mean() > 0.5
    assert np.abs(mean_field(model, 1 / 4.5).magnetizations).max() < 1e-6


def test_entropy_and_bad_input():
    assert factorial_entropy(np.zeros(3)) == pytest.approx(3 * np.log(2))
    assert factorial_entropy(np.array([1.0, -1.0])) == 0.0
    model = _sk_with_fields(4)
    with pytest.raises(ValueError, match="beta"):
        mean_field(model, 0.0)
    with pytest.raises(TypeError, match="IsingModel"):
        mean_field({"h": [0.0]}, 1.0)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        mean_field_free_energy(model, np.full(4, 2.0))
    with pytest.raises(ValueError, match="init"):
        mean_field(model, 1.0, init=np.zeros(3))
