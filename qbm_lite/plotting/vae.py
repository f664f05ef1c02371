"""Figures for the QBM-VAE chapter: relaxations, training histories, timings, image grids and the
hybrid training loop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from qbm_lite.vae.relaxations import relaxation_cdf

__all__ = [
    "plot_history",
    "plot_hybrid_loop",
    "plot_image_grid",
    "plot_relaxations",
    "plot_time_split",
]


def plot_relaxations(
    qs: Sequence[float] = (0.2, 0.5, 0.8), beta: float = 8.0, axes=None
) -> np.ndarray:
    """CDFs ``F(ζ; q)`` of the spike-and-exponential and overlapping-exponential relaxations."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    zeta = torch.linspace(0, 1, 401, dtype=torch.float64)
    for ax, name in zip(axes, ("spike-exp", "overlapping"), strict=True):
        for q in qs:
            cdf = relaxation_cdf(zeta, torch.tensor(q, dtype=torch.float64), name, beta)
            ax.plot(zeta, cdf, label=f"q = {q}")
        ax.set_title(f"{name} (β = {beta:g})")
        ax.set_xlabel("ζ")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("CDF F(ζ; q)")
    axes[1].legend(loc="lower right")
    return np.asarray(axes)


def plot_history(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    key: str = "validation_loss",
    ax=None,
    ylabel: str | None = None,
):
    """One curve per model of ``history[key]`` against the epoch."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    for name, hist in histories.items():
        if key in hist:
            ax.plot(np.arange(1, len(hist[key]) + 1), hist[key], label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel or key.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_time_split(histories: Mapping[str, Mapping[str, Sequence[float]]], ax=None):
    """Stacked bars: mean seconds per epoch in the sampler and in the networks, per model."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    names = list(histories)
    sampler = [float(np.mean(histories[n]["time_sampler"])) for n in names]
    nets = [float(np.mean(histories[n]["time_networks"])) for n in names]
    ax.bar(names, nets, label="networks (encode, decode, backprop, Adam)", color="tab:blue")
    ax.bar(names, sampler, bottom=nets, label="sampler (negative phase)", color="tab:orange")
    ax.set_ylabel("seconds per epoch")
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", rotation=20)
    return ax


def plot_image_grid(
    images: np.ndarray, shape: tuple[int, int] = (8, 8), ncols: int = 8, title: str = "", ax=None
):
    """Show flattened images (rows of ``images``) as one grid in gray scale."""
    images = np.asarray(images)
    n = images.shape[0]
    nrows = int(np.ceil(n / ncols))
    h, w = shape
    canvas = np.full((nrows * (h + 1) - 1, ncols * (w + 1) - 1), np.nan)  # NaN: white gaps
    for k in range(n):
        r, c = divmod(k, ncols)
        canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = images[k].reshape(
            shape
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(ncols * 0.5, nrows * 0.5 + 0.3))
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")
    ax.imshow(np.ma.masked_invalid(canvas), cmap=cmap, vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
    return ax


def plot_hybrid_loop(ax=None):
    """Diagram of one training step: networks on the classical side, the prior's ``(h, J)`` sent
    to an Ising sampler and its samples returned for the negative phase."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.6))
    boxes = {
        "x": (0.0, 0.62, "data x"),
        "enc": (0.2, 0.62, "encoder\nq(z|x)"),
        "relax": (0.4, 0.62, "relaxation\nζ ~ r(ζ|z)"),
        "dec": (0.6, 0.62, "decoder\np(x|ζ)"),
        "loss": (0.8, 0.62, "loss = recon\n+ E_q[E] − H(q)\n+ log Z"),
        "prior": (0.4, 0.08, "Boltzmann prior\nθ = (h, J)"),
        "sampler": (0.8, 0.08, "Ising sampler\nGibbs / SA / CIM"),
    }
    w, hgt = 0.15, 0.28
    for key, (x0, y0, text) in boxes.items():
        colour = "#fde2c8" if key == "sampler" else "#dbe9f6"
        ax.add_patch(
            FancyBboxPatch((x0, y0), w, hgt, boxstyle="round,pad=0.01", fc=colour, ec="k", lw=1)
        )
        ax.text(x0 + w / 2, y0 + hgt / 2, text, ha="center", va="center", fontsize=8.5)

    def arrow(start, end, colour="k", **kw):
        ax.add_patch(
            FancyArrowPatch(
                start, end, arrowstyle="-|>", mutation_scale=12, lw=1.2, color=colour, **kw
            )
        )

    top = 0.62 + hgt / 2
    for a, b in (("x", "enc"), ("enc", "relax"), ("relax", "dec"), ("dec", "loss")):
        arrow((boxes[a][0] + w + 0.01, top), (boxes[b][0] - 0.01, top))
    low = 0.08 + hgt / 2
    arrow((0.4 + w + 0.01, low), (0.8 - 0.01, low))
    ax.text(0.675, low + 0.04, "(h, J) as an Ising problem", ha="center", fontsize=8, color="0.25")
    arrow((0.875, 0.08 + hgt + 0.01), (0.875, 0.61), colour="tab:red")
    ax.text(0.885, 0.45, "samples s⁻\n(negative phase)", ha="left", fontsize=8, color="tab:red")
    arrow(
        (0.82, 0.61), (0.5, 0.08 + hgt + 0.01), colour="tab:green", connectionstyle="arc3,rad=-0.15"
    )
    ax.text(0.5, 0.46, "∇θ = positive − negative phase", ha="center", fontsize=8, color="tab:green")
    ax.set_xlim(-0.02, 1.06)
    ax.set_ylim(0, 1)
    ax.axis("off")
    return ax
