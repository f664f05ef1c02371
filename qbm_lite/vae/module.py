"""The torch-only VAE module: ``inference``, ``generative`` and ``loss`` (no AnnData here).

One class serves both models: ``prior="gaussian"`` is the plain VAE, ``prior="boltzmann"`` the
QBM-VAE with binary latents, a relaxation and a Boltzmann-machine prior. The networks are the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from qbm_lite.samplers.base import SpinSampler
from qbm_lite.vae.likelihoods import (
    LikelihoodName,
    bernoulli_log_prob,
    gaussian_log_prob,
    nb_log_prob,
    zinb_from_nb,
)
from qbm_lite.vae.modules import Decoder, Encoder
from qbm_lite.vae.priors import BoltzmannPrior, GaussianPrior
from qbm_lite.vae.relaxations import Relaxation, RelaxationName

__all__ = ["LossOutput", "PriorName", "VAEModule"]

PriorName = Literal["boltzmann", "gaussian"]
COUNT_LIKELIHOODS = ("nb", "zinb")


@dataclass
class LossOutput:
    """Named loss terms, each averaged over the cells of a minibatch.

    Attributes
    ----------
    loss
        What is minimized: ``reconstruction + kl_weight * kl``.
    reconstruction
        ``−log p(x | ζ)`` summed over features (one relaxed / reparameterized sample).
    kl
        ``KL(q(z | x) ‖ p(z))``. For the Boltzmann prior its value includes ``log Z`` only when the
        prior computes it exactly (see :class:`~qbm_lite.vae.priors.BoltzmannPrior`).
    """

    loss: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        """The terms as plain Python floats."""
        return {k: float(v.detach()) for k, v in vars(self).items()}


class VAEModule(nn.Module):
    """Encoder, relaxation, prior and decoder of the (QBM-)VAE.

    Parameters
    ----------
    n_input
        Number of features (genes or pixels).
    likelihood
        ``"nb"``, ``"zinb"``, ``"gaussian"`` or ``"bernoulli"``.
    prior
        ``"boltzmann"`` or ``"gaussian"``.
    sampler
        Negative-phase sampler of the Boltzmann prior (ignored for the Gaussian prior).
    n_batch
        Number of batches (one-hot covariate; 0 or 1 for none).
    n_latent, n_hidden, n_layers, dropout
        Network sizes.
    relaxation, relaxation_beta
        The relaxation of the binary latents, see :mod:`qbm_lite.vae.relaxations`.
    encode_covariates
        Also give the batch to the encoder (it always goes to the decoder).
    num_negative
        Negative-phase samples per step.
    """

    def __init__(
        self,
        n_input: int,
        likelihood: LikelihoodName = "nb",
        prior: PriorName = "boltzmann",
        sampler: SpinSampler | None = None,
        n_batch: int = 0,
        n_latent: int = 10,
        n_hidden: int = 128,
        n_layers: int = 1,
        dropout: float = 0.1,
        relaxation: RelaxationName = "overlapping",
        relaxation_beta: float = 8.0,
        encode_covariates: bool = False,
        num_negative: int = 128,
    ) -> None:
        super().__init__()
        self.likelihood = likelihood
        self.prior_name = prior
        self.n_batch = n_batch if n_batch > 1 else 0
        self.n_latent = n_latent
        n_enc_out = n_latent if prior == "boltzmann" else 2 * n_latent
        self.encoder = Encoder(
            n_input,
            n_enc_out,
            self.n_batch if encode_covariates else 0,
            n_hidden,
            n_layers,
            dropout,
        )
        self.decoder = Decoder(n_latent, n_input, likelihood, self.n_batch, n_hidden, n_layers)
        if prior == "boltzmann":
            if sampler is None:
                raise ValueError("prior='boltzmann' needs a sampler for the negative phase.")
            self.prior: BoltzmannPrior | GaussianPrior = BoltzmannPrior(
                n_latent, sampler, num_negative
            )
            self.relaxation = Relaxation(relaxation, relaxation_beta)
        else:
            self.prior = GaussianPrior(n_latent)
            self.relaxation = None

    # --- the three scvi-style steps ------------------------------------------------------
    def inference(
        self, x: torch.Tensor, batch: torch.Tensor | None = None, sample: bool = True
    ) -> dict[str, torch.Tensor]:
        """Encode: posterior parameters, a latent draw ``z`` (relaxed ``ζ`` or Gaussian) and the
        library size. With ``sample=False`` the latent is the posterior mean."""
        library = x.sum(-1, keepdim=True)
        x_in = torch.log1p(x) if self.likelihood in COUNT_LIKELIHOODS else x
        out = self.encoder(x_in, batch)
        if self.prior_name == "boltzmann":
            q = torch.sigmoid(out)
            z = self.relaxation.rsample(q) if sample else q
            return {"logits": out, "q": q, "z": z, "library": library}
        mu, log_var = out.chunk(2, dim=-1)
        log_var = log_var.clamp(-12.0, 8.0)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var) if sample else mu
        return {"mu": mu, "log_var": log_var, "z": z, "library": library}

    def generative(
        self,
        z: torch.Tensor,
        batch: torch.Tensor | None = None,
        library: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Decode a latent code to the likelihood's parameters."""
        return self.decoder(z, batch, library)

    def log_likelihood(
        self,
        x: torch.Tensor,
        params: dict[str, torch.Tensor],
        x_lgamma_sum: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``log p(x | params)`` summed over features, shape ``(batch,)``.

        For count likelihoods ``x_lgamma_sum`` may hold the per-cell data constant
        ``Σ_g lgamma(x_g + 1)``, precomputed once instead of at every step.
        """
        if self.likelihood in COUNT_LIKELIHOODS:
            const = 0.0 if x_lgamma_sum is not None else None
            nb = nb_log_prob(x, params["mu"], params["theta"], params.get("log_mu"), const)
            if self.likelihood == "zinb":
                nb = zinb_from_nb(x, nb, params["pi_logits"])
            lp = nb.sum(-1)
            return lp if x_lgamma_sum is None else lp - x_lgamma_sum
        if self.likelihood == "gaussian":
            lp = gaussian_log_prob(x, params["mean"], params["log_var"])
        else:
            lp = bernoulli_log_prob(x, params["logits"])
        return lp.sum(-1)

    def kl(
        self,
        inf: dict[str, torch.Tensor],
        negative: torch.Tensor | None = None,
        log_z: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """Per-cell KL; the Boltzmann prior uses the negative phase if given, else exact log Z."""
        if self.prior_name == "boltzmann":
            return self.prior.kl(inf["logits"], negative, log_z)
        return self.prior.kl(inf["mu"], inf["log_var"])

    def forward(
        self,
        x: torch.Tensor,
        batch: torch.Tensor | None = None,
        negative: torch.Tensor | None = None,
        kl_weight: float = 1.0,
        x_lgamma_sum: torch.Tensor | None = None,
    ) -> LossOutput:
        """Negative ELBO of a minibatch, averaged over cells, with its named terms.

        This is what :class:`torch.nn.parallel.DistributedDataParallel` wraps, so that the
        gradients of all parameters (the prior's ``h`` and ``J`` included) are all-reduced.

        Parameters
        ----------
        x
            Data ``(batch, n_input)``.
        batch
            One-hot batch covariate ``(batch, n_batch)`` or None.
        negative
            Negative-phase spins ``(num_negative, n_latent)`` for the Boltzmann prior's
            ``∇ log Z``; None uses the exact, differentiable ``log Z`` (``n_latent <= 20``).
        kl_weight
            Weight of the KL term (warm-up).
        x_lgamma_sum
            Per-cell count constant (see :meth:`log_likelihood`).
        """
        return self.loss(x, batch, negative, kl_weight, x_lgamma_sum)

    def loss(
        self,
        x: torch.Tensor,
        batch: torch.Tensor | None = None,
        negative: torch.Tensor | None = None,
        kl_weight: float = 1.0,
        x_lgamma_sum: torch.Tensor | None = None,
    ) -> LossOutput:
        """Negative ELBO of a minibatch, averaged over cells, with its named terms (the same as
        calling the module)."""
        inf = self.inference(x, batch)
        params = self.generative(inf["z"], batch, inf["library"])
        recon = -self.log_likelihood(x, params, x_lgamma_sum).mean()
        kl = self.kl(inf, negative).mean()
        return LossOutput(recon + kl_weight * kl, recon, kl)

    # --- evaluation ------------------------------------------------------------------------
    @torch.no_grad()
    def elbo(self, x: torch.Tensor, batch: torch.Tensor | None = None, log_z=None) -> torch.Tensor:
        """Per-cell ELBO with the exact (or given) ``log Z`` and one latent draw."""
        inf = self.inference(x, batch)
        params = self.generative(inf["z"], batch, inf["library"])
        return self.log_likelihood(x, params) - self.kl(inf, None, log_z)

    @torch.no_grad()
    def marginal_ll(
        self,
        x: torch.Tensor,
        batch: torch.Tensor | None = None,
        n_samples: int = 100,
        log_z=None,
        chunk: int = 25,
    ) -> torch.Tensor:
        """Importance-weighted estimate of ``log p(x)`` per cell (Burda et al. 2016).

        For the Boltzmann prior the weights are ``p_θ(z) p(x | ζ) / q(z | x)`` with bits
        ``z ~ q(z | x)`` and ``ζ ~ r(ζ | z)``: the relaxation's density cancels.
        """
        inf = self.inference(x, batch, sample=False)
        log_ws = []
        if self.prior_name == "boltzmann":
            log_z = self.prior.log_partition() if log_z is None else log_z
        for start in range(0, n_samples, chunk):
            k = min(chunk, n_samples - start)
            if self.prior_name == "boltzmann":
                q = inf["q"].expand(k, *inf["q"].shape)
                bits = torch.bernoulli(q)
                zeta = self.relaxation.given_bits(bits)
                logits = inf["logits"]
                log_q = -nn.functional.binary_cross_entropy_with_logits(
                    logits.expand_as(bits), bits, reduction="none"
                ).sum(-1)
                log_p = self.prior.log_prob(2 * bits - 1, log_z)
                z = zeta
            else:
                std = torch.exp(0.5 * inf["log_var"])
                eps = torch.randn(k, *inf["mu"].shape, device=x.device, dtype=x.dtype)
                z = inf["mu"] + eps * std
                log_q = (-0.5 * (eps**2 + math.log(2 * math.pi)) - torch.log(std)).sum(-1)
                log_p = self.prior.log_prob(z)
            b = None if batch is None else batch.expand(k, *batch.shape)
            params = self.generative(z, b, inf["library"].expand(k, *inf["library"].shape))
            log_ws.append(self.log_likelihood(x.expand(k, *x.shape), params) + log_p - log_q)
        log_w = torch.cat(log_ws, dim=0)
        return torch.logsumexp(log_w, dim=0) - math.log(n_samples)
