"""Preprocessing for the count models: batch-aware highly variable genes, then log-normalization.

The recipe is scanpy's (Wolf et al., 2018): ``sc.pp.highly_variable_genes(flavor="seurat_v3")``
(Stuart et al., 2019; a loess fit of variance on mean per batch, from scikit-misc) or analytic
Pearson residuals (Lause et al., 2021), then ``normalize_total`` and ``log1p``.

Degenerate batches are checked before scanpy sees them. A batch of one cell has no variance,
and the seurat_v3 loess then fits an empty or nearly empty set of genes: scikit-misc's C code
ends the whole Python process (SIGSEGV / ``free(): invalid pointer``) for 0-3 genes and raises
cryptic linear-algebra errors for a few more. :func:`prepare` therefore refuses batches with
fewer than :data:`MIN_CELLS_PER_BATCH` cells, and for seurat_v3 batches with fewer than
:data:`MIN_VARIABLE_GENES_PER_BATCH` genes that vary within them, naming the batches and the
fixes; any error the loess still raises is re-raised with the same advice.
"""

from __future__ import annotations

from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from qbm_lite.checks import InputError, check_choice, obs_column
from qbm_lite.data.singlecell import counts_are_integers

__all__ = ["MIN_CELLS_PER_BATCH", "MIN_VARIABLE_GENES_PER_BATCH", "prepare"]

HVGFlavor = Literal["seurat_v3", "pearson_residuals"]

#: Fewest cells a batch may have for batch-aware gene selection (a variance needs two).
MIN_CELLS_PER_BATCH = 2
#: Fewest genes that must vary within each batch for the seurat_v3 loess fit (measured: 0-3
#: genes crash scikit-misc, 5-12 raise singularity errors, 15 and more fit).
MIN_VARIABLE_GENES_PER_BATCH = 20


def _n_variable_genes(X) -> int:
    """Number of columns of ``X`` (cells x genes) whose values are not all equal."""
    if sp.issparse(X):
        X = sp.csc_matrix(X)
        lo = X.min(axis=0).toarray().ravel()
        hi = X.max(axis=0).toarray().ravel()
    else:
        X = np.asarray(X)
        lo, hi = X.min(axis=0), X.max(axis=0)
    return int(np.sum(hi > lo))


def degenerate_batches(adata: ad.AnnData, batch_key: str, layer: str, flavor: str) -> list[str]:
    """Describe the batches too small or too constant for batch-aware HVG selection.

    Returns one string per problem batch (``"'C': 1 cell"``); empty when all batches are fine.
    """
    col = obs_column(adata, batch_key, role="batch_key", kind="categorical")
    labels = col.astype(str).to_numpy()
    X = adata.layers[layer]
    problems = []
    for name in pd.unique(labels):
        rows = np.flatnonzero(labels == name)
        if rows.size < MIN_CELLS_PER_BATCH:
            problems.append(f"{name!r}: {rows.size} cell")
            continue
        if flavor == "seurat_v3":
            n_var = _n_variable_genes(X[rows])
            if n_var < MIN_VARIABLE_GENES_PER_BATCH:
                problems.append(f"{name!r}: {rows.size} cells but only {n_var} varying genes")
    return problems


def _degenerate_message(problems: list[str], batch_key: str, flavor: str) -> str:
    need = f"at least {MIN_CELLS_PER_BATCH} cells"
    alternative = ""
    if flavor == "seurat_v3":
        need += f" and {MIN_VARIABLE_GENES_PER_BATCH} genes that vary within it"
        alternative = ", or use flavor='pearson_residuals' (needs only 2 cells per batch)"
    return (
        f"batch-aware gene selection (flavor={flavor!r}) needs {need} in every batch of "
        f"obs[{batch_key!r}]; these batches do not: {', '.join(problems[:10])}"
        f"{' ...' if len(problems) > 10 else ''}. Drop or merge them (e.g. adata = "
        f"adata[~adata.obs[{batch_key!r}].isin([...])].copy()), select genes without the batch "
        f"(batch_key=None){alternative}."
    )


def _select_genes(adata: ad.AnnData, n_top: int, batch_key, layer: str, flavor: str) -> int:
    """Mark ``var["highly_variable"]`` in place; return the number of genes kept."""
    import scanpy as sc

    if flavor == "seurat_v3":
        try:
            import skmisc  # noqa: F401
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                "flavor='seurat_v3' needs scikit-misc: `pip install scikit-misc`, or use "
                "flavor='pearson_residuals'."
            ) from err
        # seurat_v3 ranks genes with a loess fit; genes that are all zero everywhere break it.
        sc.pp.filter_genes(adata, min_cells=1)
        n_top = min(n_top, adata.n_vars)
        try:
            sc.pp.highly_variable_genes(
                adata, n_top_genes=n_top, flavor="seurat_v3", layer=layer, batch_key=batch_key
            )
        except ValueError as err:
            if "loess" not in repr(err) and "singular" not in str(err) and "fit" not in str(err):
                raise
            raise InputError(
                f"the seurat_v3 loess fit failed ({err}); some batch has too few cells or too "
                "few varying genes. Select genes without the batch (batch_key=None) or use "
                "flavor='pearson_residuals'."
            ) from err
    else:
        sc.experimental.pp.highly_variable_genes(
            adata, n_top_genes=n_top, flavor="pearson_residuals", layer=layer, batch_key=batch_key
        )
    return n_top


def prepare(
    adata: ad.AnnData,
    n_top_genes: int = 2000,
    batch_key: str | None = None,
    *,
    layer: str = "counts",
    flavor: HVGFlavor = "seurat_v3",
    target_sum: float = 1e4,
) -> ad.AnnData:
    """Select highly variable genes on counts (batch-aware) and log-normalize ``X``.

    Parameters
    ----------
    adata
        Cells x genes with raw integer counts in ``layers[layer]`` (or in ``X`` if the layer is
        missing, in which case they are copied into the layer). In memory: a backed AnnData is
        refused (load it with ``adata.to_memory()``; the models read backed files directly).
    n_top_genes
        Number of highly variable genes to keep (all genes if there are fewer).
    batch_key
        Column of ``obs`` with the batch; genes are ranked within each batch and combined, so
        that batch-specific genes do not dominate the selection. Missing values are refused
        (see :mod:`qbm_lite.checks`), as are degenerate batches (module docstring).
    layer
        Layer holding the counts; it is kept, subset to the chosen genes.
    flavor
        ``"seurat_v3"`` (needs scikit-misc) or ``"pearson_residuals"``; both work on counts.
    target_sum
        Counts per cell after normalization, before ``log1p``.

    Returns
    -------
    anndata.AnnData
        A new object: the chosen genes, counts in ``layers[layer]``, ``X`` =
        ``log1p(normalized counts)`` and ``var["highly_variable"]`` all True.

    Raises
    ------
    TypeError
        ``adata`` is not an AnnData.
    qbm_lite.checks.InputError
        Backed data, no counts, a missing or incomplete batch column, degenerate batches, cells
        with no counts in the chosen genes, a bad ``flavor`` or ``n_top_genes``.
    """
    if not isinstance(adata, ad.AnnData):
        raise TypeError(f"prepare expects an AnnData, got {type(adata).__name__}.")
    if adata.isbacked:
        raise InputError(
            "prepare needs the cells in memory, but adata is backed by a file; load it with "
            "adata = adata.to_memory() (or prepare a subset: adata[idx].to_memory())."
        )
    flavor = check_choice("flavor", flavor, HVGFlavor)
    if int(n_top_genes) < 1:
        raise InputError(f"n_top_genes must be a positive integer; got {n_top_genes!r}.")
    if batch_key is not None:
        batch_key = obs_column(adata, batch_key, role="batch_key", kind="categorical").name
    adata = adata.copy()
    if layer not in adata.layers:
        if not counts_are_integers(adata.X):
            raise InputError(
                f"adata.layers has no {layer!r} and adata.X is not integer counts; put the raw "
                f"counts in adata.layers[{layer!r}] (e.g. restored as in load('pbmc68k_reduced'))."
            )
        adata.layers[layer] = adata.X.copy()
    if not counts_are_integers(adata.layers[layer]):
        raise InputError(
            f"adata.layers[{layer!r}] must hold non-negative integer counts (no NaN); HVG "
            "selection and count likelihoods need them."
        )
    if batch_key is not None:
        problems = degenerate_batches(adata, batch_key, layer, flavor)
        if problems:
            raise InputError(_degenerate_message(problems, batch_key, flavor))
    n_top = _select_genes(adata, min(int(n_top_genes), adata.n_vars), batch_key, layer, flavor)
    adata = adata[:, adata.var["highly_variable"].to_numpy()].copy()
    _log_normalize(adata, layer, target_sum)
    adata.uns["prepare"] = {
        "n_top_genes": n_top,
        "batch_key": batch_key or "none",
        "layer": layer,
        "flavor": flavor,
        "target_sum": target_sum,
    }
    return adata


def _log_normalize(adata: ad.AnnData, layer: str, target_sum: float) -> None:
    """``X = log1p(counts / total * target_sum)``; refuses cells with no counts at all."""
    import scanpy as sc

    counts = adata.layers[layer]
    totals = np.asarray(counts.sum(axis=1)).ravel()
    empty = int(np.sum(totals == 0))
    if empty:
        raise InputError(
            f"{empty} cell(s) have no counts in the {adata.n_vars} selected genes, so they cannot "
            "be normalized; filter them first (sc.pp.filter_cells(adata, min_counts=1)) or keep "
            "more genes (a larger n_top_genes)."
        )
    adata.X = counts.copy().astype(np.float32)
    sc.pp.normalize_total(adata, target_sum=target_sum)
    sc.pp.log1p(adata)
