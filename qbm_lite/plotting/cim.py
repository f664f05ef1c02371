"""Figures of Chapter 2: CIM amplitudes, energy against time, calibration and fidelity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import NullFormatter

from qbm_lite.samplers.cim import CIMCalibration
from qbm_lite.samplers.cim_dynamics import CIMTrajectory

__all__ = [
    "plot_amplitudes",
    "plot_calibration",
    "plot_energy_vs_time",
    "plot_log_frequency",
    "plot_time_to_target",
    "plot_tv_vs_sweeps",
]


def _axes(ax: Axes | None, figsize=(5.0, 3.5)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_amplitudes(
    trajectory: CIMTrajectory, replica: int = 0, ax: Axes | None = None, title: str = ""
) -> Axes:
    """Amplitude of every DOPO of one replica against the integration step."""
    if trajectory.snapshots is None:
        raise ValueError("the trajectory has no snapshots; run it with record_every=k.")
    ax = _axes(ax)
    snaps = trajectory.snapshots[:, replica, :].numpy()
    final = np.sign(snaps[-1])
    for i in range(snaps.shape[1]):
        colour = "tab:red" if final[i] > 0 else "tab:blue"
        ax.plot(trajectory.times, snaps[:, i], color=colour, lw=0.8, alpha=0.7)
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set_xlabel("step")
    ax.set_ylabel("amplitude $x_i$")
    ax.set_title(title)
    return ax


def plot_energy_vs_time(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    target: float | None = None,
    ax: Axes | None = None,
    ylabel: str = "median energy per spin",
    target_label: str = "target",
    title: str = "",
) -> Axes:
    """A median score (energy per spin, or a cut) against wall time (log axis), per solver."""
    ax = _axes(ax)
    for name, (times, energies) in curves.items():
        ax.plot(times, energies, marker="o", label=name)
    if target is not None:
        ax.axhline(target, color="grey", ls="--", lw=1, label=target_label)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide over a short range
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    return ax


def plot_time_to_target(
    sizes: Sequence[int],
    times: Mapping[str, Sequence[float]],
    ax: Axes | None = None,
) -> Axes:
    """Time to reach the target energy against n, log-log (NaN: not reached, not drawn)."""
    ax = _axes(ax)
    for name, t in times.items():
        ax.plot(sizes, t, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(list(sizes), [str(n) for n in sizes])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("number of spins n")
    ax.set_ylabel("time to target (s)")
    ax.legend()
    return ax


def plot_calibration(calibrations: Mapping[str, CIMCalibration], ax: Axes | None = None) -> Axes:
    """Effective against nominal inverse temperature, with the identity for reference."""
    ax = _axes(ax)
    top = 0.0
    for name, cal in calibrations.items():
        std = cal.effective_beta_std or None
        ax.errorbar(
            cal.nominal_beta, cal.effective_beta, yerr=std, marker="o", capsize=3, label=name
        )
        top = max(top, max(cal.nominal_beta))
    ax.plot([0, top], [0, top], color="grey", ls="--", lw=1, label="hard spins, equilibrium")
    ax.set_xlabel(r"nominal $\beta = 2\varepsilon A^2/\sigma^2$")
    ax.set_ylabel(r"effective $\beta$ (fitted)")
    ax.legend()
    return ax


def plot_log_frequency(
    energies: np.ndarray,
    frequencies: Mapping[str, np.ndarray],
    beta: float,
    log_partition: float,
    ax: Axes | None = None,
) -> Axes:
    """log-frequency of every state against its energy; Boltzmann is the line ``-βE - log Z``."""
    ax = _axes(ax)
    for (name, freq), marker in zip(frequencies.items(), "o^sv", strict=False):
        seen = freq > 0
        ax.scatter(energies[seen], np.log(freq[seen]), s=8, alpha=0.5, marker=marker, label=name)
    grid = np.linspace(energies.min(), energies.max(), 50)
    ax.plot(grid, -beta * grid - log_partition, color="black", lw=1.5, label="exact Boltzmann")
    ax.set_xlabel("energy E(s)")
    ax.set_ylabel("log frequency")
    ax.legend()
    return ax


def plot_tv_vs_sweeps(
    sweeps: Sequence[int],
    tvs: Mapping[str, Sequence[float]],
    floor: float,
    ax: Axes | None = None,
    title: str = "",
) -> Axes:
    """Total-variation distance to the exact distribution against Metropolis sweeps."""
    ax = _axes(ax)
    for name, tv in tvs.items():
        ax.plot(sweeps, tv, marker="o", label=name)
    ax.axhline(floor, color="grey", ls="--", lw=1, label="exact sampler (noise floor)")
    ax.set_xlabel("Metropolis sweeps")
    ax.set_ylabel("TV distance to exact")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return ax
