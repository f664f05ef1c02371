"""Samplers for Ising problems: exact, Gibbs (torch), simulated annealing, simulated CIM, Kaiwu."""

from qbm_lite.samplers.annealing import AnnealingSampler, fixed_beta_schedule
from qbm_lite.samplers.base import DimodSamplerAdapter, SpinSampler, TorchDimodSampler
from qbm_lite.samplers.cim import SimulatedCIMSampler
from qbm_lite.samplers.exact import ExactSampler
from qbm_lite.samplers.gibbs import GibbsSampler, colour_classes, gibbs_sweeps
from qbm_lite.samplers.kaiwu import EnumerationIsingSolver, KaiwuSampler
from qbm_lite.samplers.tempering import ParallelTemperingSampler

__all__ = [
    "AnnealingSampler",
    "DimodSamplerAdapter",
    "EnumerationIsingSolver",
    "ExactSampler",
    "GibbsSampler",
    "KaiwuSampler",
    "ParallelTemperingSampler",
    "SimulatedCIMSampler",
    "SpinSampler",
    "TorchDimodSampler",
    "colour_classes",
    "fixed_beta_schedule",
    "gibbs_sweeps",
]
