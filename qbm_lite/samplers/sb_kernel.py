"""A compiled CPU kernel for simulated bifurcation on sparse (CSR) couplings.

One step of :func:`~qbm_lite.samplers.cim_dynamics.simulated_bifurcation` in torch is a sparse
product ``J @ φ(X)`` followed by six element-wise operations, each a separate pass over the
``(n, reads)`` state with its own dispatch. On sparse graphs the product itself is cheap (it
touches only the edges), so the per-operation overhead dominates: 140-260 µs per torch step at
n = 800, 1 % density, 32 reads, one CPU thread (``benchmarks/sampler_bench.py``). This kernel,
compiled with numba, fuses a whole step: for each spin it gathers the local field over the
spin's edges and updates that spin's momentum and position at once, and it runs all the steps
without returning to Python. It computes the same symplectic Euler steps as the torch loop (Goto
et al. 2021) in float32, summing each local field in the CSR order as torch does; trajectories
agree to rounding (``tests/test_sb_kernel.py``; bit for bit on the machine they were written on,
though ``fastmath`` lets the compiler reorder). ``benchmarks/sampler_bench.py`` measured it 1.3-4.9x
faster per step than the torch loop on Gset-like graphs (n = 800-2,000, 32 reads): 2.9-4.9x on the
toroidal grids and G(800, 1 %), 1.3-1.6x on G(2,000, 1 %), whose 40,000 stored couplings make the
product itself dominate.

The kernel runs on one thread, on the CPU, for CSR couplings; everything else (dense couplings,
CUDA, several threads) stays with torch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["compiled_sb_available", "sb_steps_csr"]

try:  # a dependency (and scanpy's); should it be missing, the torch loop runs instead
    import numba
except ImportError:  # pragma: no cover - numba is installed with scanpy
    numba = None


def compiled_sb_available(
    x: torch.Tensor,
    J: torch.Tensor,
    y: torch.Tensor | None = None,
    h: torch.Tensor | None = None,
) -> bool:
    """Whether :func:`sb_steps_csr` can run this problem: numba, sparse CSR ``J``, float32 ``x``,
    ``y`` and ``J``, everything on the CPU."""
    tensors = [t for t in (x, J, y, h) if t is not None]
    return (
        numba is not None
        and J.layout == torch.sparse_csr
        and all(t.device.type == "cpu" for t in tensors)
        and all(t.dtype == torch.float32 for t in (x, J, y) if t is not None)
    )


def _kernel(
    X: np.ndarray,
    Y: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    h: np.ndarray,
    t0: int,
    t1: int,
    num_steps: int,
    c0: float,
    dt: float,
    a0: float,
    discrete: bool,
) -> None:
    """Steps ``t0 .. t1 - 1`` of bSB or dSB in place on ``X``, ``Y`` of shape ``(n, reads)``."""
    n, R = X.shape
    phi = np.empty_like(X)  # phi(X) at the start of the step: every spin sees the same state
    field = np.empty(R, dtype=np.float32)
    denom = max(num_steps - 1, 1)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    gain = np.float32(-dt * c0)
    move = np.float32(dt * a0)
    for t in range(t0, t1):
        damp = np.float32(-dt * (a0 - a0 * t / denom))
        for i in range(n):
            for r in range(R):
                v = X[i, r]
                phi[i, r] = ((v > zero) * one - (v < zero) * one) if discrete else v  # torch.sign
        for i in range(n):
            for r in range(R):
                field[r] = zero
            for k in range(indptr[i], indptr[i + 1]):  # field = (J phi)[i], over i's edges
                j = indices[k]
                w = data[k]
                for r in range(R):
                    field[r] += w * phi[j, r]
            hi = h[i]
            for r in range(R):  # the symplectic Euler step, in the torch loop's order
                y = Y[i, r] + damp * X[i, r]
                y = y + gain * (field[r] + hi)
                x = X[i, r] + move * y
                inside = (x <= one) & (x >= -one)
                X[i, r] = min(max(x, -one), one)
                Y[i, r] = y * inside  # inelastic walls at |x| = 1


_compiled = None


def _get_kernel() -> Callable[..., None]:
    """The kernel, compiled on first use (1-2 s; cached on disk where numba can write)."""
    global _compiled
    if _compiled is None:
        options = {"nogil": True, "fastmath": True, "boundscheck": False, "error_model": "numpy"}
        try:
            _compiled = numba.njit(cache=True, **options)(_kernel)
        except RuntimeError:  # numba found no writable cache directory: compile every session
            _compiled = numba.njit(**options)(_kernel)
    return _compiled


def sb_steps_csr(
    X: torch.Tensor,
    Y: torch.Tensor,
    J: torch.Tensor,
    h: torch.Tensor,
    start: int,
    stop: int,
    num_steps: int,
    *,
    c0: float,
    dt: float,
    a0: float,
    discrete: bool,
) -> None:
    """Run steps ``start .. stop - 1`` of a ``num_steps`` SB schedule in place.

    Parameters
    ----------
    X, Y
        Positions and momenta, shape ``(n, reads)``, C-contiguous float32 CPU tensors (updated in
        place).
    J
        Symmetric couplings ``(n, n)`` as a float32 sparse CSR tensor.
    h
        Fields ``(n,)`` (any float dtype; read as float32).
    start, stop, num_steps
        The steps to run and the length of the whole schedule (the bifurcation parameter at step
        ``t`` is ``a0 * t / (num_steps - 1)``).
    c0, dt, a0, discrete
        As in :func:`~qbm_lite.samplers.cim_dynamics.simulated_bifurcation`.

    Raises
    ------
    ValueError
        If the problem is not one the kernel runs (see :func:`compiled_sb_available`) or the
        state is not C-contiguous with shape ``(n, reads)``.
    """
    if not compiled_sb_available(X, J, Y, h):
        raise ValueError(
            "the compiled SB kernel needs float32 CPU tensors, sparse CSR couplings and numba; "
            "use the torch loop (backend='torch') for this problem."
        )
    n = J.shape[0]
    if X.shape != Y.shape or X.dim() != 2 or X.shape[0] != n:
        raise ValueError(
            f"X and Y must both have shape (n, reads) = ({n}, reads); got {tuple(X.shape)} and "
            f"{tuple(Y.shape)}."
        )
    if h.numel() != n:
        raise ValueError(f"h must have one field per spin, {n}; got {h.numel()} values.")
    if not (X.is_contiguous() and Y.is_contiguous()):
        raise ValueError("X and Y must be C-contiguous (n, reads) tensors.")
    _get_kernel()(
        X.numpy(),
        Y.numpy(),
        J.crow_indices().numpy(),
        J.col_indices().numpy(),
        J.values().numpy(),
        h.detach().reshape(-1).to(torch.float32).contiguous().numpy(),
        int(start),
        int(stop),
        int(num_steps),
        float(c0),
        float(dt),
        float(a0),
        bool(discrete),
    )
