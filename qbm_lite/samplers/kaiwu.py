"""A real Coherent Ising Machine behind the same interface: an adapter for QBoson's Kaiwu SDK.

QBoson's Kaiwu SDK (``pip install kaiwu``; its ``kaiwu.cim.CIMOptimizer`` needs the user's account
and a network) drives the optical CIM the QBM-VAE paper used. Its solvers take an *Ising matrix*
``M`` (symmetric, zero diagonal, no fields) and return spin vectors that (approximately) minimize

    H(σ) = -σᵀ M σ                                                     (Kaiwu's convention)

This is the convention we read from Kaiwu's documentation (its quick-start solves the negated
adjacency matrix of a graph, whose minimum is a maximum cut); before trusting a device, check the
signs on an instance small enough to enumerate, as the tests do with the stand-in.
:class:`KaiwuSampler` turns any object with that ``solve(ising_matrix)`` interface
into a :class:`~qbm_lite.samplers.base.SpinSampler` and a ``dimod.Sampler``:

- dimod's ``E(s) = h·s + Σ_{i<j} J_ij s_i s_j`` becomes ``M = -J / 2`` on the problem spins;
- the fields go through an auxiliary spin ``σ_a`` (the last row and column, ``M_ia = -h_i / 2``):
  with ``σ_a = +1`` the energy is ``E(s)``, and a solution with ``σ_a = -1`` is flipped as a whole
  (``H`` is even in σ), as in Kaiwu's own QUBO-to-Ising conversion;
- the hardware takes 8-bit signed integers, so ``M`` is scaled to ``[-127, 127]`` and rounded
  (like ``kaiwu.cim.adjust_ising_matrix_precision``); a warning says when rounding erases a
  coupling or changes one by more than 10 %.

Nothing here imports ``kaiwu`` until :func:`kaiwu_cim_optimizer` is called, so the package does not
depend on it. :class:`EnumerationIsingSolver` implements the same interface by exact enumeration
(n <= 20): the tests, and readers without an account, use it as a stand-in.
"""

from __future__ import annotations

import warnings
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from qbm_lite.exact import all_spin_states, check_enumerable
from qbm_lite.samplers.base import TorchDimodSampler, check_problem

__all__ = [
    "EnumerationIsingSolver",
    "IsingMatrixSolver",
    "KaiwuSampler",
    "from_kaiwu_solutions",
    "kaiwu_cim_optimizer",
    "precision_loss",
    "reduce_precision",
    "to_kaiwu_matrix",
]


@runtime_checkable
class IsingMatrixSolver(Protocol):
    """Anything with Kaiwu's solver interface: ``solve(M) -> (k, n) array of ±1``."""

    def solve(self, ising_matrix: np.ndarray) -> np.ndarray:
        """Spin vectors that (approximately) minimize ``-σᵀ M σ``."""
        ...


def to_kaiwu_matrix(h: np.ndarray, J: np.ndarray) -> np.ndarray:
    """Kaiwu's Ising matrix ``M`` ``(n + 1, n + 1)`` for dimod's ``(h, J)``: ``-σᵀMσ = E(s)``.

    ``M[:n, :n] = -J / 2`` and, for the auxiliary spin (index ``n``), ``M[i, n] = M[n, i] =
    -h_i / 2``; with ``σ = (s, +1)``, ``-σᵀ M σ = Σ_{i<j} J_ij s_i s_j + h·s``.
    """
    n = h.shape[0]
    M = np.zeros((n + 1, n + 1))
    M[:n, :n] = -0.5 * J
    M[:n, n] = M[n, :n] = -0.5 * h
    return M


def from_kaiwu_solutions(solutions: np.ndarray, n: int) -> np.ndarray:
    """Problem spins ``(k, n)`` from Kaiwu solutions ``(k, n + 1)`` (auxiliary spin last)."""
    sol = np.asarray(solutions)
    if sol.ndim == 1:
        sol = sol[None, :]
    if sol.ndim != 2 or sol.shape[1] != n + 1:
        raise ValueError(
            f"the solver returned solutions of shape {sol.shape}; expected (k, {n + 1}) "
            "(the problem's spins plus the auxiliary field spin)."
        )
    if not np.all(np.abs(sol) == 1):
        raise ValueError("the solver returned values other than -1 and +1; expected spins.")
    return (sol[:, :n] * sol[:, n:]).astype(np.int8)  # flip where the auxiliary spin is -1


def _scale_factor(M: np.ndarray, bits: int) -> float:
    if not 2 <= int(bits) <= 32:
        raise ValueError(f"bits must be between 2 and 32; got {bits}.")
    top = float(np.abs(M).max()) if M.size else 0.0
    return (2 ** (int(bits) - 1) - 1) / top if top > 0 else 1.0


def precision_loss(M: np.ndarray, bits: int = 8) -> float:
    """Largest relative change of a non-zero coefficient when ``M`` is rounded to ``bits`` bits
    (1.0 when a coefficient rounds to zero); 0 for a matrix the device represents exactly."""
    factor = _scale_factor(M, bits)
    nonzero = M != 0
    if not nonzero.any():
        return 0.0
    scaled = M[nonzero] * factor
    return float(np.max(np.abs(np.round(scaled) - scaled) / np.abs(scaled)))


def reduce_precision(M: np.ndarray, bits: int = 8) -> tuple[np.ndarray, float]:
    """Scale ``M`` to signed ``bits``-bit integers (max ``|M|`` to ``2**(bits-1) - 1``) and round.

    Returns the integer matrix and the scale factor (``M_int ≈ factor · M``). Warns when a
    non-zero coefficient rounds to zero or any coefficient moves by more than 10 % of itself
    (:func:`precision_loss`), which can change the ground state (the hardware's precision limit;
    Kaiwu offers precision-adaptation methods for such matrices).
    """
    factor = _scale_factor(M, bits)
    M_int = np.round(M * factor)
    lost = int(np.sum((M != 0) & (M_int == 0)) // 2)
    loss = precision_loss(M, bits)
    if lost or loss > 0.1:
        warnings.warn(
            f"reducing the Ising matrix to {bits}-bit integers erased {lost} couplings and "
            f"moved coefficients by up to {100 * loss:.0f} %: the device may solve a "
            "different problem. Rescale or split large coefficients first.",
            UserWarning,
            stacklevel=3,
        )
    return M_int, factor


class KaiwuSampler(TorchDimodSampler):
    """Any Kaiwu-style Ising-matrix solver as a :class:`SpinSampler` and a ``dimod.Sampler``.

    Parameters
    ----------
    solver
        An object with ``solve(ising_matrix) -> (k, n + 1)`` spins, e.g. Kaiwu's
        ``CIMOptimizer`` (:func:`kaiwu_cim_optimizer`) or :class:`EnumerationIsingSolver`.
    precision_bits
        Integer precision of the device's coefficients (8 for QBoson's CIM); ``None`` sends the
        real-valued matrix (simulators).
    max_calls
        Upper bound on ``solve`` calls per request (each returns however many solutions the
        solver is configured for; calls repeat until ``num_samples`` are collected).

    Notes
    -----
    The device samples at its own effective temperature: the matrix is rescaled to the hardware
    range, so ``beta`` cannot act as an energy scale and is only validated. Calibrate the
    effective inverse temperature against exact enumeration as Chapter 2 does for the simulator.
    """

    default_beta = None

    def __init__(self, solver: Any, precision_bits: int | None = 8, max_calls: int = 1000) -> None:
        if not callable(getattr(solver, "solve", None)):
            raise TypeError(
                f"solver must have a solve(ising_matrix) method (Kaiwu's interface); got "
                f"{type(solver).__name__}."
            )
        if precision_bits is not None and not 2 <= int(precision_bits) <= 32:
            raise ValueError(f"precision_bits must be in [2, 32] or None; got {precision_bits}.")
        if int(max_calls) < 1:
            raise ValueError(f"max_calls must be a positive integer; got {max_calls}.")
        self.solver = solver
        self.precision_bits = None if precision_bits is None else int(precision_bits)
        self.max_calls = int(max_calls)

    @property
    def parameters(self) -> dict[str, list]:
        return {"num_reads": [], "beta": [], "seed": []}

    @property
    def properties(self) -> dict[str, Any]:
        return {"solver": type(self.solver).__name__, "precision_bits": self.precision_bits}

    def ising_matrix(self, h: np.ndarray, J: np.ndarray) -> np.ndarray:
        """The matrix sent to the solver (auxiliary field spin, precision reduced)."""
        M = to_kaiwu_matrix(h, J)
        if self.precision_bits is not None:
            M, _ = reduce_precision(M, self.precision_bits)
        return M

    def sample_spins(
        self,
        h: torch.Tensor,
        J: torch.Tensor,
        num_samples: int,
        *,
        beta: float | None = None,
    ) -> torch.Tensor:
        """``(num_samples, n)`` spins from the solver, on the device and dtype of ``h``."""
        check_problem(h, J, num_samples, beta)
        n = h.shape[0]
        h_np = h.detach().double().cpu().numpy()
        J_np = (J.to_dense() if J.layout != torch.strided else J).detach().double().cpu().numpy()
        M = self.ising_matrix(h_np, J_np)
        rows, have = [], 0
        for _ in range(self.max_calls):
            spins = from_kaiwu_solutions(self.solver.solve(M), n)
            rows.append(spins)
            have += len(spins)
            if have >= int(num_samples):
                break
        else:
            raise RuntimeError(
                f"the solver returned {have} solutions in {self.max_calls} calls; "
                f"{num_samples} were asked for. Raise max_calls or the solver's output size."
            )
        out = np.concatenate(rows)[: int(num_samples)]
        return torch.as_tensor(out, dtype=h.dtype, device=h.device)


class EnumerationIsingSolver:
    """A stand-in with Kaiwu's solver interface, by exact enumeration (n <= 20).

    ``solve(M)`` returns ``num_solutions`` spin vectors drawn from ``exp(-beta H(σ))`` with
    Kaiwu's ``H(σ) = -σᵀ M σ`` (``beta=None``: the ground states, repeated).
    """

    def __init__(
        self, num_solutions: int = 10, beta: float | None = None, seed: int | None = None
    ) -> None:
        if int(num_solutions) < 1:
            raise ValueError(f"num_solutions must be a positive integer; got {num_solutions}.")
        if beta is not None and not beta > 0:
            raise ValueError(f"beta must be positive or None; got {beta}.")
        self.num_solutions = int(num_solutions)
        self.beta = beta
        self.rng = np.random.default_rng(seed)

    def solve(self, ising_matrix: np.ndarray) -> np.ndarray:
        """Solutions ``(num_solutions, n)`` of ±1 for a symmetric zero-diagonal matrix."""
        M = np.asarray(ising_matrix, dtype=np.float64)
        if M.ndim != 2 or M.shape[0] != M.shape[1] or not np.allclose(M, M.T):
            raise ValueError("the Ising matrix must be square and symmetric.")
        check_enumerable(M.shape[0], 20)
        states = all_spin_states(M.shape[0]).astype(np.float64)
        H = -np.einsum("ki,ij,kj->k", states, M, states)
        if self.beta is None:
            ground = states[np.isclose(H, H.min())]
            idx = self.rng.integers(len(ground), size=self.num_solutions)
            return ground[idx].astype(np.int8)
        logits = -self.beta * (H - H.min())
        p = np.exp(logits) / np.exp(logits).sum()
        idx = self.rng.choice(len(states), size=self.num_solutions, p=p)
        return states[idx].astype(np.int8)


def kaiwu_cim_optimizer(**kwargs: Any) -> Any:
    """Kaiwu's ``kaiwu.cim.CIMOptimizer(**kwargs)``, imported only now (needs ``pip install kaiwu``,
    an account and a network; see QBoson's Kaiwu SDK documentation for its arguments)."""
    try:
        import kaiwu  # noqa: PLC0415 (optional dependency, imported lazily)
    except ImportError as err:
        raise ImportError(
            "kaiwu_cim_optimizer needs QBoson's Kaiwu SDK: pip install kaiwu (and an account). "
            "Without it, KaiwuSampler works with any object that has solve(ising_matrix), "
            "e.g. EnumerationIsingSolver."
        ) from err
    return kaiwu.cim.CIMOptimizer(**kwargs)
