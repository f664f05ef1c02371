"""Shared argument checks: option names, ``obs`` columns and ``obsm`` embeddings.

Every public function that reads an AnnData annotation goes through these checks, so that a bad
call gets the same kind of message everywhere: what is wrong, with the value, and how to fix it.
All of them raise :class:`InputError`, which is both a ``ValueError`` and a ``KeyError`` so that
callers who catch either keep working.

Missing values in ``obs`` columns
---------------------------------
The package's one policy (scanpy and scvi-tools either fail deep inside or treat ``NaN`` as an
extra category, which silently changes the result): a column that the package reads may not hold
missing values. :func:`obs_column` raises an error that names the column and the number of cells,
and says how to fix it: fill the values, subset the cells, or, where a function offers it, pass
``dropna=True`` to drop those cells explicitly (the functions that accept it report how many
cells they dropped). Nothing is ever turned into an extra category.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = [
    "InputError",
    "check_choice",
    "check_same_length",
    "drop_missing",
    "obs_column",
    "obsm_array",
]

ColumnKind = Literal["any", "categorical", "numeric"]


class InputError(ValueError, KeyError):
    """Bad input to a ``qbm_lite`` function (an option, an ``obs`` column, an ``obsm`` key).

    Subclasses both ``ValueError`` and ``KeyError``: existing ``except`` clauses for either keep
    working. Its message always names the problem and the fix.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def check_choice(name: str, value: Any, options: Any) -> Any:
    """Return ``value`` if it is one of ``options``, else raise :class:`InputError`.

    ``options`` is a sequence of allowed values or a ``typing.Literal`` type (its arguments are
    read with ``typing.get_args``). Numpy string scalars compare equal to their Python ``str``
    and are returned as plain ``str`` so that nothing numpy-typed is stored in configurations.
    """
    allowed = typing.get_args(options) if typing.get_origin(options) is Literal else options
    allowed = tuple(allowed)
    if isinstance(value, np.generic):
        value = value.item()
    if value not in allowed:
        raise InputError(f"{name} must be one of {allowed}; got {value!r}.")
    return value


def _column_names(adata) -> list[str]:
    return [str(c) for c in adata.obs.columns]


def obs_column(
    adata,
    key: Any,
    *,
    role: str = "column",
    kind: ColumnKind = "any",
    allow_missing: bool = False,
    min_categories: int | None = None,
) -> pd.Series:
    """Return ``adata.obs[key]`` after checking that it exists, has no missing values and fits.

    Parameters
    ----------
    adata
        An AnnData (any storage: in memory, backed, a view).
    key
        The column name; numpy string scalars are accepted.
    role
        What the column is for, used in messages: ``"batch_key"``, ``"label_key"``, ...
    kind
        ``"categorical"``: labels (a numeric column with many distinct float values is refused,
        since it is almost certainly a continuous quantity given by mistake); ``"numeric"``: a
        quantity such as pseudotime (must convert to float); ``"any"``: no type check.
    allow_missing
        Accept missing values (callers that drop them explicitly and report it).
    min_categories
        For ``kind="categorical"``: the least number of distinct values needed.

    Returns
    -------
    pandas.Series
        The column itself (not a copy), indexed like ``adata.obs``.

    Raises
    ------
    InputError
        Missing column (lists the columns), missing values (names the column and the number of
        cells, and the fixes), wrong kind, too few categories.
    """
    if isinstance(key, np.generic):
        key = key.item()
    if not isinstance(key, str):
        raise InputError(f"{role} must be a column name (a string); got {key!r}.")
    if key not in adata.obs.columns:
        raise InputError(
            f"{role} {key!r} is not a column of adata.obs (columns: {_column_names(adata)}); "
            "pass an existing column."
        )
    col = adata.obs[key]
    if not allow_missing:
        n_missing = int(col.isna().sum())
        if n_missing:
            raise InputError(
                f"adata.obs[{key!r}] ({role}) has {n_missing} missing value(s) out of "
                f"{len(col)} cells; fill them (e.g. with an explicit 'unknown' category), subset "
                f"to the annotated cells (adata[adata.obs[{key!r}].notna()]), or pass "
                "dropna=True where the function offers it."
            )
    if kind == "numeric":
        try:
            np.asarray(col, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise InputError(
                f"adata.obs[{key!r}] ({role}) must be numeric; got dtype {col.dtype}."
            ) from err
    elif kind == "categorical":
        is_float = pd.api.types.is_float_dtype(col.dtype)
        if is_float and col.nunique() > max(20, len(col) // 10):
            raise InputError(
                f"adata.obs[{key!r}] ({role}) looks continuous ({col.nunique()} distinct float "
                "values); it must hold categories (e.g. cell types). Pass a label column, or "
                "bin the values first (pandas.cut)."
            )
        if min_categories is not None:
            n = int(col.nunique())
            if n < min_categories:
                raise InputError(
                    f"adata.obs[{key!r}] ({role}) has {n} distinct value(s); at least "
                    f"{min_categories} are needed here."
                )
    return col


def drop_missing(adata, keys: Iterable[str], *, role: str = "columns"):
    """Return ``(subset, n_dropped)``: the cells with a value in every one of ``keys``.

    The explicit opt-in behind ``dropna=True``: a view when nothing is dropped, else a copy of
    the annotated cells. Raises :class:`InputError` if a key is missing or no cell remains.
    """
    keys = [k.item() if isinstance(k, np.generic) else k for k in keys]
    for key in keys:
        obs_column(adata, key, role=role, allow_missing=True)
    mask = np.ones(adata.n_obs, dtype=bool)
    for key in keys:
        mask &= adata.obs[key].notna().to_numpy()
    n_dropped = int((~mask).sum())
    if n_dropped == 0:
        return adata, 0
    if not mask.any():
        raise InputError(f"every cell has a missing value in {keys}; nothing is left to score.")
    return adata[mask].copy(), n_dropped


def obsm_array(
    adata, key: Any, *, role: str = "embedding", min_dims: int = 1, finite: bool = True
) -> np.ndarray:
    """Return ``adata.obsm[key]`` as a 2-D float array after checking it.

    Raises
    ------
    InputError
        Unknown key (lists the keys and how to make one), not 2-D, fewer than ``min_dims``
        columns, or NaN / infinite values (with the count: the method that wrote it diverged).
    """
    if isinstance(key, np.generic):
        key = key.item()
    if key not in adata.obsm:
        raise InputError(
            f"{role} {key!r} is not in adata.obsm (keys: {list(adata.obsm.keys())}); train the "
            "method first (qbm_lite.baselines.train_methods) or fix the key."
        )
    X = adata.obsm[key]
    X = X.to_numpy() if isinstance(X, pd.DataFrame) else np.asarray(X)
    if X.ndim != 2 or X.shape[0] != adata.n_obs:
        raise InputError(
            f"adata.obsm[{key!r}] must have shape (n_cells={adata.n_obs}, n_dims); got {X.shape}."
        )
    if X.shape[1] < min_dims:
        raise InputError(
            f"adata.obsm[{key!r}] has {X.shape[1]} dimension(s); at least {min_dims} are needed."
        )
    X = X.astype(np.float64, copy=False) if X.dtype.kind not in "f" else X
    if finite:
        bad = int((~np.isfinite(X)).any(axis=1).sum())
        if bad:
            raise InputError(
                f"adata.obsm[{key!r}] has NaN or infinite values in {bad} cell(s); the method "
                "that wrote it diverged: retrain it (e.g. with a smaller learning rate)."
            )
    return X


def check_same_length(name: str, values: Sequence | np.ndarray, n: int, what: str) -> None:
    """Raise :class:`InputError` unless ``len(values) == n`` (``what`` names the other side)."""
    if len(values) != n:
        raise InputError(f"{name} has {len(values)} entries but {what} has {n}.")
