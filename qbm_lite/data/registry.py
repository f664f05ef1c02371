"""The registry of online single-cell datasets, and their cached, checksummed download (pooch).

The registry is defined here, in the package, so that it also works from a plain ``pip install``;
``data/registry.json`` in the repository is an export of it (``python -m qbm_lite.data.registry``
rewrites it, and a test checks that the two agree).

``sha256`` is ``null`` where no checksum has been published by the data's owners. Such a file is
checked *trust on first use*: its sha256 is recorded beside it in the cache at the first download
(with a warning that prints it, to be pinned in the registry once verified), and every later load
checks the cached file against that record, so a truncated or replaced file is caught.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import sys
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

__all__ = [
    "OFFLINE_DATASETS",
    "REGISTRY",
    "DatasetOfflineError",
    "cache_dir",
    "fetch",
    "get_entry",
    "registry_json",
]

#: Datasets that ship with the installed packages and load without a network.
OFFLINE_DATASETS: dict[str, str] = {
    "pbmc68k_reduced": "scanpy's bundled 700 PBMCs (10 labelled types), counts restored",
    "krumsiek11": "scanpy's bundled simulated myeloid differentiation (640 cells, 11 genes)",
    "simulated": "qbm_lite.data.simulate(): NB counts with batches and known cell types",
}

_NO_HASH = "no checksum published by the data's owners; pooch logs the hash of a fresh download"

#: Online datasets, with the files to fetch (url, file name, sha256) and what the loaded
#: AnnData holds.
REGISTRY: dict[str, dict[str, Any]] = {
    "pbmc3k": {
        "description": "3k PBMCs from a healthy donor (10x Genomics), raw counts, no labels.",
        "source": "scanpy.datasets.pbmc3k",
        "files": [
            {
                "fname": "pbmc3k_raw.h5ad",
                "url": "https://falexwolf.de/data/pbmc3k_raw.h5ad",
                "sha256": None,
                "sha256_note": _NO_HASH,
            }
        ],
        "reader": "h5ad",
        "shape": [2700, 32738],
        "counts": "X",
        "batch_key": None,
        "label_key": None,
        "cite": "wolf2018",
    },
    "paul15": {
        "description": "Myeloid progenitor differentiation (Paul et al. 2015), 19 clusters.",
        "source": "scanpy.datasets.paul15",
        "files": [
            {
                "fname": "paul15/paul15.h5",
                "url": "https://falexwolf.de/data/paul15.h5",
                "sha256": None,
                "sha256_note": _NO_HASH,
            }
        ],
        "reader": "scanpy_paul15",
        "shape": [2730, 3451],
        "counts": "X",
        "batch_key": None,
        "label_key": "paul15_clusters",
        "cite": "wolf2018",
    },
    "pbmc_4k8k": {
        "description": "scvi-tools' PBMC 4k + 8k pair (10x Genomics), 2 batches, 9 labelled types.",
        "source": "scvi.data.pbmc_dataset",
        "files": [
            {
                "fname": "gene_info_pbmc.csv",
                "url": "https://github.com/YosefLab/scVI-data/raw/master/gene_info.csv",
                "sha256": None,
                "sha256_note": _NO_HASH,
            },
            {
                "fname": "pbmc_metadata.pickle",
                "url": "https://github.com/YosefLab/scVI-data/raw/master/pbmc_metadata.pickle",
                "sha256": None,
                "sha256_note": _NO_HASH,
            },
            {
                "fname": "pbmc8k/filtered_gene_bc_matrices.tar.gz",
                "url": "http://cf.10xgenomics.com/samples/cell-exp/2.1.0/pbmc8k/"
                "pbmc8k_filtered_gene_bc_matrices.tar.gz",
                "sha256": None,
                "sha256_note": _NO_HASH,
            },
            {
                "fname": "pbmc4k/filtered_gene_bc_matrices.tar.gz",
                "url": "http://cf.10xgenomics.com/samples/cell-exp/2.1.0/pbmc4k/"
                "pbmc4k_filtered_gene_bc_matrices.tar.gz",
                "sha256": None,
                "sha256_note": _NO_HASH,
            },
        ],
        "reader": "scvi_pbmc",
        "shape": [11990, 3346],
        "counts": "X",
        "batch_key": "batch",
        "label_key": "str_labels",
        "cite": "gayoso2022",
    },
    "pancreas": {
        "description": "scIB human pancreas: 5 studies, 9 technologies as batches, 14 types.",
        "source": "Luecken et al. 2022, figshare file 24539828",
        "files": [
            {
                "fname": "human_pancreas_norm_complexBatch.h5ad",
                "url": "https://figshare.com/ndownloader/files/24539828",
                "sha256": None,
                "sha256_note": _NO_HASH,
            }
        ],
        "reader": "h5ad",
        "shape": [16382, 19093],
        "counts": "counts",
        "batch_key": "tech",
        "label_key": "celltype",
        "cite": "luecken2022",
    },
    "lung_atlas": {
        "description": "scIB lung atlas: 16 batches (donors/protocols), 17 types.",
        "source": "Luecken et al. 2022, figshare file 24539942",
        "files": [
            {
                "fname": "lung_atlas.h5ad",
                "url": "https://figshare.com/ndownloader/files/24539942",
                "sha256": None,
                "sha256_note": _NO_HASH,
            }
        ],
        "reader": "h5ad",
        "shape": [32472, 15148],
        "counts": "counts",
        "batch_key": "batch",
        "label_key": "cell_type",
        "cite": "luecken2022",
    },
    "human_immune": {
        "description": "scIB human immune (Immune_ALL_human): 10 batches, 16 types.",
        "source": "Luecken et al. 2022, figshare file 25717328",
        "files": [
            {
                "fname": "Immune_ALL_human.h5ad",
                "url": "https://figshare.com/ndownloader/files/25717328",
                "sha256": None,
                "sha256_note": _NO_HASH,
            }
        ],
        "reader": "h5ad",
        "shape": [33506, 12303],
        "counts": "counts",
        "batch_key": "batch",
        "label_key": "final_annotation",
        "cite": "luecken2022",
    },
}

_REPO_JSON = Path(__file__).resolve().parents[2] / "data" / "registry.json"


class DatasetOfflineError(ConnectionError):
    """An online dataset was requested, is not cached, and its host cannot be reached."""


def registry_json() -> str:
    """The registry as the JSON text stored in ``data/registry.json``."""
    doc = {
        "comment": (
            "Generated from qbm_lite/data/registry.py (python -m qbm_lite.data.registry); "
            "do not edit by hand. sha256 null: no checksum published by the data's owners."
        ),
        "offline": OFFLINE_DATASETS,
        "online": REGISTRY,
    }
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def get_entry(name: str) -> dict[str, Any]:
    """A deep copy of the registry entry for ``name``."""
    if name not in REGISTRY:
        raise KeyError(
            f"{name!r} is not in the online registry; online datasets: {sorted(REGISTRY)}, "
            f"offline datasets: {sorted(OFFLINE_DATASETS)}."
        )
    return copy.deepcopy(REGISTRY[name])


def cache_dir() -> Path:
    """Where downloads are cached: ``$QBM_LITE_DATA_DIR`` or the user cache (``qbm-lite``)."""
    env = os.environ.get("QBM_LITE_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("qbm-lite"))


def _reachable(url: str, timeout: float) -> bool:
    """Whether a TCP connection to the URL's host opens within ``timeout`` seconds."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_message(name: str, url: str) -> str:
    offline = ", ".join(f"{k!r}" for k in OFFLINE_DATASETS)
    return (
        f"Cannot download dataset {name!r}: {urlparse(url).hostname} is unreachable (no network?) "
        f"and the file is not in the cache {cache_dir()}. Without a network use one of the "
        f"offline datasets: {offline} (qbm_lite.data.load(name) or qbm_lite.data.simulate())."
    )


def fetch(
    name: str, *, timeout: float = 3.0, progress: bool = False, entry: dict | None = None
) -> list[Path]:
    """Download (or find in the cache) the files of an online dataset; return their paths.

    Parameters
    ----------
    name
        A key of :data:`REGISTRY`.
    timeout
        Seconds allowed for the connectivity check before each download; offline, the call
        fails after at most this long with :class:`DatasetOfflineError`.
    progress
        Show pooch's download progress bar.
    entry
        Use this registry entry instead of ``REGISTRY[name]`` (for tests and custom mirrors).

    Returns
    -------
    list of pathlib.Path
        Local paths, in the order of the entry's ``files``.
    """
    import pooch

    entry = get_entry(name) if entry is None else entry
    folder = cache_dir() / name
    paths = []
    for spec in entry["files"]:
        target = folder / spec["fname"]
        known = f"sha256:{spec['sha256']}" if spec.get("sha256") else None
        if not target.exists() and not _reachable(spec["url"], timeout):
            raise DatasetOfflineError(_offline_message(name, spec["url"]))
        path = pooch.retrieve(
            url=spec["url"],
            known_hash=known,
            fname=target.name,
            path=target.parent,
            progressbar=progress,
            downloader=pooch.HTTPDownloader(timeout=max(timeout, 30.0), progressbar=progress),
        )
        if known is None:
            _check_first_use_hash(Path(path), spec["url"])
        paths.append(Path(path))
    return paths


def _check_first_use_hash(path: Path, url: str) -> None:
    """Record the sha256 of a file without a published checksum, or check it against the record."""
    import pooch

    digest = pooch.file_hash(str(path), alg="sha256")
    record = path.with_name(path.name + ".sha256")
    if not record.exists():
        record.write_text(digest + "\n")
        warnings.warn(
            f"{url} has no published sha256; recorded {digest} for {path.name} on first use. "
            "Check it and pin it in qbm_lite/data/registry.py.",
            UserWarning,
            stacklevel=3,
        )
    elif record.read_text().strip() != digest:
        raise ValueError(
            f"{path} no longer matches the sha256 recorded at its first download "
            f"({record.read_text().strip()} != {digest}); delete {path} and {record.name} "
            "to download it again."
        )


def _write_json(path: Path = _REPO_JSON) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(registry_json())


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    _write_json(Path(sys.argv[1]) if len(sys.argv) > 1 else _REPO_JSON)
    print(f"wrote {sys.argv[1] if len(sys.argv) > 1 else _REPO_JSON}")
