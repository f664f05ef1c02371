"""A simulated Coherent Ising Machine: a dimod sampler that optimizes and samples Ising problems.

Two uses, one sampler (see :class:`SimulatedCIMSampler`):

- optimize (``beta=None``): the amplitudes bifurcate under a ramped pump into a low-energy
  configuration. The default dynamics is ballistic simulated bifurcation (Goto et al. 2021),
  the fastest to reach simulated annealing's energies in our benchmark; the measurement-feedback
  CIM with chaotic amplitude control (Leleu et al. 2021) or amplitude-heterogeneity correction
  (Leleu et al. 2019), and discrete simulated bifurcation, are selectable.
- sample (``beta=b``): the noisy measurement-feedback CIM held above threshold relaxes towards
  ``exp(-2 V(x) / σ²)``, whose sign distribution is approximately Boltzmann at an inverse
  temperature set by the feedback gain. The map from the machine's settings to that effective
  inverse temperature is calibrated against exact enumeration
  (:meth:`SimulatedCIMSampler.calibrate`; defaults stored in ``cim_calibration.json``), and a
  few Metropolis sweeps at ``b`` can remove the remaining bias.
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import dimod
import numpy as np
import torch
from scipy.optimize import brentq
from tqdm.auto import tqdm

from qbm_lite.config import get_device, torch_generator
from qbm_lite.exact import ExactBoltzmann
from qbm_lite.ising import IsingModel
from qbm_lite.samplers.base import TorchDimodSampler, check_problem
from qbm_lite.samplers.cim_dynamics import (
    CIMTrajectory,
    cim_amplitude_control,
    cim_langevin,
    coupling_scale,
    simulated_bifurcation,
    small_problem_threads,
    torch_threads,
)
from qbm_lite.samplers.gibbs import colour_classes, gibbs_sweeps

__all__ = [
    "DEFAULT_CALIBRATION_PATH",
    "CIMCalibration",
    "SimulatedCIMSampler",
    "default_calibration_models",
    "default_num_steps",
    "fit_effective_beta",
    "spin_glass",
]

Dynamics = Literal["bsb", "dsb", "cac", "ahc"]
DYNAMICS: tuple[str, ...] = ("bsb", "dsb", "cac", "ahc")

#: Where the stored default calibration lives (package data).
DEFAULT_CALIBRATION_PATH = Path(__file__).with_name("cim_calibration.json")


# --- instances and calibration ---------------------------------------------------------------
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


def default_num_steps(n: int, dynamics: Dynamics = "bsb") -> int:
    """Default optimization steps for ``n`` spins: ``250 sqrt(n / 1000)`` clipped to [200, 1000].

    Measured on dense SK instances: ballistic SB at 200 steps reaches the median energy of
    dwave-samplers' 1000-sweep annealing at n = 500 and n = 1000, with a margin. The
    amplitude-control and dSB dynamics need longer runs (5x and 2x respectively).
    """
    base = int(min(max(250.0 * math.sqrt(max(n, 1) / 1000.0), 200), 1000))
    return {"bsb": base, "dsb": 2 * base, "cac": 5 * base, "ahc": 5 * base}[dynamics]


# --- the sampler -----------------------------------------------------------------------------
def _with_threads(method):
    """Run a sampler method under the sampler's ``num_threads`` (checks included)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with torch_threads(self.num_threads):
            return method(self, *args, **kwargs)

    return wrapper


class SimulatedCIMSampler(TorchDimodSampler):
    """A simulated Coherent Ising Machine that is a ``dimod.Sampler`` and a torch spin sampler.

    Without ``beta`` it optimizes: ``num_reads`` replicas bifurcate together (one batched matrix
    product per step) into low-energy states. With ``beta=b`` it samples: the noisy
    measurement-feedback CIM relaxes above threshold with a feedback gain set from the calibration,
    optionally followed by ``correction_sweeps`` Metropolis sweeps at ``b``.

    Parameters
    ----------
    dynamics
        Optimizer dynamics: ``"bsb"`` (ballistic simulated bifurcation, default), ``"dsb"``
        (discrete SB), ``"cac"`` (CIM with chaotic amplitude control) or ``"ahc"`` (CIM with
        amplitude-heterogeneity correction).
    num_steps
        Optimization steps; ``None`` scales with ``n`` (:func:`default_num_steps`).
    pump
        Pump ``p`` of the sampling mode (amplitude ``A = sqrt(p - 1)``); must exceed 1.
    noise
        Noise strength ``σ`` of the sampling mode.
    dt
        Time step of the sampling mode (reduced automatically when the feedback is strong).
    ramp_steps, hold_steps
        Sampling mode: steps ramping the pump from 0 to ``pump``, then steps holding it.
    correction_sweeps
        Metropolis sweeps at the target ``beta`` after the CIM (0: the pure CIM).
    calibration
        A :class:`CIMCalibration`, a path to one, or ``None`` for the stored defaults.
    seed
        Seed of the sampler's random generator (reproducible runs).
    device
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``: where dimod calls compute.
        ``sample_spins`` computes on the device of its input tensors.
    num_threads
        Torch CPU threads during a run (restored afterwards); ``None`` keeps torch's setting.
        The default, 1, was measured fastest on a shared 2-core machine, where two BLAS threads
        competing with other processes were 1.5 to 30 times slower; it also makes the comparison
        with dwave-samplers' single-threaded annealing one core against one core. On a dedicated
        multi-core machine pass ``None`` (or the number of cores).
    progress
        Show a progress bar over the integration steps.

    Examples
    --------
    >>> import dimod
    >>> sampler = SimulatedCIMSampler(seed=0)
    >>> bqm = dimod.BinaryQuadraticModel.from_ising({}, {(0, 1): -1.0, (1, 2): -1.0})
    >>> sampler.sample(bqm, num_reads=4).first.energy
    -2.0
    """

    #: With ``default_beta = None``, :meth:`sample` called without ``beta`` optimizes (it
    #: returns low-energy states).
    default_beta = None

    def __init__(
        self,
        dynamics: Dynamics = "bsb",
        num_steps: int | None = None,
        *,
        pump: float = 2.0,
        noise: float = 0.7,
        dt: float = 0.2,
        ramp_steps: int = 20,
        hold_steps: int = 150,
        correction_sweeps: int = 10,
        calibration: CIMCalibration | str | Path | None = None,
        seed: int | None = None,
        device: str = "auto",
        num_threads: int | None = 1,
        progress: bool = False,
    ) -> None:
        if dynamics not in DYNAMICS:
            raise ValueError(f"dynamics must be one of {DYNAMICS}; got {dynamics!r}.")
        if num_steps is not None and int(num_steps) < 1:
            raise ValueError(f"num_steps must be a positive integer or None; got {num_steps}.")
        if not pump > 1.0:
            raise ValueError(
                f"pump must exceed the threshold 1 for the DOPOs to bifurcate; got {pump}."
            )
        if not noise > 0:
            raise ValueError(f"noise must be positive in the sampling mode; got {noise}.")
        if not 0 < dt <= 0.5:
            raise ValueError(f"dt must be in (0, 0.5] for a stable integration; got {dt}.")
        if int(ramp_steps) < 0 or int(hold_steps) < 1:
            raise ValueError("ramp_steps must be >= 0 and hold_steps >= 1.")
        _check_sweeps(correction_sweeps)
        self.dynamics = dynamics
        self.num_steps = None if num_steps is None else int(num_steps)
        self.pump, self.noise, self.dt = float(pump), float(noise), float(dt)
        self.ramp_steps, self.hold_steps = int(ramp_steps), int(hold_steps)
        self.correction_sweeps = int(correction_sweeps)
        if calibration is None:
            calibration = CIMCalibration.load(DEFAULT_CALIBRATION_PATH)
        elif not isinstance(calibration, CIMCalibration):
            calibration = CIMCalibration.load(calibration)
        self.calibration = calibration
        self.seed = seed
        self.device = get_device(device)
        if num_threads is not None and int(num_threads) < 1:
            raise ValueError(f"num_threads must be a positive integer or None; got {num_threads}.")
        self.num_threads = num_threads
        self.progress = progress
        self._generators: dict[str, torch.Generator] = {}
        self._blocks_cache: dict[tuple, list[torch.Tensor]] = {}
        _warn_settings(self)

    # --- dimod interface -----------------------------------------------------------------
    @property
    def parameters(self) -> dict[str, list]:
        return {
            "num_reads": [],
            "beta": [],
            "seed": [],
            "num_steps": [],
            "correction_sweeps": [],
        }

    @property
    def properties(self) -> dict[str, Any]:
        return {
            "dynamics": self.dynamics,
            "sampling_dynamics": "measurement-feedback CIM (Langevin)",
            "settings": self.sampling_settings,
            "calibration": asdict(self.calibration),
            "device": str(self.device),
        }

    @property
    def sampling_settings(self) -> dict[str, float]:
        """The settings a calibration depends on."""
        return {
            "pump": self.pump,
            "noise": self.noise,
            "dt": self.dt,
            "ramp_steps": self.ramp_steps,
            "hold_steps": self.hold_steps,
        }

    def sample(
        self,
        bqm: dimod.BinaryQuadraticModel,
        num_reads: int = 10,
        beta: float | None = None,
        seed: int | None = None,
        num_steps: int | None = None,
        correction_sweeps: int | None = None,
        **kwargs: Any,
    ) -> dimod.SampleSet:
        """Optimize (``beta=None``) or sample at ``beta`` a BQM; returns a ``dimod.SampleSet``.

        Parameters
        ----------
        bqm
            Any dimod binary quadratic model (SPIN or BINARY).
        num_reads
            Number of replicas, run together as one batch.
        beta
            Inverse temperature to sample at; ``None`` optimizes.
        seed
            Seed for this call (overrides the sampler's own generator).
        num_steps
            Optimization steps for this call (``None``: the sampler's setting).
        correction_sweeps
            Metropolis sweeps for this call when sampling (``None``: the sampler's setting).
        **kwargs
            Unknown keyword arguments are removed with a warning, the dimod way.
        """
        self.remove_unknown_kwargs(**kwargs)
        if int(num_reads) < 1:
            raise ValueError(f"num_reads must be a positive integer; got {num_reads}.")
        model = IsingModel.from_bqm(bqm)
        labels = model.labels or []
        if model.n == 0:
            return dimod.SampleSet.from_samples_bqm((np.empty((0, 0), np.int8), labels), bqm)
        h, J = model.to_torch(device=self.device, dtype=torch.float32)
        gen = None if seed is None else torch_generator(int(seed), self.device)
        if beta is None:
            spins = self.optimize_spins(h, J, int(num_reads), num_steps=num_steps, generator=gen)
        else:
            spins = self.sample_spins(
                h,
                J,
                int(num_reads),
                beta=beta,
                correction_sweeps=correction_sweeps,
                generator=gen,
            )
        spins = spins.cpu().numpy().astype(np.int8)
        info = {"beta": beta, "dynamics": self.dynamics if beta is None else "langevin"}
        if bqm.vartype is dimod.BINARY:
            spins = (spins + 1) // 2
        return dimod.SampleSet.from_samples_bqm((spins, labels), bqm, info=info)

    # --- torch fast path ------------------------------------------------------------------
    def _generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch_generator(self.seed, device)
        return self._generators[key]

    def _progress_callback(self, total: int, desc: str):
        if not self.progress:
            return None, None
        bar = tqdm(total=total, desc=desc, leave=False)
        return (lambda step, x: bar.update(1)), bar

    @_with_threads
    def optimize_spins(
        self,
        h: torch.Tensor,
        J: torch.Tensor,
        num_reads: int,
        *,
        num_steps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Low-energy spins ``(num_reads, n)`` from the optimizer dynamics."""
        traj = self.optimize_trajectory(h, J, num_reads, num_steps=num_steps, generator=generator)
        return _signs(traj.x).to(h.dtype)

    @_with_threads
    def optimize_trajectory(
        self,
        h: torch.Tensor,
        J: torch.Tensor,
        num_reads: int,
        *,
        num_steps: int | None = None,
        record_every: int | None = None,
        generator: torch.Generator | None = None,
    ) -> CIMTrajectory:
        """Run the optimizer dynamics; the trajectory holds amplitudes (and snapshots if asked)."""
        check_problem(h, J, num_reads, None)
        _check_symmetric(J)
        n = h.shape[0]
        steps = num_steps or self.num_steps or default_num_steps(n, self.dynamics)
        if int(steps) < 1:
            raise ValueError(f"num_steps must be a positive integer; got {steps}.")
        steps = int(steps)
        gen = generator or self._generator(h.device)
        h32, J32 = _as_float32(h), _as_float32(J)
        if _is_zero(J32):  # fields only: normalize by them
            scale = 1.0 / max(float(h32.abs().max()), 1e-12)
        else:
            scale = coupling_scale(J32)
        callback, bar = self._progress_callback(steps, f"CIM ({self.dynamics})")
        shape = (int(num_reads), n)
        kw = {"device": h.device, "dtype": torch.float32, "generator": gen}
        with small_problem_threads(n):
            if self.dynamics in ("bsb", "dsb"):
                x = 0.2 * torch.rand(shape, **kw) - 0.1
                y = 0.2 * torch.rand(shape, **kw) - 0.1
                # Symplectic Euler is stable while dt * omega < 2, omega^2 = c0 |lambda| + a0: a
                # coupling matrix with a large eigenvalue (e.g. Max-Cut's all-positive J) needs
                # smaller steps, and proportionally more of them (at most 4x).
                dt = 1.25 if self.dynamics == "bsb" else 1.0
                rho = _spectral_norm(J32)
                c0 = 0.5 * scale if self.dynamics == "bsb" else min(0.5 * scale, 1.0 / rho)
                dt_stable = 1.8 / math.sqrt(c0 * rho + 1.0)
                if dt_stable < dt:
                    steps = int(math.ceil(steps * min(dt / dt_stable, 4.0)))
                    dt = dt_stable
                traj = simulated_bifurcation(
                    x,
                    y,
                    h32,
                    J32,
                    steps,
                    c0=c0,
                    dt=dt,
                    discrete=self.dynamics == "dsb",
                    record_every=record_every,
                    callback=callback,
                )
            else:
                x = 1e-4 * torch.randn(shape, **kw)
                rho = max(_spectral_norm(J32), 1e-12)
                if self.dynamics == "cac":  # ramped pump and target (Leleu et al. 2021)
                    ramp = max(int(0.9 * steps), 1)
                    pump = torch.cat([torch.linspace(-0.5, 1.0, ramp), torch.ones(steps - ramp)])
                    target = torch.cat(
                        [torch.linspace(1.0, 3.0, ramp), torch.full((steps - ramp,), 3.0)]
                    )
                else:  # fixed pump below threshold and target (Leleu et al. 2019)
                    pump, target = torch.full((steps,), 0.5), torch.full((steps,), 2.0)
                traj = cim_amplitude_control(
                    x,
                    h32,
                    J32,
                    pump,
                    target,
                    # Capped so that eps * ||J|| <= 1: keeps a coupling matrix with one large
                    # eigenvalue (non-zero-mean couplings) from destabilizing the Euler steps.
                    feedback=min(0.5 * scale, 1.0 / rho),
                    max_error=1.0 / (0.1 * min(0.5 * scale, 1.0 / rho) * rho),
                    rule=self.dynamics,  # type: ignore[arg-type]
                    dt=0.1,
                    noise=0.05,  # a little noise keeps the replicas from all taking one path
                    generator=gen,
                    record_every=record_every,
                    callback=callback,
                )
        if bar is not None:
            bar.close()
        return traj

    def feedback_for(self, beta: float) -> float:
        """Feedback gain ``ε`` that gives effective inverse temperature ``beta`` (calibrated)."""
        nominal = self.calibration.to_nominal(float(beta))
        return nominal * self.noise**2 / (2.0 * (self.pump - 1.0))

    @_with_threads
    def sample_trajectory(
        self,
        h: torch.Tensor,
        J: torch.Tensor,
        num_samples: int,
        *,
        beta: float = 1.0,
        nominal: bool = False,
        record_every: int | None = None,
        generator: torch.Generator | None = None,
    ) -> CIMTrajectory:
        """Run the noisy CIM at (calibrated) inverse temperature ``beta``; no correction.

        With ``nominal=True`` the feedback gain uses ``beta`` as the nominal ``2 ε A² / σ²``
        (no calibration), which is what :meth:`calibrate` measures.
        """
        check_problem(h, J, num_samples, beta)
        _check_symmetric(J)
        gen = generator or self._generator(h.device)
        h32, J32 = _as_float32(h), _as_float32(J)
        amp2 = self.pump - 1.0
        eps = float(beta) * self.noise**2 / (2.0 * amp2) if nominal else self.feedback_for(beta)
        # Euler stability: the stiffest direction has rate about 2 (p - 1) + eps * ||J||_2.
        rate = 2.0 * amp2 + eps * _spectral_norm(J32)
        dt = min(self.dt, 0.5 / rate)
        stretch = min(self.dt / dt, 10.0)
        ramp, hold = round(self.ramp_steps * stretch), max(round(self.hold_steps * stretch), 1)
        pump = torch.cat([torch.linspace(0.0, self.pump, ramp), torch.full((hold,), self.pump)])
        callback, bar = self._progress_callback(len(pump), "CIM (sampling)")
        x0 = torch.zeros((int(num_samples), h.shape[0]), device=h.device, dtype=torch.float32)
        with small_problem_threads(h.shape[0]):
            traj = cim_langevin(
                x0,
                h32,
                J32,
                pump,
                feedback=eps,
                noise=self.noise,
                dt=dt,
                field_amplitude=math.sqrt(amp2),
                clip=3.0 * math.sqrt(amp2),
                generator=gen,
                record_every=record_every,
                callback=callback,
            )
        if bar is not None:
            bar.close()
        return traj

    @_with_threads
    def sample_spins(
        self,
        h: torch.Tensor,
        J: torch.Tensor,
        num_samples: int,
        *,
        beta: float | None = 1.0,
        correction_sweeps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Spins ``(num_samples, n)`` approximately from ``exp(-beta E)`` (or optimized if None).

        Parameters
        ----------
        h, J
            Fields ``(n,)`` and symmetric couplings ``(n, n)`` (dense or sparse) as tensors.
        num_samples
            Number of samples (replicas run as one batch).
        beta
            Target inverse temperature; ``None`` optimizes instead.
        correction_sweeps
            Metropolis sweeps after the CIM (``None``: the sampler's setting; 0: pure CIM).
        generator
            Random generator (default: the sampler's own, seeded by ``seed``).

        Returns
        -------
        torch.Tensor
            ±1 spins on the device and with the dtype of ``h``.
        """
        if beta is None:
            return self.optimize_spins(h, J, num_samples, generator=generator)
        sweeps = self.correction_sweeps if correction_sweeps is None else correction_sweeps
        _check_sweeps(sweeps)
        gen = generator or self._generator(h.device)
        traj = self.sample_trajectory(h, J, num_samples, beta=beta, generator=gen)
        s = _signs(traj.x)
        if sweeps > 0:
            h32, J32 = _as_float32(h).detach(), _as_float32(J).detach()
            J32 = J32.to_dense() if J32.layout != torch.strided else J32
            blocks = self._blocks(J32)
            with small_problem_threads(h.shape[0]):
                s = gibbs_sweeps(s, h32, J32, float(beta), int(sweeps), blocks, "metropolis", gen)
        return s.to(h.dtype)

    def _blocks(self, J: torch.Tensor) -> list[torch.Tensor]:
        """Colour classes of the coupling graph (cached by sparsity pattern)."""
        mask = (J != 0).cpu().numpy()
        key = (mask.shape[0], hash(np.packbits(mask).tobytes()), str(J.device))
        if key not in self._blocks_cache:
            if len(self._blocks_cache) > 32:
                self._blocks_cache.clear()
            self._blocks_cache[key] = [b.to(J.device) for b in colour_classes(J)]
        return self._blocks_cache[key]

    # --- calibration ----------------------------------------------------------------------
    def calibrate(
        self,
        models: Sequence[IsingModel] | None = None,
        nominal_betas: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
        num_reads: int = 20_000,
        progress: bool | None = None,
        update: bool = True,
    ) -> CIMCalibration:
        """Fit the nominal-to-effective inverse temperature map against exact enumeration.

        For each nominal ``β`` the pure CIM (no correction) samples each model, and the
        maximum-likelihood effective ``β`` of its samples is found exactly
        (:func:`fit_effective_beta`).

        Parameters
        ----------
        models
            Small Ising models (n <= 20); default: six n = 10 spin glasses
            (:func:`default_calibration_models`).
        nominal_betas
            Increasing grid of nominal inverse temperatures.
        num_reads
            Samples per model and grid point.
        progress
            Show a progress bar (default: the sampler's ``progress``).
        update
            Make the result this sampler's calibration.

        Returns
        -------
        CIMCalibration
            The measured map.
        """
        models = list(models) if models is not None else default_calibration_models()
        for m in models:
            if m.n > 20:
                raise ValueError(f"calibration models must have n <= 20 spins; got n={m.n}.")
        grid = [float(b) for b in nominal_betas]
        show = self.progress if progress is None else progress
        gen = torch_generator(self.seed if self.seed is not None else 0, self.device)
        means, stds = [], []
        for b in tqdm(grid, desc="calibrating", disable=not show):
            fits = []
            for m in models:
                h, J = m.to_torch(device=self.device)
                traj = self.sample_trajectory(h, J, num_reads, beta=b, nominal=True, generator=gen)
                fits.append(fit_effective_beta(m, _signs(traj.x).cpu().numpy()))
            means.append(float(np.mean(fits)))
            stds.append(float(np.std(fits)))
        cal = CIMCalibration(
            nominal_beta=grid,
            effective_beta=means,
            effective_beta_std=stds,
            settings=self.sampling_settings,
            instances=f"{len(models)} models, n = {sorted({m.n for m in models})}",
        )
        if update:
            self.calibration = cal
        return cal


def default_calibration_models(n: int = 10) -> list[IsingModel]:
    """The calibration instances: six spin glasses, coupling scales 1, 1.5 and 2, fields 0.3."""
    return [
        spin_glass(n, seed=100 + i, coupling_std=c, field_std=0.3)
        for i, c in enumerate((1.0, 1.0, 1.5, 1.5, 2.0, 2.0))
    ]


# --- helpers -----------------------------------------------------------------------------------
def _signs(x: torch.Tensor) -> torch.Tensor:
    """Spins from amplitudes (an exactly zero amplitude reads as +1)."""
    return torch.where(x >= 0, 1.0, -1.0).to(torch.float32)


def _as_float32(t: torch.Tensor) -> torch.Tensor:
    t = t.detach()
    return t if t.dtype == torch.float32 else t.to(torch.float32)


def _is_zero(J: torch.Tensor) -> bool:
    if J.layout != torch.strided:
        return J._nnz() == 0 or bool((J.coalesce().values() == 0).all())
    return not bool(J.any())


def _spectral_norm(J: torch.Tensor, iters: int = 20) -> float:
    """Largest |eigenvalue| of the symmetric ``J`` by power iteration (an estimate)."""
    n = J.shape[0]
    v = torch.ones(n, 1, device=J.device, dtype=torch.float32) / math.sqrt(n)
    v = v + 0.01 * torch.arange(n, device=J.device, dtype=torch.float32).reshape(n, 1).sin()
    norm = 0.0
    for _ in range(iters):
        w = J @ v
        norm = float(w.norm())
        if norm == 0.0:
            return 0.0
        v = w / norm
    return norm * 1.1  # power iteration approaches from below


def _check_symmetric(J: torch.Tensor) -> None:
    if J.layout != torch.strided:
        return  # IsingModel.to_torch builds sparse couplings from a checked symmetric matrix
    J = J.detach()
    if not J.numel():
        return
    scale = max(float(J.abs().max()), 1.0)
    n = J.shape[0]
    # Large problems: check a fixed random subset of rows against the columns (cheap, and an
    # asymmetric J is almost never symmetric on 64 random rows).
    rows = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:64] if n > 2048 else None
    A, B = (J, J.T) if rows is None else (J[rows.to(J.device)], J[:, rows.to(J.device)].T)
    if float((A - B).abs().max()) > 1e-5 * scale:
        raise ValueError(
            "J must be symmetric (J == J.T) with zero diagonal, dimod's convention; "
            "pass (J + J.T) / 2 or build the problem with qbm_lite.ising.IsingModel."
        )
    if bool((torch.diagonal(J) != 0).any()):
        raise ValueError("J must have a zero diagonal; move diagonal terms into an offset.")


def _check_sweeps(sweeps: int) -> None:
    if not isinstance(sweeps, int | np.integer) or sweeps < 0:
        raise ValueError(f"correction_sweeps must be a non-negative integer; got {sweeps!r}.")


def _warn_settings(sampler: SimulatedCIMSampler) -> None:
    """Warn when the calibration was measured at other sampling settings."""
    cal = sampler.calibration.settings
    if cal and any(abs(cal.get(k, v) - v) > 1e-9 for k, v in sampler.sampling_settings.items()):
        warnings.warn(
            "the CIM calibration was measured at other sampling settings "
            f"({cal}); call sampler.calibrate() for an accurate effective beta.",
            stacklevel=3,
        )
