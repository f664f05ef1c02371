"""Single-cell data: bundled real datasets, the online registry's loaders, and preprocessing."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from qbm_lite.data.registry import OFFLINE_DATASETS, REGISTRY, fetch, get_entry
from qbm_lite.data.simulate import simulate

__all__ = [
    "counts_are_integers",
    "list_datasets",
    "load",
    "load_krumsiek11",
    "load_pbmc68k_reduced",
]

#: The per-cell target sum used to make ``pbmc68k_reduced.raw`` (scanpy's normalize_total).
PBMC68K_TARGET_SUM = 1e4


def counts_are_integers(X: Any, atol: float = 1e-6) -> bool:
    """Whether every entry of a dense or sparse matrix is a non-negative integer."""
    values = X.data if sp.issparse(X) else np.asarray(X)
    return bool(np.all(values >= 0) and np.all(np.abs(values - np.round(values)) <= atol))


def load_pbmc68k_reduced() -> ad.AnnData:
    """scanpy's bundled 700 PBMCs with integer UMI counts restored in ``layers["counts"]``.

    ``.raw`` holds ``log1p(counts / n_counts * 1e4)`` rounded to 3 decimals on 765 genes, where
    ``obs["n_counts"]`` is each cell's total over all genes before subsetting. Inverting that,
    ``counts = expm1(raw) * n_counts / 1e4`` lands within 0.1 of an integer for every entry,
    so rounding recovers the counts exactly (checked here and in ``tests/test_data.py``).

    Returns
    -------
    anndata.AnnData
        700 x 765; ``X`` as shipped (scaled log expression), ``layers["counts"]`` (CSR,
        float32 integers), ``obs["bulk_labels"]`` (10 cell types) and ``obs["phase"]``.
    """
    import scanpy as sc

    adata = sc.datasets.pbmc68k_reduced()
    raw = adata.raw.X.tocsr().astype(np.float64)
    scale = adata.obs["n_counts"].to_numpy(dtype=np.float64) / PBMC68K_TARGET_SUM
    approx = (sp.diags(scale) @ raw.expm1()).tocsr()
    deviation = np.abs(approx.data - np.round(approx.data)).max(initial=0.0)
    if deviation > 0.25:  # pragma: no cover - guards against a changed scanpy file
        raise RuntimeError(
            f"Could not restore integer counts from pbmc68k_reduced.raw (max deviation "
            f"{deviation:.3f}); the bundled file may have changed in this scanpy version."
        )
    approx.data = np.round(approx.data)
    approx.eliminate_zeros()
    adata.layers["counts"] = approx.astype(np.float32)
    return adata


def load_krumsiek11() -> ad.AnnData:
    """scanpy's bundled simulated myeloid differentiation (640 cells x 11 genes, ``cell_type``)."""
    import scanpy as sc

    with warnings.catch_warnings():
        # The file repeats cell names; we make them unique right below.
        warnings.filterwarnings(
            "ignore", message="Observation names are not unique", category=UserWarning
        )
        adata = sc.datasets.krumsiek11()
    adata.obs_names_make_unique()
    return adata


@contextmanager
def _scanpy_datasetdir(path: Path):
    import scanpy as sc

    old = sc.settings.datasetdir
    sc.settings.datasetdir = path
    try:
        yield
    finally:
        sc.settings.datasetdir = old


def _read_online(name: str, entry: dict[str, Any], paths: list[Path]) -> ad.AnnData:
    reader = entry["reader"]
    if reader == "h5ad":
        adata = ad.read_h5ad(paths[0])
    elif reader == "scanpy_paul15":
        import scanpy as sc

        with _scanpy_datasetdir(paths[0].parent.parent):
            adata = sc.datasets.paul15()
    elif reader == "scvi_pbmc":
        import scvi

        adata = scvi.data.pbmc_dataset(save_path=str(paths[0].parent))
        adata.obs["batch"] = pd.Categorical(
            [f"pbmc{'8k' if b == 0 else '4k'}" for b in adata.obs["batch"]]
        )
    else:  # pragma: no cover - registry typo
        raise ValueError(f"unknown reader {reader!r} in the registry entry of {name!r}.")
    if entry["counts"] == "X":
        adata.layers["counts"] = adata.X.copy()
    return adata


def load(name: str, *, timeout: float = 3.0, progress: bool = False, **kwargs: Any) -> ad.AnnData:
    """Load a single-cell dataset by name: bundled offline data first, else the online registry.

    Parameters
    ----------
    name
        ``"pbmc68k_reduced"``, ``"krumsiek11"``, ``"simulated"`` (offline), or a key of the
        online registry (see :func:`list_datasets`).
    timeout
        Connectivity-check timeout in seconds for online datasets; without a network, ``load``
        fails after at most this long with a message naming the offline datasets.
    progress
        Show download progress for online datasets.
    **kwargs
        Passed to :func:`qbm_lite.data.simulate` for ``"simulated"``.

    Returns
    -------
    anndata.AnnData
        Raw integer counts are in ``layers["counts"]`` (except ``krumsiek11``, which is
        continuous simulated expression).
    """
    if kwargs and name != "simulated":
        raise TypeError(f"load({name!r}) takes no extra arguments; got {sorted(kwargs)}.")
    if name == "pbmc68k_reduced":
        return load_pbmc68k_reduced()
    if name == "krumsiek11":
        return load_krumsiek11()
    if name == "simulated":
        return simulate(**kwargs)
    if name not in REGISTRY:
        raise ValueError(
            f"Unknown dataset {name!r}. Offline: {sorted(OFFLINE_DATASETS)}; online: "
            f"{sorted(REGISTRY)}."
        )
    entry = get_entry(name)
    paths = fetch(name, timeout=timeout, progress=progress, entry=entry)
    return _read_online(name, entry, paths)


def list_datasets() -> pd.DataFrame:
    """A table of every dataset :func:`load` knows, offline ones first."""
    rows = [
        {"name": k, "offline": True, "description": v, "batch_key": None, "label_key": None}
        for k, v in OFFLINE_DATASETS.items()
    ]
    rows[0].update(label_key="bulk_labels")
    rows[1].update(label_key="cell_type")
    rows[2].update(batch_key="batch", label_key="cell_type")
    for k, entry in REGISTRY.items():
        rows.append(
            {
                "name": k,
                "offline": False,
                "description": entry["description"],
                "batch_key": entry["batch_key"],
                "label_key": entry["label_key"],
            }
        )
    return pd.DataFrame(rows).set_index("name")
