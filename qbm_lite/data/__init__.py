"""Data: bundled images, single-cell data (bundled, simulated, online registry)."""

from qbm_lite.data.images import load_digits_binary
from qbm_lite.data.loader import BlockSampler, CellLoader, RowReader
from qbm_lite.data.prepare import prepare
from qbm_lite.data.registry import (
    OFFLINE_DATASETS,
    REGISTRY,
    DatasetOfflineError,
    cache_dir,
    fetch,
)
from qbm_lite.data.simulate import add_batch_effect, simulate
from qbm_lite.data.singlecell import (
    counts_are_integers,
    list_datasets,
    load,
    load_krumsiek11,
    load_pbmc68k_reduced,
)
from qbm_lite.data.write import read_backed, write_simulated

__all__ = [
    "BlockSampler",
    "CellLoader",
    "RowReader",
    "OFFLINE_DATASETS",
    "REGISTRY",
    "DatasetOfflineError",
    "add_batch_effect",
    "cache_dir",
    "counts_are_integers",
    "fetch",
    "list_datasets",
    "load",
    "load_digits_binary",
    "load_krumsiek11",
    "load_pbmc68k_reduced",
    "prepare",
    "read_backed",
    "simulate",
    "write_simulated",
]
