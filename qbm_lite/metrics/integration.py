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

**Silhouettes and quantised embeddings.**

Three of the metrics are average silhouette widths: *silhouette label* (bio), *BRAS* (batch,
a batch silhouette within each label) and *isolated labels*, which in scib-metrics is the
silhouette of the labels found in the fewest batches. When every label occurs in every batch
(the usual simulated benchmark), *every* label counts as isolated, so isolated labels is the
label-averaged silhouette label (identical for balanced labels): the same silhouette is counted
twice among the bio metrics. Silhouettes also reward compact islands, which an embedding of
saturated posterior probabilities (the QBM-VAE's ``q``, mostly near 0 or 1) forms by
construction. :data:`SILHOUETTE_METRICS` names these metrics, and every benchmark also reports
the aggregates *without* them (:data:`AGGREGATES_NO_SILHOUETTE`: bio from NMI/ARI and cLISI,
batch from iLISI, graph connectivity and PCR comparison) beside the standard ones;
:func:`metric_differences` gives the per-metric paired differences between two methods, so a
lead in the total can be traced to the columns it comes from.

**PCR comparison.**

scib-metrics' *PCR comparison* is ``(pcr_pre − pcr_post) / pcr_pre``, the fraction of the
batch's variance explained by the unintegrated PCA that integration removed. When an embedding
carries *more* batch variance than the unintegrated PCA (no correction at all, e.g. PCA itself
up to rounding), scib-metrics sets the score to 0 and emits a ``UserWarning``. That is a
result, not a fault: :func:`integration_benchmark` records those embeddings in
:attr:`IntegrationBenchmark.pcr_clipped` and filters that one warning (by message, category
and module).
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from qbm_lite.checks import InputError, check_choice, drop_missing, obs_column, obsm_array

__all__ = [
    "AGGREGATES",
    "AGGREGATES_NO_SILHOUETTE",
    "SILHOUETTE_METRICS",
    "METRIC_PRESETS",
    "IntegrationBenchmark",
    "batch_mixing",
    "integration_benchmark",
    "isolated_labels_are_all_labels",
    "label_purity",
    "metric_differences",
    "seed_table",
    "totals_without_silhouettes",
]

MetricPreset = Literal["light", "standard", "full"]
NeighborMethod = Literal["exact", "pynndescent"]

#: Which scib-metrics metrics each preset runs: (bio conservation flags, batch correction flags).
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
#: The same aggregates computed without :data:`SILHOUETTE_METRICS` (same 0.6 / 0.4 weights).
AGGREGATES_NO_SILHOUETTE = (
    "Bio (no silhouettes)",
    "Batch (no silhouettes)",
    "Total (no silhouettes)",
)
#: scib-metrics columns that are silhouette widths (isolated labels is one; see above).
SILHOUETTE_METRICS = ("Isolated labels", "Silhouette label", "BRAS", "Silhouette batch")


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
    pcr_clipped
        Methods whose PCR comparison is 0: the embedding explains at least as much batch
        variance as the unintegrated PCA (scib-metrics clips negative values to 0 and warns;
        see the module docstring).
    isolated_is_silhouette
        True when every label is in the least number of batches, so that isolated labels is
        the label-averaged silhouette label (:func:`isolated_labels_are_all_labels`).
    """

    tidy: pd.DataFrame
    scores: pd.DataFrame
    figure: object | None
    preset: str
    pcr_clipped: list[str] = field(default_factory=list)
    isolated_is_silhouette: bool = False

    def totals(self, silhouettes: bool = True) -> pd.DataFrame:
        """The aggregate columns, best total first: the standard three, and with
        ``silhouettes=False`` also the three without the silhouette-based metrics."""
        cols = list(AGGREGATES) + ([] if silhouettes else list(AGGREGATES_NO_SILHOUETTE))
        return self.scores[cols]

    @property
    def metrics(self) -> list[str]:
        """The individual metric columns (no aggregates)."""
        agg = set(AGGREGATES) | set(AGGREGATES_NO_SILHOUETTE)
        return [c for c in self.scores.columns if c not in agg]


def _exact_neighbors(X: np.ndarray, k: int):
    """Exact k nearest neighbours (scikit-learn); avoids pynndescent's numba compile time."""
    from scib_metrics.nearest_neighbors import NeighborsResults
    from sklearn.neighbors import NearestNeighbors

    k = min(k, X.shape[0] - 1)
    distances, indices = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X)
    return NeighborsResults(indices=indices, distances=distances)


def _check_inputs(adata, keys: dict[str, str], batch_key: str, label_key: str) -> None:
    for name, key in keys.items():
        obsm_array(adata, key, role=f"embedding {name!r}")
    obs_column(adata, batch_key, role="batch_key", kind="categorical", min_categories=2)
    obs_column(adata, label_key, role="label_key", kind="categorical")


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
    dropna: bool = False,
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
    dropna
        Cells with a missing batch or label are refused by default (see
        :mod:`qbm_lite.checks`); ``True`` scores only the annotated cells and warns how many
        were left out.

    Returns
    -------
    IntegrationBenchmark
        ``.tidy`` (long table), ``.scores`` (methods x metrics, best total first), ``.figure``.

    Raises
    ------
    qbm_lite.checks.InputError
        Unknown preset or neighbour method, an unknown ``obsm`` key or one with NaNs, a missing
        ``obs`` column, missing batch or label values (unless ``dropna=True``), a single batch.
    """
    from scib_metrics.benchmark import BatchCorrection, Benchmarker, BioConservation

    check_choice("metrics", metrics, tuple(METRIC_PRESETS))
    check_choice("neighbors", neighbors, NeighborMethod)
    keys = dict(obsm_keys) if isinstance(obsm_keys, Mapping) else {k: k for k in obsm_keys}
    if not keys:
        raise InputError("obsm_keys is empty; pass at least one embedding.")
    if dropna:
        adata, n_dropped = drop_missing(adata, [batch_key, label_key])
        if n_dropped:
            warnings.warn(
                f"integration_benchmark: left out {n_dropped} cell(s) with a missing "
                f"{batch_key!r} or {label_key!r} (dropna=True).",
                stacklevel=2,
            )
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
        with warnings.catch_warnings():
            # A negative PCR comparison is a result (recorded in pcr_clipped below), not a fault.
            warnings.filterwarnings(
                "ignore",
                message="PCR comparison score is negative",
                category=UserWarning,
                module=r"scib_metrics\.metrics\._pcr_comparison",
            )
            bench.prepare(neighbor_computer=_exact_neighbors if neighbors == "exact" else None)
            bench.benchmark()
    finally:
        gc.unfreeze()
    raw = bench.get_results(min_max_scale=False)

    metric_type = raw.loc["Metric Type"].to_dict()
    values = raw.drop(index="Metric Type").astype(float)
    values.index.name = "method"
    values = values.join(totals_without_silhouettes(values, metric_type))
    metric_type.update(dict.fromkeys(AGGREGATES_NO_SILHOUETTE, "Aggregate score"))
    scores = values.sort_values("Total", ascending=False)
    tidy = (
        values.reset_index()
        .melt(id_vars="method", var_name="metric", value_name="value")
        .assign(metric_type=lambda d: d["metric"].map(metric_type))
    )[["method", "metric", "metric_type", "value"]]
    pcr_clipped = (
        [str(m) for m in values.index[values["PCR comparison"] == 0.0]]
        if "PCR comparison" in values
        else []
    )

    figure = None
    if plot:
        from qbm_lite.plotting.singlecell import plot_benchmark

        figure = plot_benchmark(scores.drop(columns=list(AGGREGATES_NO_SILHOUETTE)))
    return IntegrationBenchmark(
        tidy=tidy,
        scores=scores,
        figure=figure,
        preset=metrics,
        pcr_clipped=pcr_clipped,
        isolated_is_silhouette=isolated_labels_are_all_labels(adata, batch_key, label_key),
    )


def totals_without_silhouettes(
    scores: pd.DataFrame, metric_type: Mapping[str, str]
) -> pd.DataFrame:
    """Bio, batch and total scores recomputed without :data:`SILHOUETTE_METRICS`.

    Parameters
    ----------
    scores
        Methods as rows, scib-metrics' metric columns (``IntegrationBenchmark.scores`` or the
        Benchmarker's unscaled results).
    metric_type
        ``{metric column: "Bio conservation" | "Batch correction"}``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`AGGREGATES_NO_SILHOUETTE`: the unweighted mean of each family's
        remaining metrics, and ``0.6 * bio + 0.4 * batch`` as in scIB (NaN where a family has
        no metric left, e.g. the light preset's bio family is cLISI alone).
    """
    out = pd.DataFrame(index=scores.index)
    for family, col in zip(
        ("Bio conservation", "Batch correction"), AGGREGATES_NO_SILHOUETTE[:2], strict=True
    ):
        cols = [
            c
            for c, kind in metric_type.items()
            if kind == family and c in scores.columns and c not in SILHOUETTE_METRICS
        ]
        out[col] = scores[cols].astype(float).mean(axis=1) if cols else np.nan
    out[AGGREGATES_NO_SILHOUETTE[2]] = (
        0.6 * out[AGGREGATES_NO_SILHOUETTE[0]] + 0.4 * out[AGGREGATES_NO_SILHOUETTE[1]]
    )
    return out


def isolated_labels_are_all_labels(adata, batch_key: str, label_key: str) -> bool:
    """True when scib-metrics' *isolated labels* would score every label.

    scib-metrics calls a label isolated when it occurs in no more batches than the label found
    in the fewest batches; when all labels occur in equally many batches (every type in every
    batch), all are isolated and the metric is the label-averaged silhouette label.
    """
    labels = obs_column(adata, label_key, role="label_key", kind="categorical")
    batches = obs_column(adata, batch_key, role="batch_key", kind="categorical")
    per_label = pd.DataFrame({"l": labels.to_numpy(), "b": batches.to_numpy()})
    n_batches = per_label.drop_duplicates().groupby("l", observed=True)["b"].count()
    return bool((n_batches == n_batches.min()).all())


def metric_differences(
    tidy: pd.DataFrame,
    a: str,
    b: str,
    metrics: Sequence[str] | None = None,
    **kwargs,
) -> pd.DataFrame:
    """Per-metric paired differences ``a − b`` over seeds, with intervals and verdicts.

    Parameters
    ----------
    tidy
        Tidy scores with a ``seed`` (or ``fold``) column, e.g. the stacked ``.tidy`` tables of
        several seeds (:meth:`qbm_lite.baselines.SeedRuns.score`).
    a, b
        Method names.
    metrics
        Metrics to compare (default: every metric of the table, in its order).
    **kwargs
        Passed to :func:`qbm_lite.metrics.compare` (``method="t"``, ``confidence``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per metric: ``mean`` difference, ``low`` and ``high`` of the interval, ``n``
        pairs and the ``verdict`` (``"no difference"`` when the interval contains 0).
    """
    from qbm_lite.metrics.stats import compare

    metrics = list(pd.unique(tidy["metric"])) if metrics is None else list(metrics)
    rows = [compare(tidy, a, b, m, **kwargs).as_row() for m in metrics]
    return pd.DataFrame(rows).set_index("metric")[["mean", "low", "high", "n", "verdict"]]


def seed_table(
    tidy: pd.DataFrame,
    metrics: Sequence[str] = ("Total", "Total (no silhouettes)", "Bio conservation"),
    digits: int = 3,
) -> pd.DataFrame:
    """Compact ``mean ± sd`` table over seeds: methods as rows (best first), ``metrics`` as columns.

    Built on :func:`qbm_lite.metrics.summarize` (sd with ``ddof=1``); narrow enough for a
    book's text column with three or four metrics.

    Raises
    ------
    qbm_lite.checks.InputError
        A metric that is not in the table.
    """
    from qbm_lite.metrics.stats import summarize

    summary = summarize(tidy)
    known = set(summary.index.get_level_values("metric"))
    missing = [m for m in metrics if m not in known]
    if missing:
        raise InputError(f"metrics {missing} are not in the table (it has {sorted(known)}).")
    means = summary["mean"].unstack("metric")
    sds = summary["sd"].unstack("metric")
    order = means[metrics[0]].sort_values(ascending=False).index
    out = pd.DataFrame(index=order)
    for m in metrics:
        out[m] = [
            f"{means.loc[i, m]:.{digits}f} ± {sds.loc[i, m]:.{digits}f}"
            if np.isfinite(sds.loc[i, m])
            else f"{means.loc[i, m]:.{digits}f}"
            for i in order
        ]
    out.index.name = "method"
    return out


def label_purity(embedding: np.ndarray, labels: Sequence, n_neighbors: int = 15) -> float:
    """Mean fraction of each cell's nearest neighbours with the cell's own label (1 = pure).

    The bio-conservation counterpart of :func:`batch_mixing`: a quick check that a batch
    correction kept cell types apart (no JAX compile).

    Parameters
    ----------
    embedding
        ``(n_cells, n_dims)`` array.
    labels
        ``(n_cells,)`` labels; missing values are refused.
    n_neighbors
        Neighbours per cell (the cell itself excluded).

    Raises
    ------
    qbm_lite.checks.InputError
        Shape mismatch, missing labels, non-finite embedding, too many neighbours.
    """
    from sklearn.neighbors import NearestNeighbors

    X, codes = _embedding_and_codes(embedding, labels, "labels")
    if n_neighbors >= X.shape[0]:
        raise InputError(f"n_neighbors={n_neighbors} must be smaller than the {X.shape[0]} cells.")
    idx = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(X).kneighbors(X)[1][:, 1:]
    return float((codes[idx] == codes[:, None]).mean())


def _embedding_and_codes(embedding, labels, name: str) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(embedding, dtype=np.float64)
    series = pd.Series(np.asarray(labels, dtype=object))
    if X.ndim != 2 or X.shape[0] != len(series):
        raise InputError(
            f"embedding must have shape (n_cells, n_dims) with n_cells = len({name}) = "
            f"{len(series)}; got {X.shape}."
        )
    if series.isna().any():
        raise InputError(
            f"{name} has {int(series.isna().sum())} missing value(s) out of {len(series)} "
            "cells; fill them or subset to the annotated cells first."
        )
    if not np.isfinite(X).all():
        raise InputError("embedding has NaN or infinite values; the method that wrote it diverged.")
    return X, np.unique(series.astype(str).to_numpy(), return_inverse=True)[1]


def batch_mixing(embedding: np.ndarray, batch: Sequence, n_neighbors: int = 15) -> float:
    """Mean fraction of each cell's nearest neighbours from *other* batches, divided by the
    fraction expected under perfect mixing (1 = well mixed, 0 = batches fully separated).

    A quick, dependency-free sanity check of batch effects (no JAX compile); the scib metrics
    are the reference.

    Parameters
    ----------
    embedding
        ``(n_cells, n_dims)`` array.
    batch
        ``(n_cells,)`` batch labels; missing values are refused (see :mod:`qbm_lite.checks`).
    n_neighbors
        Neighbours per cell (the cell itself excluded).

    Raises
    ------
    qbm_lite.checks.InputError
        Shape mismatch, missing batch labels, non-finite embedding, fewer than two batches.
    """
    from sklearn.neighbors import NearestNeighbors

    X, codes = _embedding_and_codes(embedding, batch, "batch")
    counts = np.bincount(codes)
    if counts.size < 2:
        raise InputError("batch_mixing needs at least two batches.")
    if n_neighbors >= X.shape[0]:
        raise InputError(f"n_neighbors={n_neighbors} must be smaller than the {X.shape[0]} cells.")
    idx = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(X).kneighbors(X)[1][:, 1:]
    other = (codes[idx] != codes[:, None]).mean(axis=1)
    expected = 1.0 - (counts[codes] - 1) / (X.shape[0] - 1)
    return float(np.mean(other) / np.mean(expected))
