"""Metrics on embeddings, one family per module; AnnData only in the ``*_benchmark`` wrappers.

- :mod:`qbm_lite.metrics.integration`: scib-metrics' integration benchmark (with totals
  without the silhouette-based metrics and per-metric paired differences) and quick
  batch-mixing and label-purity scores;
- :mod:`qbm_lite.metrics.stats`: seed summaries and paired comparisons over tidy tables.

Every family reads ``obs`` columns and ``obsm`` keys through :mod:`qbm_lite.checks` (one
exception type, :class:`qbm_lite.checks.InputError`, and one missing-value policy) and returns
tidy tables with the columns ``method``, ``metric``, ``value`` (plus ``seed`` / ``fold`` /
``batch`` where there is one), so results of different families concatenate.
"""

from qbm_lite.metrics.integration import (
    AGGREGATES,
    AGGREGATES_NO_SILHOUETTE,
    METRIC_PRESETS,
    SILHOUETTE_METRICS,
    IntegrationBenchmark,
    batch_mixing,
    integration_benchmark,
    isolated_labels_are_all_labels,
    label_purity,
    metric_differences,
    seed_table,
    totals_without_silhouettes,
)
from qbm_lite.metrics.stats import (
    PAIR_COLUMNS,
    TIDY_COLUMNS,
    PairedComparison,
    compare,
    paired_difference,
    summarize,
)

__all__ = [
    "AGGREGATES",
    "AGGREGATES_NO_SILHOUETTE",
    "METRIC_PRESETS",
    "SILHOUETTE_METRICS",
    "PAIR_COLUMNS",
    "TIDY_COLUMNS",
    "IntegrationBenchmark",
    "PairedComparison",
    "batch_mixing",
    "compare",
    "integration_benchmark",
    "isolated_labels_are_all_labels",
    "label_purity",
    "metric_differences",
    "paired_difference",
    "seed_table",
    "summarize",
    "totals_without_silhouettes",
]
