"""Minibatches of cells from memory, from sparse matrices or from disk, never densifying it all.

The model asks for minibatches; this module decides how rows are read. Three storages, one
interface (:class:`RowReader`):

- a dense ``numpy`` array or a ``scipy.sparse`` CSR matrix in memory: rows are gathered per
  minibatch and densified per minibatch (CSC is converted to CSR once, a sparse copy);
- anything indexable on disk or lazy: a backed ``.h5ad`` (``anndata.read_h5ad(path, backed="r")``,
  dense ``h5py.Dataset`` or sparse CSR dataset), a zarr store (``anndata.io.sparse_dataset`` of a
  zarr group, a ``zarr.Array``) or a dask array. Random access to single rows on disk is slow, so
  rows are read in contiguous runs.

:class:`BlockSampler` decides the order: it shuffles *blocks* of consecutive cells, reads several
blocks at once (a buffer) and shuffles the cells within the buffer, the scheme of scverse's
``annbatch`` and of ``scDataset`` (D'Ascenzo & Cultrera di Montesano 2025,
arXiv:2506.01883). With ``block_size=1`` it is a plain full
shuffle. Under data-parallel training each rank takes a disjoint, equally long share of the
epoch's order, so every rank runs the same number of minibatches (an all-reduce would otherwise
wait forever for the rank with fewer).

:class:`CellLoader` ties a reader and a sampler together and yields :class:`Minibatch` tensors on
the device, reading the next buffer in a background thread while the current one is used.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
import torch

__all__ = [
    "BlockSampler",
    "CellLoader",
    "Minibatch",
    "RowReader",
    "cell_matrix",
    "scan_counts",
]


def cell_matrix(adata: Any, layer: str | None = None) -> Any:
    """The cells x features matrix of ``adata``: ``adata.X`` or ``adata.layers[layer]``.

    Raises
    ------
    ValueError
        If ``layer`` is not in ``adata.layers`` or the matrix is missing (``X is None``).
    """
    if layer is None:
        X = adata.X
        if X is None:
            raise ValueError("adata.X is None; pass the layer that holds the data (layer=...).")
        return X
    if layer not in adata.layers:
        raise ValueError(
            f"layer {layer!r} is not in adata.layers (available: {list(adata.layers.keys())}); "
            "pass one of those, or layer=None to use adata.X."
        )
    return adata.layers[layer]


def _is_csc_on_disk(X: Any) -> bool:
    fmt = getattr(X, "format", None) or getattr(X, "format_str", None)
    return fmt == "csc" or "CSC" in type(X).__name__


class RowReader:
    """Read rows of a cells x features matrix as dense ``float32`` arrays, whatever the storage.

    Parameters
    ----------
    X
        ``numpy`` array, ``scipy.sparse`` matrix (CSR; CSC and COO are converted to CSR once),
        or an on-disk / lazy matrix that supports ``X[start:stop]`` (``h5py.Dataset``, anndata's
        backed CSR dataset on ``.h5ad`` or zarr, ``zarr.Array``, dask arrays).
    max_gap
        On disk, sorted row indices closer than this are read as one contiguous run (fewer,
        larger reads; the unused rows in between are discarded).

    Raises
    ------
    TypeError
        For objects that are not matrices, or a CSC matrix on disk (rows of a CSC store are
        scattered through the whole file; rewrite it as CSR).
    """

    def __init__(self, X: Any, max_gap: int = 256) -> None:
        if isinstance(X, np.ndarray | np.matrix):
            self.X, self.on_disk = np.asarray(X), False
        elif sp.issparse(X):
            self.X, self.on_disk = (X if X.format == "csr" else X.tocsr()), False
        elif hasattr(X, "shape") and hasattr(X, "__getitem__") and len(X.shape) == 2:
            if _is_csc_on_disk(X):
                raise TypeError(
                    "the matrix on disk is stored as CSC (by gene), so reading a cell means "
                    "reading the whole file; rewrite it by cell, e.g. "
                    "adata = ad.read_h5ad(path); adata.X = adata.X.tocsr(); adata.write_h5ad(path)."
                )
            self.X, self.on_disk = X, True
        else:
            raise TypeError(
                f"cannot read cells from a {type(X).__name__}; pass a numpy array, a scipy "
                "sparse matrix, or a backed .h5ad / zarr AnnData."
            )
        self.n_obs, self.n_vars = (int(s) for s in self.X.shape)
        self.max_gap = int(max_gap)

    @property
    def is_sparse(self) -> bool:
        """Whether raw blocks come back sparse (CSR)."""
        return sp.issparse(self.X) or (self.on_disk and "CSR" in type(self.X).__name__)

    def span(self, start: int, stop: int) -> np.ndarray | sp.csr_matrix:
        """Rows ``start:stop`` in the storage's own form (CSR stays sparse)."""
        block = self.X[start:stop]
        if hasattr(block, "compute"):  # dask
            block = block.compute()
        if sp.issparse(block):
            return block.tocsr()
        return np.asarray(block)

    def raw(self, index: np.ndarray) -> np.ndarray | sp.csr_matrix:
        """Rows ``index`` (any order) in the storage's own form, in the order given."""
        index = np.asarray(index, dtype=np.int64)
        if not self.on_disk:
            return self.X[index]
        ordered = bool(np.all(np.diff(index) > 0))
        order = np.arange(len(index)) if ordered else np.argsort(index, kind="stable")
        rows = index if ordered else index[order]
        cut = np.flatnonzero(np.diff(rows) > self.max_gap) + 1
        parts = []
        for run in np.split(rows, cut):
            lo, hi = int(run[0]), int(run[-1]) + 1
            block = self.span(lo, hi)
            # Skip the copy of a fancy index when the run is the whole span.
            parts.append(block if hi - lo == len(run) else block[run - lo])
        if len(parts) == 1:
            stacked = parts[0]
        elif sp.issparse(parts[0]):
            stacked = sp.vstack(parts, format="csr")
        else:
            stacked = np.vstack(parts)
        del parts
        if ordered:
            return stacked
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return stacked[inverse]

    def dense(self, index: np.ndarray) -> np.ndarray:
        """Rows ``index`` as a dense C-contiguous ``float32`` array ``(len(index), n_vars)``."""
        return to_dense32(self.raw(index))

    def blocks(self, chunk: int = 4096) -> Iterator[tuple[int, np.ndarray | sp.csr_matrix]]:
        """All rows in order, as ``(start, raw block)`` pairs of at most ``chunk`` rows."""
        for start in range(0, self.n_obs, chunk):
            stop = min(start + chunk, self.n_obs)
            if self.on_disk:
                yield start, self.span(start, stop)
            else:
                yield start, self.X[start:stop]


def to_dense32(block: np.ndarray | sp.spmatrix) -> np.ndarray:
    """A raw block as a dense C-contiguous ``float32`` array."""
    if sp.issparse(block):
        block = block.toarray()
    return np.ascontiguousarray(block, dtype=np.float32)


@dataclass
class CountScan:
    """Per-cell statistics from one streaming pass (:func:`scan_counts`).

    Attributes
    ----------
    library
        Total counts per cell, ``(n_obs,)`` float64.
    lgamma_sum
        ``Σ_g lgamma(x_g + 1)`` per cell (the NB likelihood's data constant), ``(n_obs,)``
        float64, or None when not requested.
    """

    library: np.ndarray
    lgamma_sum: np.ndarray | None


def _values(block: np.ndarray | sp.spmatrix) -> np.ndarray:
    return block.data if sp.issparse(block) else np.asarray(block)


def scan_counts(
    reader: RowReader,
    check: Any = None,
    lgamma: bool = False,
    chunk: int = 2048,
) -> CountScan:
    """One pass over all rows: library sizes, the count constant, and a value check per block.

    Parameters
    ----------
    reader
        The rows to scan.
    check
        Called with each block's stored values (the non-zeros of a sparse block); raises on bad
        input (see :func:`qbm_lite.vae.model.check_values`).
    lgamma
        Also compute ``Σ_g lgamma(x_g + 1)`` per cell (zeros contribute ``lgamma(1) = 0``, so
        sparse blocks need only their non-zeros).
    chunk
        Rows per block; memory stays proportional to it.
    """
    from scipy.special import gammaln

    library = np.zeros(reader.n_obs)
    lg = np.zeros(reader.n_obs) if lgamma else None
    for start, block in reader.blocks(chunk):
        vals = _values(block)
        if check is not None:
            check(vals)
        stop = start + block.shape[0]
        if sp.issparse(block):
            block = block.tocsr()
            library[start:stop] = np.asarray(block.sum(axis=1), dtype=np.float64).ravel()
            if lg is not None:
                g = block.copy().astype(np.float64)
                g.data = gammaln(g.data + 1.0)
                lg[start:stop] = np.asarray(g.sum(axis=1)).ravel()
        else:
            dense = np.asarray(block, dtype=np.float64)
            library[start:stop] = dense.sum(axis=1)
            if lg is not None:
                lg[start:stop] = gammaln(dense + 1.0).sum(axis=1)
    return CountScan(library, lg)


class BlockSampler:
    """Epoch orders of minibatches: shuffled blocks of consecutive cells, shuffled in buffers.

    Positions ``0 .. n - 1`` (into the loader's cell list) are cut into blocks of
    ``block_size`` consecutive positions. Each epoch the order of the blocks is shuffled (seeded by
    ``seed`` and the epoch, the same on every rank), the sequence is split into ``world_size``
    equal, disjoint shares (the last one padded by wrapping around, as torch's
    ``DistributedSampler`` does, when ``n`` is not a multiple), and each rank's share is cut into
    buffers of ``blocks_per_buffer`` blocks whose cells are shuffled together and cut into
    minibatches. ``block_size=1`` is a full shuffle.

    Parameters
    ----------
    n
        Number of cells.
    batch_size
        Cells per minibatch (the last minibatch of a buffer may be smaller).
    block_size
        Consecutive cells per block (the unit of disk reads).
    blocks_per_buffer
        Blocks read and mixed together; raised to ``ceil(batch_size / block_size)`` when fewer,
        so that every minibatch but the last of a buffer has ``batch_size`` cells.
    shuffle
        False gives the cells in order (inference).
    seed
        Seed of the orders.
    rank, world_size
        This process's rank and the number of processes (data-parallel training).
    """

    def __init__(
        self,
        n: int,
        batch_size: int = 128,
        block_size: int = 1,
        blocks_per_buffer: int = 16,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        for name, value in [
            ("n", n),
            ("batch_size", batch_size),
            ("block_size", block_size),
            ("blocks_per_buffer", blocks_per_buffer),
            ("world_size", world_size),
        ]:
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer; got {value}.")
        if not 0 <= int(rank) < int(world_size):
            raise ValueError(f"rank must be in [0, world_size={world_size}); got {rank}.")
        self.n, self.batch_size = int(n), int(batch_size)
        self.block_size = int(block_size)
        # A buffer holds at least one full minibatch (minibatches never straddle buffers).
        self.blocks_per_buffer = max(
            int(blocks_per_buffer), math.ceil(self.batch_size / self.block_size)
        )
        self.shuffle, self.seed = bool(shuffle), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` (call once per epoch, on every rank)."""
        self.epoch = int(epoch)

    @property
    def share(self) -> int:
        """Cells per rank and epoch (``ceil(n / world_size)``)."""
        return math.ceil(self.n / self.world_size)

    @property
    def buffer_cells(self) -> int:
        """Cells per buffer."""
        return self.block_size * self.blocks_per_buffer

    def __len__(self) -> int:
        full, rest = divmod(self.share, self.buffer_cells)
        return full * math.ceil(self.buffer_cells / self.batch_size) + math.ceil(
            rest / self.batch_size
        )

    def order(self) -> np.ndarray:
        """This rank's positions for the current epoch, before the within-buffer shuffle."""
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch])
            n_blocks = math.ceil(self.n / self.block_size)
            starts = rng.permutation(n_blocks) * self.block_size
            seq = np.concatenate([np.arange(s, min(s + self.block_size, self.n)) for s in starts])
        else:
            seq = np.arange(self.n)
        total = self.share * self.world_size
        if total > self.n:
            seq = np.concatenate([seq, np.resize(seq, total - self.n)])
        return seq[self.rank * self.share : (self.rank + 1) * self.share]

    def buffers(self) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
        """``(positions to read, minibatches as positions)`` per buffer, for this epoch and rank."""
        seq = self.order()
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, 1])
        for start in range(0, len(seq), self.buffer_cells):
            buf = seq[start : start + self.buffer_cells]
            mixed = rng.permutation(buf) if self.shuffle else buf
            batches = [
                mixed[b : b + self.batch_size] for b in range(0, len(mixed), self.batch_size)
            ]
            yield np.sort(buf), batches

    def __iter__(self) -> Iterator[np.ndarray]:
        for _, batches in self.buffers():
            yield from batches


class Minibatch(NamedTuple):
    """One minibatch on the device, a named tuple of three fields.

    ``x`` is the data, ``(batch, n_vars)`` float32; ``batch`` the one-hot batch covariate,
    ``(batch, n_batch)`` float32, or None without batches; ``index`` the row numbers of the cells
    in the AnnData, a ``(batch,)`` int64 numpy array.
    """

    x: torch.Tensor
    batch: torch.Tensor | None
    index: np.ndarray


class CellLoader:
    """Minibatches of cells as tensors on a device, from any :class:`RowReader` storage.

    Parameters
    ----------
    reader
        Where the rows come from.
    indices
        The AnnData rows to iterate over (default all), sorted ascending so that blocks are
        contiguous on disk.
    batch_codes
        Integer batch code of every AnnData row ``(n_obs,)``, or None.
    n_batch
        Width of the one-hot covariate (0 for none).
    batch_size, shuffle, seed, rank, world_size
        See :class:`BlockSampler`.
    block_size, blocks_per_buffer
        See :class:`BlockSampler`. ``block_size=None`` chooses 1 (a full shuffle) in memory and
        512 cells on disk. In memory one buffer holds every cell of the share (nothing is read
        per buffer), so ``blocks_per_buffer`` only matters on disk.
    device
        Where the tensors go; from the CPU to CUDA through pinned memory.
    prefetch
        Read the next buffer in a background thread while this one is used (on disk only).
    """

    def __init__(
        self,
        reader: RowReader,
        indices: np.ndarray | None = None,
        batch_codes: np.ndarray | None = None,
        n_batch: int = 0,
        batch_size: int = 128,
        shuffle: bool = False,
        block_size: int | None = None,
        blocks_per_buffer: int = 16,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
        prefetch: bool = True,
    ) -> None:
        self.reader = reader
        idx = np.arange(reader.n_obs) if indices is None else np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1 or len(idx) == 0:
            raise ValueError("indices must be a non-empty 1-d array of row numbers.")
        if idx.min() < 0 or idx.max() >= reader.n_obs:
            raise ValueError(
                f"indices must lie in [0, {reader.n_obs}); got {idx.min()}..{idx.max()}."
            )
        self.indices = np.sort(idx) if shuffle else idx
        self.batch_codes = batch_codes
        self.n_batch = int(n_batch)
        if block_size is None:
            block_size = 512 if reader.on_disk else 1
        if not shuffle:
            blocks_per_buffer = max(1, math.ceil(4096 / block_size))
        elif not reader.on_disk:  # in memory nothing is read per buffer: mix the whole share
            blocks_per_buffer = math.ceil(len(self.indices) / block_size)
        self.sampler = BlockSampler(
            len(self.indices),
            batch_size,
            block_size,
            blocks_per_buffer,
            shuffle,
            seed,
            rank,
            world_size,
        )
        self.device = torch.device(device)
        self.prefetch = bool(prefetch) and reader.on_disk

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch``."""
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def _read(self, positions: np.ndarray) -> np.ndarray | sp.csr_matrix:
        return self.reader.raw(self.indices[positions])

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(array)
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t.to(self.device)

    def _onehot(self, rows: np.ndarray) -> torch.Tensor | None:
        if self.batch_codes is None or self.n_batch < 2:
            return None
        out = np.zeros((len(rows), self.n_batch), dtype=np.float32)
        out[np.arange(len(rows)), self.batch_codes[rows]] = 1.0
        return self._tensor(out)

    def __iter__(self) -> Iterator[Minibatch]:
        plan = list(self.sampler.buffers())
        pool = ThreadPoolExecutor(max_workers=1) if self.prefetch else None
        try:
            pending = pool.submit(self._read, plan[0][0]) if pool and plan else None
            for i, (positions, batches) in enumerate(plan):
                if pool is not None:
                    block = pending.result()
                    if i + 1 < len(plan):
                        pending = pool.submit(self._read, plan[i + 1][0])
                else:
                    block = None if not self.reader.on_disk else self._read(positions)
                for pos in batches:
                    rows = self.indices[pos]
                    if block is None:  # in memory: gather the rows directly
                        raw = self.reader.raw(rows)
                    else:
                        raw = block[np.searchsorted(positions, pos)]
                    yield Minibatch(self._tensor(to_dense32(raw)), self._onehot(rows), rows)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
