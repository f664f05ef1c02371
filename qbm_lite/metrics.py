"""Integration metrics: scib-metrics' Benchmarker behind one call, with lighter presets.

scib-metrics (Luecken et al., 2022, re-implemented in JAX) scores an embedding on *bio
conservation* (do cell types stay together?) and *batch correction* (are batches mixed within
types?), and combines them as ``Total = 0.6 * bio + 0.4 * batch``. Its metrics are compiled by
JAX on first use, which on a CPU costs from a second (silhouettes, LISI) to minutes (kBET), so
:func:`integration_benchmark` offers three presets:

``"light"``
    Bio: isolated labels, silhouette label, cLISI. Batch: iLISI, graph connectivity, PCR
    comparison. Compiles in seconds; for quick mode and tests.
``"standard"``
    Everything in scib-metrics' default set except kBET (adds k-means NMI/ARI, which costs
    1-2 s per embedding on a CPU, and BRAS, the batch silhouette).
``"full"``
    scib-metrics' defaults (adds kBET per label; slow to compile on a CPU).

Scores are *not* min-max scaled across methods (scaled scores change when a method is added),
so the totals can be compared between runs on the same data.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from qbm_lite.config import collect_warnings

__all__ = [
    "METRIC_PRESETS",
    "IntegrationBenchmark",
    "batch_mixing",
    "integration_benchmark",
]

MetricPreset = Literal["light", "standard", "full"]
NeighborMethod = Literal["exact", "pynndescent"]

#: Which scib-metrics metrics each preset runs, as (bio conservation flags, batch correction
#: flags).
METRIC_PRESETS: dict[str, tuple[dict[str, bool], dict[str, bool]]] = {
    "light": (
        {
            "isolated_labels": True,
            "nmi_ari_cluster_labels_leiden": False,
            "nmi_ari_cluster_labels_kmeans": False,
            "silhouette_label": True,
            "clisi_knn": True,
        },
        {
            "bras": False,
            "ilisi_knn": True,
            "kbet_per_label": False,
            "graph_connectivity": True,
            "pcr_comparison": True,
        },
    ),
    "standard": (
        {
            "isolated_labels": True,
            "nmi_ari_cluster_labels_leiden": False,
            "nmi_ari_cluster_labels_kmeans": True,
            "silhouette_label": True,
            "clisi_knn": True,
        },
        {
            "bras": True,
            "ilisi_knn": True,
            "kbet_per_label": False,
            "graph_connectivity": True,
            "pcr_comparison": True,
        },
    ),
}
# "full" adds kBET (slow) to "standard".
METRIC_PRESETS["full"] = (
    dict(METRIC_PRESETS["standard"][0]),
    {**METRIC_PRESETS["standard"][1], "kbet_per_label": True},
)

AGGREGATES = ("Bio conservation", "Batch correction", "Total")


@dataclass
class IntegrationBenchmark:
    """Results of :func:`integration_benchmark`.

    Attributes
    ----------
    tidy
        Long table: one row per (method, metric) with columns ``method``, ``metric``,
        ``metric_type`` (``"Bio conservation"``, ``"Batch correction"`` or
        ``"Aggregate score"``) and ``value``.
    scores
        Wide table: methods as rows (sorted by ``Total``, best first), metrics and the
        aggregates as columns.
    figure
        The results figure (:func:`qbm_lite.plotting.singlecell.plot_benchmark`), or ``None``
        when ``plot=False``.
    preset
        The metric preset used.
    notes
        What scib-metrics reported while scoring, in words for the reader. Today: which methods
        score 0 on the PCR comparison when scib-metrics clamped some negative scores to 0 (an
        embedding with *more* batch variance than the unintegrated PCA); it warns instead of
        returning the negative score, and the warning is collected here instead of printed.
    """

    tidy: pd.DataFrame
    scores: pd.DataFrame
    figure: object | None
    preset: str
    notes: list[str] = field(default_factory=list)

    def totals(self) -> pd.DataFrame:
        """Just the three aggregate columns, best total first."""
        return self.scores[list(AGGREGATES)]


def _exact_neighbors(X: np.ndarray, k: int):
    """Exact k nearest neighbours (scikit-learn); avoids pynndescent's numba compile time."""
    from scib_metrics.nearest_neighbors import NeighborsResults
    from sklearn.neighbors import NearestNeighbors

    k = min(k, X.shape[0] - 1)
    distances, indices = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X)
    return NeighborsResults(indices=indices, distances=distances)


def _check_inputs(adata, keys: dict[str, str], batch_key: str, label_key: str) -> None:
    for name, key in keys.items():
        if key not in adata.obsm:
            raise KeyError(
                f"embedding {name!r}: adata.obsm has no {key!r} (keys: {list(adata.obsm)}); "
                "train the method first (qbm_lite.baselines.train_methods) or fix the key."
            )
        if not np.all(np.isfinite(np.asarray(adata.obsm[key]))):
            raise ValueError(f"adata.obsm[{key!r}] contains NaN or inf; the method diverged.")
    for what, col in [("batch_key", batch_key), ("label_key", label_key)]:
        if col not in adata.obs:
            raise KeyError(
                f"{what} {col!r} is not a column of adata.obs (columns: {list(adata.obs.columns)})."
            )
    if adata.obs[batch_key].nunique() < 2:
        raise ValueError(f"obs[{batch_key!r}] has a single batch; there is nothing to integrate.")


def integration_benchmark(
    adata,
    obsm_keys: Sequence[str] | Mapping[str, str],
    batch_key: str,
    label_key: str,
    *,
    metrics: MetricPreset = "standard",
    pre_integrated_key: str | None = None,
    neighbors: NeighborMethod = "exact",
    plot: bool = True,
    progress: bool = False,
) -> IntegrationBenchmark:
    """Score embeddings with scib-metrics: bio conservation, batch correction and their total.

    Parameters
    ----------
    adata
        AnnData with the embeddings in ``obsm`` and log-normalized, unintegrated ``X`` (as made
        by :func:`qbm_lite.data.prepare`).
    obsm_keys
        The embeddings: a list of ``obsm`` keys, or a mapping ``{method name: obsm key}``.
    batch_key, label_key
        Columns of ``obs`` with the batch and the cell type.
    metrics
        Metric preset: ``"light"``, ``"standard"`` or ``"full"`` (see the module docstring).
    pre_integrated_key
        ``obsm`` key of the unintegrated embedding used by the PCR comparison; if ``None``,
        ``obsm["X_pca"]`` (computed on ``X`` with 50 components if missing).
    neighbors
        ``"exact"`` (scikit-learn; fast to start, fine up to tens of thousands of cells) or
        ``"pynndescent"`` (scib-metrics' default; approximate, compiles with numba first).
    plot
        Also draw the results figure.
    progress
        Show scib-metrics' progress bars.

    Returns
    -------
    IntegrationBenchmark
        ``.tidy`` (long table), ``.scores`` (methods x metrics, best total first), ``.figure``.
    """
    from scib_metrics.benchmark import BatchCorrection, Benchmarker, BioConservation

    if metrics not in METRIC_PRESETS:
        raise ValueError(f"metrics must be one of {sorted(METRIC_PRESETS)}; got {metrics!r}.")
    if neighbors not in ("exact", "pynndescent"):
        raise ValueError(f"neighbors must be 'exact' or 'pynndescent'; got {neighbors!r}.")
    keys = dict(obsm_keys) if isinstance(obsm_keys, Mapping) else {k: k for k in obsm_keys}
    if not keys:
        raise ValueError("obsm_keys is empty; pass at least one embedding.")
    _check_inputs(adata, keys, batch_key, label_key)

    # A light copy: the embeddings renamed to the method names, obs, and the unintegrated PCA.
    import anndata as ad

    work = ad.AnnData(X=np.zeros((adata.n_obs, 1), dtype=np.float32), obs=adata.obs.copy())
    for name, key in keys.items():
        work.obsm[name] = np.asarray(adata.obsm[key], dtype=np.float32)
    pre = pre_integrated_key or "X_pca"
    if pre not in adata.obsm:
        if pre_integrated_key is not None:
            raise KeyError(f"pre_integrated_key {pre_integrated_key!r} is not in adata.obsm.")
        import scanpy as sc

        n_comps = int(min(50, adata.n_obs - 1, adata.n_vars - 1))
        sc.pp.pca(adata, n_comps=n_comps, mask_var=None, random_state=0)
    work.obsm["_X_pre"] = np.asarray(adata.obsm[pre], dtype=np.float32)

    bio, batch = METRIC_PRESETS[metrics]
    bench = Benchmarker(
        work,
        batch_key=batch_key,
        label_key=label_key,
        embedding_obsm_keys=list(keys),
        bio_conservation_metrics=BioConservation(**bio),
        batch_correction_metrics=BatchCorrection(**batch),
        pre_integrated_embedding_obsm_key="_X_pre",
        progress_bar=progress,
    )
    # scib-metrics calls gc.collect() before every metric; with torch, scanpy and JAX loaded a
    # full collection takes ~0.5 s, which dominated small benchmarks. Freezing the objects that
    # exist now (stdlib gc.freeze) makes those collections scan only new objects.
    gc.freeze()
    try:
        bench.prepare(neighbor_computer=_exact_neighbors if neighbors == "exact" else None)
        with collect_warnings(UserWarning, _PCR_MODULE, _PCR_NEGATIVE) as pcr_clamped:
            bench.benchmark()
    finally:
        gc.unfreeze()
    raw = bench.get_results(min_max_scale=False)

    metric_type = raw.loc["Metric Type"]
    values = raw.drop(index="Metric Type").astype(float)
    values.index.name = "method"
    scores = values.sort_values("Total", ascending=False)
    tidy = (
        values.reset_index()
        .melt(id_vars="method", var_name="metric", value_name="value")
        .assign(metric_type=lambda d: d["metric"].map(metric_type))
    )[["method", "metric", "metric_type", "value"]]

    notes = _pcr_notes(scores, len(pcr_clamped))

    figure = None
    if plot:
        from qbm_lite.plotting.singlecell import plot_benchmark

        figure = plot_benchmark(scores)
    return IntegrationBenchmark(
        tidy=tidy, scores=scores, figure=figure, preset=metrics, notes=notes
    )


# scib-metrics clamps a negative PCR comparison to 0 and says so with a UserWarning.
_PCR_MODULE = "scib_metrics.metrics._pcr_comparison"
_PCR_NEGATIVE = "PCR comparison score is negative"


def _pcr_notes(scores: pd.DataFrame, n_negative: int) -> list[str]:
    """Say which methods score 0 on the PCR comparison, and how many of them were clamped.

    A score of exactly 0 means the embedding removes none of the batch variance of the
    unintegrated PCA; scib-metrics also sets a negative score (an *increase*) to 0, warning once
    per clamped embedding, so ``n_negative`` of the zeros are increases.
    """
    if n_negative == 0 or "PCR comparison" not in scores:
        return []
    zero = [str(m) for m in scores.index[scores["PCR comparison"] == 0.0]]
    if not zero:
        return []
    return [
        f"PCR comparison is 0 for {', '.join(zero)}: the embedding removes none of the batch "
        f"variance of the unintegrated PCA, and for {n_negative} of them it adds some "
        "(scib-metrics sets the negative score to 0)."
    ]


def batch_mixing(embedding: np.ndarray, batch: Sequence, n_neighbors: int = 15) -> float:
    """Mean fraction of each cell's nearest neighbours from *other* batches, divided by the
    fraction expected under perfect mixing (1 = well mixed, 0 = batches fully separated).

    A quick, dependency-free sanity check of batch effects (no JAX compile); the scib metrics
    are the reference.
    """
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(embedding)
    codes = np.unique(np.asarray(batch), return_inverse=True)[1]
    if X.shape[0] != codes.shape[0]:
        raise ValueError(f"embedding has {X.shape[0]} rows but batch has {codes.shape[0]}.")
    counts = np.bincount(codes)
    if counts.size < 2:
        raise ValueError("batch_mixing needs at least two batches.")
    idx = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(X).kneighbors(X)[1][:, 1:]
    other = (codes[idx] != codes[:, None]).mean(axis=1)
    expected = 1.0 - (counts[codes] - 1) / (X.shape[0] - 1)
    return float(np.mean(other) / np.mean(expected))
