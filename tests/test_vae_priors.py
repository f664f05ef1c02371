"""The Boltzmann prior's KL and its gradient against exact enumeration (core acceptance test)."""

import itertools

import pytest
import torch

from qbm_lite.exact import all_spin_states
from qbm_lite.samplers import ExactSampler
from qbm_lite.vae.priors import BoltzmannPrior, GaussianPrior, bernoulli_entropy

torch.set_default_dtype(torch.float32)


def _prior(n: int, seed: int = 0) -> BoltzmannPrior:
    gen = torch.Generator().manual_seed(seed)
    prior = BoltzmannPrior(n, ExactSampler(seed=seed), num_negative=200_000).double()
    with torch.no_grad():
        prior.h.copy_(torch.randn(n, generator=gen, dtype=torch.float64))
        prior.J_upper.copy_(
            0.5 * torch.randn(prior.J_upper.shape, generator=gen, dtype=torch.float64)
        )
    return prior


def exact_kl(logits: torch.Tensor, h: torch.Tensor, J: torch.Tensor) -> torch.Tensor:
    """KL(q || p) per row by summing over all 2**n bit vectors (independent reference)."""
    n = h.shape[0]
    s = torch.as_tensor(all_spin_states(n), dtype=torch.float64)
    bits = (s + 1) / 2
    energy = s @ h + 0.5 * ((s @ J) * s).sum(-1)
    log_p = -energy - torch.logsumexp(-energy, 0)
    log_q = (
        bits @ torch.nn.functional.logsigmoid(logits).T
        + (1 - bits) @ torch.nn.functional.logsigmoid(-logits).T
    )
    q = torch.exp(log_q)  # (2**n, batch)
    return (q * (log_q - log_p[:, None])).sum(0)


def test_coupling_matrix_is_symmetric_with_zero_diagonal():
    prior = _prior(5)
    J = prior.J
    assert torch.equal(J, J.T)
    assert torch.all(torch.diagonal(J) == 0)
    iu = torch.triu_indices(5, 5, 1)
    assert torch.equal(J[iu[0], iu[1]], prior.J_upper)


@pytest.mark.parametrize("n", [4, 6])
def test_kl_value_matches_enumeration(n):
    prior = _prior(n, seed=n)
    logits = torch.randn(3, n, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2
    ours = prior.kl(logits)  # exact log Z
    ref = exact_kl(logits, prior.h, prior.J)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    assert (ours >= 0).all()
    # In training mode (negative phase given) the value still includes the exact log Z.
    neg = prior.negative_phase(1000)
    torch.testing.assert_close(prior.kl(logits, neg), ref, rtol=1e-10, atol=1e-10)


def _grads(kl_fn, prior, logits):
    logits = logits.clone().requires_grad_(True)
    loss = kl_fn(logits).sum()
    gh, gJ, gl = torch.autograd.grad(loss, [prior.h, prior.J_upper, logits])
    return gh, gJ, gl


@pytest.mark.parametrize("n", [4, 5, 6])
def test_kl_gradient_with_exact_negative_phase_matches_enumeration(n):
    """The training loss's gradient (sampled negative phase) equals the exact KL gradient.

    A sign error in the negative phase (adding the samples' energy instead of subtracting it)
    would be off by 2 E_p[dE/dθ], far outside the tolerance; the test checks that too.
    """
    torch.manual_seed(n)
    prior = _prior(n, seed=10 + n)
    logits = torch.randn(8, n, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    neg = prior.negative_phase()  # 200k exact samples

    ref = _grads(lambda lg: exact_kl(lg, prior.h, prior.J), prior, logits)
    ours = _grads(lambda lg: prior.kl(lg, neg), prior, logits)
    # Encoder gradient does not involve sampling: exact up to rounding.
    torch.testing.assert_close(ours[2], ref[2], rtol=1e-9, atol=1e-9)
    # Prior gradients carry Monte-Carlo error ~ 8 cells x 1/sqrt(200k) ~ 0.018 at most.
    torch.testing.assert_close(ours[0], ref[0], rtol=0, atol=0.06)
    torch.testing.assert_close(ours[1], ref[1], rtol=0, atol=0.06)

    def wrong_sign(lg):
        cross = prior.expected_energy(torch.sigmoid(lg)) - bernoulli_entropy(lg)
        return cross + prior.energy(neg).mean()  # the public implementation's sign error

    bad = _grads(wrong_sign, prior, logits)
    assert (bad[0] - ref[0]).abs().max() > 0.5
    assert (bad[1] - ref[1]).abs().max() > 0.5


def test_expected_energy_is_exact_for_factorial_q():
    prior = _prior(4, seed=3)
    q = torch.tensor([[0.1, 0.7, 0.5, 0.95]], dtype=torch.float64)
    total = 0.0
    for bits in itertools.product([0, 1], repeat=4):
        b = torch.tensor(bits, dtype=torch.float64)
        prob = torch.prod(torch.where(b > 0, q[0], 1 - q[0]))
        total += prob * prior.energy(2 * b - 1)
    torch.testing.assert_close(prior.expected_energy(q)[0], total)


def test_log_prob_normalizes():
    prior = _prior(5, seed=4)
    s = torch.as_tensor(all_spin_states(5), dtype=torch.float64)
    torch.testing.assert_close(
        torch.logsumexp(prior.log_prob(s), 0), torch.tensor(0.0, dtype=torch.float64)
    )


def test_gaussian_kl_matches_torch_distributions():
    from torch.distributions import Normal, kl_divergence

    mu = torch.randn(5, 3)
    log_var = torch.randn(5, 3)
    ref = kl_divergence(Normal(mu, torch.exp(0.5 * log_var)), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(GaussianPrior(3).kl(mu, log_var), ref, rtol=1e-5, atol=1e-5)


def test_bad_sampler_is_rejected():
    with pytest.raises(TypeError, match="sample_spins"):
        BoltzmannPrior(4, sampler=object())


def test_training_loss_gradient_for_the_prior_matches_exact_kl():
    """The full module's loss (encoder, relaxation, decoder, KL) gives the prior's parameters the
    gradient of the exact mean KL: the reconstruction term does not involve them."""
    from qbm_lite.vae.module import VAEModule

    torch.manual_seed(0)
    n = 5
    module = VAEModule(
        12,
        likelihood="bernoulli",
        prior="boltzmann",
        sampler=ExactSampler(seed=0),
        n_latent=n,
        n_hidden=8,
        num_negative=200_000,
    ).double()
    module.eval()  # no dropout: the logits are deterministic
    with torch.no_grad():
        module.prior.h.copy_(torch.randn(n, dtype=torch.float64))
        module.prior.J_upper.copy_(0.5 * torch.randn(n * (n - 1) // 2, dtype=torch.float64))
    x = torch.bernoulli(torch.full((6, 12), 0.4, dtype=torch.float64))
    neg = module.prior.negative_phase()
    loss = module.loss(x, negative=neg).loss
    gh, gJ = torch.autograd.grad(loss, [module.prior.h, module.prior.J_upper])
    logits = module.inference(x, sample=False)["logits"].detach()
    ref = exact_kl(logits, module.prior.h, module.prior.J).mean()
    rh, rJ = torch.autograd.grad(ref, [module.prior.h, module.prior.J_upper])
    torch.testing.assert_close(gh, rh, rtol=0, atol=0.01)
    torch.testing.assert_close(gJ, rJ, rtol=0, atol=0.01)
