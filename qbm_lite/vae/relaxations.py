"""Continuous relaxations of binary latent units (DVAE and DVAE++).

Convention used throughout :mod:`qbm_lite.vae`: a discrete latent unit is a *bit*
``z ∈ {0, 1}``; the Boltzmann prior is written over *spins* ``s = 2z - 1 ∈ {-1, +1}`` (the
sampler's convention, see :mod:`qbm_lite.ising`). The encoder outputs a logit ``l`` per unit, so
``q(z = 1 | x) = sigmoid(l)``. A relaxation is a smoothing density ``r(ζ | z)`` on ``[0, 1]``;
the decoder reads ``ζ``, which is reparameterized through the inverse CDF of the mixture
``q(ζ | x) = (1 - q) r(ζ | 0) + q r(ζ | 1)``, so gradients reach the encoder.

- ``"spike-exp"`` (Rolfe 2017): ``r(ζ | 0) = δ(ζ)``, ``r(ζ | 1) ∝ exp(β (ζ - 1))``.
- ``"overlapping"`` (Vahdat et al. 2018, DVAE++): ``r(ζ | 0) ∝ exp(-β ζ)``,
  ``r(ζ | 1) ∝ exp(β (ζ - 1))``; both are continuous, so the gradient is never zero.

Larger ``β`` makes ``ζ`` closer to the bit ``z`` (less bias) but the gradients noisier.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

__all__ = ["Relaxation", "RelaxationName", "make_relaxation", "relaxation_cdf", "sample_relaxed"]

RelaxationName = Literal["spike-exp", "overlapping"]
_EPS = 1e-6


def _check(name: str, beta: float) -> None:
    if name not in ("spike-exp", "overlapping"):
        raise ValueError(
            f"relaxation must be 'spike-exp' or 'overlapping'; got {name!r}. "
            "Pick one of the two (DVAE or DVAE++)."
        )
    if not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"relaxation beta must be a positive finite number; got {beta}.")


def sample_relaxed(
    q: torch.Tensor, rho: torch.Tensor, name: RelaxationName = "overlapping", beta: float = 8.0
) -> torch.Tensor:
    """Reparameterized relaxed sample ``ζ = F⁻¹(ρ; q)`` for uniform noise ``rho``.

    Parameters
    ----------
    q
        Probabilities ``q(z = 1 | x)``, any shape.
    rho
        Uniform(0, 1) noise of the same shape.
    name
        ``"spike-exp"`` or ``"overlapping"``.
    beta
        Sharpness of the smoothing exponentials.

    Returns
    -------
    torch.Tensor
        ``ζ`` in ``[0, 1]``, differentiable with respect to ``q``.
    """
    _check(name, beta)
    q = q.clamp(_EPS, 1 - _EPS)
    if name == "spike-exp":
        # rho < 1 - q falls on the spike at 0; above it, invert the exponential on [0, 1].
        u = ((rho + q - 1) / q).clamp_min(0.0)
        zeta = torch.log1p(u * math.expm1(beta)) / beta
        return torch.where(rho >= 1 - q, zeta, torch.zeros_like(zeta))
    # Overlapping exponentials: x = exp(-β ζ) solves x² + b x + c = 0 (DVAE++, eq. 4).
    e = math.exp(-beta)
    b = (rho * (1 - e) + q * e) / (1 - q) - 1
    c = -q * e / (1 - q)
    x = (-b + torch.sqrt(b * b - 4 * c)) / 2
    return (-torch.log(x.clamp_min(1e-30)) / beta).clamp(0.0, 1.0)


def relaxation_cdf(
    zeta: torch.Tensor, q: torch.Tensor, name: RelaxationName = "overlapping", beta: float = 8.0
) -> torch.Tensor:
    """CDF ``F(ζ; q)`` of the relaxed mixture (for tests and figures)."""
    _check(name, beta)
    up = torch.expm1(beta * zeta) * math.exp(-beta) / -math.expm1(-beta)  # ∫ r(·|1) on [0, ζ]
    if name == "spike-exp":
        return (1 - q) + q * up
    down = -torch.expm1(-beta * zeta) / -math.expm1(-beta)  # ∫ r(·|0) on [0, ζ]
    return (1 - q) * down + q * up


class Relaxation:
    """A named relaxation with a fixed ``beta``; call it with probabilities to get ``ζ``.

    Parameters
    ----------
    name
        ``"spike-exp"`` (DVAE) or ``"overlapping"`` (DVAE++).
    beta
        Sharpness of the smoothing exponentials.
    """

    def __init__(self, name: RelaxationName = "overlapping", beta: float = 8.0) -> None:
        _check(name, beta)
        self.name = name
        self.beta = float(beta)

    def rsample(self, q: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``ζ`` for probabilities ``q`` (reparameterized)."""
        rho = torch.rand(q.shape, generator=generator, device=q.device, dtype=q.dtype)
        return sample_relaxed(q, rho, self.name, self.beta)

    def given_bits(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``ζ ~ r(ζ | z)`` for given bits ``z`` (used to decode prior samples)."""
        return self.rsample(z.to(torch.get_default_dtype()).clamp(0, 1), generator)

    def __repr__(self) -> str:
        return f"Relaxation(name={self.name!r}, beta={self.beta})"


def make_relaxation(name: RelaxationName | Relaxation = "overlapping", beta: float = 8.0):
    """Return ``name`` if it is already a :class:`Relaxation`, else build one."""
    return name if isinstance(name, Relaxation) else Relaxation(name, beta)
