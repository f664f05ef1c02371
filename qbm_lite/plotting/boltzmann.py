"""Figures for Boltzmann machines and RBMs: image grids, filters, training curves, AIS."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["plot_ais", "plot_filters", "plot_image_grid", "plot_training_curves"]


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def plot_image_grid(
    images: Any,
    *,
    shape: tuple[int, int] = (8, 8),
    n_cols: int = 10,
    title: str | None = None,
    cmap: str = "gray_r",
    ax: plt.Axes | None = None,
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
) -> plt.Axes:
    """Tile the rows of ``images`` ``(m, rows * cols)`` into one picture with thin gaps."""
    imgs = _numpy(images).reshape(-1, *shape)
    m = imgs.shape[0]
    n_cols = min(n_cols, m)
    n_rows = int(np.ceil(m / n_cols))
    r, c = shape
    fill = np.nan
    canvas = np.full((n_rows * (r + 1) - 1, n_cols * (c + 1) - 1), fill)
    for k, img in enumerate(imgs):
        i, j = divmod(k, n_cols)
        canvas[i * (r + 1) : i * (r + 1) + r, j * (c + 1) : j * (c + 1) + c] = img
    if ax is None:
        _, ax = plt.subplots(figsize=(0.6 * n_cols + 0.5, 0.6 * n_rows + 0.6))
    cm = plt.get_cmap(cmap).copy()
    cm.set_bad("white")
    ax.imshow(np.ma.masked_invalid(canvas), cmap=cm, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def plot_filters(
    W: Any, *, shape: tuple[int, int] = (8, 8), n_cols: int = 8, title: str | None = None
) -> plt.Axes:
    """The weights of each hidden unit (columns of ``W`` ``(V, H)``) as images, red/blue scale."""
    w = _numpy(W).T
    lim = float(np.abs(w).max()) or 1.0
    return plot_image_grid(
        w, shape=shape, n_cols=n_cols, title=title, cmap="RdBu_r", vmin=-lim, vmax=lim
    )


def plot_training_curves(
    histories: Mapping[str, Sequence[Mapping[str, float]] | Any],
    *,
    x: str = "time",
    y: str = "val_ll",
    ax: plt.Axes | None = None,
    ylabel: str | None = None,
) -> plt.Axes:
    """One line per run: column ``y`` of each history against ``x`` (``"time"`` or ``"epoch"``).

    ``histories`` maps a label to a model's ``history`` (a list of dicts or a DataFrame).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for label, hist in histories.items():
        rows = hist.to_dict("records") if hasattr(hist, "to_dict") else list(hist)
        rows = [r_ for r_ in rows if r_.get(y) is not None and np.isfinite(r_.get(y))]
        if not rows:
            raise ValueError(f"history {label!r} has no column {y!r}; fit with a monitor for it.")
        ax.plot([r_[x] for r_ in rows], [r_[y] for r_ in rows], marker=".", label=label)
    ax.set_xlabel({"time": "training time (s)", "epoch": "epoch"}.get(x, x))
    ax.set_ylabel(ylabel or y)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_ais(
    num_betas: Sequence[int],
    estimates: Sequence[float],
    std_errs: Sequence[float],
    *,
    exact: float | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """AIS estimates of ``log Z`` (± 3 standard errors) against the number of temperatures."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    ax.errorbar(
        num_betas,
        estimates,
        yerr=3 * np.asarray(std_errs),
        marker="o",
        capsize=3,
        label="AIS ± 3 s.e.",
    )
    if exact is not None:
        ax.axhline(exact, color="k", ls="--", label="exact")
    ax.set_xscale("log")
    ax.set_xlabel("number of intermediate temperatures")
    ax.set_ylabel(r"$\log Z$")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax
