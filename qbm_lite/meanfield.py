"""Naive mean-field theory of an Ising model: a factorial ``q`` and the Gibbs-Bogoliubov bound.

For the energy ``E(s) = h·s + Σ_{i<j} J_ij s_i s_j + offset`` (the convention of
:mod:`qbm_lite.ising`) and a factorial distribution ``q(s) = Π_i (1 + m_i s_i) / 2`` with
magnetizations ``m ∈ [-1, 1]^n``, the variational free energy is

    F[q] = E_q[E] - T H(q),   E_q[E] = h·m + ½ mᵀJm + offset,
    H(q) = Σ_i H_b((1 + m_i) / 2)  (binary entropies, nats).

The Gibbs-Bogoliubov inequality says ``F[q] >= F = -T log Z`` for every ``q``, because
``KL(q || p_β) = β (F[q] - F) >= 0``: the same KL that trains the QBM-VAE's encoder (Chapter 4).
Setting ``∂F[q]/∂m_i = 0`` gives the naive mean-field equations

    m_i = tanh(-β (h_i + Σ_j J_ij m_j)),

solved here by sequential (one coordinate at a time) updates, each of which minimizes ``F[q]``
exactly in ``m_i``, so ``F[q]`` never increases (Parisi 1988, ch. 2; Opper & Saad 2001; Mézard &
Montanari 2009, ch. 4 for the Bethe/TAP refinements).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qbm_lite.ising import IsingModel

__all__ = ["MeanFieldResult", "factorial_entropy", "mean_field", "mean_field_free_energy"]


@dataclass(frozen=True)
class MeanFieldResult:
    """Outcome of :func:`mean_field`.

    Attributes
    ----------
    magnetizations
        ``m_i = E_q[s_i]``, shape ``(n,)``.
    free_energy
        ``F[q] = E_q[E] - T H(q)`` at the solution (an upper bound on ``F = -T log Z``).
    beta
        Inverse temperature.
    iterations
        Sweeps used.
    converged
        Whether the largest change of a magnetization in the last sweep was below ``tol``.
    """

    magnetizations: np.ndarray
    free_energy: float
    beta: float
    iterations: int
    converged: bool


def factorial_entropy(m: np.ndarray) -> float:
    """Entropy (nats) of the factorial distribution with magnetizations ``m`` (``0·log 0 = 0``)."""
    m = np.asarray(m, dtype=np.float64)
    p = np.clip((1.0 + m) / 2.0, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = -np.where(p > 0, p * np.log(p), 0.0) - np.where(p < 1, (1 - p) * np.log1p(-p), 0.0)
    return float(terms.sum())


def _check(model: IsingModel, beta: float) -> float:
    if not isinstance(model, IsingModel):
        raise TypeError(
            f"model must be a qbm_lite.ising.IsingModel; got {type(model).__name__}. "
            "Build one with IsingModel(h, J) or IsingModel.from_bqm(bqm)."
        )
    beta = float(beta)
    if not np.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta must be a positive, finite inverse temperature; got {beta}.")
    return beta


def mean_field_free_energy(model: IsingModel, m: np.ndarray, beta: float = 1.0) -> float:
    """Variational free energy ``F[q] = E_q[E] - H(q) / beta`` of the factorial ``q`` (mean ``m``).

    Raises
    ------
    ValueError
        If ``m`` does not have shape ``(n,)`` or leaves ``[-1, 1]``.
    """
    beta = _check(model, beta)
    m = np.asarray(m, dtype=np.float64)
    if m.shape != (model.n,) or not np.all(np.isfinite(m)) or np.any(np.abs(m) > 1):
        raise ValueError(
            f"m must be {model.n} finite magnetizations in [-1, 1]; got shape {m.shape}."
        )
    J = model.dense_J()
    energy = float(model.h @ m + 0.5 * m @ J @ m + model.offset)
    return energy - factorial_entropy(m) / beta


def mean_field(
    model: IsingModel,
    beta: float = 1.0,
    *,
    init: np.ndarray | None = None,
    max_iter: int = 1000,
    tol: float = 1e-10,
    seed: int | None = 0,
) -> MeanFieldResult:
    """Solve the naive mean-field equations ``m_i = tanh(-β (h_i + Σ_j J_ij m_j))``.

    Parameters
    ----------
    model
        The Ising model.
    beta
        Inverse temperature ``β = 1 / T`` (positive).
    init
        Starting magnetizations ``(n,)``; by default small random values (``seed``), so that a
        symmetric model can leave the paramagnetic point ``m = 0`` when that is not the minimum.
    max_iter
        Maximum number of sweeps (one sequential update of every ``m_i``).
    tol
        Stop when no magnetization changed by more than this in a sweep.
    seed
        Seed of the random start.

    Returns
    -------
    MeanFieldResult
        The magnetizations, ``F[q]`` and convergence information. Below a transition the
        equations have several solutions; the one found depends on ``init`` (compare their
        ``free_energy``: the lowest is the best bound).
    """
    beta = _check(model, beta)
    n, h, J = model.n, model.h.astype(np.float64), model.dense_J().astype(np.float64)
    if init is None:
        m = np.random.default_rng(seed).uniform(-0.01, 0.01, n)
    else:
        m = np.asarray(init, dtype=np.float64).copy()
        if m.shape != (n,) or not np.all(np.abs(m) <= 1):
            raise ValueError(f"init must be {n} magnetizations in [-1, 1]; got shape {m.shape}.")
    if int(max_iter) < 1 or tol <= 0:
        raise ValueError("max_iter must be a positive integer and tol positive.")
    converged, it = False, 0
    for it in range(1, int(max_iter) + 1):  # noqa: B007 (reported below)
        change = 0.0
        for i in range(n):
            new = np.tanh(-beta * (h[i] + J[i] @ m))
            change = max(change, abs(new - m[i]))
            m[i] = new
        if change < tol:
            converged = True
            break
    return MeanFieldResult(
        magnetizations=m,
        free_energy=mean_field_free_energy(model, m, beta),
        beta=beta,
        iterations=it,
        converged=converged,
    )
