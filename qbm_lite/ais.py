"""Annealed importance sampling (AIS) estimates of log partition functions.

AIS (Neal, 2001) walks a population of chains through distributions ``p_0, p_1, ..., p_K`` that
interpolate between a tractable base ``p_0`` (known ``Z_0``) and the target ``p_K``. Each chain
collects the importance weight ``log w = sum_k [log f_{k+1}(x_k) - log f_k(x_k)]`` and

    Z_K / Z_0 ≈ mean(w),

an unbiased estimate of ``Z`` (so ``log Ẑ`` is, on average, slightly too low). Two versions
live here:

- :func:`ais_ising` for an Ising model (a fully connected Boltzmann machine, a VAE prior) given as
  torch ``(h, J)`` in the convention of :mod:`qbm_lite.ising`: the couplings are switched on,
  ``E_beta(s) = h·s + beta ½ sᵀJs``, from independent spins at ``beta = 0``;
- :func:`ais_rbm` for a binary RBM, the scheme of Salakhutdinov & Murray (2008): hidden units are
  summed out analytically and the base model is a visible-bias-only RBM (the data's base rates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from qbm_lite.config import torch_generator
from qbm_lite.samplers.base import check_problem

__all__ = ["AISResult", "ais_ising", "ais_rbm", "beta_schedule"]


@dataclass(frozen=True)
class AISResult:
    """The outcome of an AIS run.

    Attributes
    ----------
    log_z
        The estimate ``log Ẑ = log Z_0 + log mean(w)``.
    std_err
        Standard error of ``log Ẑ`` by the delta method, ``std(w) / (mean(w) sqrt(M))``.
    log_weights
        The ``M`` log importance weights (without ``log Z_0``), float64 numpy array.
    log_z0
        Log partition function of the base distribution.
    """

    log_z: float
    std_err: float
    log_weights: np.ndarray
    log_z0: float

    @property
    def num_chains(self) -> int:
        """Number of AIS chains ``M``."""
        return int(self.log_weights.shape[0])

    @property
    def effective_sample_size(self) -> float:
        """Kish's effective sample size ``(Σw)² / Σw²`` of the importance weights."""
        w = np.exp(self.log_weights - self.log_weights.max())
        return float(w.sum() ** 2 / (w**2).sum())

    def interval(self, num_std: float = 3.0) -> tuple[float, float]:
        """``log(Ẑ ∓ num_std σ_Ẑ)``, as Salakhutdinov & Murray report it (lower may be -inf)."""
        rel = self.std_err * num_std  # σ_Ẑ / Ẑ
        low = self.log_z + math.log(1.0 - rel) if rel < 1.0 else -math.inf
        return low, self.log_z + math.log(1.0 + rel)

    def __repr__(self) -> str:
        return (
            f"AISResult(log_z={self.log_z:.4f}, std_err={self.std_err:.4f}, "
            f"num_chains={self.num_chains}, ess={self.effective_sample_size:.1f})"
        )


def beta_schedule(num_betas: int) -> np.ndarray:
    """The inverse temperatures ``0 = β_0 < ... < β_K = 1`` used by default (``K + 1`` values).

    The average of a linear and a geometric spacing (from ``1e-3``): dense near ``β = 0``, where a
    model that starts from independent units changes fastest, without starving ``β`` near 1.
    """
    if int(num_betas) < 2:
        raise ValueError(f"num_betas must be at least 2 (the two end points); got {num_betas}.")
    k = int(num_betas)
    lin = np.linspace(0.0, 1.0, k)
    geo = np.concatenate([[0.0], np.geomspace(1e-3, 1.0, k - 1)])
    return 0.5 * (lin + geo)


def _steps(num_betas: int, progress: bool):
    """``range(1, num_betas)``, wrapped in a tqdm bar when ``progress`` (tqdm imported lazily)."""
    if not progress:
        return range(1, num_betas)
    from tqdm.auto import tqdm

    return tqdm(range(1, num_betas), desc="AIS", leave=False)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _finish(log_w: torch.Tensor, log_z0: float) -> AISResult:
    lw = log_w.detach().double().cpu().numpy()
    m = lw.shape[0]
    log_mean = float(np.logaddexp.reduce(lw) - math.log(m))
    w = np.exp(lw - log_mean)  # weights normalized to mean 1
    std_err = float(w.std(ddof=1) / math.sqrt(m)) if m > 1 else math.inf
    return AISResult(log_z=log_z0 + log_mean, std_err=std_err, log_weights=lw, log_z0=log_z0)


def _check_ais_args(num_chains: int, num_betas: int) -> None:
    if int(num_chains) < 2:
        raise ValueError(f"num_chains must be at least 2 to estimate an error; got {num_chains}.")
    if int(num_betas) < 2:
        raise ValueError(f"num_betas must be at least 2; got {num_betas}.")


def ais_ising(
    h: torch.Tensor,
    J: torch.Tensor,
    *,
    num_chains: int = 200,
    num_betas: int = 1000,
    sweeps_per_beta: int = 1,
    seed: int | None = 0,
    progress: bool = False,
) -> AISResult:
    """AIS estimate of ``log Z = log Σ_s exp(-h·s - ½ sᵀJs)`` over spins ``s ∈ {-1, +1}^n``.

    The path is ``E_β(s) = h·s + β ½ sᵀJs``: at ``β = 0`` the spins are independent and
    ``log Z_0 = Σ_i log(2 cosh h_i)``; each step runs ``sweeps_per_beta`` sequential heat-bath
    sweeps at the new ``β``. Works in float64 and does not track gradients.

    Parameters
    ----------
    h, J
        Fields ``(n,)`` and symmetric, zero-diagonal couplings ``(n, n)``
        (see :mod:`qbm_lite.ising`).
    num_chains
        Number of independent AIS chains (importance samples).
    num_betas
        Number of inverse temperatures, end points included.
    sweeps_per_beta
        Gibbs sweeps per intermediate distribution.
    seed
        Seed of the random generator (None for fresh entropy).
    progress
        Show a progress bar.

    Returns
    -------
    AISResult
        The estimate, its standard error and the log weights.
    """
    check_problem(h, J, num_chains, None)
    _check_ais_args(num_chains, num_betas)
    # Sequential single-spin updates are many tiny operations: numpy has less overhead per call.
    h_np = h.detach().double().cpu().numpy()
    J_np = (J.to_dense() if J.is_sparse else J).detach().double().cpu().numpy()
    n, m = h_np.shape[0], int(num_chains)
    rng = np.random.default_rng(seed)
    betas = beta_schedule(num_betas)
    log_z0 = float(np.logaddexp(h_np, -h_np).sum())  # Σ log(2 cosh h_i)
    # Exact sample from p_0: p(s_i = +1) = sigmoid(-2 h_i). Chains are columns (layout (n, m)).
    s = np.where(rng.random((n, m)) < _sigmoid(-2.0 * h_np)[:, None], 1.0, -1.0)
    log_w = np.zeros(m)
    for k in _steps(len(betas), progress):
        # log f_k(s) - log f_{k-1}(s) = -(β_k - β_{k-1}) ½ sᵀJs
        log_w -= (betas[k] - betas[k - 1]) * 0.5 * np.einsum("im,im->m", J_np @ s, s)
        for _ in range(int(sweeps_per_beta)):
            u = rng.random((n, m))
            for i in range(n):
                field = h_np[i] + betas[k] * (J_np[i] @ s)
                s[i] = np.where(u[i] < _sigmoid(-2.0 * field), 1.0, -1.0)
    return _finish(torch.from_numpy(log_w), log_z0)


def ais_rbm(
    W: torch.Tensor,
    visible_bias: torch.Tensor,
    hidden_bias: torch.Tensor,
    *,
    base_visible_bias: torch.Tensor | None = None,
    num_chains: int = 200,
    num_betas: int = 1000,
    seed: int | None = 0,
    progress: bool = False,
) -> AISResult:
    """AIS estimate of the log partition function of a binary RBM (Salakhutdinov & Murray, 2008).

    The RBM has energy ``E(v, h) = -a·v - b·h - vᵀWh`` over ``v ∈ {0,1}^V``, ``h ∈ {0,1}^H``.
    The intermediate distributions over ``v`` are
    ``log f_β(v) = (1-β) a_A·v + β a·v + Σ_j softplus(β (b_j + (vW)_j))``, so that ``f_0`` is the
    independent base model with visible biases ``a_A`` (``log Z_0 = H log 2 + Σ softplus(a_A)``)
    and ``f_1(v) = exp(-F(v))``. Transitions are one block-Gibbs step ``v → h → v`` at ``β``.

    Parameters
    ----------
    W
        Weights ``(V, H)``.
    visible_bias, hidden_bias
        Biases ``a`` ``(V,)`` and ``b`` ``(H,)``.
    base_visible_bias
        Visible biases ``a_A`` of the base model; the log-odds of the data's pixel means is a good
        choice (it makes ``p_0`` close to the data). Zeros (uniform) if None.
    num_chains
        Number of independent AIS chains.
    num_betas
        Number of inverse temperatures, end points included.
    seed
        Seed of the random generator (None for fresh entropy).
    progress
        Show a progress bar.

    Returns
    -------
    AISResult
        The estimate, its standard error and the log weights.
    """
    _check_ais_args(num_chains, num_betas)
    W = W.detach().double()
    a = visible_bias.detach().double()
    b = hidden_bias.detach().double()
    if W.ndim != 2 or a.shape != (W.shape[0],) or b.shape != (W.shape[1],):
        raise ValueError(
            "W must be (V, H) with visible_bias (V,) and hidden_bias (H,); "
            f"got W {tuple(W.shape)}, "
            f"visible_bias {tuple(a.shape)}, hidden_bias {tuple(b.shape)}."
        )
    a0 = torch.zeros_like(a) if base_visible_bias is None else base_visible_bias.detach().double()
    if a0.shape != a.shape:
        raise ValueError(
            f"base_visible_bias must have shape {tuple(a.shape)}; got {tuple(a0.shape)}."
        )
    n_hidden = W.shape[1]
    gen = torch_generator(seed, W.device)
    betas = beta_schedule(num_betas)

    def log_f(v: torch.Tensor, beta: float) -> torch.Tensor:
        return v @ ((1.0 - beta) * a0 + beta * a) + F.softplus(beta * (v @ W + b)).sum(-1)

    log_z0 = float(F.softplus(a0).sum()) + n_hidden * math.log(2.0)
    u = torch.rand((int(num_chains), W.shape[0]), generator=gen, dtype=W.dtype, device=W.device)
    v = (u < torch.sigmoid(a0)).to(W.dtype)
    log_w = torch.zeros(int(num_chains), dtype=W.dtype, device=W.device)
    for k in _steps(len(betas), progress):
        beta = float(betas[k])
        log_w += log_f(v, beta) - log_f(v, float(betas[k - 1]))
        p_h = torch.sigmoid(beta * (v @ W + b))
        hid = torch.bernoulli(p_h, generator=gen)
        p_v = torch.sigmoid((1.0 - beta) * a0 + beta * (a + hid @ W.T))
        v = torch.bernoulli(p_v, generator=gen)
    return _finish(log_w, log_z0)
