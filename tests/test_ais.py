"""Annealed importance sampling against exact log partition functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qbm_lite.ais import AISResult, ais_ising, ais_rbm, beta_schedule
from qbm_lite.boltzmann import RBM, BoltzmannMachine
from qbm_lite.exact import ExactBoltzmann
from qbm_lite.ising import IsingModel, sherrington_kirkpatrick


def test_rbm_ais_agrees_with_exact_within_its_error():
    # 12 visible + 4 hidden units (16 in all), weights large enough to make the landscape rugged
    gen = torch.Generator().manual_seed(0)
    rbm = RBM(12, 4)
    with torch.no_grad():
        rbm.W.copy_(1.0 * torch.randn(12, 4, generator=gen))
        rbm.visible_bias.copy_(0.5 * torch.randn(12, generator=gen))
        rbm.hidden_bias.copy_(0.5 * torch.randn(4, generator=gen))
    exact = rbm.log_partition("exact")
    res = rbm.ais(num_chains=300, num_betas=1000, seed=0)
    assert isinstance(res, AISResult) and res.num_chains == 300
    assert 0 < res.std_err < 0.1
    assert abs(res.log_z - exact) <= 3 * res.std_err + 1e-3, (res, exact)
    low, high = res.interval(3.0)
    assert low <= exact <= high + 1e-3
    assert rbm.log_partition("ais", num_chains=300, num_betas=1000, seed=0) == res.log_z


def test_rbm_ais_with_data_base_rates_and_few_temperatures():
    gen = torch.Generator().manual_seed(1)
    W = torch.randn(14, 2, generator=gen, dtype=torch.float64)
    a = torch.randn(14, generator=gen, dtype=torch.float64)
    b = torch.zeros(2, dtype=torch.float64)
    rbm = RBM(14, 2).double()
    with torch.no_grad():
        rbm.W.copy_(W), rbm.visible_bias.copy_(a), rbm.hidden_bias.copy_(b)
    exact = rbm.log_partition("exact")
    # base model = the visible biases themselves: p_0 is already close, few steps suffice
    res = ais_rbm(W, a, b, base_visible_bias=a, num_chains=500, num_betas=100, seed=3)
    assert abs(res.log_z - exact) <= 3 * res.std_err + 1e-3
    # with only two temperatures AIS is plain importance sampling from the base: a larger error
    crude = ais_rbm(W, a, b, num_chains=500, num_betas=2, seed=3)
    assert crude.std_err > res.std_err
    assert res.effective_sample_size > crude.effective_sample_size


def test_ising_ais_agrees_with_exact_on_sk_model():
    model = sherrington_kirkpatrick(14, seed=0)
    rng = np.random.default_rng(0)
    model = IsingModel(0.3 * rng.standard_normal(14), 1.5 * model.dense_J())
    h, J = model.to_torch(dtype=torch.float64)
    exact = ExactBoltzmann(model).log_partition()
    res = ais_ising(h, J, num_chains=200, num_betas=400, seed=0)
    assert abs(res.log_z - exact) <= 3 * res.std_err + 1e-3, (res, exact)
    assert res.log_z0 == pytest.approx(float(np.logaddexp(h.numpy(), -h.numpy()).sum()))
    bm = BoltzmannMachine.from_ising(h, J)
    assert bm.ais(num_chains=200, num_betas=400, seed=0).log_z == pytest.approx(res.log_z)


def test_ais_is_exact_for_independent_units():
    # no couplings: every weight is 1, so the estimate is exact with zero spread
    h = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    res = ais_ising(h, torch.zeros(3, 3, dtype=torch.float64), num_chains=10, num_betas=5)
    assert res.log_z == pytest.approx(float(np.log(2 * np.cosh(h.numpy())).sum()))
    assert res.std_err == pytest.approx(0.0, abs=1e-12)


def test_beta_schedule_and_bad_arguments():
    betas = beta_schedule(50)
    assert betas[0] == 0.0 and betas[-1] == pytest.approx(1.0) and np.all(np.diff(betas) > 0)
    with pytest.raises(ValueError, match="num_betas"):
        beta_schedule(1)
    with pytest.raises(ValueError, match="num_chains"):
        ais_ising(torch.zeros(3), torch.zeros(3, 3), num_chains=1)
    with pytest.raises(ValueError, match="hidden_bias"):
        ais_rbm(torch.zeros(4, 2), torch.zeros(4), torch.zeros(3))
    with pytest.raises(ValueError, match="J must have shape"):
        ais_ising(torch.zeros(3), torch.zeros(3, 4))
