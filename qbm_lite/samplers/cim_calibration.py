"""Calibration of the simulated CIM's sampling mode: nominal against effective inverse temperature.

The noisy measurement-feedback CIM's sign distribution is approximately Boltzmann at the nominal
inverse temperature ``β_nom = 2 ε A² / σ²``; the effective ``β`` differs (soft amplitudes, finite
runs). :class:`CIMCalibration` stores the measured map, fitted by maximum likelihood against exact
enumeration on small instances (:func:`fit_effective_beta`); the sampler's ``calibrate`` method
measures it, and the package ships defaults in ``cim_calibration.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

from qbm_lite.exact import ExactBoltzmann
from qbm_lite.ising import IsingModel

__all__ = [  # DEFAULT_CALIBRATION_PATH is importable but not listed: its value is a local path
    "CIMCalibration",
    "default_calibration_models",
    "fit_effective_beta",
    "spin_glass",
]

#: Where the stored default calibration lives (package data).
DEFAULT_CALIBRATION_PATH = Path(__file__).with_name("cim_calibration.json")


def spin_glass(
    n: int, seed: int | None = None, coupling_std: float = 1.0, field_std: float = 0.0
) -> IsingModel:
    """A random spin glass: ``J_ij ~ N(0, coupling_std² / n)``, ``h_i ~ N(0, field_std²)``.

    ``coupling_std=1`` and ``field_std=0`` is the Sherrington–Kirkpatrick model.
    """
    if n < 2:
        raise ValueError(f"n must be at least 2; got {n}.")
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.standard_normal((n, n)), 1) * coupling_std / math.sqrt(n)
    return IsingModel(rng.standard_normal(n) * field_std, upper + upper.T)


def fit_effective_beta(model: IsingModel, states: np.ndarray, bounds=(1e-3, 50.0)) -> float:
    """Maximum-likelihood inverse temperature of ``states`` under ``model`` (exact, n <= 24).

    For the Boltzmann family the likelihood is maximal where the exact mean energy equals the
    sample mean energy, ``<E>_β = Ē``, which is solved by bracketing (``<E>_β`` falls with β).
    Returns the bound when ``Ē`` lies outside the bracket.
    """
    exact = ExactBoltzmann(model)
    mean_e = float(np.mean(model.energy(np.asarray(states))))
    lo, hi = bounds
    f_lo, f_hi = exact.mean_energy(lo) - mean_e, exact.mean_energy(hi) - mean_e
    if f_lo <= 0:
        return lo
    if f_hi >= 0:
        return hi
    return float(brentq(lambda b: exact.mean_energy(b) - mean_e, lo, hi, xtol=1e-6))


@dataclass
class CIMCalibration:
    """The measured map from the nominal to the effective inverse temperature of the CIM sampler.

    The nominal inverse temperature of the noisy CIM is ``β_nom = 2 ε A² / σ²`` (feedback gain
    ``ε``, amplitude ``A = sqrt(p - 1)``, noise ``σ``): exact for hard spins in equilibrium.
    Amplitude fluctuations and finite run time make the sign distribution hotter; the effective
    ``β_eff`` is fitted by maximum likelihood against exact enumeration on small instances.

    Fields:

    nominal_beta
        Increasing grid of nominal inverse temperatures.
    effective_beta
        Mean fitted effective inverse temperature at each grid point.
    effective_beta_std
        Spread (standard deviation) of the fit over the calibration instances.
    settings
        The sampler settings the calibration holds for (pump, noise, dt, ramp and hold steps).
    instances
        A description of the calibration instances.
    """

    nominal_beta: list[float]
    effective_beta: list[float]
    effective_beta_std: list[float] = field(default_factory=list)
    settings: dict[str, float] = field(default_factory=dict)
    instances: str = ""

    def __post_init__(self) -> None:
        nom, eff = np.asarray(self.nominal_beta, float), np.asarray(self.effective_beta, float)
        if nom.ndim != 1 or nom.shape != eff.shape or nom.size < 1:
            raise ValueError("nominal_beta and effective_beta must be equal-length 1-D lists.")
        if np.any(np.diff(nom) <= 0) or np.any(nom <= 0) or np.any(eff <= 0):
            raise ValueError("calibration betas must be positive and nominal_beta increasing.")

    def to_nominal(self, beta: float) -> float:
        """The nominal inverse temperature whose effective value is ``beta`` (interpolated)."""
        nom, eff = np.asarray(self.nominal_beta), np.maximum.accumulate(self.effective_beta)
        if beta <= eff[0]:
            return float(beta * nom[0] / eff[0])
        if beta >= eff[-1]:
            return float(beta * nom[-1] / eff[-1])
        return float(np.exp(np.interp(np.log(beta), np.log(eff), np.log(nom))))

    def to_effective(self, nominal_beta: float) -> float:
        """The calibrated effective inverse temperature at a nominal one."""
        nom, eff = np.log(self.nominal_beta), np.log(self.effective_beta)
        x = math.log(nominal_beta)
        if x <= nom[0]:
            return float(nominal_beta * self.effective_beta[0] / self.nominal_beta[0])
        if x >= nom[-1]:
            return float(nominal_beta * self.effective_beta[-1] / self.nominal_beta[-1])
        return float(np.exp(np.interp(x, nom, eff)))

    def save(self, path: str | Path) -> None:
        """Write the calibration as JSON."""
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path = DEFAULT_CALIBRATION_PATH) -> CIMCalibration:
        """Read a calibration written by :meth:`save` (default: the stored package defaults)."""
        return cls(**json.loads(Path(path).read_text()))


def default_calibration_models(n: int = 10) -> list[IsingModel]:
    """The calibration instances: six spin glasses, coupling scales 1, 1.5 and 2, fields 0.3."""
    return [
        spin_glass(n, seed=100 + i, coupling_std=c, field_std=0.3)
        for i, c in enumerate((1.0, 1.0, 1.5, 1.5, 2.0, 2.0))
    ]
