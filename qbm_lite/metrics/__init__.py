"""Metrics on embeddings, one family per module; AnnData only in the ``*_benchmark`` wrappers.

- :mod:`qbm_lite.metrics.integration`: scib-metrics' integration benchmark (with totals
  without the silhouette-based metrics and per-metric paired differences) and quick
  batch-mixing and label-purity scores;
- :mod:`qbm_lite.metrics.classification`: cell-type classification on embeddings under three
  splitting schemes (random cells, held-out batch, model retrained without the batch);
- :mod:`qbm_lite.metrics.stats`: seed summaries and paired comparisons over tidy tables.
- :mod:`qbm_lite.metrics.topology`: scGraph (cell-type distances against the batches'
  consensus), corrected by default, ``scgraph-eval``'s behaviour on request;
- :mod:`qbm_lite.metrics.trajectory`: scIB's trajectory conservation (DPT), Spearman against a
  known pseudotime, PAGA against a known lineage graph, the prior-energy ordering.

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
    PairedRatio,
    compare,
    paired_difference,
    paired_ratio,
    summarize,
)
from qbm_lite.metrics.topology import SCGRAPH_COLUMNS, scgraph
from qbm_lite.metrics.trajectory import (
    DiffusionPseudotime,
    diffusion_pseudotime,
    paga_agreement,
    prior_energy,
    pseudotime_spearman,
    reference_pseudotime,
    trajectory_benchmark,
    trajectory_conservation,
)

__all__ = [
    "AGGREGATES",
    "AGGREGATES_NO_SILHOUETTE",
    "CLASSIFICATION_METRICS",
    "CLASSIFIERS",
    "ClassificationBenchmark",
    "DiffusionPseudotime",
    "IntegrationBenchmark",
    "METRIC_PRESETS",
    "PAIR_COLUMNS",
    "PairedComparison",
    "PairedRatio",
    "SCGRAPH_COLUMNS",
    "SCHEMES",
    "SILHOUETTE_METRICS",
    "TIDY_COLUMNS",
    "batch_mixing",
    "classification_benchmark",
    "compare",
    "diffusion_pseudotime",
    "integration_benchmark",
    "isolated_labels_are_all_labels",
    "label_purity",
    "metric_differences",
    "paga_agreement",
    "paired_difference",
    "paired_ratio",
    "prior_energy",
    "pseudotime_spearman",
    "reference_pseudotime",
    "scgraph",
    "seed_table",
    "summarize",
    "totals_without_silhouettes",
    "trajectory_benchmark",
    "trajectory_conservation",
]
