"""Exact enumeration against brute-force Python loops, and its limits."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
import torch

from qbm_lite.exact import (
    MAX_EXACT_SPINS,
    ExactBoltzmann,
    all_spin_states,
    check_enumerable,
    empirical_distribution,
    index_to_spins,
    log_partition_torch,
    spins_to_index,
    total_variation,
)
from qbm_lite.ising import IsingModel, sherrington_kirkpatrick


def _random_model(n: int, seed: int) -> IsingModel:
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.normal(size=(n, n)), 1)
    return IsingModel(rng.normal(size=n), upper + upper.T, offset=rng.normal())


def _brute_force(model: IsingModel, beta: float):
    """Plain Python loops over all states: log Z, <s_i>, <s_i s_j>, energies by state tuple."""
    n, h, J = model.n, model.h, model.dense_J()
    weights, states = [], []
    for s in itertools.product([-1, 1], repeat=n):
        e = model.offset + sum(h[i] * s[i] for i in range(n))
        e += sum(J[i, j] * s[i] * s[j] for i in range(n) for j in range(i + 1, n))
        weights.append(math.exp(-beta * e))
        states.append(s)
    Z = math.fsum(weights)
    m = [math.fsum(w * s[i] for w, s in zip(weights, states, strict=True)) / Z for i in range(n)]
    C = [
        [
            math.fsum(w * s[i] * s[j] for w, s in zip(weights, states, strict=True)) / Z
            for j in range(n)
        ]
        for i in range(n)
    ]
    return math.log(Z), np.array(m), np.array(C)


@pytest.mark.parametrize(("n", "beta"), [(1, 1.0), (4, 0.3), (7, 1.0), (10, 2.0)])
def test_log_partition_marginals_correlations_match_brute_force(n, beta):
    model = _random_model(n, seed=n)
    eb = ExactBoltzmann(model)
    log_z, m, C = _brute_force(model, beta)
    assert eb.log_partition(beta) == pytest.approx(log_z, rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(eb.marginals(beta), m, atol=1e-10)
    np.testing.assert_allclose(eb.correlations(beta), C, atol=1e-10)
    p = eb.probabilities(beta)
    assert p.sum() == pytest.approx(1.0) and (p >= 0).all()
    assert eb.mean_energy(beta) == pytest.approx(p @ model.energy(all_spin_states(n)))


def test_log_partition_is_stable_at_large_beta():
    model = _random_model(8, seed=0)
    eb = ExactBoltzmann(model)
    beta = 1e4  # exp(-beta E) under/overflows; log-space must not
    assert eb.log_partition(beta) == pytest.approx(-beta * eb.ground_energy, rel=1e-9)
    assert np.isfinite(eb.probabilities(beta)).all()
    assert eb.log_partition(0.0) == pytest.approx(8 * np.log(2))


def test_energies_are_indexed_like_index_to_spins():
    model = _random_model(6, seed=1)
    eb = ExactBoltzmann(model)
    idx = np.arange(64)
    np.testing.assert_allclose(eb.energies, model.energy(index_to_spins(idx, 6)), atol=1e-12)
    np.testing.assert_array_equal(spins_to_index(index_to_spins(idx, 6)), idx)
    assert index_to_spins(0b101, 3).tolist() == [1, -1, 1]  # bit i set <=> s_i = +1


def test_ground_states_and_exact_samples():
    model = sherrington_kirkpatrick(10, seed=4)
    eb = ExactBoltzmann(model)
    gs = eb.ground_states()
    assert len(gs) == 2 and np.array_equal(gs[0], -gs[1])  # no fields: a +-s pair
    assert model.energy(gs[0]) == pytest.approx(eb.ground_energy)
    samples = eb.sample(50_000, beta=1.0, seed=0)
    tv = total_variation(empirical_distribution(samples), eb.probabilities(1.0))
    # for i.i.d. samples E[TV] <= 0.5 * sum_k sqrt(p_k / N); allow 3x
    bound = 0.5 * np.sqrt(eb.probabilities(1.0) / 50_000).sum()
    assert tv < 3 * bound
    assert np.array_equal(eb.sample(5, seed=1), eb.sample(5, seed=1))


def test_log_partition_torch_matches_and_its_gradient_is_the_marginals():
    model = _random_model(6, seed=2)
    h, J = model.to_torch(dtype=torch.float64)
    h.requires_grad_(True)
    log_z = log_partition_torch(h, J, beta=0.7)
    eb = ExactBoltzmann(model)
    # offset shifts log Z by -beta * offset
    assert float(log_z.detach()) == pytest.approx(eb.log_partition(0.7) + 0.7 * model.offset)
    log_z.backward()
    np.testing.assert_allclose(h.grad.numpy(), -0.7 * eb.marginals(0.7), atol=1e-10)


def test_twenty_spins_enumerate_quickly():
    model = sherrington_kirkpatrick(20, seed=0)
    start = time.perf_counter()
    eb = ExactBoltzmann(model)
    log_z = eb.log_partition(1.0)
    marg = eb.marginals(1.0)
    elapsed = time.perf_counter() - start
    assert np.isfinite(log_z) and np.allclose(marg, 0.0, atol=1e-9)  # no fields: <s_i> = 0
    assert elapsed < 10.0, f"n=20 enumeration took {elapsed:.1f} s; it should take ~1 s"


def test_total_variation_and_empirical_distribution():
    assert total_variation([0.5, 0.5], [1.0, 0.0]) == pytest.approx(0.5)
    states = np.array([[1, 1], [1, 1], [-1, 1], [1, -1]])
    np.testing.assert_allclose(empirical_distribution(states), [0, 0.25, 0.25, 0.5])


def test_enumeration_limits_and_bad_input():
    too_big = IsingModel(np.zeros(MAX_EXACT_SPINS + 1), np.zeros((25, 25)))
    with pytest.raises(ValueError, match="exact enumeration of n=25 spins.*n <= 24"):
        ExactBoltzmann(too_big)
    with pytest.raises(ValueError, match="the limit is n <= 24"):
        all_spin_states(30)
    with pytest.raises(ValueError, match="n <= 20"):
        log_partition_torch(torch.zeros(21), torch.zeros(21, 21))
    check_enumerable(24)  # the limit itself is allowed
    with pytest.raises(ValueError, match="beta must be a finite, non-negative"):
        ExactBoltzmann(_random_model(3, 0)).log_partition(-1.0)
    with pytest.raises(ValueError, match="beta must be a finite, non-negative"):
        ExactBoltzmann(_random_model(3, 0)).probabilities(float("nan"))
    with pytest.raises(ValueError, match="different shapes"):
        total_variation(np.ones(2) / 2, np.ones(4) / 4)
    with pytest.raises(ValueError, match="states have 3 spins but the model has 2"):
        empirical_distribution(np.ones((4, 3)), n=2)
    with pytest.raises(ValueError, match="spins must be -1 or"):
        empirical_distribution(np.zeros((4, 3)))
