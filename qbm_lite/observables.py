"""Observables of spin systems: magnetization, fluctuations, autocorrelation and temperature scans.

Conventions: ``spins`` is an array of shape ``(..., n)`` with entries in {-1, +1}; intensive
quantities are *per spin*. The susceptibility and heat capacity come from the fluctuation
relations ``chi = beta n Var(m)`` and ``C = beta^2 Var(E) / n``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from qbm_lite.config import torch_threads
from qbm_lite.ising import IsingModel

__all__ = [
    "ONSAGER_TC",
    "PARISI_GROUND_ENERGY",
    "TemperatureScan",
    "autocorrelation",
    "binder_cumulant",
    "effective_sample_size",
    "heat_capacity",
    "integrated_autocorrelation_time",
    "magnetization",
    "onsager_magnetization",
    "overlap_autocorrelation",
    "sample_trace",
    "susceptibility",
    "temperature_scan",
]

#: Critical temperature of the infinite 2-D square-lattice ferromagnet with unit coupling,
#: ``T_c = 2 / ln(1 + sqrt(2)) ≈ 2.269`` (Onsager 1944), in units where ``k_B = 1``.
ONSAGER_TC: float = 2.0 / float(np.log1p(np.sqrt(2.0)))

#: Ground-state energy per spin of the SK model with ``J_ij ~ N(0, 1/n)`` as ``n -> infinity``,
#: about -0.7632: Parisi's replica-symmetry-breaking solution (Parisi 1979) evaluated numerically
#: to high precision by Crisanti & Rizzo (2002) and Oppermann, Schmidt & Sherrington (2007),
#: whose value -0.763166726... this is.
PARISI_GROUND_ENERGY: float = -0.7631667


def _as_numpy(x: np.ndarray | torch.Tensor | Sequence) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def magnetization(spins: np.ndarray | torch.Tensor, absolute: bool = False) -> np.ndarray:
    """Magnetization per spin ``m = (1/n) sum_i s_i`` of each state (last axis is the spins).

    Parameters
    ----------
    spins
        States of shape ``(..., n)``.
    absolute
        Return ``|m|``, the order parameter of a finite system in zero field (by symmetry the
        signed ``m`` averages to zero).
    """
    s = _as_numpy(spins).astype(np.float64)
    if s.ndim == 0 or s.shape[-1] == 0:
        raise ValueError(f"spins must have shape (..., n) with n >= 1; got {s.shape}.")
    m = s.mean(axis=-1)
    return np.abs(m) if absolute else m


def susceptibility(spins: np.ndarray | torch.Tensor, beta: float, absolute: bool = True) -> float:
    """Magnetic susceptibility per spin ``chi = beta n (<m^2> - <m>^2)`` from samples.

    Parameters
    ----------
    spins
        Samples of shape ``(num_samples, n)`` (or ``(..., n)``; all leading axes are averaged).
    beta
        Inverse temperature the samples were drawn at.
    absolute
        Use ``<|m|>`` for the mean (the usual finite-size estimator of the ordered phase);
        with ``False`` the signed mean is used, which gives ``beta n <m^2>`` in zero field.
    """
    s = _as_numpy(spins)
    n = s.shape[-1]
    m = magnetization(s, absolute=absolute).ravel()
    return float(_check_beta(beta) * n * (np.mean(m**2) - np.mean(m) ** 2))


def heat_capacity(energies: np.ndarray | torch.Tensor, beta: float, n: int) -> float:
    """Heat capacity per spin ``C = beta^2 (<E^2> - <E>^2) / n`` from sampled energies."""
    e = _as_numpy(energies).astype(np.float64).ravel()
    if int(n) < 1:
        raise ValueError(f"n (the number of spins) must be positive; got {n}.")
    return float(_check_beta(beta) ** 2 * e.var() / int(n))


def binder_cumulant(spins: np.ndarray | torch.Tensor) -> float:
    """Binder cumulant ``U = 1 - <m^4> / (3 <m^2>^2)``: 2/3 when ordered, 0 when disordered."""
    m = magnetization(spins).ravel()
    m2 = np.mean(m**2)
    if m2 == 0:
        raise ValueError("every sample has m = 0; the Binder cumulant is undefined.")
    return float(1.0 - np.mean(m**4) / (3.0 * m2**2))


def onsager_magnetization(temperature: float | np.ndarray, coupling: float = 1.0) -> np.ndarray:
    """Onsager-Yang spontaneous magnetization of the infinite 2-D Ising model.

    ``m(T) = (1 - sinh(2 J / T)^-4)^(1/8)`` below ``T_c`` and 0 above it.
    """
    t = np.asarray(temperature, dtype=np.float64)
    if np.any(t <= 0):
        raise ValueError("temperatures must be positive.")
    with np.errstate(over="ignore"):
        x = 1.0 - np.sinh(2.0 * coupling / t) ** -4.0
    return np.where(x > 0, np.clip(x, 0.0, None) ** 0.125, 0.0)


def autocorrelation(x: np.ndarray | torch.Tensor, max_lag: int | None = None) -> np.ndarray:
    """Normalized autocorrelation function ``rho(t)`` of a time series (via FFT).

    Parameters
    ----------
    x
        Series of shape ``(T,)``, or ``(T, chains)`` for independent chains: each chain is
        centred on its own mean and the autocovariances are averaged over chains.
    max_lag
        Largest lag returned (default ``T - 1``).

    Returns
    -------
    numpy.ndarray
        ``rho[t]`` for ``t = 0 .. max_lag`` with ``rho[0] = 1``.
    """
    a = _as_numpy(x).astype(np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"x must have shape (T,) or (T, chains) with T >= 2; got {a.shape}.")
    T = a.shape[0]
    max_lag = T - 1 if max_lag is None else int(max_lag)
    if not 0 <= max_lag < T:
        raise ValueError(f"max_lag must be in [0, {T - 1}]; got {max_lag}.")
    a = a - a.mean(axis=0, keepdims=True)
    size = 1 << int(np.ceil(np.log2(2 * T)))  # zero-pad: linear, not circular, correlation
    f = np.fft.rfft(a, n=size, axis=0)
    acov = np.fft.irfft(f * np.conj(f), n=size, axis=0)[: max_lag + 1].mean(axis=1) / T
    if acov[0] <= 0:
        raise ValueError("x is constant; its autocorrelation is undefined.")
    return acov / acov[0]


def integrated_autocorrelation_time(
    x: np.ndarray | torch.Tensor, window_factor: float = 5.0, *, return_error: bool = False
) -> float | tuple[float, float]:
    """Integrated autocorrelation time ``tau = 1 + 2 sum_t rho(t)`` with Sokal's window.

    The sum runs up to the smallest lag ``W`` with ``W >= window_factor * tau(W)``, which
    balances the bias of a short window against the noise of a long one. ``tau`` is in units of
    the series' steps (sweeps for a trace recorded once per sweep); ``T / tau`` samples of a
    chain of length ``T`` are effectively independent.

    Parameters
    ----------
    x
        Series ``(T,)`` or ``(T, chains)`` (independent chains, see :func:`autocorrelation`).
    window_factor
        Sokal's ``c`` (5 is his recommendation for roughly exponential decay).
    return_error
        Also return the statistical error of ``tau``, Madras & Sokal's (1988) estimate
        ``sigma_tau = tau sqrt(2 (2W + 1) / N)`` with ``N = T x chains`` measurements. When no
        lag satisfies the window condition the series is too short for its own correlation
        time (fewer than about ``window_factor`` times ``tau`` steps) and the error is ``inf``.

    Returns
    -------
    float or (float, float)
        ``tau``, or ``(tau, sigma_tau)`` when ``return_error``.
    """
    rho = autocorrelation(x)
    taus = 2.0 * np.cumsum(rho) - 1.0
    ok = np.arange(len(rho)) >= window_factor * taus
    window = int(np.argmax(ok)) if ok.any() else len(rho) - 1
    tau = float(taus[window])
    if not return_error:
        return tau
    a = _as_numpy(x)
    N = a.shape[0] * (a.shape[1] if a.ndim == 2 else 1)
    err = tau * float(np.sqrt(2.0 * (2 * window + 1) / N)) if ok.any() else float("inf")
    return tau, err


def overlap_autocorrelation(states: np.ndarray | torch.Tensor) -> np.ndarray:
    """Spin autocorrelation ``q(t) = < (1/n) sum_i s_i(0) s_i(t) >`` of recorded chain states.

    ``states`` has shape ``(T, chains, n)`` (one frame per sweep); the average runs over chains.
    Nothing is subtracted: in zero field ``<s_i> = 0``, so an ergodic chain has ``q(t) -> 0``,
    while a chain frozen in one valley (a spin glass at low temperature) keeps ``q(t) > 0``.
    """
    s = _as_numpy(states).astype(np.float64)
    if s.ndim != 3:
        raise ValueError(f"states must have shape (T, chains, n); got {s.shape}.")
    return np.einsum("cn,tcn->t", s[0], s) / (s.shape[1] * s.shape[2])


def effective_sample_size(x: np.ndarray | torch.Tensor) -> float:
    """Effective number of independent samples ``T * chains / tau`` in a ``(T, chains)`` trace."""
    a = _as_numpy(x)
    total = a.shape[0] * (a.shape[1] if a.ndim == 2 else 1)
    return float(total / integrated_autocorrelation_time(a))


def sample_trace(
    sampler,
    h: torch.Tensor,
    J: torch.Tensor,
    num_chains: int,
    beta: float,
    observable: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[np.ndarray, torch.Tensor]:
    """Run a :class:`~qbm_lite.samplers.GibbsSampler` and record ``observable`` after every sweep.

    Parameters
    ----------
    sampler
        A ``GibbsSampler`` (anything whose ``sample_spins`` accepts ``callback=``).
    h, J
        The Ising problem as tensors.
    num_chains
        Number of independent chains.
    beta
        Inverse temperature.
    observable
        Maps the ``(chains, n)`` state tensor to a ``(chains,)`` tensor, e.g. the magnetization.

    Returns
    -------
    trace, final
        ``trace`` of shape ``(num_sweeps, num_chains)`` and the final states.
    """
    rows: list[np.ndarray] = []

    def record(_sweep: int, s: torch.Tensor) -> None:
        rows.append(_as_numpy(observable(s)).astype(np.float64).copy())

    final = sampler.sample_spins(h, J, num_chains, beta=beta, callback=record)
    return np.stack(rows), final


@dataclass
class TemperatureScan:
    """Averages of a temperature scan (one entry per temperature; see :func:`temperature_scan`)."""

    temperature: np.ndarray
    abs_magnetization: np.ndarray
    abs_magnetization_err: np.ndarray
    susceptibility: np.ndarray
    susceptibility_err: np.ndarray  # jackknife over chains (each chain one block)
    energy: np.ndarray
    heat_capacity: np.ndarray
    binder: np.ndarray
    snapshots: np.ndarray  # one final state (chain 0) per temperature, shape (len(T), n)


def temperature_scan(
    model: IsingModel,
    temperatures: Sequence[float] | np.ndarray,
    num_chains: int = 64,
    num_sweeps: int = 500,
    burn_in: int = 200,
    schedule: Literal["sequential", "checkerboard"] = "checkerboard",
    start: Literal["ordered", "random"] = "ordered",
    seed: int | None = 0,
    progress: bool = True,
    num_threads: int | None = 1,
) -> TemperatureScan:
    """Measure ``<|m|>``, ``chi``, ``<E>``, ``C`` and the Binder cumulant across temperatures.

    At each temperature ``num_chains`` independent heat-bath chains run ``burn_in`` sweeps that
    are discarded and ``num_sweeps`` sweeps that are measured after every sweep; averages are
    over chains and sweeps. Temperatures are visited in the given order, each starting from
    ``start`` (``"ordered"``: all spins +1, which avoids long-lived stripe states below
    ``T_c``; ``"random"``: a hot start).

    Parameters
    ----------
    model
        The Ising model (e.g. :func:`~qbm_lite.ising.ferromagnet_2d`).
    temperatures
        Temperatures ``T = 1 / beta`` (positive).
    num_chains, num_sweeps, burn_in
        Chains per temperature, measured sweeps and discarded sweeps.
    schedule
        Update schedule of the :class:`~qbm_lite.samplers.GibbsSampler`.
    start
        Initial state of every chain at every temperature.
    seed
        Seed of the sampler.
    progress
        Show a progress bar over temperatures.
    num_threads
        Torch threads during the scan (restored afterwards). The matrices are small, so one
        thread is usually fastest, and much faster on a busy machine; ``None`` keeps the setting.
    """
    from qbm_lite.samplers.gibbs import GibbsSampler  # local: keeps the import graph acyclic

    temps = np.asarray(temperatures, dtype=np.float64)
    if temps.ndim != 1 or temps.size == 0 or np.any(~np.isfinite(temps)) or np.any(temps <= 0):
        raise ValueError("temperatures must be a non-empty 1-D sequence of positive numbers.")
    if start not in ("ordered", "random"):
        raise ValueError(f"start must be 'ordered' or 'random'; got {start!r}.")
    if int(num_sweeps) < 2 or int(burn_in) < 0:
        raise ValueError("num_sweeps must be >= 2 and burn_in >= 0.")
    if int(num_chains) < 2:
        raise ValueError(f"num_chains must be at least 2 (error bars need them); got {num_chains}.")
    h, J = model.to_torch(dtype=torch.float32)
    J_energy = J  # sparse stays sparse: the energy of a lattice costs O(n), not O(n^2)
    if J.is_sparse:
        J = J.to_dense()
    total = int(burn_in) + int(num_sweeps)
    sampler = GibbsSampler(total, schedule=schedule, persistent=True, seed=seed)
    with torch_threads(num_threads):
        return _scan(
            model,
            temps,
            h,
            J,
            J_energy,
            int(num_chains),
            int(burn_in),
            total,
            sampler,
            start,
            progress,
        )


def _scan(model, temps, h, J, J_energy, num_chains, burn_in, total, sampler, start, progress):
    n = model.n
    if progress:  # imported on use: tqdm.auto warns in kernels without ipywidgets
        from tqdm.auto import tqdm

        temps = tqdm(temps, desc="temperatures")
    keys = ("abs_m", "abs_m_err", "chi", "chi_err", "energy", "c", "binder")
    out: dict[str, list[float]] = {k: [] for k in keys}
    snapshots = []
    for T in temps:
        beta = 1.0 / T
        if start == "ordered":
            sampler.chains = torch.ones(num_chains, n)
        else:
            sampler.chains = None
        m_rows, e_rows = [], []

        def record(sweep: int, s: torch.Tensor, m_rows=m_rows, e_rows=e_rows) -> None:
            if sweep >= burn_in:
                m_rows.append(s.mean(dim=1).numpy().astype(np.float64))
                e = s @ h + 0.5 * ((J_energy @ s.T).T * s).sum(-1)
                e_rows.append(e.numpy().astype(np.float64) + model.offset)

        final = sampler.sample_spins(h, J, num_chains, beta=beta, callback=record)
        m = np.abs(np.stack(m_rows))  # (sweeps, chains)
        e = np.stack(e_rows)
        out["abs_m"].append(m.mean())
        # error bar from the spread of the per-chain means (chains are independent)
        out["abs_m_err"].append(m.mean(axis=0).std(ddof=1) / np.sqrt(num_chains))
        out["chi"].append(beta * n * (np.mean(m**2) - m.mean() ** 2))
        out["chi_err"].append(_jackknife_susceptibility_error(m, beta, n))
        out["energy"].append(e.mean() / n)
        out["c"].append(beta**2 * e.var() / n)
        m2 = np.mean(m**2)
        out["binder"].append(1.0 - np.mean(m**4) / (3.0 * m2**2) if m2 > 0 else np.nan)
        snapshots.append(final[0].numpy().astype(np.int8))
    arr = {k: np.asarray(v) for k, v in out.items()}
    return TemperatureScan(
        temperature=np.asarray(list(temps), dtype=np.float64),
        abs_magnetization=arr["abs_m"],
        abs_magnetization_err=arr["abs_m_err"],
        susceptibility=arr["chi"],
        susceptibility_err=arr["chi_err"],
        energy=arr["energy"],
        heat_capacity=arr["c"],
        binder=arr["binder"],
        snapshots=np.stack(snapshots),
    )


def _jackknife_susceptibility_error(abs_m: np.ndarray, beta: float, n: int) -> float:
    """Jackknife error of ``chi = beta n (<m^2> - <|m|>^2)`` from a ``(sweeps, chains)`` trace.

    Leaving out one whole chain at a time keeps the autocorrelation within each chain inside its
    block, so the error accounts for correlated sweeps (Efron & Stein 1981; Young 2015, sec. 3).
    """
    C = abs_m.shape[1]
    m1, m2 = abs_m.mean(axis=0), (abs_m**2).mean(axis=0)  # per-chain means
    loo1, loo2 = (m1.sum() - m1) / (C - 1), (m2.sum() - m2) / (C - 1)
    chi_loo = beta * n * (loo2 - loo1**2)
    return float(np.sqrt((C - 1) / C * np.sum((chi_loo - chi_loo.mean()) ** 2)))


def _check_beta(beta: float) -> float:
    beta = float(beta)
    if not np.isfinite(beta) or beta < 0:
        raise ValueError(f"beta must be a finite, non-negative number; got {beta}.")
    return beta
