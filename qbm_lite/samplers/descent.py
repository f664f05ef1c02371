"""Steepest single-spin-flip descent: turns any batch of spin states into local minima.

A state ``s`` is a *local minimum* (1-flip stable) of ``E(s) = h·s + ½ sᵀJs`` when no single spin
flip lowers its energy: with the local field ``f_i = h_i + Σ_j J_ij s_j`` the flip of spin ``i``
changes the energy by ``ΔE_i = -2 s_i f_i``, so every ``s_i f_i`` must be ``<= 0``.

Continuous-amplitude optimizers (simulated bifurcation, amplitude control) read their spins off
amplitudes whose relative sizes can mis-weight terms that differ by orders of magnitude, e.g. a
field of 100 next to fields of 0.001: the small terms are lost in the amplitudes' rounding. A few
flips fix that. The descent here flips, in every replica at once, that replica's single most
improving spin and updates the local fields incrementally (one row of ``J`` per replica), until no
replica can improve. Each flip lowers the energy, so it terminates; replicas that are already
local minima cost nothing but the first local-field product.
"""

from __future__ import annotations

import torch

__all__ = ["flip_gains", "greedy_descent", "local_fields"]


def local_fields(s: torch.Tensor, h: torch.Tensor, J: torch.Tensor) -> torch.Tensor:
    """``f = h + s J`` for a batch ``s`` ``(reads, n)`` and dense or sparse symmetric ``J``."""
    if J.layout != torch.strided:
        return h + (J @ s.T).T
    return h + s @ J


def flip_gains(s: torch.Tensor, h: torch.Tensor, J: torch.Tensor) -> torch.Tensor:
    """Energy change ``ΔE_i = -2 s_i f_i`` of flipping each spin, shape ``(reads, n)``."""
    return -2.0 * s * local_fields(s, h, J)


def _row_tolerance(h: torch.Tensor, J: torch.Tensor) -> torch.Tensor:
    """Per-spin rounding tolerance: ``1e-6 (|h_i| + Σ_j |J_ij|)`` in the working precision."""
    if J.layout == torch.sparse_csr:
        row_abs = torch.zeros_like(h).index_add_(0, _csr_rows(J), J.values().abs())
    elif J.layout != torch.strided:
        Jc = J.coalesce()
        row_abs = torch.zeros_like(h).index_add_(0, Jc.indices()[0], Jc.values().abs())
    else:
        row_abs = J.abs().sum(1)
    eps = 1e-6 if h.dtype == torch.float32 else 1e-12
    return eps * (h.abs() + row_abs)


def _csr_rows(J: torch.Tensor) -> torch.Tensor:
    counts = J.crow_indices().diff()
    return torch.repeat_interleave(torch.arange(J.shape[0], device=J.device), counts)


def _coupling_rows(J: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Dense rows ``J[rows]`` ``(len(rows), n)`` from a dense or sparse CSR ``J``."""
    if J.layout == torch.strided:
        return J[rows]
    crow, col, val = J.crow_indices(), J.col_indices(), J.values()
    start, stop = crow[rows], crow[rows + 1]
    lengths = stop - start
    which = torch.repeat_interleave(torch.arange(len(rows), device=J.device), lengths)
    # position of each gathered entry: start of its row plus its offset within the row
    first = torch.cumsum(lengths, 0) - lengths
    pos = start[which] + torch.arange(int(lengths.sum()), device=J.device) - first[which]
    out = torch.zeros((len(rows), J.shape[1]), dtype=val.dtype, device=J.device)
    out[which, col[pos]] = val[pos]
    return out


def greedy_descent(
    s: torch.Tensor, h: torch.Tensor, J: torch.Tensor, max_flips: int | None = None
) -> torch.Tensor:
    """Steepest single-spin-flip descent of a batch of ±1 states to 1-flip-stable local minima.

    Parameters
    ----------
    s
        States ``(reads, n)`` in {-1, +1} (float); not modified.
    h, J
        Fields ``(n,)`` and symmetric zero-diagonal couplings ``(n, n)``: dense, sparse COO or
        sparse CSR, with the dtype of ``s`` (dimod's convention ``E = h·s + ½ sᵀJs``).
    max_flips
        Upper bound on flip rounds (``None``: ``10 n + 10``, never reached in practice since each
        flip lowers the energy by more than the rounding tolerance).

    Returns
    -------
    torch.Tensor
        States ``(reads, n)`` in which no single flip lowers the energy by more than a relative
        rounding tolerance of ``1e-6 (|h_i| + Σ_j |J_ij|)`` (``1e-12`` in float64).
    """
    if s.ndim != 2 or s.shape[1] != h.shape[0]:
        raise ValueError(f"s must have shape (reads, {h.shape[0]}); got {tuple(s.shape)}.")
    reads, n = s.shape
    if n == 0 or reads == 0:
        return s.clone()
    if J.layout not in (torch.strided, torch.sparse_csr):
        J = J.to_sparse_csr()
    s = s.clone()
    f = local_fields(s, h, J)
    tol = _row_tolerance(h, J)
    arange = torch.arange(reads, device=s.device)
    limit = 10 * n + 10 if max_flips is None else int(max_flips)
    for _ in range(limit):
        gain = -2.0 * s * f + tol  # a flip helps where the energy change is below -tol
        best, k = gain.min(dim=1)
        active = best < 0
        if not bool(active.any()):
            break
        r, k = arange[active], k[active]
        s[r, k] = -s[r, k]
        f[r] += 2.0 * s[r, k].unsqueeze(1) * _coupling_rows(J, k)
    return s
