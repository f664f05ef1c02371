"""Priors of the VAE, each a small module with one ``kl`` method (the scvi-tools way).

:class:`GaussianPrior` is the standard normal of the plain VAE. :class:`BoltzmannPrior` is a fully
connected Boltzmann machine over ``n`` binary latent units. Bits ``z ∈ {0, 1}`` map to spins
``s = 2z - 1``; the prior is ``p_θ(z) = exp(-E_θ(s)) / Z_θ`` with the Ising energy
``E_θ(s) = h·s + Σ_{i<j} J_ij s_i s_j`` (dimod's convention, :func:`qbm_lite.ising.ising_energy`).

For a factorial posterior ``q(z | x) = Π Bernoulli(q_i)`` the KL divergence is

    KL(q ‖ p_θ) = E_q[E_θ(s)] − H(q) + log Z_θ,

where ``E_q[E_θ(s)] = h·m + ½ mᵀ J m`` with ``m = 2q − 1`` is exact (``J`` has a zero diagonal and
the units are independent under ``q``). ``log Z_θ`` is intractable in general; only its gradient
is needed for training, ``∇_θ log Z_θ = −E_{p_θ}[∇_θ E_θ(s)]``, and it is estimated from the
sampler's samples ``s⁻ ~ p_θ`` (the *negative phase*) with the surrogate ``−mean E_θ(s⁻)`` (samples
held fixed). Note the minus sign: adding ``+mean E_θ(s⁻)`` instead (a public implementation's
mistake) pushes the model away from its own samples' statistics in the wrong direction.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qbm_lite.exact import all_spin_states, check_enumerable
from qbm_lite.ising import ising_energy
from qbm_lite.samplers.base import SpinSampler

__all__ = ["BoltzmannPrior", "GaussianPrior", "bernoulli_entropy"]

_LOG_2PI = math.log(2 * math.pi)


def bernoulli_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of independent Bernoulli units with ``logits``, summed over the last axis."""
    q = torch.sigmoid(logits)
    # H = -q log q - (1-q) log(1-q) = softplus(l) - q l, stable for large |l|.
    return (nn.functional.softplus(logits) - q * logits).sum(-1)


class GaussianPrior(nn.Module):
    """Standard normal prior ``N(0, I)`` over ``n_latent`` continuous units."""

    kind = "gaussian"

    def __init__(self, n_latent: int) -> None:
        super().__init__()
        self.n_latent = int(n_latent)

    def kl(self, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """Closed-form ``KL(N(mu, exp(log_var)) ‖ N(0, I))`` per cell, shape ``(batch,)``."""
        return 0.5 * (torch.exp(log_var) + mu**2 - 1.0 - log_var).sum(-1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log N(z; 0, I)`` summed over the last axis."""
        return -0.5 * (z**2 + _LOG_2PI).sum(-1)

    def sample(self, num_samples: int) -> torch.Tensor:
        """Draw ``num_samples`` latent codes."""
        return torch.randn(num_samples, self.n_latent)


class BoltzmannPrior(nn.Module):
    """Fully connected Boltzmann machine prior over ``n_latent`` bits (spins ``s = 2z - 1``).

    Parameters
    ----------
    n_latent
        Number of latent units.
    sampler
        A :class:`~qbm_lite.samplers.base.SpinSampler` that draws the negative phase
        (``sample_spins(h, J, num_samples, beta=1.0)``).
    num_negative
        Samples drawn per training step for the negative phase.
    exact_log_z_max
        Up to this many units the *value* of the KL includes the exact ``log Z`` at every step
        (cheap for ``n ≤ 12``); above it the value uses :attr:`log_z_cache` if set and omits
        ``log Z`` otherwise. The gradient is unaffected either way.
    """

    kind = "boltzmann"

    def __init__(
        self,
        n_latent: int,
        sampler: SpinSampler,
        num_negative: int = 128,
        exact_log_z_max: int = 12,
    ) -> None:
        super().__init__()
        if not hasattr(sampler, "sample_spins"):
            raise TypeError(
                f"sampler must implement sample_spins(h, J, num_samples, beta=...); got "
                f"{type(sampler).__name__}. Wrap a dimod sampler in "
                "qbm_lite.samplers.DimodSamplerAdapter."
            )
        self.n_latent = int(n_latent)
        self.sampler = sampler
        self.num_negative = int(num_negative)
        self.exact_log_z_max = int(exact_log_z_max)
        self.log_z_cache: float | None = None
        self._states: torch.Tensor | None = None
        self.h = nn.Parameter(torch.zeros(self.n_latent))
        n_pairs = self.n_latent * (self.n_latent - 1) // 2
        self.J_upper = nn.Parameter(torch.zeros(n_pairs))
        iu = torch.triu_indices(self.n_latent, self.n_latent, offset=1)
        self.register_buffer("_iu", iu, persistent=False)

    @property
    def J(self) -> torch.Tensor:
        """Symmetric, zero-diagonal coupling matrix built from the free upper triangle."""
        n = self.n_latent
        upper = torch.zeros(n, n, dtype=self.J_upper.dtype, device=self.J_upper.device)
        upper = upper.index_put((self._iu[0], self._iu[1]), self.J_upper)
        return upper + upper.T

    def energy(self, s: torch.Tensor) -> torch.Tensor:
        """Ising energy ``E_θ(s)`` of spins ``s`` ``(..., n)``."""
        return ising_energy(s, self.h, self.J)

    def expected_energy(self, q: torch.Tensor) -> torch.Tensor:
        """``E_q[E_θ(s)]`` for independent bits with ``P(z_i = 1) = q_i`` (exact), ``(batch,)``."""
        return self.energy(2 * q - 1)

    def negative_phase(self, num_samples: int | None = None) -> torch.Tensor:
        """Spins ``s⁻ ~ p_θ`` from the sampler (no gradient), shape ``(num_samples, n)``."""
        with torch.no_grad():
            return self.sampler.sample_spins(
                self.h.detach(), self.J.detach(), int(num_samples or self.num_negative), beta=1.0
            )

    def log_partition(self) -> torch.Tensor:
        """Exact, differentiable ``log Z_θ`` by enumeration (``n_latent ≤ 20``).

        Same value as :func:`qbm_lite.exact.log_partition_torch`; the ``2**n`` states are cached.
        """
        check_enumerable(self.n_latent, limit=20)
        states = self._states
        if states is None or states.device != self.h.device or states.dtype != self.h.dtype:
            states = torch.as_tensor(
                all_spin_states(self.n_latent), dtype=self.h.dtype, device=self.h.device
            )
            self._states = states
        return torch.logsumexp(-self.energy(states), dim=0)

    def log_z_term(self, negative: torch.Tensor) -> torch.Tensor:
        """Scalar whose *gradient* is the sampler's estimate of ``∇ log Z = −E_p[∇E]``.

        Its *value* is :attr:`log_z_cache` when set (the trainer stores the exact ``log Z`` there
        once per epoch for ``n_latent ≤ 20``), else the exact ``log Z`` when
        ``n_latent ≤ exact_log_z_max``, else 0.
        """
        surrogate = -self.energy(negative.detach()).mean()
        if self.log_z_cache is not None:
            value = torch.as_tensor(self.log_z_cache).to(surrogate)
        elif self.n_latent <= self.exact_log_z_max:
            value = self.log_partition().detach()
        else:
            value = torch.zeros((), device=surrogate.device, dtype=surrogate.dtype)
        return value + surrogate - surrogate.detach()

    def kl(
        self, logits: torch.Tensor, negative: torch.Tensor | None = None, log_z=None
    ) -> torch.Tensor:
        """``KL(q ‖ p_θ) = E_q[E_θ] − H(q) + log Z_θ`` per cell, shape ``(batch,)``.

        Parameters
        ----------
        logits
            Encoder logits of ``q(z = 1 | x)``, shape ``(batch, n_latent)``.
        negative
            Negative-phase spins from :meth:`negative_phase` (training). If None, ``log Z`` is
            used exactly: ``log_z`` if given, else :meth:`log_partition` (evaluation).
        log_z
            A known ``log Z`` (e.g. from AIS) for evaluation without enumeration.
        """
        cross = self.expected_energy(torch.sigmoid(logits)) - bernoulli_entropy(logits)
        if negative is not None:
            return cross + self.log_z_term(negative)
        return cross + (self.log_partition() if log_z is None else log_z)

    def log_prob(self, s: torch.Tensor, log_z: torch.Tensor | float | None = None) -> torch.Tensor:
        """``log p_θ(s) = −E_θ(s) − log Z_θ`` (exact ``log Z`` unless given)."""
        return -self.energy(s) - (self.log_partition() if log_z is None else log_z)

    def sample(self, num_samples: int, sampler: SpinSampler | None = None) -> torch.Tensor:
        """Spins from the prior, drawn by ``sampler`` (default: the training sampler)."""
        sampler = sampler or self.sampler
        with torch.no_grad():
            return sampler.sample_spins(
                self.h.detach(), self.J.detach(), int(num_samples), beta=1.0
            )
