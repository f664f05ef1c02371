"""Plots for single-cell integration: embeddings side by side and the scib-metrics results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["embed_2d", "plot_benchmark", "plot_embeddings"]

_AGGREGATES = ("Bio conservation", "Batch correction", "Total")


def embed_2d(
    X: np.ndarray, method: str = "umap", seed: int = 0, n_neighbors: int = 15
) -> np.ndarray:
    """A 2-D view of an embedding: UMAP (umap-learn, seeded) or the first two PCs (``"pca"``)."""
    X = np.asarray(X, dtype=np.float32)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(X)
    if method == "umap":
        import umap

        reducer = umap.UMAP(
            n_neighbors=min(n_neighbors, X.shape[0] - 1), random_state=seed, n_jobs=1
        )
        return reducer.fit_transform(X)
    raise ValueError(f"method must be 'umap' or 'pca'; got {method!r}.")


def _scatter_by(ax, xy: np.ndarray, values: pd.Series, s: float, legend: bool) -> None:
    cats = pd.Categorical(values)
    cmap = plt.get_cmap("tab10" if len(cats.categories) <= 10 else "tab20")
    order = np.random.default_rng(0).permutation(len(cats))  # no batch painted on top
    colors = cmap(np.asarray(cats.codes)[order] % cmap.N)
    ax.scatter(xy[order, 0], xy[order, 1], c=colors, s=s, linewidths=0, rasterized=True)
    if legend:
        handles = [
            plt.Line2D([], [], marker="o", ls="", color=cmap(i % cmap.N), label=str(c))
            for i, c in enumerate(cats.categories)
        ]
        ax.legend(
            handles=handles,
            loc="center left",
            bbox_to_anchor=(1.0, 0.5),
            fontsize=7,
            frameon=False,
            markerscale=0.8,
        )


def plot_embeddings(
    adata,
    obsm_keys: Sequence[str] | Mapping[str, str],
    color: Sequence[str] = ("batch", "cell_type"),
    *,
    method: str = "umap",
    seed: int = 0,
    point_size: float | None = None,
    panel_size: float = 2.6,
    max_columns: int = 3,
    ncols: int | None = None,
):
    """Embeddings side by side, one panel per method, coloured by each ``obs`` column in ``color``.

    Each colour gets a block of rows with at most ``max_columns`` methods per row, so that six
    methods make a 3-column figure that stays legible at a book's text width (about 9 inches)
    instead of one 17-inch row scaled down to less than half. The 2-D views are cached in
    ``adata.obsm[f"{key}_{method}2d"]`` so redrawing is free. ``color`` may be one column name;
    ``ncols`` is an alias of ``max_columns`` (matplotlib's name).

    Returns
    -------
    matplotlib.figure.Figure
    """
    keys = dict(obsm_keys) if isinstance(obsm_keys, Mapping) else {k: k for k in obsm_keys}
    if not keys:
        raise ValueError("obsm_keys is empty; pass at least one embedding.")
    if isinstance(color, str):
        color = (color,)
    if ncols is not None:
        max_columns = ncols
    if int(max_columns) < 1:
        raise ValueError(f"max_columns must be a positive integer; got {max_columns}.")
    for col in color:
        if col not in adata.obs:
            raise KeyError(f"{col!r} is not a column of adata.obs; choose from {list(adata.obs)}.")
    s = point_size if point_size is not None else max(0.5, min(8.0, 4000 / adata.n_obs))
    ncols = min(len(keys), int(max_columns))
    blocks = -(-len(keys) // ncols)  # rows of methods per colour
    fig, axes = plt.subplots(
        len(color) * blocks,
        ncols,
        figsize=(panel_size * ncols + 1.6, panel_size * len(color) * blocks),
        squeeze=False,
    )
    for ax in axes.flat:
        ax.set_axis_off()
    for j, (name, key) in enumerate(keys.items()):
        cache = f"{key}_{method}2d"
        if cache not in adata.obsm:
            adata.obsm[cache] = embed_2d(adata.obsm[key], method=method, seed=seed)
        xy = adata.obsm[cache]
        block, c = divmod(j, ncols)
        for i, col in enumerate(color):
            ax = axes[i * blocks + block, c]
            ax.set_axis_on()
            _scatter_by(ax, xy, adata.obs[col], s, legend=(block == 0 and c == ncols - 1))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(name, fontsize=10)
            if c == 0:
                ax.set_ylabel(col)
    fig.tight_layout()
    return fig


def _text_colour(rgba: Sequence[float]) -> str:
    """Black or white, whichever contrasts more with ``rgba`` (WCAG relative luminance)."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # Contrast with black (L + 0.05) / 0.05 against with white 1.05 / (L + 0.05).
    return "black" if (luminance + 0.05) ** 2 > 0.05 * 1.05 else "white"


def plot_benchmark(scores: pd.DataFrame, title: str | None = None):
    """The scib results: aggregate scores as grouped bars (left) and every metric (right).

    Parameters
    ----------
    scores
        Methods as rows, metric columns plus ``"Bio conservation"``, ``"Batch correction"``
        and ``"Total"`` (``IntegrationBenchmark.scores``).
    title
        Optional figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [c for c in _AGGREGATES if c not in scores.columns]
    if missing:
        raise ValueError(f"scores lacks the aggregate columns {missing}.")
    scores = scores.sort_values("Total", ascending=True)
    metrics = [c for c in scores.columns if c not in _AGGREGATES]
    n = len(scores)
    fig, (ax_bar, ax_heat) = plt.subplots(
        1,
        2,
        figsize=(5.0 + 0.55 * len(metrics), 0.45 * n + 1.8),
        gridspec_kw={"width_ratios": [1.0, max(1.0, 0.18 * len(metrics))]},
    )
    y = np.arange(n)
    height = 0.26
    for k, (col, color) in enumerate(
        zip(_AGGREGATES, ("tab:green", "tab:purple", "black"), strict=True)
    ):
        vals = scores[col].to_numpy(dtype=float)
        ax_bar.barh(y + (k - 1) * height, vals, height=height, color=color, label=col)
    ax_bar.set_yticks(y, scores.index)
    ax_bar.set_xlim(0, 1)
    ax_bar.set_xlabel("score (higher is better)")
    ax_bar.set_title("Aggregate scores")

    mat = scores[metrics].to_numpy(dtype=float)
    cmap = plt.get_cmap("PRGn")
    ax_heat.imshow(mat, aspect="auto", cmap=cmap, vmin=0, vmax=1, origin="lower")
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            value = mat[i, j]
            colour = "black" if np.isnan(value) else _text_colour(cmap(float(value)))
            label = "n/a" if np.isnan(value) else f"{value:.2f}"
            ax_heat.text(j, i, label, ha="center", va="center", fontsize=8, color=colour)
    ax_heat.set_xticks(range(len(metrics)), metrics, rotation=45, ha="right", fontsize=8)
    ax_heat.set_yticks(range(n), [""] * n)
    ax_heat.set_title("Individual metrics")
    if title:
        fig.suptitle(title)
    # The legend goes in a strip under the whole figure, so that it never covers a bar.
    strip = 0.4 / fig.get_figheight()
    fig.legend(*ax_bar.get_legend_handles_labels(), loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0.0, strip, 1.0, 1.0))
    return fig
