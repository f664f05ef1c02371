"""Metrics on embeddings, one family per module; AnnData only in the ``*_benchmark`` wrappers.

- :mod:`qbm_lite.metrics.integration`: scib-metrics' integration benchmark and a quick
  batch-mixing score;
- :mod:`qbm_lite.metrics.classification`: cell-type classification on embeddings under three
  splitting schemes (random cells, held-out batch, model retrained without the batch);
- :mod:`qbm_lite.metrics.stats`: seed summaries and paired comparisons over tidy tables.

Every family reads ``obs`` columns and ``obsm`` keys through :mod:`qbm_lite.checks` (one
exception type, :class:`qbm_lite.checks.InputError`, and one missing-value policy) and returns
tidy tables with the columns ``method``, ``metric``, ``value`` (plus ``seed`` / ``fold`` /
``batch`` where there is one), so results of different families concatenate.
"""

from qbm_lite.metrics.classification import (
    CLASSIFICATION_METRICS,
    CLASSIFIERS,
    SCHEMES,
    ClassificationBenchmark,
    classification_benchmark,
)
from qbm_lite.metrics.integration import (
    AGGREGATES,
    METRIC_PRESETS,
    IntegrationBenchmark,
    batch_mixing,
    integration_benchmark,
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
    "CLASSIFICATION_METRICS",
    "CLASSIFIERS",
    "METRIC_PRESETS",
    "PAIR_COLUMNS",
    "SCHEMES",
    "TIDY_COLUMNS",
    "IntegrationBenchmark",
    "PairedComparison",
    "ClassificationBenchmark",
    "batch_mixing",
    "classification_benchmark",
    "compare",
    "integration_benchmark",
    "paired_difference",
    "summarize",
]
