"""Trajectory metrics: diffusion pseudotime on an embedding against a reference ordering.

- :func:`trajectory_conservation`: scIB's score (Luecken et al., 2022; ``scib.metrics.
  trajectory_conservation``): diffusion pseudotime (DPT; Haghverdi et al., 2016, through
  ``scanpy.tl.diffmap`` and ``scanpy.tl.dpt``) on the embedding's kNN graph, rooted by scIB's
  vote, compared with a reference pseudotime by Spearman's ρ scaled to ``(ρ + 1) / 2``.
- :func:`pseudotime_spearman`: the same DPT against a *known* pseudotime (simulations), as ρ.
- :func:`paga_agreement`: the PAGA graph (Wolf et al., 2019) of the cell types in the embedding
  against a known lineage graph (edge precision, recall and AUROC of the connectivities).
- :func:`prior_energy`: a Boltzmann prior's energy ``E_θ(2q − 1)`` per cell (the QBM-VAE
  authors' "system potential"), a root-free ordering to correlate with a known pseudotime.

Root choice (scIB's vote)
-------------------------
The root group is the label group with the smallest mean reference pseudotime (or the one
given). On the largest connected component of the kNN graph, for each of the first
``n_vote_dims`` diffusion components (scanpy's ``X_diffmap`` columns 0, 1, 2, as scIB uses
them): if the root group's mean lies below the mean of all cells, the group's cell with the
smallest value gets a vote, else the one with the largest. The root is the cell with most votes
(the first one on a tie). A cell can also be given directly (``root_cell``).

Cells outside the largest connected component
---------------------------------------------
DPT is only defined on the component that holds the root. scIB *intends* to give every other
cell pseudotime 0 (``obs["dpt_pseudotime"].fillna(0, inplace=True)``), but that line is a
chained in-place fill, which does nothing under pandas copy-on-write (the default from pandas
3): the cells then stay NaN and drop out of the correlation, which changes the score. Here the
rule is explicit (``outside=``):

- ``"zero"`` (default; scIB's intent and its result under pandas < 3 without copy-on-write):
  those cells get pseudotime 0, as if they sat at the root. An embedding that breaks the
  trajectory into pieces is penalized in proportion to the cells it cuts off.
- ``"drop"``: those cells are left out of the correlation (scIB's result under copy-on-write);
  report :attr:`DiffusionPseudotime.n_outside` next to the score, since a fragmented embedding
  can then score well on the cells it kept.

DPT values above 1 (unreachable cells, ``inf`` in scanpy) are set to 0, as in scIB.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats
from scipy.sparse.csgraph import connected_components

from qbm_lite.checks import InputError, check_choice, drop_missing, obs_column, obsm_array

__all__ = [
    "DiffusionPseudotime",
    "diffusion_pseudotime",
    "dpt_from_diffmap",
    "knn_connectivities",
    "largest_component",
    "lineage_adjacency",
    "paga_agreement",
    "prior_energy",
    "pseudotime_spearman",
    "reference_pseudotime",
    "root_group_of",
    "scaled_spearman",
    "trajectory_benchmark",
    "trajectory_conservation",
    "vote_root",
]

OutsideRule = Literal["zero", "drop"]
StationaryRule = Literal["first", "scanpy"]

#: scanpy's float32 guard: components with an eigenvalue at least this are treated as stationary.
SCANPY_STATIONARY_CUT = 0.9994


# --- array level ---------------------------------------------------------------------------
def _empty_adata(n_cells: int):
    """An AnnData with ``n_cells`` cells and no genes: scanpy's vehicle for graph functions."""
    import anndata as ad

    return ad.AnnData(obs=pd.DataFrame(index=[str(i) for i in range(n_cells)]))


#: From this many cells on, ``scanpy.pp.neighbors`` (1.11) finds approximate neighbours with
#: pynndescent instead of exact ones (its ``_handle_transformer``).
SCANPY_APPROXIMATE_FROM = 8192


def knn_connectivities(
    X: np.ndarray, n_neighbors: int = 15, seed: int = 0
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """UMAP-style kNN graph of ``X`` ``(n_cells, n_dims)`` (``scanpy.pp.neighbors``).

    Returns ``(connectivities, distances)``, both ``(n_cells, n_cells)`` sparse. Below
    :data:`SCANPY_APPROXIMATE_FROM` cells the neighbours are exact (scanpy's brute-force
    default); from there on they are scanpy's default approximate ones (pynndescent with UMAP's
    ``n_trees`` and ``n_iters``), handed to scanpy as a scipy sparse *matrix*: pynndescent 0.7
    returns a ``csr_array``, on which scanpy 1.11 fails (``csr_array`` has no ``getnnz``).
    """
    import scanpy as sc

    if not 2 <= n_neighbors < X.shape[0]:
        raise InputError(f"n_neighbors must be in [2, n_cells={X.shape[0]}); got {n_neighbors}.")
    tmp = _empty_adata(X.shape[0])
    tmp.obsm["X_emb"] = np.asarray(X, dtype=np.float32)
    transformer = _approximate_knn(X.shape[0], n_neighbors, seed)
    sc.pp.neighbors(
        tmp, use_rep="X_emb", n_neighbors=n_neighbors, random_state=seed, transformer=transformer
    )
    return tmp.obsp["connectivities"].tocsr(), tmp.obsp["distances"].tocsr()


def _approximate_knn(n_cells: int, n_neighbors: int, seed: int) -> SparseMatrixOutput | None:
    """scanpy's default pynndescent transformer for ``n_cells``, returning a sparse matrix.

    ``None`` below :data:`SCANPY_APPROXIMATE_FROM` cells, where scanpy's own exact default
    applies. The settings are scanpy 1.11's (``scanpy.neighbors.Neighbors._handle_transformer``,
    after UMAP's ``nearest_neighbors``), so the neighbours are the ones scanpy would find.
    """
    if n_cells < SCANPY_APPROXIMATE_FROM:
        return None
    import scanpy as sc
    from pynndescent import PyNNDescentTransformer

    return SparseMatrixOutput(
        PyNNDescentTransformer(
            n_neighbors=n_neighbors,
            metric="euclidean",
            metric_kwds={},
            random_state=seed,
            n_jobs=sc.settings.n_jobs,
            n_trees=min(64, 5 + round(n_cells**0.5 / 20.0)),
            n_iters=max(5, round(np.log2(n_cells))),
        )
    )


class SparseMatrixOutput:
    """A kNN transformer whose graph comes out as a ``scipy.sparse.csr_matrix``.

    scanpy 1.11 reads a transformer's distance graph with ``getnnz(axis=1)``, which scipy's
    ``csr_array`` (what pynndescent 0.7 returns) does not have; wrapped, the same graph arrives
    as a ``csr_matrix``. It offers what ``scanpy.pp.neighbors`` calls on a transformer
    (``get_params`` and ``fit_transform``), both passed on to the wrapped one.
    """

    def __init__(self, transformer) -> None:  # noqa: ANN001 (any sklearn KNN transformer)
        self.transformer = transformer

    def get_params(self, deep: bool = True) -> dict:
        return self.transformer.get_params(deep=deep)

    def fit_transform(self, X, y=None) -> sp.csr_matrix:  # noqa: ANN001, N803
        return sp.csr_matrix(self.transformer.fit_transform(X, y))


def largest_component(connectivities: sp.spmatrix) -> np.ndarray:
    """``(n_cells,)`` boolean mask of the largest connected component (ties: lowest label)."""
    _, labels = connected_components(connectivities, directed=False, return_labels=True)
    return labels == np.bincount(labels).argmax()


def vote_root(diffmap: np.ndarray, candidates: np.ndarray, n_vote_dims: int = 3) -> int:
    """scIB's root vote: the candidate most often extreme over the first diffusion components.

    Parameters
    ----------
    diffmap
        ``(n_cells, n_comps)`` diffusion components (scanpy's ``X_diffmap``, column 0 included).
    candidates
        Indices (into ``diffmap``'s rows) of the root group's cells.
    n_vote_dims
        Number of components that vote.

    Returns
    -------
    int
        Index (into ``diffmap``'s rows) of the root cell.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    if candidates.size == 0:
        raise InputError(
            "the root group has no cell in the largest connected component of the kNN graph; "
            "pass root_group= another group or root_cell= a connected cell."
        )
    if diffmap.shape[1] < n_vote_dims:
        raise InputError(
            f"the root vote uses {n_vote_dims} diffusion components but only "
            f"{diffmap.shape[1]} were computed; raise n_comps or lower n_vote_dims."
        )
    votes = np.zeros(candidates.size)
    for dim in range(n_vote_dims):
        values = diffmap[candidates, dim]
        opt = np.argmin if values.mean() < diffmap[:, dim].mean() else np.argmax
        votes[opt(values)] += 1
    return int(candidates[np.argmax(votes)])


def dpt_from_diffmap(
    diffmap: np.ndarray,
    eigenvalues: np.ndarray,
    root: int,
    n_dcs: int = 10,
    stationary: StationaryRule = "first",
) -> np.ndarray:
    """Diffusion pseudotime of every cell from a diffusion map (Haghverdi et al., 2016).

    ``DPT(r, x)² = Σ_k (λ_k / (1 − λ_k))² (ψ_k(r) − ψ_k(x))²`` over the first ``n_dcs``
    components, where the stationary component (``λ = 1``) enters unweighted, then divided by
    its maximum over finite values (scanpy's normalization).

    Parameters
    ----------
    diffmap
        ``(n_cells, n_comps)`` eigenvectors ``ψ`` (scanpy's ``X_diffmap``).
    eigenvalues
        ``(n_comps,)`` their eigenvalues ``λ`` (scanpy's ``uns["diffmap_evals"]``), descending.
    root
        Row index of the root cell.
    n_dcs
        Components used.
    stationary
        Which components count as stationary. ``"first"`` (default): only component 0, the
        stationary state of a connected graph. ``"scanpy"``: every component with
        ``λ ≥ 0.9994`` (scanpy's guard against float32 round-off in ``1 − λ``). On a slowly
        mixing graph (a long thin trajectory, a 1-D embedding, many cells) the slowest
        non-trivial components have ``λ > 0.9994``, and scanpy's rule then discards exactly
        the components that carry the ordering: its DPT of a straight line is not monotone.

    Returns
    -------
    numpy.ndarray
        ``(n_cells,)`` pseudotime in [0, 1].
    """
    check_choice("stationary", stationary, StationaryRule)
    psi = np.asarray(diffmap, dtype=np.float64)[:, :n_dcs]
    lam = np.asarray(eigenvalues, dtype=np.float64)[:n_dcs]
    if stationary == "scanpy":
        is_stat = lam >= SCANPY_STATIONARY_CUT
    else:
        is_stat = np.zeros(lam.size, dtype=bool)
        is_stat[0] = True
    # 1 − λ floored at float32's resolution: the eigenvectors come from a float32 graph.
    gap = np.maximum(1.0 - lam, np.finfo(np.float32).eps)
    weight = np.where(is_stat, 1.0, lam / gap)
    dist = np.sqrt((((psi[root] - psi) * weight) ** 2).sum(axis=1))
    return dist / dist[np.isfinite(dist)].max()


@dataclass
class DiffusionPseudotime:
    """DPT of every cell and how it was obtained.

    Attributes
    ----------
    pseudotime
        ``(n_cells,)`` DPT in [0, 1] on the largest component; cells outside get 0
        (``outside="zero"``) or NaN (``outside="drop"``).
    root
        Index of the root cell (into all cells).
    in_component
        ``(n_cells,)`` mask of the largest connected component.
    diffmap
        ``(n_in_component, n_comps)`` diffusion components of that component.
    eigenvalues
        ``(n_comps,)`` their eigenvalues (the spectral gap shows how many matter).
    """

    pseudotime: np.ndarray = field(repr=False)
    root: int
    in_component: np.ndarray = field(repr=False)
    diffmap: np.ndarray = field(repr=False)
    eigenvalues: np.ndarray = field(repr=False)

    @property
    def n_outside(self) -> int:
        """Cells outside the largest connected component."""
        return int((~self.in_component).sum())


def diffusion_pseudotime(
    X: np.ndarray,
    root_candidates: np.ndarray | None = None,
    *,
    root_cell: int | None = None,
    n_neighbors: int = 15,
    n_comps: int = 15,
    n_dcs: int = 10,
    n_vote_dims: int = 3,
    outside: OutsideRule = "zero",
    stationary: StationaryRule = "first",
    seed: int = 0,
) -> DiffusionPseudotime:
    """DPT on the kNN graph of an embedding, rooted by scIB's vote or at a given cell.

    Parameters
    ----------
    X
        ``(n_cells, n_dims)`` embedding (any number of dimensions, 1 included).
    root_candidates
        Indices of the root group's cells (the vote picks one); or give ``root_cell``.
    root_cell
        Index of the root cell (must lie in the largest component).
    n_neighbors
        Neighbours of the kNN graph (``scanpy.pp.neighbors``).
    n_comps
        Diffusion components computed (``scanpy.tl.diffmap``; must be > 2 and < the number of
        cells in the largest component).
    n_dcs
        Diffusion components DPT uses (``scanpy.tl.dpt``; at most ``n_comps``).
    n_vote_dims
        Components used by the root vote.
    outside
        Rule for cells outside the largest component (see the module docstring).
    stationary
        ``"first"`` (default) or ``"scanpy"``: which diffusion components count as stationary
        (:func:`dpt_from_diffmap`). ``"scanpy"`` calls ``scanpy.tl.dpt`` itself, as scIB does.
    seed
        Seed of the kNN search.

    Raises
    ------
    qbm_lite.checks.InputError
        Neither or both of ``root_candidates`` and ``root_cell``; a root outside the largest
        component; more diffusion components asked for than there are cells or than computed.
    """
    import scanpy as sc

    check_choice("outside", outside, OutsideRule)
    check_choice("stationary", stationary, StationaryRule)
    if (root_candidates is None) == (root_cell is None):
        raise InputError("pass exactly one of root_candidates (a group's cells) and root_cell.")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise InputError(f"X must be 2-D (n_cells, n_dims); got shape {X.shape}.")
    if not 2 < n_comps:
        raise InputError(f"n_comps must be > 2 (scanpy.tl.diffmap); got {n_comps}.")
    if not 1 <= n_dcs <= n_comps:
        raise InputError(
            f"DPT asked for n_dcs={n_dcs} diffusion components but only n_comps={n_comps} are "
            "computed; lower n_dcs or raise n_comps."
        )
    conn, dist = knn_connectivities(X, n_neighbors, seed)
    keep = largest_component(conn)
    idx = np.flatnonzero(keep)
    if n_comps >= idx.size:
        raise InputError(
            f"n_comps={n_comps} diffusion components need more cells than the {idx.size} in "
            "the largest connected component; lower n_comps or pass more cells."
        )
    sub = _empty_adata(idx.size)
    sub.obsp["connectivities"] = conn[idx][:, idx]
    sub.obsp["distances"] = dist[idx][:, idx]
    sub.uns["neighbors"] = {
        "connectivities_key": "connectivities",
        "distances_key": "distances",
        "params": {"n_neighbors": n_neighbors, "method": "umap"},
    }
    sc.tl.diffmap(sub, n_comps=n_comps)
    position = {int(c): i for i, c in enumerate(idx)}
    if root_cell is not None:
        if int(root_cell) not in position:
            raise InputError(
                f"root_cell {root_cell} is outside the largest connected component of the kNN "
                "graph; choose a connected cell."
            )
        root_sub = position[int(root_cell)]
    else:
        local = [position[int(c)] for c in root_candidates if int(c) in position]
        root_sub = vote_root(sub.obsm["X_diffmap"], np.asarray(local), n_vote_dims)
    if stationary == "scanpy":
        sub.uns["iroot"] = root_sub
        sc.tl.dpt(sub, n_dcs=n_dcs)
        dpt = sub.obs["dpt_pseudotime"].to_numpy(dtype=np.float64).copy()
    else:
        evals = sub.uns["diffmap_evals"]
        dpt = dpt_from_diffmap(sub.obsm["X_diffmap"], evals, root_sub, n_dcs, stationary)
    dpt[~(dpt <= 1.0)] = 0.0  # scIB: values above 1 (inf: unreachable) become 0
    full = np.full(X.shape[0], 0.0 if outside == "zero" else np.nan)
    full[idx] = dpt
    return DiffusionPseudotime(
        pseudotime=full,
        root=int(idx[root_sub]),
        in_component=keep,
        diffmap=np.asarray(sub.obsm["X_diffmap"]),
        eigenvalues=np.asarray(sub.uns["diffmap_evals"]),
    )


def scaled_spearman(reference: np.ndarray, pseudotime: np.ndarray) -> float:
    """``(ρ + 1) / 2`` with Spearman's ρ over the cells where both are defined (not NaN).

    NaN when either side is constant there (ρ is undefined), e.g. a batch whose cells all lie
    outside the largest component and got DPT 0.
    """
    ok = ~(np.isnan(reference) | np.isnan(pseudotime))
    x, y = reference[ok], pseudotime[ok]
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")  # no order to compare (e.g. every cell cut off): the caller decides
    rho = stats.spearmanr(x, y).statistic
    return float((rho + 1.0) / 2.0)


def root_group_of(labels: np.ndarray, pseudotime: np.ndarray) -> object:
    """The label with the smallest mean pseudotime (scIB's root group)."""
    means = pd.Series(pseudotime).groupby(np.asarray(labels), observed=True).mean()
    return means.idxmin()


def prior_energy(q: np.ndarray, h: np.ndarray, J: np.ndarray) -> np.ndarray:
    """Boltzmann prior energy of each cell's mean spins, ``E_θ(2q − 1)`` ``(n_cells,)``.

    With ``s = 2q − 1`` and the package's Ising convention ``E(s) = s·h + ½ sᵀJs``
    (:func:`qbm_lite.ising.ising_energy`; ``J`` symmetric with zero diagonal), this is also
    ``E_q[E_θ(s)]`` for independent bits, the positive-phase energy of the QBM-VAE's KL. It is
    an ordering of cells that needs no root; whether it follows developmental time is an
    empirical question (the QBM-VAE paper calls it the cell's "system potential").
    """
    q = np.asarray(q, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64).ravel()
    J = np.asarray(J, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != h.size or J.shape != (h.size, h.size):
        raise InputError(
            f"q must be (n_cells, n) with h (n,) and J (n, n); got {q.shape}, {h.shape}, {J.shape}."
        )
    if not np.allclose(J, J.T):
        raise InputError("J must be symmetric (the prior's coupling matrix).")
    s = 2.0 * q - 1.0
    return s @ h + 0.5 * np.einsum("ci,ij,cj->c", s, J, s)


def lineage_adjacency(types: Sequence[str], edges: Sequence[tuple[str, str]]) -> np.ndarray:
    """Symmetric 0/1 adjacency ``(n_types, n_types)`` of ``edges`` between ``types``.

    Edges with a type not in ``types`` are ignored (e.g. a stretch with no cells).
    """
    pos = {t: i for i, t in enumerate(types)}
    A = np.zeros((len(types), len(types)))
    for a, b in edges:
        if a in pos and b in pos:
            A[pos[a], pos[b]] = A[pos[b], pos[a]] = 1.0
    return A


def _edge_scores(conn: np.ndarray, truth: np.ndarray, threshold: float) -> dict[str, float]:
    iu = np.triu_indices_from(truth, k=1)
    c, t = conn[iu], truth[iu] > 0
    called = c > threshold
    tp = float((called & t).sum())
    precision = tp / called.sum() if called.any() else float("nan")
    recall = tp / t.sum() if t.any() else float("nan")
    if t.all() or not t.any():
        auc = float("nan")
    else:  # AUROC as the normalized Mann-Whitney U (ties count half)
        auc = float(stats.mannwhitneyu(c[t], c[~t]).statistic / (t.sum() * (~t).sum()))
    return {"paga_precision": precision, "paga_recall": recall, "paga_auc": auc}


# --- AnnData wrappers ----------------------------------------------------------------------
def _prepare(
    adata,
    obsm_key: str,
    pseudotime_key: str,
    label_key: str | None,
    root_group,
    root_cell,
    batch_key: str | None,
    dropna: bool,
):
    keys = [pseudotime_key] + [k for k in (label_key, batch_key) if k is not None]
    n_dropped = 0
    if dropna:
        adata, n_dropped = drop_missing(adata, keys, role="trajectory column")
    ref = obs_column(adata, pseudotime_key, role="pseudotime_key", kind="numeric")
    ref = ref.to_numpy(dtype=np.float64)
    if not np.isfinite(ref).all():
        raise InputError(f"adata.obs[{pseudotime_key!r}] has infinite values; fix or drop them.")
    X = obsm_array(adata, obsm_key)
    if root_cell is not None:
        if root_group is not None:
            raise InputError("pass root_group or root_cell, not both.")
        if isinstance(root_cell, str):
            if root_cell not in adata.obs_names:
                raise InputError(f"root_cell {root_cell!r} is not a cell name of adata.")
            root_cell = int(adata.obs_names.get_loc(root_cell))
        return adata, X, ref, None, int(root_cell), n_dropped
    if label_key is None:
        raise InputError(
            "the root vote needs label_key (the groups); pass label_key= or root_cell=."
        )
    labels = obs_column(adata, label_key, role="label_key", kind="categorical").to_numpy()
    if root_group is None:
        root_group = root_group_of(labels, ref)
    candidates = np.flatnonzero(labels == root_group)
    if candidates.size == 0:
        known = sorted(map(str, pd.unique(labels)))
        raise InputError(
            f"root_group {root_group!r} has no cells in adata.obs[{label_key!r}] (groups: "
            f"{known}); pass an existing group."
        )
    return adata, X, ref, candidates, None, n_dropped


def _dpt(adata, obsm_key, pseudotime_key, label_key, root_group, root_cell, batch_key, dropna,
         **kwargs):  # fmt: skip
    adata, X, ref, candidates, root, _ = _prepare(
        adata, obsm_key, pseudotime_key, label_key, root_group, root_cell, batch_key, dropna
    )
    dpt = diffusion_pseudotime(X, candidates, root_cell=root, **kwargs)
    return adata, ref, dpt


def trajectory_conservation(
    adata,
    obsm_key: str,
    pseudotime_key: str,
    *,
    label_key: str | None = None,
    root_group=None,
    root_cell: int | str | None = None,
    batch_key: str | None = None,
    n_neighbors: int = 15,
    n_comps: int = 15,
    n_dcs: int = 10,
    n_vote_dims: int = 3,
    outside: OutsideRule = "zero",
    stationary: StationaryRule = "first",
    dropna: bool = False,
    seed: int = 0,
) -> float:
    """scIB's trajectory conservation of the embedding ``adata.obsm[obsm_key]``.

    DPT on the embedding's kNN graph (:func:`diffusion_pseudotime`) against the reference
    ``adata.obs[pseudotime_key]`` (e.g. DPT of the unintegrated data, or a known pseudotime),
    as ``(ρ + 1) / 2`` with Spearman's ρ; with ``batch_key`` the mean of ρ over batches first.

    Parameters
    ----------
    adata
        Cells with the embedding in ``obsm`` and the reference in ``obs``.
    obsm_key, pseudotime_key
        The embedding and the reference pseudotime column (numeric, no missing values unless
        ``dropna=True``).
    label_key, root_group
        The groups and the root group (default: the group with the smallest mean reference
        pseudotime); the root is voted among its cells (module docstring).
    root_cell
        A root cell (name or index) instead of the vote.
    batch_key
        Average ρ over these batches (scIB's per-batch option). With ``outside="zero"`` a batch
        whose DPT is constant (all its cells outside the largest component) counts as ρ = 0;
        scIB's mean skips such a batch (its ρ is NaN), as ``outside="drop"`` does here.
    n_neighbors, n_comps, n_dcs, n_vote_dims, seed
        Passed to :func:`diffusion_pseudotime` (scanpy's and scIB's defaults).
    outside
        ``"zero"`` or ``"drop"``: the rule for cells outside the largest component.
    stationary
        ``"first"`` (default) or ``"scanpy"`` (scIB's result exactly, through
        ``scanpy.tl.dpt``): which diffusion components DPT treats as stationary
        (:func:`dpt_from_diffmap`).
    dropna
        Drop cells with a missing pseudotime, label or batch instead of raising.

    Returns
    -------
    float
        In [0, 1]; 1 is the reference's order exactly, 0.5 no relation.

    Raises
    ------
    qbm_lite.checks.InputError
        Missing column or key, NaN pseudotime (without ``dropna``), an empty root group, a
        root outside the largest component, more diffusion components than available.
    """
    adata, ref, dpt = _dpt(
        adata,
        obsm_key,
        pseudotime_key,
        label_key,
        root_group,
        root_cell,
        batch_key,
        dropna,
        n_neighbors=n_neighbors,
        n_comps=n_comps,
        n_dcs=n_dcs,
        n_vote_dims=n_vote_dims,
        outside=outside,
        stationary=stationary,
        seed=seed,
    )
    if batch_key is None:
        return scaled_spearman(ref, dpt.pseudotime)
    batches = obs_column(adata, batch_key, role="batch_key", kind="categorical").to_numpy()
    rhos = np.array(
        [
            2 * scaled_spearman(ref[batches == b], dpt.pseudotime[batches == b]) - 1
            for b in pd.unique(batches)
        ]
    )
    if outside == "zero":
        # A batch whose DPT is constant (every cell cut off, all set to 0) counts as ρ = 0: no
        # order kept. scIB's mean skips it instead, which rewards cutting whole batches off.
        rhos = np.where(np.isnan(rhos), 0.0, rhos)
    return float((np.nanmean(rhos) + 1.0) / 2.0)


def pseudotime_spearman(
    adata,
    obsm_key: str,
    true_key: str = "pseudotime",
    *,
    label_key: str | None = "cell_type",
    root_group=None,
    root_cell: int | str | None = None,
    outside: OutsideRule = "zero",
    return_dpt: bool = False,
    **kwargs,
) -> float | tuple[float, DiffusionPseudotime]:
    """Spearman's ρ of the embedding's DPT with a *known* pseudotime (e.g. a simulation's).

    Same DPT and root vote as :func:`trajectory_conservation` (the root group is the one
    earliest in the known pseudotime); ρ unscaled, in [-1, 1]. With ``return_dpt=True`` also
    returns the :class:`DiffusionPseudotime` (for plots). Other keyword arguments go to
    :func:`diffusion_pseudotime`.
    """
    adata, ref, dpt = _dpt(
        adata, obsm_key, true_key, label_key, root_group, root_cell, None, False,
        outside=outside, **kwargs,
    )  # fmt: skip
    rho = 2.0 * scaled_spearman(ref, dpt.pseudotime) - 1.0
    return (rho, dpt) if return_dpt else rho


def paga_agreement(
    adata,
    obsm_key: str,
    lineage: Sequence[tuple[str, str]] | Mapping[str, Sequence[str]],
    label_key: str = "cell_type",
    *,
    n_neighbors: int = 15,
    threshold: float = 0.1,
    seed: int = 0,
    return_connectivities: bool = False,
) -> dict[str, float] | tuple[dict[str, float], pd.DataFrame]:
    """PAGA of the cell types on the embedding's kNN graph against a known lineage graph.

    Parameters
    ----------
    adata
        Cells with the embedding and ``obs[label_key]``.
    obsm_key
        The embedding.
    lineage
        True edges between types: pairs ``(parent, child)``, or ``{"parent": [...],
        "child": [...]}`` as :func:`qbm_lite.data.simulate` stores in
        ``uns["simulation"]["lineage"]``.
    label_key
        The types (PAGA's groups).
    n_neighbors, seed
        The kNN graph.
    threshold
        PAGA connectivity above which an edge counts as called.

    Returns
    -------
    dict
        ``paga_precision`` and ``paga_recall`` of the called edges, and ``paga_auc``: the
        probability that a true edge has a higher connectivity than a non-edge
        (threshold-free). With ``return_connectivities`` also the ``(n_types, n_types)``
        connectivities as a frame.
    """
    import scanpy as sc

    X = obsm_array(adata, obsm_key)
    labels = obs_column(adata, label_key, role="label_key", kind="categorical")
    if isinstance(lineage, Mapping):
        edges = list(zip(lineage["parent"], lineage["child"], strict=True))
    else:
        edges = [tuple(e) for e in lineage]
    if not edges:
        raise InputError("lineage has no edges; pass (parent, child) pairs.")
    conn, dist = knn_connectivities(X, n_neighbors, seed)
    tmp = _empty_adata(X.shape[0])
    tmp.obs["group"] = pd.Categorical(labels.astype(str).to_numpy())
    tmp.obs["group"] = tmp.obs["group"].cat.remove_unused_categories()
    tmp.obsp["connectivities"], tmp.obsp["distances"] = conn, dist
    tmp.uns["neighbors"] = {
        "connectivities_key": "connectivities",
        "distances_key": "distances",
        "params": {"n_neighbors": n_neighbors, "method": "umap"},
    }
    sc.tl.paga(tmp, groups="group")
    types = list(tmp.obs["group"].cat.categories)
    C = np.asarray(tmp.uns["paga"]["connectivities"].todense())
    truth = lineage_adjacency(types, edges)
    scores = _edge_scores(C, truth, threshold)
    if return_connectivities:
        return scores, pd.DataFrame(C, index=types, columns=types)
    return scores


def reference_pseudotime(
    adata,
    label_key: str,
    root_group,
    *,
    batch_key: str | None = None,
    n_pcs: int = 10,
    key_added: str = "dpt_reference",
    **kwargs,
) -> np.ndarray:
    """scIB's reference: DPT of the *unintegrated* data, per batch, written to ``obs``.

    Within each batch (or on all cells): PCA with ``n_pcs`` components of the log-normalized
    ``X``, then :func:`diffusion_pseudotime` rooted by the vote among ``root_group``'s cells.
    Computing it per batch keeps the batch effect out of the reference (scIB: "pseudotime
    values ... computed per batch"). Cells outside a batch's largest component get NaN, so
    :func:`trajectory_conservation` needs ``dropna=True`` when there are any. Other keyword
    arguments go to :func:`diffusion_pseudotime`.

    Returns the ``(n_cells,)`` reference, also stored in ``adata.obs[key_added]``.
    """
    import scanpy as sc

    labels = obs_column(adata, label_key, role="label_key", kind="categorical").to_numpy()
    if batch_key is None:
        groups = np.zeros(adata.n_obs, dtype=int)
    else:
        groups = obs_column(adata, batch_key, role="batch_key", kind="categorical").to_numpy()
    out = np.full(adata.n_obs, np.nan)
    for b in pd.unique(groups):
        rows = np.flatnonzero(groups == b)
        X = adata.X[rows]
        n = int(min(n_pcs, len(rows) - 1, adata.n_vars - 1))
        pcs = sc.pp.pca(X.toarray() if sp.issparse(X) else np.asarray(X), n_comps=n)
        cand = np.flatnonzero(labels[rows] == root_group)
        if cand.size == 0:
            raise InputError(f"root_group {root_group!r} has no cells in batch {b!r}.")
        res = diffusion_pseudotime(pcs, cand, outside="drop", **kwargs)
        out[rows] = res.pseudotime
    adata.obs[key_added] = out
    return out


def trajectory_benchmark(
    adata,
    obsm_keys: Mapping[str, str],
    label_key: str = "cell_type",
    *,
    reference_key: str | None = None,
    true_key: str | None = None,
    lineage=None,
    batch_key: str | None = None,
    **kwargs,
) -> pd.DataFrame:
    """Every trajectory metric for several embeddings, as one tidy table.

    Parameters
    ----------
    adata
        Cells with the embeddings in ``obsm``.
    obsm_keys
        ``{method name: obsm key}``.
    label_key
        The groups (root vote, PAGA).
    reference_key
        ``obs`` column of a reference pseudotime (:func:`reference_pseudotime`): adds
        ``trajectory_conservation`` (per batch when ``batch_key`` is given; cells without a
        reference are dropped).
    true_key
        ``obs`` column of a known pseudotime: adds ``pseudotime_spearman`` and ``n_outside``.
    lineage
        Known lineage edges: adds ``paga_auc``, ``paga_precision`` and ``paga_recall``.
    batch_key
        Batches for the per-batch trajectory conservation.
    **kwargs
        Passed to :func:`diffusion_pseudotime` (``n_neighbors``, ``outside``, ``stationary``).

    Returns
    -------
    pandas.DataFrame
        Columns ``method``, ``metric``, ``value``.
    """
    rows = []
    for name, key in obsm_keys.items():
        if reference_key is not None:
            root = root_group_of(
                obs_column(adata, label_key, role="label_key").to_numpy(),
                obs_column(adata, reference_key, allow_missing=True).to_numpy(dtype=float),
            )
            v = trajectory_conservation(
                adata, key, reference_key, label_key=label_key, root_group=root,
                batch_key=batch_key, dropna=True, **kwargs,
            )  # fmt: skip
            rows.append((name, "trajectory_conservation", v))
        if true_key is not None:
            rho, res = pseudotime_spearman(
                adata, key, true_key, label_key=label_key, return_dpt=True, **kwargs
            )
            rows += [(name, "pseudotime_spearman", rho), (name, "n_outside", res.n_outside)]
        if lineage is not None:
            nn = {k: kwargs[k] for k in ("n_neighbors", "seed") if k in kwargs}
            scores = paga_agreement(adata, key, lineage, label_key, **nn)
            rows += [(name, m, v) for m, v in scores.items()]
    return pd.DataFrame(rows, columns=["method", "metric", "value"]).astype({"value": float})
