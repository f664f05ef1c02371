"""scGraph: does an embedding keep the distances *between* cell types that every batch agrees on?

The metric of Wang, Leskovec and Regev ("Metric Mirages in Cell Embeddings", 2024; reference
package ``scgraph-eval``, which imports as ``scgraph``):

1. **Reference, per batch** (batches with at least ``min_batch_cells`` cells): the top
   ``n_top_genes`` highly variable genes of the log-normalized ``X`` (scanpy, Seurat flavour),
   PCA with ``n_comps`` components, the trimmed mean (``trim_rate`` cut at each end, per
   dimension) of each cell type's PCA scores, the Euclidean distances between these centroids,
   and each column divided by its maximum.
2. **Consensus**: the mean over batches of those matrices (a type absent from a batch does not
   count there), each column divided again by its maximum.
3. **Per embedding**: the same centroid-distance matrix, then for each reference type ``j``
   (a column) three agreements between its distances to the other types and the consensus:
   ``Rank-PCA`` (Spearman), ``Corr-PCA`` (Pearson) and ``Corr-Weighted`` (Pearson weighted by
   ``1 / d_consensus``, so near neighbours count most: the paper's "scGraph score"); each is the
   mean over types.

Corrected by default
--------------------
``scgraph-eval`` correlates whole columns, *including each type's zero distance to itself*. That
zero is the smallest entry in both vectors whatever the embedding, so it adds one perfectly
agreeing pair to every correlation: with 6 types a random embedding scores about 0.5-0.75 on
``Rank-PCA``/``Corr-PCA`` instead of about 0. The default here (``include_self=False``) drops the
diagonal, so a random embedding scores about 0 and an embedding equal to the reference scores 1.
``Corr-Weighted`` gives the diagonal weight 0 already and is the same in both modes.
``include_self=True`` reproduces ``scgraph-eval`` exactly (checked to 1e-6 in the tests).

Array-level functions (:func:`trimmed_centroids`, :func:`centroid_distances`,
:func:`consensus_distances`, :func:`graph_agreement`) do the arithmetic; :func:`scgraph` reads an
AnnData.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import cdist

from qbm_lite.checks import InputError, obs_column, obsm_array

__all__ = [
    "SCGRAPH_COLUMNS",
    "centroid_distances",
    "consensus_distances",
    "graph_agreement",
    "reference_distances",
    "scgraph",
    "trimmed_centroids",
    "weighted_pearson",
]

#: The three scores, in scgraph-eval's column order.
SCGRAPH_COLUMNS = ("Rank-PCA", "Corr-PCA", "Corr-Weighted")


def trimmed_centroids(
    X: np.ndarray, labels: Sequence | np.ndarray, types: Sequence, trim_rate: float = 0.05
) -> np.ndarray:
    """Trimmed mean of each type's rows, per dimension (``scipy.stats.trim_mean``).

    Parameters
    ----------
    X
        ``(n_cells, n_dims)`` coordinates.
    labels
        ``(n_cells,)`` type of each cell.
    types
        The types to compute, in output order; each must have at least one cell.
    trim_rate
        Share cut from each end of each dimension, in [0, 0.5).

    Returns
    -------
    numpy.ndarray
        ``(len(types), n_dims)`` centroids.
    """
    if not 0.0 <= trim_rate < 0.5:
        raise InputError(f"trim_rate must be in [0, 0.5); got {trim_rate}.")
    labels = np.asarray(labels)
    out = np.empty((len(types), X.shape[1]), dtype=np.float64)
    for i, t in enumerate(types):
        rows = X[labels == t]
        if rows.shape[0] == 0:
            raise InputError(f"type {t!r} has no cells; drop it from `types`.")
        out[i] = stats.trim_mean(rows, proportiontocut=trim_rate, axis=0)
    return out


def centroid_distances(centroids: np.ndarray) -> np.ndarray:
    """Euclidean distances between centroids, each column divided by its maximum.

    Returns ``(n_types, n_types)``; column ``j`` holds the distances from type ``j`` to every
    type scaled to a maximum of 1 (the scaling of ``scgraph-eval``).
    """
    D = cdist(centroids, centroids, "euclidean")
    col_max = D.max(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return D / col_max[None, :]


def consensus_distances(per_batch: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Consensus of per-batch distance matrices (labelled frames, possibly different types).

    The entry-wise mean over the batches where both types occur, then each column divided by
    its maximum. Rows and columns are sorted by type name (as ``scgraph-eval`` orders them).
    """
    if not per_batch:
        raise InputError(
            "no batch is large enough for the reference; lower min_batch_cells or pass more cells."
        )
    stacked = pd.concat(per_batch, axis=0, sort=False)
    mean = stacked.groupby(stacked.index).mean()
    types = sorted(mean.columns)
    mean = mean.loc[types, types]
    return mean / mean.max(axis=0)


def weighted_pearson(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> float:
    """Pearson correlation of ``x`` and ``y`` with non-negative ``weights`` (normalized here)."""
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mx, my = np.average(x, weights=w), np.average(y, weights=w)
    cov = np.sum(w * (x - mx) * (y - my))
    return float(cov / np.sqrt(np.sum(w * (x - mx) ** 2) * np.sum(w * (y - my) ** 2)))


def graph_agreement(
    embedding: np.ndarray, reference: np.ndarray, *, include_self: bool = False
) -> dict[str, float]:
    """The three scGraph scores of an embedding's distance matrix against the reference.

    Parameters
    ----------
    embedding, reference
        ``(n_types, n_types)`` column-normalized distance matrices over the same types in the
        same order (:func:`centroid_distances`, :func:`consensus_distances`). NaN entries of a
        column (a type pair no batch measured) are left out of that column.
    include_self
        Keep each type's zero distance to itself in ``Rank-PCA`` and ``Corr-PCA`` (the
        behaviour of ``scgraph-eval``, which inflates both); default: leave it out.

    Returns
    -------
    dict
        ``{"Rank-PCA", "Corr-PCA", "Corr-Weighted"}``: each the mean over reference types.
    """
    E = np.asarray(embedding, dtype=np.float64)
    R = np.asarray(reference, dtype=np.float64)
    if E.shape != R.shape or E.ndim != 2 or E.shape[0] != E.shape[1]:
        raise InputError(f"expected two equal square matrices; got {E.shape} and {R.shape}.")
    if E.shape[0] < 3:
        raise InputError(
            f"scGraph needs at least 3 cell types (2 distances per type); got {E.shape[0]}."
        )
    scores: dict[str, list[float]] = {c: [] for c in SCGRAPH_COLUMNS}
    for j in range(E.shape[1]):
        keep = np.isfinite(E[:, j]) & np.isfinite(R[:, j])
        if not include_self:
            keep[j] = False
        x, y = E[keep, j], R[keep, j]
        scores["Rank-PCA"].append(float(stats.spearmanr(x, y).statistic))
        scores["Corr-PCA"].append(float(np.corrcoef(x, y)[0, 1]))
        with np.errstate(divide="ignore"):
            w = np.where(y == 0, 0.0, 1.0 / y)
        scores["Corr-Weighted"].append(weighted_pearson(x, y, w))
    return {c: float(np.nanmean(v)) for c, v in scores.items()}


def reference_distances(
    adata,
    batch_key: str,
    label_key: str,
    *,
    types: Sequence,
    trim_rate: float = 0.05,
    min_batch_cells: int = 100,
    n_top_genes: int = 1000,
    n_comps: int = 10,
) -> tuple[pd.DataFrame, list]:
    """Consensus reference (step 1-2 above) from the log-normalized ``adata.X``.

    Returns the consensus frame and the list of batches used.
    """
    import anndata as ad
    import scanpy as sc

    batches = obs_column(adata, batch_key, role="batch_key", kind="categorical")
    labels = obs_column(adata, label_key, role="label_key", kind="categorical")
    keep_types = set(types)
    per_batch, used = [], []
    for b in pd.unique(batches):
        mask = (batches == b).to_numpy()
        if mask.sum() < min_batch_cells:
            continue
        sub = ad.AnnData(X=adata.X[mask], var=pd.DataFrame(index=adata.var_names.copy()))
        with warnings.catch_warnings():
            # With n_top_genes >= the genes there are, scanpy keeps them all and says so; that
            # is the intended outcome on small panels (scgraph-eval always asks for 1000).
            warnings.filterwarnings(
                "ignore", message=r"`n_top_genes` > number of normalized", category=UserWarning
            )
            sc.pp.highly_variable_genes(sub, n_top_genes=n_top_genes)
        sc.pp.pca(sub, n_comps=n_comps, mask_var="highly_variable")
        lab = labels.to_numpy()[mask]
        present = sorted(t for t in pd.unique(lab) if t in keep_types)
        C = trimmed_centroids(sub.obsm["X_pca"], lab, present, trim_rate)
        per_batch.append(pd.DataFrame(centroid_distances(C), index=present, columns=present))
        used.append(b)
    return consensus_distances(per_batch), used


def scgraph(
    adata,
    obsm_keys: Sequence[str] | Mapping[str, str],
    batch_key: str = "batch",
    label_key: str = "cell_type",
    *,
    trim_rate: float = 0.05,
    min_batch_cells: int = 100,
    min_type_cells: int = 10,
    n_top_genes: int = 1000,
    n_comps: int = 10,
    include_self: bool = False,
    tidy: bool = False,
) -> pd.DataFrame:
    """scGraph scores of embeddings in ``adata.obsm`` against the batches' consensus.

    Parameters
    ----------
    adata
        Log-normalized expression in ``X`` (the reference PCA is computed from it per batch),
        ``obs[batch_key]``, ``obs[label_key]`` and the embeddings in ``obsm``.
    obsm_keys
        Embedding keys, or ``{method name: obsm key}`` (e.g. from
        :func:`qbm_lite.baselines.train_methods`). Any number of dimensions (``scgraph-eval``
        by default skips all but 2-D ones).
    batch_key, label_key
        ``obs`` columns with the batch and the cell type.
    trim_rate
        Share trimmed from each end when averaging a type's cells.
    min_batch_cells
        Batches with fewer cells are left out of the reference.
    min_type_cells
        Types with fewer cells in the whole data are left out everywhere.
    n_top_genes, n_comps
        Highly variable genes and principal components of each batch's reference PCA.
    include_self
        ``False`` (default): the corrected scores; ``True``: reproduce ``scgraph-eval``
        (see the module docstring).
    tidy
        Return the long table (``method``, ``metric``, ``value``) instead of the wide one.

    Returns
    -------
    pandas.DataFrame
        One row per embedding (index: method name or key) with the columns
        ``Rank-PCA``, ``Corr-PCA`` and ``Corr-Weighted`` (:func:`reference_distances` returns
        the consensus matrix itself).

    Raises
    ------
    qbm_lite.checks.InputError
        Missing columns or keys, missing labels, fewer than 3 usable types, no usable batch.
    """
    keys = dict(obsm_keys) if isinstance(obsm_keys, Mapping) else {k: k for k in obsm_keys}
    if not keys:
        raise InputError("obsm_keys is empty; pass at least one embedding key.")
    embeddings = {name: obsm_array(adata, key) for name, key in keys.items()}
    labels = obs_column(adata, label_key, role="label_key", kind="categorical")
    obs_column(adata, batch_key, role="batch_key", kind="categorical")
    counts = labels.value_counts()
    types = sorted(t for t in counts.index if counts[t] >= min_type_cells)
    if len(types) < 3:
        raise InputError(
            f"scGraph needs at least 3 cell types with >= {min_type_cells} cells; found "
            f"{len(types)} ({types}). Lower min_type_cells or use a finer label_key."
        )
    consensus, _ = reference_distances(
        adata,
        batch_key,
        label_key,
        types=types,
        trim_rate=trim_rate,
        min_batch_cells=min_batch_cells,
        n_top_genes=n_top_genes,
        n_comps=n_comps,
    )
    ref_types = list(consensus.columns)
    lab = labels.to_numpy()
    rows = {}
    for name, Z in embeddings.items():
        D = centroid_distances(trimmed_centroids(Z, lab, ref_types, trim_rate))
        rows[name] = graph_agreement(D, consensus.to_numpy(), include_self=include_self)
    out = pd.DataFrame.from_dict(rows, orient="index")[list(SCGRAPH_COLUMNS)]
    if tidy:
        return (
            out.rename_axis("method")
            .reset_index()
            .melt(id_vars="method", var_name="metric", value_name="value")
        )
    return out
