"""The QBM-VAE: a VAE whose prior is a Boltzmann machine over binary latents, sampled by a
pluggable Ising sampler (Gibbs, simulated annealing, the simulated CIM, any dimod sampler)."""

from qbm_lite.vae.model import QBMVAE, default_sampler, make_sampler
from qbm_lite.vae.module import LossOutput, VAEModule
from qbm_lite.vae.priors import BoltzmannPrior, GaussianPrior
from qbm_lite.vae.relaxations import Relaxation
from qbm_lite.vae.training import Trainer, TrainingDivergedError

__all__ = [
    "QBMVAE",
    "BoltzmannPrior",
    "GaussianPrior",
    "LossOutput",
    "Relaxation",
    "Trainer",
    "TrainingDivergedError",
    "VAEModule",
    "default_sampler",
    "make_sampler",
]
