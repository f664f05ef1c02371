"""Observation models ``log p(x | decoder output)``, each summed over features.

- ``"nb"``: negative binomial with mean ``μ = ℓ ρ`` (library size ``ℓ`` observed, ``ρ`` a softmax
  over genes from the decoder) and a learned per-gene inverse dispersion ``θ`` (scVI's choice).
- ``"zinb"``: the same with a per-cell, per-gene dropout probability from the decoder.
- ``"gaussian"``: normal with decoder mean and a learned per-feature variance (log-normalized data,
  the QBM-VAE paper's default).
- ``"bernoulli"``: decoder logits (binary images).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

__all__ = [
    "LikelihoodName",
    "bernoulli_log_prob",
    "gaussian_log_prob",
    "nb_log_prob",
    "zinb_from_nb",
    "zinb_log_prob",
]

LikelihoodName = Literal["nb", "zinb", "gaussian", "bernoulli"]
_EPS = 1e-8


def nb_log_prob(
    x: torch.Tensor,
    mu: torch.Tensor,
    theta: torch.Tensor,
    log_mu: torch.Tensor | None = None,
    x_lgamma: torch.Tensor | None = None,
) -> torch.Tensor:
    """Element-wise negative binomial log-probability (mean ``mu``, inverse dispersion ``theta``).

    Same as ``scipy.stats.nbinom(n=theta, p=theta / (theta + mu)).logpmf(x)``. ``theta`` may be a
    per-gene vector that broadcasts against ``x``; ``log_mu`` (if the caller has it, e.g. from a
    log-softmax) and ``x_lgamma = lgamma(x + 1)`` (a data constant) save work in training.
    """
    log_mu = torch.log(mu + _EPS) if log_mu is None else log_mu
    x_lgamma = torch.lgamma(x + 1) if x_lgamma is None else x_lgamma
    per_gene = theta * torch.log(theta + _EPS) - torch.lgamma(theta)
    return (
        per_gene
        - (theta + x) * torch.log(theta + mu + _EPS)
        + x * log_mu
        + torch.lgamma(x + theta)
        - x_lgamma
    )


def zinb_log_prob(
    x: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor, pi_logits: torch.Tensor
) -> torch.Tensor:
    """Zero-inflated NB: with probability ``sigmoid(pi_logits)`` the count is a structural zero."""
    return zinb_from_nb(x, nb_log_prob(x, mu, theta), pi_logits)


def zinb_from_nb(x: torch.Tensor, nb: torch.Tensor, pi_logits: torch.Tensor) -> torch.Tensor:
    """Zero-inflate NB log-probabilities ``nb`` with dropout logits ``pi_logits``."""
    log_pi = -F.softplus(-pi_logits)  # log sigmoid
    log_not_pi = -F.softplus(pi_logits)  # log (1 - sigmoid)
    zero = torch.logaddexp(log_pi, log_not_pi + nb)
    return torch.where(x < 0.5, zero, log_not_pi + nb)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Element-wise normal log-density with variance ``exp(log_var)``."""
    return -0.5 * (log_var + (x - mean) ** 2 * torch.exp(-log_var) + 1.8378770664093453)


def bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Element-wise Bernoulli log-probability for logits."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
