"""Relaxations of binary latents: inverse CDF, moments and reparameterized gradients against
numerical integration (scipy.integrate.quad)."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from qbm_lite.vae.relaxations import Relaxation, relaxation_cdf, sample_relaxed


def _r1(z, beta):  # r(ζ | z = 1) on [0, 1]
    return beta * math.exp(beta * (z - 1)) / -math.expm1(-beta)


def _r0(z, beta):  # overlapping: r(ζ | z = 0) on [0, 1]
    return beta * math.exp(-beta * z) / -math.expm1(-beta)


def expectation(f, q, name, beta):
    """E[f(ζ)] under the relaxed mixture, by quadrature (the spike contributes f(0))."""
    up = quad(lambda z: f(z) * _r1(z, beta), 0, 1, epsabs=1e-12)[0]
    if name == "spike-exp":
        return (1 - q) * f(0.0) + q * up
    down = quad(lambda z: f(z) * _r0(z, beta), 0, 1, epsabs=1e-12)[0]
    return (1 - q) * down + q * up


NAMES = ["spike-exp", "overlapping"]


@pytest.mark.parametrize("name", NAMES)
def test_inverse_cdf_roundtrip(name):
    q = torch.tensor([0.05, 0.3, 0.5, 0.8, 0.99], dtype=torch.float64)[:, None]
    rho = torch.linspace(0.001, 0.999, 200, dtype=torch.float64)[None, :]
    zeta = sample_relaxed(q.expand(-1, 200), rho.expand(5, -1), name, beta=6.0)
    assert ((zeta >= 0) & (zeta <= 1)).all()
    cdf = relaxation_cdf(zeta, q, name, beta=6.0)
    if name == "spike-exp":
        above = rho > 1 - q  # below 1 - q all mass sits on the spike at 0
        torch.testing.assert_close(
            cdf[above.expand_as(cdf)], rho.expand_as(cdf)[above.expand_as(cdf)]
        )
        assert (zeta[~above.expand_as(zeta)] == 0).all()
    else:
        torch.testing.assert_close(cdf, rho.expand_as(cdf), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("q", [0.2, 0.7])
def test_moments_match_quadrature(name, q):
    beta = 5.0
    gen = torch.Generator().manual_seed(0)
    zeta = Relaxation(name, beta).rsample(torch.full((400_000,), q, dtype=torch.float64), gen)
    mean = expectation(lambda z: z, q, name, beta)
    second = expectation(lambda z: z * z, q, name, beta)
    var = second - mean**2
    se = math.sqrt(var / zeta.numel())
    assert abs(float(zeta.mean()) - mean) < 5 * se
    assert abs(float(zeta.var()) - var) < 0.01 * var + 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_reparameterized_gradient_matches_finite_difference(name):
    """d/dq E[f(ζ)] by the pathwise estimator equals the derivative of the exact expectation."""
    beta, q0 = 4.0, 0.4

    def f_torch(z):
        return torch.sin(3 * z) + z**2

    def f_np(z):
        return np.sin(3 * z) + z**2

    q = torch.full((400_000,), q0, dtype=torch.float64, requires_grad=True)
    zeta = Relaxation(name, beta).rsample(q, torch.Generator().manual_seed(1))
    f_torch(zeta).sum().backward()
    pathwise = float(q.grad.sum() / q.numel())
    eps = 1e-5
    exact = (expectation(f_np, q0 + eps, name, beta) - expectation(f_np, q0 - eps, name, beta)) / (
        2 * eps
    )
    assert abs(pathwise - exact) < 0.02 * abs(exact) + 5e-3


def test_large_beta_approaches_bits():
    q = torch.tensor([0.0, 1.0]).repeat(1000)
    zeta = Relaxation("overlapping", 50.0).given_bits(q)
    assert float((zeta - q).abs().mean()) < 0.03


@pytest.mark.parametrize("kwargs", [{"name": "gumbel"}, {"beta": 0.0}, {"beta": float("nan")}])
def test_bad_relaxation_settings(kwargs):
    with pytest.raises(ValueError, match="relaxation"):
        Relaxation(**kwargs)
