"""The equations of motion of a simulated Coherent Ising Machine, batched over replicas in torch.

A Coherent Ising Machine (CIM) is a network of degenerate optical parametric oscillators (DOPOs).
Each DOPO has a real in-phase amplitude ``x_i``; below the pump threshold it sits at zero, above it
bifurcates into ``+A`` or ``-A``, and the sign is read out as the spin ``s_i``. In the
measurement-feedback CIM (McMahon et al. 2016; Inagaki et al. 2016) every amplitude is measured at
each round trip and the feedback ``-ε (J x + h)`` is injected, so that the network bifurcates into a
low-energy configuration of ``E(s) = h·s + ½ sᵀJs`` (dimod's convention).

Three integrators are provided, all operating on a batch ``x`` of shape ``(reads, n)`` so that one
step costs one ``(reads, n) @ (n, n)`` matrix product:

- :func:`cim_langevin`: the plain measurement-feedback CIM with Gaussian noise (Wang et al. 2013's
  classical mean-field model): ``dx = [(p - 1) x - x³ - ε (J x + A h)] dt + σ dW``. This is the
  sampler: with noise it relaxes towards ``exp(-2 V(x) / σ²)``.
- :func:`cim_amplitude_control`: the CIM with amplitude-heterogeneity correction (AHC, Leleu et
  al. 2019) or chaotic amplitude control (CAC, Leleu et al. 2021): error variables ``e_i`` grow
  when ``x_i² < a`` and shrink when ``x_i² > a``, which destabilizes local minima. These
  equations follow the form documented by the McMahon lab's ``cim-optimizer``.
- :func:`simulated_bifurcation`: ballistic and discrete simulated bifurcation (Goto et al. 2019,
  2021), a Hamiltonian (symplectic Euler) variant with inelastic walls at ``|x| = 1``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from qbm_lite.config import torch_threads

__all__ = [
    "CIMTrajectory",
    "cim_amplitude_control",
    "cim_langevin",
    "coupling_scale",
    "local_field",
    "simulated_bifurcation",
    "small_problem_threads",
    "torch_threads",
]

AmplitudeControl = Literal["cac", "ahc"]


@dataclass
class CIMTrajectory:
    """Final amplitudes of a run, plus (optionally) recorded snapshots for plotting.

    Fields:

    x
        Final amplitudes, shape ``(reads, n)``.
    times
        Step indices at which snapshots were recorded (empty when not recording).
    snapshots
        Recorded amplitudes, shape ``(len(times), reads, n)`` (or ``None``).
    """

    x: torch.Tensor
    times: list[int]
    snapshots: torch.Tensor | None


#: Problems with at most this many spins run single-threaded: their element-wise work is too
#: small to share, and thread synchronisation on a busy machine costs far more than it gains
#: (measured: 0.35 s single-threaded versus 10-20 s with two contended threads).
SMALL_PROBLEM_SPINS = 256


def small_problem_threads(n: int):  # noqa: ANN201 (a context manager)
    """Single-threaded for problems with at most ``SMALL_PROBLEM_SPINS`` spins, else unchanged."""
    return torch_threads(1 if n <= SMALL_PROBLEM_SPINS else None)


def local_field(x: torch.Tensor, J: torch.Tensor) -> torch.Tensor:
    """``x @ J`` for a batch ``x`` ``(reads, n)`` and a dense or sparse symmetric ``J``."""
    if J.layout != torch.strided:
        return (J @ x.T).T
    return x @ J


def coupling_scale(J: torch.Tensor) -> float:
    """``sqrt(n / Σ J_ij²)``: the feedback gain that makes a typical local field O(1)."""
    n = J.shape[0]
    if J.is_sparse:
        sq = float((J.coalesce().values() ** 2).sum())
    elif J.layout == torch.sparse_csr:
        sq = float((J.values() ** 2).sum())
    else:
        sq = float(torch.linalg.vector_norm(J)) ** 2
    return (n / sq) ** 0.5 if sq > 0 else 1.0


def _recorder(record_every: int | None):
    times: list[int] = []
    snaps: list[torch.Tensor] = []

    def record(step: int, x: torch.Tensor, last: bool) -> None:
        if record_every and (step % record_every == 0 or last):
            times.append(step)
            snaps.append(x.detach().clone().cpu())

    def result(x: torch.Tensor) -> CIMTrajectory:
        return CIMTrajectory(x, times, torch.stack(snaps) if snaps else None)

    return record, result


def cim_langevin(
    x: torch.Tensor,
    h: torch.Tensor,
    J: torch.Tensor,
    pump: torch.Tensor,
    *,
    feedback: float,
    noise: float,
    dt: float = 0.1,
    field_amplitude: float = 1.0,
    clip: float | None = None,
    generator: torch.Generator | None = None,
    record_every: int | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> CIMTrajectory:
    """Integrate the noisy measurement-feedback CIM with the Euler–Maruyama scheme.

    ``x ← x + [(p_t - 1) x - x³ - ε (x J + A h)] dt + σ √dt ξ`` with ``ξ ~ N(0, 1)``, for each
    pump value ``p_t`` in ``pump``. Above threshold the amplitudes settle near ``±A`` with
    ``A = sqrt(p - 1)``; the field is multiplied by ``A`` (``field_amplitude``) so that fields and
    couplings enter the sign distribution with the same weight, ``≈ exp(-(2 ε A² / σ²) E(s))``
    (Wang et al. 2013; the map to an effective inverse temperature is calibrated, see
    :class:`~qbm_lite.samplers.cim.SimulatedCIMSampler`).

    Parameters
    ----------
    x
        Initial amplitudes ``(reads, n)`` (e.g. zeros: the DOPOs start in vacuum).
    h, J
        Fields ``(n,)`` and symmetric couplings ``(n, n)``, dense or sparse, same dtype as ``x``.
    pump
        Pump value ``p_t`` at every step (its length is the number of steps).
    feedback
        Feedback gain ``ε``.
    noise
        Noise strength ``σ`` (0 gives the deterministic mean-field equations).
    dt
        Time step.
    field_amplitude
        ``A`` multiplying the fields.
    clip
        If given, amplitudes are clipped to ``[-clip, clip]`` after every step (a guard against
        overflow when the feedback is strong; far from the wells it never triggers).
    generator
        Random generator for the noise.
    record_every
        Record a snapshot every this many steps (``None``: no recording).
    callback
        Called as ``callback(step, x)`` after every step.

    Returns
    -------
    CIMTrajectory
        The final amplitudes and any recorded snapshots.
    """
    record, result = _recorder(record_every)
    record(0, x, False)
    hA = field_amplitude * h
    sdt = noise * dt**0.5
    steps = len(pump)
    with small_problem_threads(x.shape[-1]):
        for t in range(steps):
            drift = (float(pump[t]) - 1.0) * x - x**3 - feedback * (local_field(x, J) + hA)
            x = x + dt * drift
            if noise > 0:
                x = x + sdt * torch.randn(
                    x.shape, generator=generator, device=x.device, dtype=x.dtype
                )
            if clip is not None:
                x = x.clamp(-clip, clip)
            record(t + 1, x, t == steps - 1)
            if callback is not None:
                callback(t, x)
    return result(x)


def cim_amplitude_control(
    x: torch.Tensor,
    h: torch.Tensor,
    J: torch.Tensor,
    pump: torch.Tensor,
    target: torch.Tensor,
    *,
    feedback: float,
    rule: AmplitudeControl = "cac",
    error_rate: float = 0.3,
    max_error: float | None = None,
    dt: float = 0.1,
    noise: float = 0.0,
    generator: torch.Generator | None = None,
    record_every: int | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> CIMTrajectory:
    """Integrate the CIM with amplitude-heterogeneity correction or chaotic amplitude control.

    With error variables ``e_i`` (initially 1) and target squared amplitude ``a_t``::

        dx_i/dt = (p_t - 1) x_i - x_i³ - ε e_i (Σ_j J_ij x_j + sqrt(a_t) h_i)
        de_i/dt = -κ e_i (x_i² - a_t)

    ``rule="ahc"`` keeps the pump and target fixed at their final values (Leleu et al. 2019);
    ``rule="cac"`` ramps them with ``pump`` and ``target`` (Leleu et al. 2021). Amplitudes are
    clipped at ``1.5 sqrt(a_t)``, which keeps the explicit Euler steps stable.

    Parameters
    ----------
    x
        Initial amplitudes ``(reads, n)``.
    h, J
        Fields and symmetric couplings, dense or sparse.
    pump, target
        Pump ``p_t`` and target ``a_t`` at every step (same length).
    feedback
        Feedback gain ``ε``.
    rule
        ``"cac"`` (ramped schedules) or ``"ahc"`` (fixed at the final values).
    error_rate
        Rate ``κ`` of the error variables.
    max_error
        Upper bound on the error variables (``None``: unbounded). With ``ε e ||J|| dt < 2`` the
        explicit Euler steps stay stable however long the error variables grow.
    dt
        Time step.
    noise
        Optional Gaussian noise ``σ`` per ``√dt``.
    generator
        Random generator for the noise.
    record_every, callback
        As in :func:`cim_langevin`.

    Returns
    -------
    CIMTrajectory
        The final amplitudes and any recorded snapshots.
    """
    if rule not in ("cac", "ahc"):
        raise ValueError(f"rule must be 'cac' or 'ahc'; got {rule!r}.")
    if len(pump) != len(target):
        raise ValueError("pump and target must have one value per step (the same length).")
    steps = len(pump)
    if rule == "ahc":
        pump = torch.full((steps,), float(pump[-1]))
        target = torch.full((steps,), float(target[-1]))
    record, result = _recorder(record_every)
    record(0, x, False)
    e = torch.ones_like(x)
    sdt = noise * dt**0.5
    with small_problem_threads(x.shape[-1]):
        for t in range(steps):
            p, a = float(pump[t]), float(target[t])
            fb = local_field(x, J) + a**0.5 * h
            x = x + dt * ((p - 1.0) * x - x**3 - feedback * e * fb)
            if noise > 0:
                x = x + sdt * torch.randn(
                    x.shape, generator=generator, device=x.device, dtype=x.dtype
                )
            e = e - dt * error_rate * e * (x * x - a)
            if max_error is not None:
                e = e.clamp(max=max_error)
            bound = 1.5 * a**0.5
            x = x.clamp(-bound, bound)
            record(t + 1, x, t == steps - 1)
            if callback is not None:
                callback(t, x)
    return result(x)


def simulated_bifurcation(
    x: torch.Tensor,
    y: torch.Tensor,
    h: torch.Tensor,
    J: torch.Tensor,
    num_steps: int,
    *,
    c0: float,
    dt: float = 1.0,
    discrete: bool = True,
    a0: float = 1.0,
    record_every: int | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> CIMTrajectory:
    """Ballistic (``discrete=False``) or discrete (``discrete=True``) simulated bifurcation.

    Symplectic Euler steps of Goto et al. (2021), with the bifurcation parameter ``a_t`` rising
    linearly from 0 to ``a0``::

        y ← y + [-(a0 - a_t) x - c0 (φ(x) J + h)] dt,    x ← x + a0 y dt,
        x_i ← sign(x_i), y_i ← 0   wherever |x_i| > 1,

    with ``φ(x) = x`` (bSB) or ``sign(x)`` (dSB).

    Parameters
    ----------
    x, y
        Initial positions and momenta ``(reads, n)``.
    h, J
        Fields and symmetric couplings, dense or sparse.
    num_steps
        Number of steps.
    c0
        Coupling gain (Goto suggests ``≈ 0.5 / (σ_J sqrt(n))``).
    dt
        Time step.
    discrete
        Use ``sign(x)`` in the coupling term (dSB).
    a0
        Final bifurcation parameter.
    record_every, callback
        As in :func:`cim_langevin`.

    Returns
    -------
    CIMTrajectory
        The final positions and any recorded snapshots.
    """
    record, result = _recorder(record_every)
    record(0, x, False)
    with small_problem_threads(x.shape[-1]):
        for t in range(num_steps):
            a = a0 * t / max(num_steps - 1, 1)
            phi = torch.sign(x) if discrete else x
            y = y + dt * (-(a0 - a) * x - c0 * (local_field(phi, J) + h))
            x = x + dt * a0 * y
            wall = x.abs() > 1.0
            x = torch.where(wall, torch.sign(x), x)
            y = torch.where(wall, torch.zeros_like(y), y)
            record(t + 1, x, t == num_steps - 1)
            if callback is not None:
                callback(t, x)
    return result(x)
