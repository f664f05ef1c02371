"""Chunked reading of cells for the analysis mixins (normalized expression, DE, query mapping).

A small private reader: rows of an AnnData (in memory, sparse or backed) are read ``batch_size``
at a time, densified per chunk (never the whole matrix) and returned as tensors together with the
one-hot batch the model's decoder expects. It uses only the model's stable attributes
(``config``, ``var_names``, ``batch_categories``, ``module``, ``device``, ``adata``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

__all__ = ["batch_codes", "check_cell_data", "iter_cells", "resolve_indices"]

_COUNT_LIKELIHOODS = ("nb", "zinb")


def check_cell_data(model, adata) -> None:
    """Raise a clear error unless ``adata`` is an AnnData with the model's genes, in order."""
    import anndata

    if not isinstance(adata, anndata.AnnData):
        raise TypeError(f"adata must be an AnnData object; got {type(adata).__name__}.")
    names = [str(v) for v in adata.var_names]
    if names != list(model.var_names):
        missing = [g for g in model.var_names if g not in set(names)][:5]
        raise ValueError(
            f"adata's genes do not match the model's ({len(names)} vs {len(model.var_names)} "
            f"features; first missing: {missing}); reorder and pad them with "
            "QBMVAE.prepare_query_anndata(adata, model)."
        )
    layer = model.config["layer"]
    if layer is not None and layer not in adata.layers:
        raise ValueError(
            f"layer {layer!r} is not in adata.layers (available: {list(adata.layers.keys())}); "
            "the model reads its data from that layer."
        )


def resolve_indices(adata, indices: Sequence[int] | np.ndarray | None) -> np.ndarray:
    """Integer row positions: all cells for ``None``; checked bounds, 1-D, integers."""
    if indices is None:
        return np.arange(adata.n_obs)
    idx = np.asarray(indices)
    if idx.dtype == bool:
        if idx.shape != (adata.n_obs,):
            raise ValueError(
                f"a boolean mask of indices needs {adata.n_obs} entries; got {idx.shape}."
            )
        return np.flatnonzero(idx)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(
            "indices must be a 1-D sequence of integer row positions (or a boolean mask); "
            f"got shape {idx.shape} and dtype {idx.dtype}."
        )
    if idx.size == 0:
        raise ValueError("indices is empty; pass at least one cell.")
    if idx.min() < 0 or idx.max() >= adata.n_obs:
        raise IndexError(
            f"indices must lie in [0, {adata.n_obs}); got values from {idx.min()} to {idx.max()}."
        )
    return idx.astype(np.int64)


def batch_codes(model, adata, batch: str | None = None) -> np.ndarray | None:
    """Each cell's position in ``model.batch_categories`` (or ``batch`` for all of them).

    ``None`` when the model's decoder takes no batch covariate (fewer than two batches).
    """
    cats = list(model.batch_categories)
    if batch is not None:
        if str(batch) not in cats:
            raise ValueError(f"batch {batch!r} is unknown; choose one of {cats}.")
        return np.full(adata.n_obs, cats.index(str(batch)), dtype=np.int64)
    if len(cats) < 2:
        return None
    key = model.config["batch_key"]
    if key not in adata.obs:
        raise ValueError(
            f"adata.obs has no batch column {key!r}; the model was set up with batch_key={key!r}."
        )
    labels = adata.obs[key].astype(str).to_numpy()
    lookup = {c: i for i, c in enumerate(cats)}
    unknown = sorted(set(labels) - set(lookup))
    if unknown:
        raise ValueError(
            f"batches {unknown[:5]} are not among the model's {cats[:10]}; map new batches with "
            "QBMVAE.load_query_data(adata, model) first."
        )
    return np.array([lookup[v] for v in labels], dtype=np.int64)


def _dense_rows(X, rows: np.ndarray) -> np.ndarray:
    # Backed (h5py) matrices need increasing indices: read sorted, then restore the order.
    order = np.argsort(rows, kind="stable")
    uniq, inverse = np.unique(rows[order], return_inverse=True)
    block = X[uniq]
    block = block.toarray() if sp.issparse(block) else np.asarray(block)
    if hasattr(block, "todense"):  # pragma: no cover - backed sparse datasets
        block = np.asarray(block.todense())
    out = np.empty((len(rows), block.shape[1]), dtype=np.float32)
    out[order] = block[inverse]
    return out


def _check_chunk(x: np.ndarray, likelihood: str) -> None:
    if not np.isfinite(x).all():
        raise ValueError("adata's data contain NaN or infinite values; remove them first.")
    if likelihood in _COUNT_LIKELIHOODS and ((x < 0).any() or (x != np.round(x)).any()):
        raise ValueError(
            f"adata's data are not non-negative integer counts, but the model's likelihood is "
            f"{likelihood!r}; pass raw counts in the layer the model was trained on."
        )


def iter_cells(
    model,
    adata,
    indices: np.ndarray,
    batch_size: int = 256,
    codes: np.ndarray | None = None,
) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor | None]]:
    """Yield ``(where, x, batch_onehot)`` chunks of the cells ``indices``.

    Parameters
    ----------
    model
        A :class:`~qbm_lite.vae.model.QBMVAE`.
    adata
        AnnData with the model's genes (checked by :func:`check_cell_data`).
    indices
        Row positions, from :func:`resolve_indices`.
    batch_size
        Cells per chunk; each chunk is densified on its own.
    codes
        Batch positions per cell of ``adata`` (from :func:`batch_codes`), or ``None``.

    Yields
    ------
    where, x, batch_onehot
        The chunk's slice of ``indices`` (its cells are ``indices[where]``), the data
        ``(m, n_genes)`` as float32 on the model's device, and the one-hot batch
        ``(m, n_batch)`` or ``None``.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size}.")
    layer = model.config["layer"]
    X = adata.X if layer is None else adata.layers[layer]
    n_batch = model.module.n_batch
    for start in range(0, len(indices), int(batch_size)):
        where = slice(start, min(start + int(batch_size), len(indices)))
        rows = indices[where]
        x = _dense_rows(X, rows)
        _check_chunk(x, model.config["likelihood"])
        xt = torch.as_tensor(x, device=model.device)
        onehot = None
        if n_batch and codes is not None:
            ct = torch.as_tensor(codes[rows], device=model.device)
            onehot = torch.nn.functional.one_hot(ct, n_batch).float()
        yield where, xt, onehot


def obs_labels(adata, key: str) -> pd.Series:
    """``adata.obs[key]`` as strings, with a clear error when the column is missing."""
    if key not in adata.obs:
        raise ValueError(
            f"{key!r} is not a column of adata.obs (columns: {list(adata.obs.columns)})."
        )
    col = adata.obs[key]
    if col.isna().any():
        raise ValueError(f"adata.obs[{key!r}] has missing values; fill or drop those cells.")
    return col.astype(str)
