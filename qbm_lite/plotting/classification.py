"""Plots for cell-type classification: per-fold scores, per-class F1, confusion matrices."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = [
    "plot_classification",
    "plot_confusion",
    "plot_per_class",
    "plot_scheme_ladder",
    "plot_scores",
]


def _axes(ax, figsize: tuple[float, float]):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_scores(scores: pd.DataFrame, metric: str = "f1_macro", by: str = "method", ax=None):
    """One dot per fold (or held-out batch) and the mean (bar) per ``by`` value.

    ``scores`` is a tidy table (``ClassificationBenchmark.scores``, possibly concatenated).
    """
    rows = scores[scores["metric"] == metric]
    if rows.empty:
        raise ValueError(f"metric {metric!r} is not in the table.")
    order = list(pd.unique(rows[by]))
    ax = _axes(ax, (0.7 * len(order) + 2.0, 3.0))
    rng = np.random.default_rng(0)
    for i, name in enumerate(order):
        vals = rows.loc[rows[by] == name, "value"].to_numpy(dtype=float)
        ax.bar(i, vals.mean(), color="0.85", width=0.7)
        ax.scatter(i + rng.uniform(-0.18, 0.18, vals.size), vals, s=14, color="tab:blue", zorder=3)
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_ylim(0, 1.02)
    return ax


def plot_per_class(per_class: pd.DataFrame, value: str = "f1", ax=None, cbar: bool = True):
    """Heatmap of a per-class score (mean over folds): methods as rows, cell types as columns."""
    table = per_class.pivot_table(index="method", columns="cell_type", values=value, sort=False)
    ax = _axes(ax, (0.45 * table.shape[1] + 2.5, 0.4 * table.shape[0] + 1.5))
    im = ax.imshow(table.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(table.shape[0]), table.index, fontsize=8)
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            v = table.iat[i, j]
            if np.isfinite(v):
                color = "k" if v > 0.6 else "w"  # readable on viridis' light and dark ends
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color=color)
    ax.set_title(f"per-class {value}", fontsize=9)
    if cbar:
        plt.colorbar(im, ax=ax, fraction=0.04)
    return ax


def plot_confusion(
    confusion: pd.DataFrame, ax=None, title: str | None = None, annotate: bool = True
):
    """A row-normalized confusion matrix (rows: true type, columns: predicted type)."""
    n = confusion.shape[0]
    ax = _axes(ax, (0.4 * n + 1.8, 0.4 * n + 1.5))
    ax.imshow(confusion.to_numpy(dtype=float), vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(n), confusion.columns, rotation=60, ha="right", fontsize=6)
    ax.set_yticks(range(n), confusion.index, fontsize=6)
    ax.set_xlabel("predicted", fontsize=8)
    ax.set_ylabel("true", fontsize=8)
    if annotate and n <= 14:
        for i in range(n):
            for j in range(n):
                v = confusion.iat[i, j]
                if v >= 0.005:
                    color = "w" if v > 0.5 else "k"
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=5, color=color)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_scheme_ladder(scores: pd.DataFrame, metric: str = "f1_macro", ax=None):
    """Mean ± sd of ``metric`` per method (lines) across schemes (x axis, in table order)."""
    rows = scores[scores["metric"] == metric]
    schemes = list(pd.unique(rows["scheme"]))
    ax = _axes(ax, (1.4 * len(schemes) + 2.5, 3.2))
    for method in pd.unique(rows["method"]):
        sub = rows[rows["method"] == method].groupby("scheme", sort=False)["value"]
        mean = sub.mean().reindex(schemes)
        sd = sub.std().reindex(schemes).fillna(0.0)
        ax.errorbar(range(len(schemes)), mean, yerr=sd, marker="o", capsize=3, label=method)
    ax.set_xticks(range(len(schemes)), schemes, fontsize=8)
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return ax


def plot_classification(result, metric: str = "f1_macro", methods: Sequence[str] | None = None):
    """Summary figure of a ``ClassificationBenchmark``: per-fold scores and per-class F1."""
    per_class = result.per_class
    if methods is not None:
        per_class = per_class[per_class["method"].isin(list(methods))]
    n_types = per_class["cell_type"].nunique()
    n_methods = result.scores["method"].nunique()
    fig, (ax_s, ax_c) = plt.subplots(
        1,
        2,
        figsize=(0.6 * n_methods + 0.42 * n_types + 5.0, 0.35 * n_methods + 3.0),
        gridspec_kw={"width_ratios": [max(1.0, 0.35 * n_methods), max(1.5, 0.3 * n_types)]},
    )
    plot_scores(result.scores, metric, ax=ax_s)
    ax_s.set_title(f"{result.scheme}, {result.classifier}", fontsize=9)
    plot_per_class(per_class, ax=ax_c)
    fig.tight_layout()
    return fig
