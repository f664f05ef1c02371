"""Ising models: fields ``h`` and couplings ``J``, energies, QUBO/BQM conversions, instances.

Energy convention (the same as dimod's, so that every Ocean sampler agrees with us)::

    E(s) = offset + sum_i h_i s_i + sum_{i<j} J_ij s_i s_j,     s_i in {-1, +1},

with ``J`` stored as a symmetric matrix with zero diagonal. Negative couplings favour aligned
spins (a ferromagnet has ``J_ij < 0``). The Boltzmann distribution is ``p(s) ∝ exp(-beta E(s))``.
"""

from __future__ import annotations

import io
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dimod
import numpy as np
import scipy.sparse as sp
import torch

__all__ = [
    "IsingModel",
    "check_spins",
    "cut_to_energy",
    "cut_value",
    "energy_to_cut",
    "ferromagnet_2d",
    "gset_random_graph",
    "gset_toroidal_grid",
    "ising_energy",
    "max_cut",
    "maxcut_value",
    "read_gset",
    "sherrington_kirkpatrick",
    "write_gset",
]

Couplings = np.ndarray | sp.sparray | sp.spmatrix


def _as_couplings(J: Couplings | Sequence, n: int | None) -> np.ndarray | sp.csr_array:
    if sp.issparse(J):
        J = sp.csr_array(J, dtype=np.float64)
        data = J.data
    else:
        J = np.array(J, dtype=np.float64)
        data = J
    if J.ndim != 2 or J.shape[0] != J.shape[1]:
        raise ValueError(f"J must be a square (n, n) matrix; got shape {J.shape}.")
    if n is not None and J.shape[0] != n:
        raise ValueError(f"h has {n} entries but J is {J.shape[0]}x{J.shape[1]}; they must match.")
    if not np.all(np.isfinite(data)):
        raise ValueError("J contains NaN or infinite values; every coupling must be finite.")
    diag = J.diagonal()
    if np.any(diag != 0):
        raise ValueError(
            "J must have a zero diagonal (s_i^2 = 1 makes a diagonal term a constant); "
            "move it into the offset."
        )
    asym = abs(J - J.T)
    max_asym = float(asym.max()) if J.shape[0] > 0 else 0.0
    if max_asym > 1e-9 * max(1.0, float(abs(J).max()) if J.shape[0] > 0 else 1.0):
        raise ValueError(
            f"J must be symmetric (max |J - J.T| = {max_asym:.3g}). Pass (J + J.T) / 2, or use "
            "IsingModel.from_upper(h, J_upper) for a matrix that holds each coupling once."
        )
    return J


@dataclass(frozen=True)
class IsingModel:
    """An Ising model ``E(s) = offset + h·s + sum_{i<j} J_ij s_i s_j`` on ``n`` spins."""

    h: np.ndarray
    J: np.ndarray | sp.csr_array
    offset: float = 0.0
    labels: list[Hashable] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        h = np.array(self.h, dtype=np.float64)
        if h.ndim != 1:
            raise ValueError(f"h must be a vector of length n; got shape {h.shape}.")
        if not np.all(np.isfinite(h)):
            raise ValueError("h contains NaN or infinite values; every field must be finite.")
        object.__setattr__(self, "h", h)
        object.__setattr__(self, "J", _as_couplings(self.J, h.shape[0]))
        object.__setattr__(self, "offset", float(self.offset))
        if not np.isfinite(self.offset):
            raise ValueError("offset must be finite.")

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_upper(cls, h: Sequence[float], J_upper: Couplings, offset: float = 0.0) -> IsingModel:
        """Build from a matrix that holds each coupling once (its strict upper triangle)."""
        upper = sp.triu(sp.csr_array(J_upper), k=1) if sp.issparse(J_upper) else np.triu(J_upper, 1)
        return cls(h, upper + upper.T, offset)

    @classmethod
    def from_bqm(cls, bqm: dimod.BinaryQuadraticModel) -> IsingModel:
        """Convert any dimod BQM (SPIN or BINARY) to an Ising model; labels keep the variables."""
        spin = bqm.change_vartype(dimod.SPIN, inplace=False)
        labels = list(spin.variables)
        lin, (row, col, data), offset = spin.to_numpy_vectors(variable_order=labels)
        n = len(labels)
        upper = sp.coo_array((data, (row, col)), shape=(n, n)).tocsr()
        J = upper + upper.T
        dense = J.toarray() if n <= 2000 and J.nnz > 0.05 * n * n else J
        return cls(lin, dense, offset, labels=labels)

    @classmethod
    def from_qubo(cls, Q: Couplings, offset: float = 0.0) -> IsingModel:
        """Convert ``E(x) = x^T Q x + offset`` over ``x in {0, 1}`` (``s = 2x - 1``)."""
        Q = sp.csr_array(Q, dtype=np.float64) if sp.issparse(Q) else np.asarray(Q, float)
        if Q.ndim != 2 or Q.shape[0] != Q.shape[1]:
            raise ValueError(f"Q must be a square matrix; got shape {Q.shape}.")
        W = Q + Q.T  # symmetric, diagonal counted twice
        diag = W.diagonal() / 2.0
        W = W - (sp.diags_array(W.diagonal()) if sp.issparse(W) else np.diag(W.diagonal()))
        # x = (s + 1) / 2; pairs: (W_ij / 2) x_i x_j summed over ordered pairs.
        J = W / 4.0
        row_sums = np.asarray(W.sum(axis=1)).ravel()
        h = diag / 2.0 + row_sums / 4.0
        const = offset + diag.sum() / 2.0 + W.sum() / 8.0
        return cls(h, J, float(const))

    # --- properties and conversions -----------------------------------------------------
    @property
    def n(self) -> int:
        """Number of spins."""
        return int(self.h.shape[0])

    @property
    def is_sparse(self) -> bool:
        """Whether the couplings are stored as a sparse matrix."""
        return sp.issparse(self.J)

    def dense_J(self) -> np.ndarray:
        """The couplings as a dense array."""
        return self.J.toarray() if self.is_sparse else self.J

    def energy(self, states: np.ndarray | Sequence) -> np.ndarray | float:
        """Energy of one state ``(n,)`` or a batch ``(m, n)`` of states in {-1, +1}."""
        s = check_spins(states, self.n).astype(np.float64)
        single = s.ndim == 1
        s2 = s[None, :] if single else s
        coupled = (self.J @ s2.T).T
        e = self.offset + s2 @ self.h + 0.5 * np.einsum("ij,ij->i", coupled, s2)
        return float(e[0]) if single else e

    def to_qubo(self) -> tuple[np.ndarray | sp.csr_array, float]:
        """Return ``(Q, offset)`` with ``Q`` upper triangular and ``E = x^T Q x + offset``."""
        J = self.J
        row_sums = np.asarray(J.sum(axis=1)).ravel()
        diag = 2.0 * self.h - 2.0 * row_sums
        upper = sp.triu(J, k=1, format="csr") if self.is_sparse else np.triu(J, 1)
        Q = 4.0 * upper + (sp.diags_array(diag) if self.is_sparse else np.diag(diag))
        offset = self.offset - self.h.sum() + 0.5 * float(J.sum())
        return (sp.csr_array(Q) if self.is_sparse else Q), offset

    def to_bqm(self) -> dimod.BinaryQuadraticModel:
        """Convert to a SPIN-valued ``dimod.BinaryQuadraticModel`` (labels kept if present)."""
        upper = sp.triu(sp.coo_array(self.J), k=1).tocoo()
        bqm = dimod.BinaryQuadraticModel.from_numpy_vectors(
            self.h, (upper.row, upper.col, upper.data), self.offset, dimod.SPIN
        )
        if self.labels is not None:
            bqm.relabel_variables(dict(enumerate(self.labels)), inplace=True)
        return bqm

    def to_torch(
        self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(h, J)`` pair as torch tensors (``J`` dense unless stored sparse)."""
        h = torch.as_tensor(self.h, dtype=dtype, device=device)
        if self.is_sparse:
            coo = self.J.tocoo()
            idx = torch.as_tensor(np.vstack([coo.row, coo.col]), dtype=torch.long)
            J = torch.sparse_coo_tensor(
                idx, coo.data, coo.shape, dtype=dtype, device=device, check_invariants=True
            )
            return h, J.coalesce()
        return h, torch.as_tensor(self.J, dtype=dtype, device=device)

    def scaled(self, factor: float) -> IsingModel:
        """The model with every energy multiplied by ``factor`` (e.g. to fold in a beta)."""
        return IsingModel(self.h * factor, self.J * factor, self.offset * factor, self.labels)

    def __eq__(self, other: object) -> bool:
        """Same fields, couplings and offset (dense and sparse storage compare equal)."""
        if not isinstance(other, IsingModel):
            return NotImplemented
        if self.n != other.n or self.offset != other.offset:
            return False
        if not np.array_equal(self.h, other.h):
            return False
        diff = abs(sp.csr_array(self.J) - sp.csr_array(other.J))
        return diff.nnz == 0 or float(diff.max()) == 0.0

    def __repr__(self) -> str:
        kind = "sparse" if self.is_sparse else "dense"
        return f"IsingModel(n={self.n}, {kind} J, offset={self.offset:.4g})"


def check_spins(states: np.ndarray | Sequence, n: int | None = None) -> np.ndarray:
    """Check that ``states`` holds spins in {-1, +1} with ``n`` columns; return it as an array."""
    s = np.asarray(states)
    if s.ndim not in (1, 2):
        raise ValueError(f"states must have shape (n,) or (m, n); got shape {s.shape}.")
    if n is not None and s.shape[-1] != n:
        raise ValueError(f"states have {s.shape[-1]} spins but the model has {n}.")
    if s.dtype.kind == "f" and not np.all(np.isfinite(s)):
        raise ValueError("states contain NaN or infinite values; spins must be -1 or +1.")
    if not np.all((s == 1) | (s == -1)):
        raise ValueError(
            "spins must be -1 or +1; for 0/1 variables convert with s = 2 * x - 1 "
            "(or use IsingModel.from_qubo)."
        )
    return s


def ising_energy(s: torch.Tensor, h: torch.Tensor, J: torch.Tensor) -> torch.Tensor:
    """Batched energy ``s·h + ½ sᵀJs`` in torch for ``s`` of shape ``(..., n)`` (differentiable)."""
    return s @ h + 0.5 * ((s @ J) * s).sum(-1)


# --- instance generators -----------------------------------------------------------------
def ferromagnet_2d(
    L: int, coupling: float = 1.0, field: float = 0.0, periodic: bool = True
) -> IsingModel:
    """The 2-D nearest-neighbour ferromagnet on an ``L x L`` lattice (spin ``r * L + c``)."""
    if L < 2:
        raise ValueError(f"L must be at least 2; got {L}.")
    idx = np.arange(L * L).reshape(L, L)
    pairs = [(idx[:, :-1], idx[:, 1:]), (idx[:-1, :], idx[1:, :])]
    if periodic and L > 2:
        pairs += [(idx[:, -1], idx[:, 0]), (idx[-1, :], idx[0, :])]
    rows = np.concatenate([a.ravel() for a, _ in pairs])
    cols = np.concatenate([b.ravel() for _, b in pairs])
    data = np.full(rows.size, -float(coupling))
    upper = sp.coo_array((data, (rows, cols)), shape=(L * L, L * L)).tocsr()
    return IsingModel(np.full(L * L, -float(field)), upper + upper.T)


def sherrington_kirkpatrick(
    n: int, seed: int | None = None, distribution: str = "gaussian"
) -> IsingModel:
    """The SK spin glass: all-to-all couplings ``N(0, 1/n)`` or ``±1/sqrt(n)``, no fields."""
    if n < 2:
        raise ValueError(f"n must be at least 2; got {n}.")
    rng = np.random.default_rng(seed)
    if distribution == "gaussian":
        upper = rng.standard_normal((n, n))
    elif distribution == "pm1":
        upper = rng.choice([-1.0, 1.0], size=(n, n))
    else:
        raise ValueError(f"distribution must be 'gaussian' or 'pm1'; got {distribution!r}.")
    upper = np.triu(upper, 1) / np.sqrt(n)
    return IsingModel(np.zeros(n), upper + upper.T)


def max_cut(
    n: int, edge_probability: float = 0.5, seed: int | None = None, weighted: bool = False
) -> IsingModel:
    """Max-Cut on an Erdős–Rényi graph as an Ising model: ``J_ij = w_ij`` on every edge.

    Minimizing ``sum w_ij s_i s_j`` maximizes the cut ``sum w_ij (1 - s_i s_j) / 2``.
    """
    if n < 2:
        raise ValueError(f"n must be at least 2; got {n}.")
    if not 0.0 < edge_probability <= 1.0:
        raise ValueError(f"edge_probability must be in (0, 1]; got {edge_probability}.")
    rng = np.random.default_rng(seed)
    mask = np.triu(rng.random((n, n)) < edge_probability, 1)
    weights = rng.uniform(0.5, 1.5, size=(n, n)) if weighted else np.ones((n, n))
    upper = np.where(mask, weights, 0.0)
    return IsingModel(np.zeros(n), upper + upper.T)


def _check_graph_model(model: IsingModel) -> float:
    """The total edge weight ``W = Σ_{i<j} w_ij`` of a Max-Cut model (fields must be zero)."""
    if np.any(model.h != 0):
        raise ValueError(
            "a Max-Cut model has no fields (J_ij = w_ij, h = 0); this model has non-zero h, so "
            "its energies are not cuts. Build it with read_gset, gset_random_graph, "
            "gset_toroidal_grid or max_cut."
        )
    return 0.5 * float(model.J.sum())


def maxcut_value(model: IsingModel, states: np.ndarray | Sequence) -> np.ndarray | float:
    """Cut weight ``Σ_{i<j} w_ij (1 - s_i s_j) / 2`` of one state ``(n,)`` or a batch ``(m, n)``.

    The model is the Max-Cut Ising model of a weighted graph, ``J_ij = w_ij`` and ``h = 0``
    (:func:`read_gset`, :func:`gset_random_graph`, :func:`max_cut`); the spins' signs give the two
    sides of the cut. Minimizing the energy ``Σ_{i<j} w_ij s_i s_j`` maximizes the cut.

    Raises
    ------
    ValueError
        If the model has fields (it is then not a Max-Cut model).
    """
    return energy_to_cut(model, model.energy(states))


def energy_to_cut(model: IsingModel, energy: np.ndarray | float) -> np.ndarray | float:
    """The cut of a state from its Ising energy: ``cut = (W - (E - offset)) / 2``."""
    total = _check_graph_model(model)
    cut = (total - (np.asarray(energy, dtype=np.float64) - model.offset)) / 2.0
    return float(cut) if cut.ndim == 0 else cut


def cut_to_energy(model: IsingModel, cut: np.ndarray | float) -> np.ndarray | float:
    """The Ising energy of a state from its cut: ``E = offset + W - 2 cut``."""
    total = _check_graph_model(model)
    energy = model.offset + total - 2.0 * np.asarray(cut, dtype=np.float64)
    return float(energy) if energy.ndim == 0 else energy


#: The former name of :func:`maxcut_value` (kept working).
cut_value = maxcut_value


# --- the Gset / rudy format ------------------------------------------------------------------
def read_gset(source: str | Path | io.TextIOBase) -> IsingModel:
    """Read a graph in the Gset / rudy edge-list format as a sparse Max-Cut Ising model.

    The format (Helmberg and Rendl's Gset, generated with Rinaldi's ``rudy``): a first line
    ``n m`` (nodes, edges), then ``m`` lines ``i j w`` with 1-based node indices and an integer or
    real weight. The model has ``J_ij = w_ij`` (summed over repeated edges), ``h = 0``, and spin
    ``i - 1`` for node ``i``, so :func:`maxcut_value` gives a state's cut.

    Parameters
    ----------
    source
        A path, or an open text file.

    Raises
    ------
    ValueError
        On a malformed header, a line that is not ``i j w``, a node outside ``1..n``, a self-loop,
        or a number of edge lines different from ``m``; the message names the line.
    """
    if isinstance(source, str | Path):
        with open(source) as fh:
            return read_gset(fh)
    lines = [(k + 1, ln.split()) for k, ln in enumerate(source) if ln.strip()]
    if not lines or len(lines[0][1]) != 2:
        raise ValueError("a Gset file starts with a line 'n m' (number of nodes and of edges).")
    try:
        n, m = (int(v) for v in lines[0][1])
    except ValueError as err:
        raise ValueError(f"line 1: 'n m' must be two integers; got {lines[0][1]}.") from err
    if n < 1 or m < 0:
        raise ValueError(f"line 1: need n >= 1 and m >= 0; got n={n}, m={m}.")
    edges = lines[1:]
    if len(edges) != m:
        raise ValueError(f"the header announces m={m} edges but the file has {len(edges)} lines.")
    rows, cols, data = np.empty(m, np.int64), np.empty(m, np.int64), np.empty(m)
    for e, (lineno, parts) in enumerate(edges):
        try:
            if len(parts) != 3:
                raise ValueError
            i, j, w = int(parts[0]), int(parts[1]), float(parts[2])
        except ValueError as err:
            raise ValueError(f"line {lineno}: expected 'i j w'; got {' '.join(parts)!r}.") from err
        if not (1 <= i <= n and 1 <= j <= n):
            raise ValueError(f"line {lineno}: node indices must be in 1..{n}; got {i} {j}.")
        if i == j:
            raise ValueError(f"line {lineno}: self-loop {i} {i}; a cut never contains one.")
        rows[e], cols[e], data[e] = min(i, j) - 1, max(i, j) - 1, w
    upper = sp.coo_array((data, (rows, cols)), shape=(n, n)).tocsr()
    return IsingModel(np.zeros(n), upper + upper.T)


def write_gset(model: IsingModel, target: str | Path | io.TextIOBase) -> None:
    """Write a Max-Cut model (``h = 0``) in the Gset / rudy format read by :func:`read_gset`."""
    _check_graph_model(model)
    upper = sp.triu(sp.coo_array(model.J), k=1).tocoo()
    keep = upper.data != 0
    r, c, w = upper.row[keep], upper.col[keep], upper.data[keep]
    order = np.lexsort((c, r))
    fmt = (lambda v: str(int(v))) if np.all(w == np.round(w)) else repr
    body = "".join(
        f"{i + 1} {j + 1} {fmt(v)}\n" for i, j, v in zip(r[order], c[order], w[order], strict=True)
    )
    text = f"{model.n} {len(w)}\n" + body
    if isinstance(target, str | Path):
        Path(target).write_text(text)
    else:
        target.write(text)


def _edge_weights(rng: np.random.Generator, m: int, weights: str) -> np.ndarray:
    if weights == "unit":
        return np.ones(m)
    if weights == "pm1":
        return rng.choice([-1.0, 1.0], size=m)
    raise ValueError(f"weights must be 'unit' or 'pm1'; got {weights!r}.")


def gset_random_graph(
    n: int, density: float = 0.01, weights: str = "unit", seed: int | None = None
) -> IsingModel:
    """A Gset-like random graph ``G(n, p)`` as a sparse Max-Cut model (``J_ij = w_ij``).

    Gset's random graphs (e.g. G22, G43: about 1 % density, unit weights; G6-G10, G27-G31:
    ±1 weights) were drawn by ``rudy`` as Erdős–Rényi graphs; this draws an instance of the same
    family (not the published graph itself, which is not shipped).

    Parameters
    ----------
    n
        Number of nodes (>= 2).
    density
        Edge probability ``p`` in (0, 1].
    weights
        ``"unit"`` (all 1) or ``"pm1"`` (±1 with equal probability).
    seed
        Seed of the generator.
    """
    if n < 2:
        raise ValueError(f"n must be at least 2; got {n}.")
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1]; got {density}.")
    rng = np.random.default_rng(seed)
    rows, cols = np.triu_indices(n, 1)
    keep = rng.random(rows.size) < density
    rows, cols = rows[keep], cols[keep]
    upper = sp.coo_array((_edge_weights(rng, rows.size, weights), (rows, cols)), shape=(n, n))
    upper = upper.tocsr()
    return IsingModel(np.zeros(n), upper + upper.T)


def gset_toroidal_grid(
    rows: int, cols: int, weights: str = "pm1", seed: int | None = None
) -> IsingModel:
    """A Gset-like toroidal 2-D grid (periodic in both directions) as a sparse Max-Cut model.

    Gset's toroidal instances (G11-G13: 800 nodes; G32-G34: 2,000; G48-G50: 3,000) are 2-D
    tori with ±1 weights: a 2-D ±J spin glass. Node ``r * cols + c`` sits at row ``r``, column
    ``c``; every node has four neighbours.

    Parameters
    ----------
    rows, cols
        Grid size (each >= 3, so that the four neighbours are distinct).
    weights
        ``"pm1"`` (default, as in Gset) or ``"unit"`` (an antiferromagnet).
    seed
        Seed of the generator.
    """
    if rows < 3 or cols < 3:
        raise ValueError(f"rows and cols must be at least 3; got {rows} x {cols}.")
    rng = np.random.default_rng(seed)
    idx = np.arange(rows * cols).reshape(rows, cols)
    a = np.concatenate([idx.ravel(), idx.ravel()])
    b = np.concatenate([np.roll(idx, -1, axis=1).ravel(), np.roll(idx, -1, axis=0).ravel()])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    n = rows * cols
    w = _edge_weights(rng, lo.size, weights)
    upper = sp.coo_array((w, (lo, hi)), shape=(n, n)).tocsr()
    return IsingModel(np.zeros(n), upper + upper.T)
