"""Likelihoods against scipy.stats."""

import numpy as np
import pytest
import torch
from scipy import stats

from qbm_lite.vae.likelihoods import (
    bernoulli_log_prob,
    gaussian_log_prob,
    nb_log_prob,
    zinb_log_prob,
)

rng = np.random.default_rng(0)
X = rng.integers(0, 60, size=200).astype(np.float64)
MU = rng.uniform(0.05, 40, size=200)
THETA = rng.uniform(0.1, 20, size=200)


def t(a):
    return torch.as_tensor(a, dtype=torch.float64)


def test_nb_matches_scipy():
    ref = stats.nbinom(n=THETA, p=THETA / (THETA + MU)).logpmf(X)
    np.testing.assert_allclose(
        nb_log_prob(t(X), t(MU), t(THETA)).numpy(), ref, rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("pi", [0.0, 0.3, 0.9])
def test_zinb_matches_mixture(pi):
    nb = stats.nbinom(n=THETA, p=THETA / (THETA + MU))
    x = X.copy()
    x[:50] = 0
    ref = np.log(pi * (x == 0) + (1 - pi) * nb.pmf(x))
    logit = np.log(pi / (1 - pi)) if pi > 0 else -40.0
    ours = zinb_log_prob(t(x), t(MU), t(THETA), t(np.full_like(x, logit))).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)


def test_zinb_probabilities_sum_to_one():
    k = np.arange(0, 3000, dtype=np.float64)
    lp = zinb_log_prob(
        t(k), t(np.full_like(k, 7.0)), t(np.full_like(k, 2.0)), t(np.full_like(k, 0.4))
    )
    assert abs(float(torch.logsumexp(lp, 0))) < 1e-8


def test_gaussian_matches_scipy():
    x, mean, log_var = rng.normal(size=50), rng.normal(size=50), rng.normal(size=50)
    ref = stats.norm(mean, np.exp(0.5 * log_var)).logpdf(x)
    np.testing.assert_allclose(
        gaussian_log_prob(t(x), t(mean), t(log_var)).numpy(), ref, rtol=1e-10
    )


def test_bernoulli_matches_scipy():
    x = rng.integers(0, 2, size=50).astype(float)
    logits = rng.normal(scale=3, size=50)
    ref = stats.bernoulli(1 / (1 + np.exp(-logits))).logpmf(x)
    np.testing.assert_allclose(bernoulli_log_prob(t(x), t(logits)).numpy(), ref, rtol=1e-8)


@pytest.mark.parametrize("likelihood", ["nb", "zinb"])
def test_module_fast_path_equals_reference(likelihood):
    """The training path (log-softmax mean, precomputed lgamma(x+1)) gives the same value."""
    from qbm_lite.vae.module import VAEModule

    torch.manual_seed(0)
    module = VAEModule(12, likelihood=likelihood, prior="gaussian", n_latent=3, n_hidden=8)
    x = torch.poisson(torch.rand(5, 12) * 4)
    params = module.generative(torch.randn(5, 3), None, x.sum(-1, keepdim=True))
    fast = module.log_likelihood(x, params, torch.lgamma(x + 1).sum(-1))
    if likelihood == "nb":
        ref = nb_log_prob(x, params["mu"], params["theta"]).sum(-1)
    else:
        ref = zinb_log_prob(x, params["mu"], params["theta"], params["pi_logits"]).sum(-1)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-4)
