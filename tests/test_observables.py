"""Observables against exact enumeration, closed forms and direct (non-FFT) computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qbm_lite.exact import ExactBoltzmann, all_spin_states
from qbm_lite.ising import ferromagnet_2d
from qbm_lite.observables import (
    ONSAGER_TC,
    autocorrelation,
    binder_cumulant,
    effective_sample_size,
    heat_capacity,
    integrated_autocorrelation_time,
    magnetization,
    onsager_magnetization,
    overlap_autocorrelation,
    sample_trace,
    susceptibility,
    temperature_scan,
)
from qbm_lite.samplers import GibbsSampler


def _exact_abs_m_and_chi(L: int, beta: float) -> tuple[float, float]:
    """``<|m|>`` and ``beta n (<m^2> - <|m|>^2)`` by enumerating every state of an L x L lattice."""
    model = ferromagnet_2d(L)
    p = ExactBoltzmann(model).probabilities(beta)
    m = np.abs(all_spin_states(model.n).astype(np.float64).mean(axis=1))
    mean = p @ m
    return float(mean), float(beta * model.n * (p @ m**2 - mean**2))


def test_magnetization_and_binder_by_hand():
    s = np.array([[1, 1, 1, -1], [-1, -1, -1, -1]])
    np.testing.assert_allclose(magnetization(s), [0.5, -1.0])
    np.testing.assert_allclose(magnetization(torch.as_tensor(s), absolute=True), [0.5, 1.0])
    assert binder_cumulant(np.ones((10, 4))) == pytest.approx(2 / 3)
    gauss_like = np.where(np.random.default_rng(0).random((20000, 400)) < 0.5, -1, 1)
    assert abs(binder_cumulant(gauss_like)) < 0.05  # independent spins: m is ~Gaussian, U ~ 0
    with pytest.raises(ValueError, match="undefined"):
        binder_cumulant(np.array([[1, -1]]))


def test_susceptibility_and_heat_capacity_match_exact_fluctuations():
    model = ferromagnet_2d(3)
    eb = ExactBoltzmann(model)
    beta = 0.4
    samples = eb.sample(200_000, beta, seed=0)
    # exact susceptibility with the signed mean (zero by symmetry): beta n <m^2>
    p, states = eb.probabilities(beta), all_spin_states(9).astype(np.float64)
    chi_exact = beta * 9 * (p @ states.mean(axis=1) ** 2)
    assert susceptibility(samples, beta, absolute=False) == pytest.approx(chi_exact, rel=0.03)
    # heat capacity: beta^2 Var(E) / n = -beta^2 d<E>/dbeta / n (finite difference of the exact <E>)
    d = 1e-5
    c_exact = -(beta**2) * (eb.mean_energy(beta + d) - eb.mean_energy(beta - d)) / (2 * d) / 9
    c_sampled = heat_capacity(model.energy(samples), beta, 9)
    assert c_sampled == pytest.approx(c_exact, rel=0.03)
    with pytest.raises(ValueError, match="beta must be"):
        susceptibility(samples, -1.0)
    with pytest.raises(ValueError, match="number of spins"):
        heat_capacity(np.ones(3), 1.0, 0)


def test_autocorrelation_matches_direct_sum_and_ar1_theory():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    rho = autocorrelation(x, max_lag=20)
    xc = x - x.mean(axis=0)
    direct = np.array([(xc[: 300 - t] * xc[t:]).sum() / 300 / 3 for t in range(21)])
    np.testing.assert_allclose(rho, direct / direct[0], atol=1e-12)
    # AR(1): rho(t) = phi^t, tau = (1 + phi) / (1 - phi)
    phi, T, chains = 0.8, 20_000, 8
    noise = rng.normal(size=(T, chains))
    ar = np.zeros((T, chains))
    for t in range(1, T):
        ar[t] = phi * ar[t - 1] + noise[t]
    np.testing.assert_allclose(autocorrelation(ar, 5), phi ** np.arange(6), atol=0.02)
    assert integrated_autocorrelation_time(ar) == pytest.approx((1 + phi) / (1 - phi), rel=0.1)
    assert effective_sample_size(ar) == pytest.approx(T * chains / 9.0, rel=0.1)
    assert integrated_autocorrelation_time(rng.normal(size=5000)) == pytest.approx(1.0, abs=0.15)
    with pytest.raises(ValueError, match="constant"):
        autocorrelation(np.ones(10))
    with pytest.raises(ValueError, match="max_lag"):
        autocorrelation(np.arange(10.0), max_lag=10)


def test_onsager_constants():
    assert ONSAGER_TC == pytest.approx(2.269185314, rel=1e-9)
    m = onsager_magnetization(np.array([1.0, 2.0, ONSAGER_TC * 0.999, ONSAGER_TC, 3.0]))
    assert m[0] == pytest.approx(0.99928, abs=1e-4) and m[1] == pytest.approx(0.91132, abs=1e-4)
    assert 0 < m[2] < 0.6 and m[3] == 0 and m[4] == 0
    with pytest.raises(ValueError, match="positive"):
        onsager_magnetization(0.0)


def test_sample_trace_shape_and_decorrelation():
    model = ferromagnet_2d(4)
    h, J = model.to_torch()
    sampler = GibbsSampler(200, schedule="checkerboard", seed=0)
    trace, final = sample_trace(sampler, h, J, 16, 0.2, lambda s: s.mean(dim=1))
    assert trace.shape == (200, 16) and final.shape == (16, 16)
    np.testing.assert_allclose(trace[-1], final.mean(dim=1).numpy())
    assert integrated_autocorrelation_time(trace) < 3  # high temperature: fast decorrelation


def test_temperature_scan_matches_exact_enumeration_on_4x4():
    temps = np.array([1.5, ONSAGER_TC, 4.0])
    threads_before = torch.get_num_threads()
    scan = temperature_scan(
        ferromagnet_2d(4), temps, num_chains=64, num_sweeps=400, burn_in=100, seed=0, progress=False
    )
    assert torch.get_num_threads() == threads_before  # the scan restores the caller's setting
    assert scan.snapshots.shape == (3, 16)
    for k, T in enumerate(temps):
        m_exact, chi_exact = _exact_abs_m_and_chi(4, 1.0 / T)
        assert scan.abs_magnetization[k] == pytest.approx(
            m_exact, abs=4 * scan.abs_magnetization_err[k] + 0.01
        )
        assert scan.susceptibility[k] == pytest.approx(chi_exact, rel=0.2, abs=0.05)
        # the jackknife error bar covers the exact value (and is not absurdly wide)
        assert abs(scan.susceptibility[k] - chi_exact) < 4 * scan.susceptibility_err[k] + 0.01
        assert 0 < scan.susceptibility_err[k] < 0.3 * scan.susceptibility[k] + 0.05
    assert scan.abs_magnetization[0] > 0.9 > 0.5 > scan.abs_magnetization[2]
    with pytest.raises(ValueError, match="positive numbers"):
        temperature_scan(ferromagnet_2d(4), [1.0, -1.0], progress=False)
    with pytest.raises(ValueError, match="start must be"):
        temperature_scan(ferromagnet_2d(4), [1.0], start="cold", progress=False)


def test_overlap_autocorrelation():
    rng = np.random.default_rng(0)
    frozen = np.repeat(np.where(rng.random((1, 8, 50)) < 0.5, -1, 1), 10, axis=0)
    np.testing.assert_allclose(overlap_autocorrelation(frozen), np.ones(10))
    iid = np.where(rng.random((10, 200, 50)) < 0.5, -1, 1)
    q = overlap_autocorrelation(torch.as_tensor(iid))
    assert q[0] == 1.0 and np.abs(q[1:]).max() < 0.02
    with pytest.raises(ValueError, match="shape \\(T, chains, n\\)"):
        overlap_autocorrelation(np.ones((3, 4)))


def _ar1(rng: np.random.Generator, phi: float, T: int, chains: int) -> np.ndarray:
    noise = rng.normal(size=(T, chains))
    x = np.zeros((T, chains))
    x[0] = noise[0] / np.sqrt(1 - phi**2)  # stationary start
    for t in range(1, T):
        x[t] = phi * x[t - 1] + noise[t]
    return x


def test_madras_sokal_error_matches_the_spread_over_replicates():
    rng = np.random.default_rng(5)
    phi = 0.9  # tau = 19
    results = [
        integrated_autocorrelation_time(_ar1(rng, phi, 2000, 4), return_error=True)
        for _ in range(60)
    ]
    taus, errs = np.array(results).T
    assert taus.mean() == pytest.approx((1 + phi) / (1 - phi), rel=0.1)
    # the predicted error agrees with the observed spread within a factor 1.5
    assert 1 / 1.5 < errs.mean() / taus.std(ddof=1) < 1.5
    assert integrated_autocorrelation_time(_ar1(rng, phi, 2000, 4)) == pytest.approx(
        integrated_autocorrelation_time(_ar1(rng, phi, 2000, 4), return_error=True)[0], rel=0.5
    )


def test_jackknife_susceptibility_error_matches_the_spread_over_replicates():
    from qbm_lite.observables import _jackknife_susceptibility_error

    rng = np.random.default_rng(6)
    beta, n, chis, errs = 0.5, 16, [], []
    for _ in range(200):
        m = np.abs(0.3 + 0.2 * _ar1(rng, 0.8, 100, 32))  # correlated |m| traces, 32 chains
        chis.append(beta * n * (np.mean(m**2) - m.mean() ** 2))
        errs.append(_jackknife_susceptibility_error(m, beta, n))
    assert 1 / 1.3 < np.mean(errs) / np.std(chis, ddof=1) < 1.3
