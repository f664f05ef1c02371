"""A simulated Coherent Ising Machine: a dimod sampler that optimizes and samples Ising problems.

Two uses, one sampler (see :class:`SimulatedCIMSampler`):

- optimize (``beta=None``): the amplitudes bifurcate under a ramped pump into a low-energy
  configuration. The default dynamics (``"auto"``) is simulated bifurcation (Goto et al. 2021):
  ballistic (bSB) on dense couplings, the fastest to reach simulated annealing's energies in our
  dense benchmark, and discrete (dSB) on sparse ones, where bSB's median cut levels off below
  annealing's and dSB's keeps improving with more steps; the measurement-feedback
  CIM with chaotic amplitude control (Leleu et al. 2021) or amplitude-heterogeneity correction
  (Leleu et al. 2019), and discrete simulated bifurcation, are selectable. Every read ends with
  a steepest single-spin-flip descent, so each returned state is at least a local minimum.
  Sparse couplings (below :data:`SPARSE_DENSITY`) run as a sparse CSR matrix, on the CPU through a
  compiled kernel (:mod:`qbm_lite.samplers.sb_kernel`) for simulated bifurcation.
- sample (``beta=b``): the noisy measurement-feedback CIM held above threshold relaxes towards
  ``exp(-2 V(x) / σ²)``, whose sign distribution is approximately Boltzmann at an inverse
  temperature set by the feedback gain. The map from the machine's settings to that effective
  inverse temperature is calibrated against exact enumeration
  (:meth:`SimulatedCIMSampler.calibrate`; defaults stored in ``cim_calibration.json``), and a
  few Metropolis sweeps at ``b`` can remove the remaining bias.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import dimod
import numpy as np
import torch
from tqdm.auto import tqdm

from qbm_lite.config import get_device, torch_generator
from qbm_lite.ising import IsingModel
from qbm_lite.samplers.base import TorchDimodSampler, check_problem
from qbm_lite.samplers.cim_calibration import (
    DEFAULT_CALIBRATION_PATH,
    CIMCalibration,
    default_calibration_models,
    fit_effective_beta,
    spin_glass,
)
from qbm_lite.samplers.cim_dynamics import (
    CIMTrajectory,
    chaotic_amplitude_control,
    cim_amplitude_control,
    cim_langevin,
    coupling_scale,
    simulated_bifurcation,
    small_problem_threads,
    torch_threads,
)
from qbm_lite.samplers.descent import greedy_descent
from qbm_lite.samplers.gibbs import colour_classes, gibbs_sweeps

__all__ = [  # DEFAULT_CALIBRATION_PATH is importable but not listed: its value is a local path
    "SPARSE_DENSITY",
    "CIMCalibration",
    "SimulatedCIMSampler",
    "default_calibration_models",
    "default_num_steps",
    "fit_effective_beta",
    "optimizer_couplings",
    "spin_glass",
]

Dynamics = Literal["auto", "bsb", "dsb", "cac", "ahc"]
DYNAMICS: tuple[str, ...] = ("auto", "bsb", "dsb", "cac", "ahc")


def default_num_steps(n: int, dynamics: Literal["bsb", "dsb", "cac", "ahc"] = "bsb") -> int:
    """Default optimization steps for ``n`` spins: ``250 sqrt(n / 1000)`` clipped to [200, 1000].

    Measured with ``benchmarks/sampler_bench.py`` (32 reads): on dense SK instances with ±1/sqrt(n)
    couplings ballistic SB at 200 steps reaches the median energy of dwave-samplers' annealing
    with 1,000 sweeps at n = 500 (and 100 steps reach its 300-sweep median). On sparse Gset-like
    graphs (n = 800-2,000, 1 % random or toroidal) bSB's median cut levels off 0.1-1 % below that
    annealing's however long it runs, so ``"auto"`` runs dSB there, with twice the steps: its
    default (446-706 steps) stays 0.2-0.4 % below annealing's median cut, and it reaches that
    median with 800-1,600 steps on the 800-node graphs and the 2,000-node torus and with 6,400 on
    the random graphs of 1,000 and 2,000 nodes. The amplitude-control and dSB dynamics get longer
    runs (5x and 2x).

    Raises
    ------
    ValueError
        For an unknown dynamics or ``"auto"``, which depends on the couplings (resolve it with
        :meth:`SimulatedCIMSampler.optimizer_dynamics`).
    """
    if dynamics not in DYNAMICS or dynamics == "auto":
        raise ValueError(
            f"dynamics must be one of {DYNAMICS[1:]} (resolve 'auto' with "
            f"SimulatedCIMSampler.optimizer_dynamics first); got {dynamics!r}."
        )
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
        Optimizer dynamics: ``"auto"`` (default: ``"dsb"`` when the couplings run as a sparse
        matrix, see :data:`SPARSE_DENSITY`, else ``"bsb"``; :meth:`optimizer_dynamics` says which),
        ``"bsb"`` (ballistic simulated bifurcation), ``"dsb"`` (discrete SB), ``"cac"`` (chaotic
        amplitude control, Leleu et al. 2021: the target amplitude is modulated by the energy) or
        ``"ahc"`` (amplitude-heterogeneity correction, Leleu et al. 2019).
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
    descent
        Optimization mode: end every read with a steepest single-spin-flip descent, so that each
        returned state is a local minimum (no single flip lowers its energy). It costs a few
        flips per read and fixes terms the amplitudes under-weight (e.g. fields of 0.001 next
        to a field of 100). ``False`` returns the dynamics' own signs.
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
        dynamics: Dynamics = "auto",
        num_steps: int | None = None,
        *,
        pump: float = 2.0,
        noise: float = 0.7,
        dt: float = 0.2,
        ramp_steps: int = 20,
        hold_steps: int = 150,
        correction_sweeps: int = 10,
        descent: bool = True,
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
        if not isinstance(descent, bool | np.bool_):
            raise ValueError(f"descent must be True or False; got {descent!r}.")
        self.descent = bool(descent)
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
        info = {
            "beta": beta,
            "dynamics": self.optimizer_dynamics(J) if beta is None else "langevin",
        }
        if bqm.vartype is dimod.BINARY:
            spins = (spins + 1) // 2
        return dimod.SampleSet.from_samples_bqm((spins, labels), bqm, info=info)

    def optimizer_dynamics(self, J: torch.Tensor) -> str:
        """The dynamics the optimizer runs on couplings ``J`` (resolves ``"auto"``).

        ``"auto"`` is discrete simulated bifurcation where ``J`` runs as a sparse CSR matrix
        (:func:`optimizer_couplings`) and ballistic SB where it runs dense. Measured with
        ``benchmarks/sampler_bench.py`` (32 reads): on Gset-like sparse graphs bSB's median cut
        levels off below that of dwave-samplers' annealing with 1,000 sweeps while dSB's keeps
        improving with more steps; on dense SK instances bSB reaches annealing's medians in
        fewer steps.
        """
        return self._resolved_dynamics(_runs_sparse(J))

    def _resolved_dynamics(self, sparse: bool) -> str:
        if self.dynamics != "auto":
            return self.dynamics
        return "dsb" if sparse else "bsb"

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
        """Low-energy spins ``(num_reads, n)`` from the optimizer dynamics.

        With ``descent=True`` (the default) each read then descends by single spin flips to a
        local minimum (:func:`~qbm_lite.samplers.descent.greedy_descent`): no single flip of a
        returned state lowers its energy.
        """
        traj = self.optimize_trajectory(h, J, num_reads, num_steps=num_steps, generator=generator)
        s = traj.best_spins if traj.best_spins is not None else _signs(traj.x)
        if self.descent and h.shape[0] > 0:
            h32 = _as_float32(h)
            J32 = optimizer_couplings(_as_float32(J))
            with small_problem_threads(h.shape[0]):
                s = greedy_descent(s.to(h32.device), h32, J32)
        return s.to(h.dtype)

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
        """Run the optimizer dynamics; the trajectory holds amplitudes (and snapshots if asked).

        Couplings sparser than :data:`SPARSE_DENSITY` run as a sparse CSR matrix (one sparse
        product per step), denser ones as a dense matrix (:func:`optimizer_couplings`). The
        final signs are *not* descended here (see :meth:`optimize_spins`).
        """
        check_problem(h, J, num_reads, None)
        _check_symmetric(J)
        n = h.shape[0]
        h32, J32 = _as_float32(h), optimizer_couplings(_as_float32(J))
        dynamics = self._resolved_dynamics(J32.layout == torch.sparse_csr)
        steps = num_steps or self.num_steps or default_num_steps(n, dynamics)
        if int(steps) < 1:
            raise ValueError(f"num_steps must be a positive integer; got {steps}.")
        steps = int(steps)
        gen = generator or self._generator(h.device)
        rho = _spectral_norm(J32)  # 0 for a problem without couplings
        scale = _problem_scale(h32, J32)
        callback, bar = self._progress_callback(steps, f"CIM ({dynamics})")
        shape = (int(num_reads), n)
        kw = {"device": h.device, "dtype": torch.float32, "generator": gen}
        with small_problem_threads(n):
            if dynamics in ("bsb", "dsb"):
                traj = self._bifurcate(
                    h32, J32, shape, kw, steps, scale, rho, record_every, callback, dynamics
                )
            elif dynamics == "cac":
                traj = chaotic_amplitude_control(
                    1e-3 * torch.randn(shape, **kw),
                    scale * h32,
                    scale * J32,
                    steps,
                    feedback=_bounded_gain(1.0, scale * rho),
                    energy_scale=1.0,
                    record_every=record_every,
                    callback=callback,
                )
            else:  # fixed pump below threshold and target (Leleu et al. 2019)
                eps = _bounded_gain(0.5 * scale, rho)
                traj = cim_amplitude_control(
                    1e-4 * torch.randn(shape, **kw),
                    h32,
                    J32,
                    0.5,
                    2.0,
                    steps,
                    feedback=eps,
                    max_error=None if rho == 0 else 1.0 / (0.1 * eps * rho),
                    dt=0.1,
                    noise=0.05,  # a little noise keeps the replicas from all taking one path
                    generator=gen,
                    record_every=record_every,
                    callback=callback,
                )
        if bar is not None:
            bar.close()
        return traj

    def _bifurcate(self, h32, J32, shape, kw, steps, scale, rho, record_every, callback, dynamics):
        """Ballistic or discrete simulated bifurcation with a step size that stays stable."""
        x = 0.2 * torch.rand(shape, **kw) - 0.1
        y = 0.2 * torch.rand(shape, **kw) - 0.1
        # Symplectic Euler is stable while dt * omega < 2, omega^2 = c0 |lambda| + a0: a coupling
        # matrix with a large eigenvalue (e.g. Max-Cut's all-positive J) needs smaller steps, and
        # proportionally more of them (at most 4x).
        # bSB: 1.25 on dense SK instances; 1.0 on sparse graphs (Gset-like random graphs and
        # toroidal grids, n = 800: median cut higher by 0.1-1 % at 300 steps). dSB: 1.0.
        dt = 1.25 if dynamics == "bsb" and J32.layout == torch.strided else 1.0
        c0 = 0.5 * scale if dynamics == "bsb" else _bounded_gain(0.5 * scale, rho)
        dt_stable = 1.8 / math.sqrt(c0 * rho + 1.0)
        if dt_stable < dt:
            steps = int(math.ceil(steps * min(dt / dt_stable, 4.0)))
            dt = dt_stable
        return simulated_bifurcation(
            x,
            y,
            h32,
            J32,
            steps,
            c0=c0,
            dt=dt,
            discrete=dynamics == "dsb",
            record_every=record_every,
            callback=callback,
        )

    def feedback_for(self, beta: float) -> float:
        """Feedback gain ``ε`` that gives effective inverse temperature ``beta`` (calibrated)."""
        nominal = self.calibration.to_nominal(float(beta))
        return nominal * self.noise**2 / (2.0 * (self.pump - 1.0))

    def _sampling_schedule(
        self, J32: torch.Tensor, beta: float, nominal: bool
    ) -> tuple[float, float, torch.Tensor]:
        """Feedback gain, time step and pump per step of a sampling run at ``beta``."""
        amp2 = self.pump - 1.0
        eps = float(beta) * self.noise**2 / (2.0 * amp2) if nominal else self.feedback_for(beta)
        # Euler stability: the stiffest direction has rate about 2 (p - 1) + eps * ||J||_2.
        rate = 2.0 * amp2 + eps * _spectral_norm(J32)
        dt = min(self.dt, 0.5 / rate)
        stretch = min(self.dt / dt, 10.0)
        ramp, hold = round(self.ramp_steps * stretch), max(round(self.hold_steps * stretch), 1)
        pump = torch.cat([torch.linspace(0.0, self.pump, ramp), torch.full((hold,), self.pump)])
        return eps, dt, pump

    def num_sampling_steps(self, h: torch.Tensor, J: torch.Tensor, beta: float = 1.0) -> int:
        """Integration steps of one sampling run at ``beta`` (ramp plus hold, stretched when the
        feedback is strong). Each step costs one product with ``J``, about one Metropolis sweep,
        which is the unit of an equal-work comparison."""
        check_problem(h, J, 1, beta)
        return len(self._sampling_schedule(optimizer_couplings(_as_float32(J)), beta, False)[2])

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
        h32, J32 = _as_float32(h), optimizer_couplings(_as_float32(J))
        amp2 = self.pump - 1.0
        eps, dt, pump = self._sampling_schedule(J32, beta, nominal)
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


# --- helpers -----------------------------------------------------------------------------------
def _signs(x: torch.Tensor) -> torch.Tensor:
    """Spins from amplitudes (an exactly zero amplitude reads as +1)."""
    return torch.where(x >= 0, 1.0, -1.0).to(torch.float32)


def _as_float32(t: torch.Tensor) -> torch.Tensor:
    t = t.detach()
    return t if t.dtype == torch.float32 else t.to(torch.float32)


#: Couplings with at most this fraction of non-zero entries run as a sparse CSR matrix in the
#: optimizer. Measured with torch 2 on one CPU thread, 32 reads: a CSR product is 3-30x faster
#: than the dense one at 0.5-10 % density (n = 800 and 2,000) and about as fast at 30 %.
SPARSE_DENSITY = 0.15


def optimizer_couplings(J: torch.Tensor) -> torch.Tensor:
    """``J`` in the layout the optimizer multiplies fastest: sparse CSR or dense, by density.

    Sparse input (COO or CSR) denser than :data:`SPARSE_DENSITY` becomes dense; dense input of
    at least 256 spins sparser than that becomes CSR; small dense problems stay dense (the
    product is cheap either way).
    """
    if not _runs_sparse(J):
        return J if J.layout == torch.strided else J.to_dense()
    return _to_csr(J.coalesce() if J.layout == torch.sparse_coo else J)


def _runs_sparse(J: torch.Tensor) -> bool:
    """Whether :func:`optimizer_couplings` gives ``J`` as CSR (decided without converting)."""
    n = J.shape[0]
    if n == 0:
        return False
    if J.layout == torch.strided:
        return n >= 256 and int(torch.count_nonzero(J)) <= SPARSE_DENSITY * n * n
    nnz = J._nnz() if J.layout == torch.sparse_coo else int(J.values().numel())
    return nnz <= SPARSE_DENSITY * n * n


def _to_csr(J: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        # torch flags its CSR layout as beta; the products used here are tested against dense.
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support", category=UserWarning)
        return J.to_sparse_csr()


def _problem_scale(h: torch.Tensor, J: torch.Tensor) -> float:
    """Gain that makes a typical local field O(1): from ``J`` (Goto et al.), else from ``h``."""
    if _has_couplings(J):
        return coupling_scale(J)
    top = float(h.abs().max()) if h.numel() else 0.0
    return 1.0 / top if top > 0 else 1.0


def _has_couplings(J: torch.Tensor) -> bool:
    if J.layout == torch.sparse_csr:
        return bool((J.values() != 0).any())
    if J.layout != torch.strided:
        return bool((J.coalesce().values() != 0).any())
    return bool(J.any())


def _bounded_gain(gain: float, rho: float) -> float:
    """``min(gain, 1 / rho)``: keeps ``gain * ||J||`` <= 1 (no bound without couplings)."""
    return gain if rho <= 0 else min(gain, 1.0 / rho)


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
