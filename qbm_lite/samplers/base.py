"""The sampler protocol of the torch fast path, and the adapter that lets any dimod sampler in.

Training code asks a sampler for spins with :meth:`SpinSampler.sample_spins`: fields ``h``
``(n,)`` and couplings ``J`` ``(n, n)`` (symmetric, zero diagonal, dimod's sign convention; see
:mod:`qbm_lite.ising`) go in as tensors, and a ``(num_samples, n)`` tensor of ±1 comes back on the
same device and dtype, distributed approximately as ``exp(-beta E(s))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import dimod
import numpy as np
import torch

from qbm_lite.ising import IsingModel

__all__ = ["DimodSamplerAdapter", "SpinSampler", "TorchDimodSampler", "check_problem"]


@runtime_checkable
class SpinSampler(Protocol):
    """Anything that draws ±1 spin configurations for an Ising problem given as tensors."""

    def sample_spins(
        self, h: torch.Tensor, J: torch.Tensor, num_samples: int, *, beta: float = 1.0
    ) -> torch.Tensor:
        """Return ``(num_samples, n)`` spins in {-1, +1} approximately from ``exp(-beta E)``."""
        ...


def random_spins(
    shape: tuple[int, ...], generator: torch.Generator, like: torch.Tensor
) -> torch.Tensor:
    """Uniformly random ±1 states of ``shape`` on ``like``'s device and dtype (chain starts)."""
    bits = torch.randint(0, 2, shape, generator=generator, device=like.device)
    return (2 * bits - 1).to(like.dtype)


def check_problem(h: torch.Tensor, J: torch.Tensor, num_samples: int, beta: float | None) -> None:
    """Validate a sampling request with messages that name the problem and the fix."""
    if h.ndim != 1:
        raise ValueError(f"h must have shape (n,); got {tuple(h.shape)}.")
    n = h.shape[0]
    if J.shape != (n, n):
        raise ValueError(f"J must have shape ({n}, {n}) to match h; got {tuple(J.shape)}.")
    if J.layout == torch.sparse_coo:
        J_values = J.coalesce().values()
    elif J.layout != torch.strided:
        J_values = J.values()
    else:
        J_values = J
    if not torch.isfinite(h).all() or not torch.isfinite(J_values).all():
        raise ValueError("h or J contains NaN or infinite values; every entry must be finite.")
    if J.layout == torch.strided and n > 0:
        # An asymmetric J or a non-zero diagonal silently biases every local-field update.
        scale = max(1.0, float(J.detach().abs().max()))
        if float((J - J.T).detach().abs().max()) > 1e-5 * scale:
            raise ValueError(
                "J must be symmetric (J[i, j] == J[j, i]); pass (J + J.T) / 2, or build it as "
                "U + U.T from a strictly upper-triangular U."
            )
        if bool((J.detach().diagonal() != 0).any()):
            raise ValueError(
                "J must have a zero diagonal (s_i**2 = 1 makes a diagonal term a constant); "
                "zero it, e.g. J - torch.diag(torch.diagonal(J))."
            )
    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be a positive integer; got {num_samples}.")
    if beta is not None and (not np.isfinite(beta) or beta <= 0):
        raise ValueError(f"beta must be a positive, finite inverse temperature; got {beta}.")


class TorchDimodSampler(dimod.Sampler):
    """Base class: a torch :class:`SpinSampler` that is also a ``dimod.Sampler``.

    Subclasses implement ``sample_spins``; ``sample(bqm, num_reads=..., beta=..., seed=...)`` is
    provided here and returns a ``dimod.SampleSet``.
    """

    #: Inverse temperature that :meth:`sample` uses when it is called without ``beta``. The base
    #: class samples the Boltzmann distribution at 1.0; a subclass whose sampler is an optimizer
    #: by default (:class:`~qbm_lite.samplers.cim.SimulatedCIMSampler`) sets ``None``.
    default_beta: float | None = 1.0

    @property
    def parameters(self) -> dict[str, list]:
        return {"num_reads": [], "beta": [], "seed": []}

    @property
    def properties(self) -> dict[str, Any]:
        return {}

    def sample_spins(
        self, h: torch.Tensor, J: torch.Tensor, num_samples: int, *, beta: float = 1.0
    ) -> torch.Tensor:
        raise NotImplementedError

    def sample(
        self,
        bqm: dimod.BinaryQuadraticModel,
        num_reads: int = 10,
        beta: float | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> dimod.SampleSet:
        """Sample a BQM; returns a ``dimod.SampleSet`` in the BQM's own vartype."""
        self.remove_unknown_kwargs(**kwargs)
        beta = self.default_beta if beta is None else beta
        model = IsingModel.from_bqm(bqm)
        labels = model.labels or []
        if model.n == 0:
            return dimod.SampleSet.from_samples_bqm(([], labels), bqm)
        if seed is not None:
            torch.manual_seed(int(seed))
        h, J = model.to_torch(dtype=torch.float64)
        if model.is_sparse:
            J = J.to_dense()
        spins = self.sample_spins(h, J, int(num_reads), beta=beta).cpu().numpy().astype(np.int8)
        if bqm.vartype is dimod.BINARY:
            spins = (spins + 1) // 2
        return dimod.SampleSet.from_samples_bqm((spins, labels), bqm)


class DimodSamplerAdapter:
    """Use any ``dimod.Sampler`` (neal's SA, a D-Wave QPU, ...) as a torch :class:`SpinSampler`.

    Parameters
    ----------
    sampler
        The dimod sampler.
    beta_kwargs
        How to ask the sampler for inverse temperature ``beta``: a callable mapping ``beta`` to
        extra keyword arguments, or ``None`` to fold ``beta`` into the problem (energies scaled by
        ``beta``), which is right for a sampler whose own inverse temperature is 1.
    **sample_kwargs
        Passed to every ``sampler.sample`` call (e.g. ``num_sweeps``, ``seed``).
    """

    def __init__(
        self,
        sampler: dimod.Sampler,
        beta_kwargs: Callable[[float], dict[str, Any]] | None = None,
        **sample_kwargs: Any,
    ) -> None:
        if not isinstance(sampler, dimod.Sampler):
            raise TypeError(f"sampler must be a dimod.Sampler; got {type(sampler).__name__}.")
        self.sampler = sampler
        self.beta_kwargs = beta_kwargs
        self.sample_kwargs = sample_kwargs

    def sample_spins(
        self, h: torch.Tensor, J: torch.Tensor, num_samples: int, *, beta: float = 1.0
    ) -> torch.Tensor:
        """Send ``(h, J)`` to the dimod sampler and return its samples as a tensor."""
        check_problem(h, J, num_samples, beta)
        if h.shape[0] == 0:  # dimod returns no rows for an empty model; every read is empty
            return torch.empty((int(num_samples), 0), dtype=h.dtype, device=h.device)
        h_np = h.detach().double().cpu().numpy()
        J_np = (J.to_dense() if J.layout != torch.strided else J).detach().double().cpu().numpy()
        kwargs = dict(self.sample_kwargs)
        if self.beta_kwargs is None:
            model = IsingModel(h_np * beta, J_np * beta)
        else:
            model = IsingModel(h_np, J_np)
            kwargs.update(self.beta_kwargs(beta))
        bqm = model.to_bqm()
        result = self.sampler.sample(bqm, num_reads=int(num_samples), **kwargs)
        return torch.as_tensor(_spins_in_order(result, model.n), dtype=h.dtype, device=h.device)


def _spins_in_order(sampleset: dimod.SampleSet, n: int) -> np.ndarray:
    """Samples as an ``(m, n)`` ±1 array with columns ``0..n-1``, occurrences expanded."""
    ss = sampleset.change_vartype(dimod.SPIN, inplace=False)
    cols = [ss.variables.index(i) for i in range(n)]
    samples = ss.record.sample[:, cols]
    return np.repeat(samples, ss.record.num_occurrences, axis=0)
