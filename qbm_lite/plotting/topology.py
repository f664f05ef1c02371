"""Plots for trajectories and topology: pseudotime views, DPT against truth, PAGA, score bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from qbm_lite.plotting.singlecell import embed_2d

__all__ = [
    "plot_dpt_vs_truth",
    "plot_metric_bars",
    "plot_paga_graphs",
    "plot_pseudotime_embeddings",
    "plot_spectrum",
]


def plot_pseudotime_embeddings(
    adata,
    obsm_keys: Mapping[str, str],
    color: str = "pseudotime",
    *,
    method: str = "umap",
    seed: int = 0,
    panel_size: float = 2.6,
):
    """2-D views of embeddings (one panel each) coloured by a continuous ``obs`` column.

    The views are cached in ``adata.obsm[f"{key}_{method}2d"]`` (shared with
    :func:`qbm_lite.plotting.singlecell.plot_embeddings`).
    """
    if color not in adata.obs:
        raise KeyError(f"{color!r} is not a column of adata.obs; choose from {list(adata.obs)}.")
    values = adata.obs[color].to_numpy(dtype=float)
    s = max(0.5, min(8.0, 4000 / adata.n_obs))
    fig, axes = plt.subplots(
        1, len(obsm_keys), figsize=(panel_size * len(obsm_keys) + 1.0, panel_size), squeeze=False
    )
    for ax, (name, key) in zip(axes[0], obsm_keys.items(), strict=True):
        cache = f"{key}_{method}2d"
        if cache not in adata.obsm:
            adata.obsm[cache] = embed_2d(adata.obsm[key], method=method, seed=seed)
        xy = adata.obsm[cache]
        sc_ = ax.scatter(
            xy[:, 0], xy[:, 1], c=values, cmap="viridis", s=s, linewidths=0, rasterized=True
        )
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(sc_, ax=list(axes[0]), label=color, fraction=0.02, pad=0.01)
    return fig


def plot_dpt_vs_truth(
    truth: np.ndarray,
    dpts: Mapping[str, np.ndarray],
    *,
    groups: np.ndarray | None = None,
    panel_size: float = 2.6,
):
    """Scatter of each method's DPT (y) against the true pseudotime (x), with Spearman's ρ."""
    from scipy import stats

    fig, axes = plt.subplots(
        1, len(dpts), figsize=(panel_size * len(dpts), panel_size), squeeze=False, sharey=True
    )
    colors = None
    if groups is not None:
        cats = pd.Categorical(groups)
        colors = plt.get_cmap("tab10")(np.asarray(cats.codes) % 10)
    for ax, (name, dpt) in zip(axes[0], dpts.items(), strict=True):
        ok = ~np.isnan(dpt)
        rho = stats.spearmanr(truth[ok], dpt[ok]).statistic
        ax.scatter(truth, dpt, s=2, c=colors, linewidths=0, rasterized=True)
        ax.set_title(f"{name}\nρ = {rho:.2f}", fontsize=9)
        ax.set_xlabel("true pseudotime")
    axes[0, 0].set_ylabel("DPT")
    fig.tight_layout()
    return fig


def plot_spectrum(eigenvalues: Mapping[str, np.ndarray], *, cut: float | None = 0.9994):
    """Diffusion-map eigenvalues per embedding (the spectral gap), with scanpy's cut."""
    fig, ax = plt.subplots(figsize=(5.0, 3.0))
    for name, ev in eigenvalues.items():
        ax.plot(np.arange(len(ev)), ev, marker="o", ms=3, label=name)
    if cut is not None:
        ax.axhline(cut, color="k", ls=":", lw=1, label=f"scanpy's stationary cut ({cut})")
    ax.set_xlabel("component k")
    ax.set_ylabel("eigenvalue λ_k")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def _layout(types: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
    """Tree layout of the lineage: depth along x (from the root), leaves spread along y."""
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(types)
    g.add_edges_from((a, b) for a, b in edges if a in types and b in types)
    root = types[0]
    depth = nx.single_source_shortest_path_length(g, root) if len(g) else {}
    pos, counts = {}, {}
    for t in types:
        d = depth.get(t, max(depth.values(), default=0) + 1)
        counts.setdefault(d, []).append(t)
    for d, members in counts.items():
        for i, t in enumerate(members):
            pos[t] = np.array([d, i - (len(members) - 1) / 2])
    return pos


def plot_paga_graphs(
    connectivities: Mapping[str, pd.DataFrame],
    lineage: Sequence[tuple[str, str]],
    *,
    threshold: float = 0.1,
    panel_size: float = 2.8,
):
    """PAGA graphs side by side on the lineage's tree layout.

    Edges with connectivity above ``threshold`` are drawn with width ∝ connectivity: green
    when they are true lineage edges, red when not; true edges PAGA missed are dotted grey.
    """
    truth = {frozenset(e) for e in lineage}
    fig, axes = plt.subplots(
        1, len(connectivities), figsize=(panel_size * len(connectivities), panel_size),
        squeeze=False,
    )  # fmt: skip
    for ax, (name, C) in zip(axes[0], connectivities.items(), strict=True):
        types = list(C.index)
        pos = _layout(types, lineage)
        for i, a in enumerate(types):
            for b in types[i + 1 :]:
                c = float(C.loc[a, b])
                xy = np.vstack([pos[a], pos[b]])
                true = frozenset((a, b)) in truth
                if c > threshold:
                    ax.plot(*xy.T, color="tab:green" if true else "tab:red", lw=1 + 5 * c)
                elif true:
                    ax.plot(*xy.T, color="0.6", ls=":", lw=1)
        for t in types:
            ax.scatter(*pos[t], s=160, color="white", edgecolor="k", zorder=3)
            ax.text(*pos[t], t.replace("type", ""), ha="center", va="center", fontsize=7, zorder=4)
        ax.set_title(name, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_metric_bars(
    tidy: pd.DataFrame,
    metrics: Sequence[str],
    *,
    methods: Sequence[str] | None = None,
    panel_size: float = 2.6,
    max_columns: int = 3,
):
    """Bars of mean ± sd over seeds, one panel per metric, one bar per method.

    Panels wrap after ``max_columns`` per row, so the figure stays legible at the book's text
    width (about 8 inches).
    """
    methods = list(methods) if methods is not None else list(tidy["method"].unique())
    ncols = max(1, min(int(max_columns), len(metrics)))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, 3.4 * nrows), squeeze=False)
    for ax in axes.ravel()[len(metrics) :]:
        ax.set_visible(False)
    colors = plt.get_cmap("tab10")(np.arange(len(methods)) % 10)
    for ax, metric in zip(axes.ravel(), metrics, strict=False):
        sub = tidy[tidy["metric"] == metric].groupby("method")["value"]
        mean = sub.mean().reindex(methods)
        sd = sub.std(ddof=1).reindex(methods).fillna(0.0)
        ax.bar(np.arange(len(methods)), mean, yerr=sd, color=colors, capsize=3)
        ax.set_xticks(np.arange(len(methods)), methods, rotation=45, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=10)
        ax.axhline(0, color="k", lw=0.5)
    fig.tight_layout()
    return fig
