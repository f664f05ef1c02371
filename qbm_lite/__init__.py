"""QBM-Lite: Ising models, samplers (exact, Gibbs, annealing, a simulated Coherent Ising Machine),
Boltzmann machines and the QBM-VAE, the library behind the QBM-Lite book.

Heavy parts (the VAE, single-cell data and metrics) are imported on first use, so that
``import qbm_lite`` stays fast.
"""

from importlib import import_module
from typing import Any

from qbm_lite import config
from qbm_lite.exact import ExactBoltzmann
from qbm_lite.ising import IsingModel
from qbm_lite.samplers import (
    AnnealingSampler,
    DimodSamplerAdapter,
    ExactSampler,
    GibbsSampler,
    ParallelTemperingSampler,
    SimulatedCIMSampler,
    SpinSampler,
)

__version__ = "0.1.0"

# Public names that live in modules imported on first use: name -> module.
_LAZY = {
    "RBM": "qbm_lite.boltzmann",
    "BoltzmannMachine": "qbm_lite.boltzmann",
    "QBMVAE": "qbm_lite.vae",
    "data": "qbm_lite.data",
    "metrics": "qbm_lite.metrics",
    "baselines": "qbm_lite.baselines",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = import_module(_LAZY[name])
        return module if module.__name__.endswith(name) else getattr(module, name)
    raise AttributeError(f"module 'qbm_lite' has no attribute {name!r}")


__all__ = [
    "AnnealingSampler",
    "BoltzmannMachine",
    "DimodSamplerAdapter",
    "ExactBoltzmann",
    "ExactSampler",
    "GibbsSampler",
    "ParallelTemperingSampler",
    "IsingModel",
    "QBMVAE",
    "RBM",
    "SimulatedCIMSampler",
    "SpinSampler",
    "config",
]
