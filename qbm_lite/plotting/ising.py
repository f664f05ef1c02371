"""Figures for Ising models: spin configurations, distributions, autocorrelation, phase diagrams."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from qbm_lite.observables import ONSAGER_TC, TemperatureScan, onsager_magnetization

__all__ = [
    "plot_autocorrelation",
    "plot_distribution_comparison",
    "plot_lattice",
    "plot_phase_transition",
]


def _axes(ax: Axes | None, figsize: tuple[float, float] = (4.5, 3.5)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_lattice(
    spins: np.ndarray, L: int | None = None, ax: Axes | None = None, title: str | None = None
) -> Axes:
    """Show a state of an ``L x L`` lattice (spin ``r * L + c``) as a black/white image."""
    s = np.asarray(spins).ravel()
    L = int(round(np.sqrt(s.size))) if L is None else int(L)
    if L * L != s.size:
        raise ValueError(f"{s.size} spins do not fill an {L} x {L} lattice.")
    ax = _axes(ax, (3, 3))
    ax.imshow(s.reshape(L, L), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def plot_distribution_comparison(
    p_exact: np.ndarray,
    estimates: dict[str, np.ndarray],
    top: int = 32,
    ax: Axes | None = None,
) -> Axes:
    """Probabilities of the ``top`` most likely states: exact bars and sampled estimates.

    Parameters
    ----------
    p_exact
        Exact probabilities of all ``2**n`` states.
    estimates
        Name to empirical distribution (same indexing), drawn as markers.
    top
        Number of states shown, ordered by exact probability.
    ax
        Axes to draw on (a new figure if None).
    """
    p = np.asarray(p_exact)
    order = np.argsort(-p)[:top]
    ax = _axes(ax, (8, 3.5))
    x = np.arange(len(order))
    ax.bar(x, p[order], color="0.8", label="exact")
    markers = "o^sDv"
    for k, (name, q) in enumerate(estimates.items()):
        ax.plot(x, np.asarray(q)[order], markers[k % len(markers)], ms=4, label=name)
    ax.set_xlabel("state (ordered by exact probability)")
    ax.set_ylabel("probability")
    ax.legend(frameon=False)
    return ax


def plot_autocorrelation(
    rhos: dict[str, np.ndarray], max_lag: int | None = None, ax: Axes | None = None
) -> Axes:
    """Autocorrelation functions ``rho(t)`` (name to array), with ``rho = 0`` marked."""
    ax = _axes(ax)
    for name, rho in rhos.items():
        r = np.asarray(rho)[: None if max_lag is None else max_lag + 1]
        ax.plot(np.arange(len(r)), r, label=name)
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_xlabel("lag t (sweeps)")
    ax.set_ylabel(r"$\rho(t)$")
    ax.legend(frameon=False)
    return ax


def plot_phase_transition(
    scans: dict[str, TemperatureScan] | TemperatureScan,
    axes: Sequence[Axes] | None = None,
    tc: float = ONSAGER_TC,
    exact_curve: bool = True,
) -> np.ndarray:
    """``<|m|>`` and ``chi`` per spin versus temperature, with ``T_c`` marked.

    Parameters
    ----------
    scans
        One scan, or a label (e.g. ``"L=16"``) to scan mapping to overlay several sizes.
    axes
        Two axes (a new 1x2 figure if None).
    tc
        The critical temperature marked by a dashed line (Onsager's by default).
    exact_curve
        Overlay Onsager-Yang's infinite-lattice magnetization.
    """
    if isinstance(scans, TemperatureScan):
        scans = {"Gibbs": scans}
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_m, ax_chi = axes[0], axes[1]
    for label, scan in scans.items():
        ax_m.errorbar(
            scan.temperature,
            scan.abs_magnetization,
            scan.abs_magnetization_err,
            fmt="o-",
            ms=4,
            label=label,
        )
        ax_chi.plot(scan.temperature, scan.susceptibility, "o-", ms=4, label=label)
    if exact_curve:
        t_all = np.concatenate([s.temperature for s in scans.values()])
        t = np.linspace(t_all.min(), t_all.max(), 400)
        ax_m.plot(t, onsager_magnetization(t), "k-", lw=1, label="Onsager (L = ∞)")
    for ax in (ax_m, ax_chi):
        ax.axvline(tc, color="k", ls="--", lw=1)
        ax.set_xlabel("temperature T")
    ax_m.text(tc, 0.02, r" $T_c$", va="bottom")
    ax_m.set_ylabel(r"$\langle |m| \rangle$")
    ax_chi.set_ylabel(r"$\chi$ per spin")
    ax_m.legend(frameon=False)
    ax_chi.legend(frameon=False)
    return np.asarray(axes)
