"""Write large simulated count matrices to disk in chunks, without holding them in memory.

:func:`write_simulated` draws the same kind of data as :func:`qbm_lite.data.simulate` (cell
types with differentially expressed genes, batches with gene-wise factors and library shifts,
negative-binomial counts with extra zeros) one chunk of cells at a time and appends each chunk,
as CSR, to an ``.h5ad`` file or a ``.zarr`` store in the AnnData on-disk format. Gene-level
parameters are drawn once from ``seed``; chunk ``k``'s cells from ``(seed, k)``, so the result
does not depend on the chunk size's effect on memory, only on ``seed`` and the chunk size.
Memory stays proportional to ``chunk_cells × n_genes``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["read_backed", "write_simulated"]


def _gene_params(rng: np.random.Generator, n_genes: int, n_batches: int, n_types: int) -> dict:
    base = rng.gamma(0.6, 1.0 / 0.3, size=n_genes)
    de = np.where(
        rng.random((n_types, n_genes)) < 0.1, rng.normal(0.0, 1.0, (n_types, n_genes)), 0.0
    )
    return {
        "log_base": np.log(base),
        "theta": 5.0 * rng.lognormal(0.0, 0.5, size=n_genes),
        "de": de,
        "batch_logfac": rng.normal(0.0, 0.5, size=(n_batches, n_genes)),
        "lib_shift": rng.normal(0.0, 0.3, size=n_batches),
    }


def _chunk(rng: np.random.Generator, n: int, p: dict, library_size: float) -> tuple:
    n_batches, n_types = p["batch_logfac"].shape[0], p["de"].shape[0]
    batch = rng.integers(0, n_batches, size=n)
    types = rng.integers(0, n_types, size=n)
    log_lib = rng.normal(np.log(library_size), 0.3, size=n) + p["lib_shift"][batch]
    log_rel = p["log_base"][None, :] + p["de"][types] + p["batch_logfac"][batch]
    rel = np.exp(log_rel - log_rel.max(axis=1, keepdims=True))
    mu = rel / rel.sum(axis=1, keepdims=True) * np.exp(log_lib)[:, None]
    lam = rng.gamma(shape=p["theta"][None, :], scale=mu / p["theta"][None, :])
    counts = rng.poisson(lam).astype(np.float32)
    counts[rng.random(counts.shape, dtype=np.float32) < 0.2 / (1.0 + mu)] = 0
    return sp.csr_matrix(counts), batch, types


def write_simulated(
    path: str | os.PathLike,
    n_cells: int,
    n_genes: int = 2000,
    n_batches: int = 2,
    n_cell_types: int = 6,
    *,
    library_size: float = 1500.0,
    chunk_cells: int = 8192,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Simulate ``n_cells`` x ``n_genes`` NB counts and write them, chunk by chunk, as sparse CSR.

    Parameters
    ----------
    path
        ``.h5ad`` file or ``.zarr`` directory to create.
    n_cells, n_genes
        Size of the matrix.
    n_batches, n_cell_types
        Batches (``obs["batch"]``) and cell types (``obs["cell_type"]``).
    library_size
        Median total count per cell.
    chunk_cells
        Cells simulated and written at a time (memory ~ ``chunk_cells × n_genes × 8`` bytes a
        few times over).
    seed
        Random seed.
    overwrite
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        ``path``; read it with :func:`read_backed` (or ``anndata.read_h5ad(path, backed="r")``).

    Raises
    ------
    ValueError
        For a suffix other than ``.h5ad``/``.zarr`` or non-positive sizes.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    import anndata as ad

    path = Path(path)
    if path.suffix not in (".h5ad", ".zarr"):
        raise ValueError(f"path must end in .h5ad or .zarr; got {path.name!r}.")
    for name, value in [
        ("n_cells", n_cells),
        ("n_genes", n_genes),
        ("n_batches", n_batches),
        ("n_cell_types", n_cell_types),
        ("chunk_cells", chunk_cells),
    ]:
        if int(value) < 1:
            raise ValueError(f"{name} must be a positive integer; got {value}.")
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
        if path.is_dir():
            import shutil

            shutil.rmtree(path)
        else:
            path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    params = _gene_params(np.random.default_rng(seed), n_genes, n_batches, n_cell_types)
    store = _open(path)
    batches, types = [], []
    X = None
    for k, start in enumerate(range(0, int(n_cells), int(chunk_cells))):
        n = min(int(chunk_cells), int(n_cells) - start)
        counts, b, t = _chunk(np.random.default_rng([seed, k + 1]), n, params, float(library_size))
        batches.append(b.astype(np.int16))
        types.append(t.astype(np.int16))
        if X is None:
            ad.io.write_elem(store, "X", counts)  # anndata makes sparse datasets resizable
            X = ad.io.sparse_dataset(store["X"])
        else:
            X.append(counts)
    batch_names = np.array([f"batch{b}" for b in range(n_batches)], dtype=object)
    type_names = np.array([f"type{k}" for k in range(n_cell_types)], dtype=object)
    b, t = np.concatenate(batches), np.concatenate(types)
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical.from_codes(b, categories=list(batch_names)),
            "cell_type": pd.Categorical.from_codes(t, categories=list(type_names)),
        },
        index=pd.Index([f"cell{i}" for i in range(int(n_cells))]),
    )
    var = pd.DataFrame(index=pd.Index([f"gene{g}" for g in range(int(n_genes))]))
    ad.io.write_elem(store, "obs", obs)
    ad.io.write_elem(store, "var", var)
    for key in ("layers", "obsm", "varm", "obsp", "varp", "uns"):
        ad.io.write_elem(store, key, {})
    store.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
    if hasattr(store, "close"):
        store.close()
    return path


def _open(path: Path):
    if path.suffix == ".zarr":
        import zarr

        return zarr.open_group(str(path), mode="w")
    import h5py

    return h5py.File(path, "w")


def read_backed(path: str | os.PathLike):
    """Open an ``.h5ad`` file or a ``.zarr`` store as an AnnData whose matrix stays on disk.

    ``.h5ad``: ``anndata.read_h5ad(path, backed="r")``. ``.zarr``: ``obs`` and ``var`` are read
    into memory and ``X`` is anndata's sparse dataset over the zarr group (or the zarr array for
    dense data), read by :class:`~qbm_lite.data.loader.RowReader` in contiguous blocks.

    Raises
    ------
    ValueError
        For another suffix.
    """
    import anndata as ad

    path = Path(path)
    if path.suffix == ".h5ad":
        return ad.read_h5ad(path, backed="r")
    if path.suffix != ".zarr":
        raise ValueError(f"path must end in .h5ad or .zarr; got {path.name!r}.")
    import zarr

    group = zarr.open_group(str(path), mode="r")
    node = group["X"]
    X = ad.io.sparse_dataset(node) if isinstance(node, zarr.Group) else node
    obs = ad.io.read_elem(group["obs"])
    var = ad.io.read_elem(group["var"])
    return ad.AnnData(X=X, obs=obs, var=var)
