"""Encoder and decoder networks: small multilayer perceptrons with optional batch covariates."""

from __future__ import annotations

import torch
from torch import nn

from qbm_lite.vae.likelihoods import LikelihoodName

__all__ = ["Decoder", "Encoder", "mlp"]


def mlp(n_in: int, n_hidden: int, n_layers: int, dropout: float = 0.0) -> nn.Sequential:
    """``n_layers`` blocks of Linear → LayerNorm → ReLU (→ Dropout); output width ``n_hidden``."""
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [
            nn.Linear(n_in if i == 0 else n_hidden, n_hidden),
            nn.LayerNorm(n_hidden),
            nn.ReLU(),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """Maps ``x`` (and optionally a one-hot batch) to ``n_out`` posterior parameters.

    Parameters
    ----------
    n_input
        Number of features.
    n_out
        Number of outputs (``n_latent`` logits, or ``2 n_latent`` for a Gaussian's mean and
        log-variance).
    n_batch
        Width of the one-hot batch covariate appended to the input (0 for none).
    n_hidden, n_layers, dropout
        Network shape.
    """

    def __init__(
        self,
        n_input: int,
        n_out: int,
        n_batch: int = 0,
        n_hidden: int = 128,
        n_layers: int = 1,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.n_batch = n_batch
        self.body = mlp(n_input + n_batch, n_hidden, n_layers, dropout)
        self.head = nn.Linear(n_hidden if n_layers > 0 else n_input + n_batch, n_out)

    def forward(self, x: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        if self.n_batch:
            x = torch.cat([x, batch], dim=-1)
        return self.head(self.body(x))


class Decoder(nn.Module):
    """Maps a latent code (and a one-hot batch) to the parameters of the likelihood.

    Parameters
    ----------
    n_latent
        Width of the latent code.
    n_output
        Number of features.
    likelihood
        ``"nb"``, ``"zinb"``, ``"gaussian"`` or ``"bernoulli"``.
    n_batch
        Width of the one-hot batch covariate (0 for none).
    n_hidden, n_layers
        Network shape.
    """

    def __init__(
        self,
        n_latent: int,
        n_output: int,
        likelihood: LikelihoodName,
        n_batch: int = 0,
        n_hidden: int = 128,
        n_layers: int = 1,
    ) -> None:
        super().__init__()
        self.likelihood = likelihood
        self.n_batch = n_batch
        self.body = mlp(n_latent + n_batch, n_hidden, n_layers)
        width = n_hidden if n_layers > 0 else n_latent + n_batch
        self.head = nn.Linear(width, n_output)
        self.dropout_head = nn.Linear(width, n_output) if likelihood == "zinb" else None
        # Per-feature parameter: log inverse dispersion (NB/ZINB) or log variance (Gaussian).
        self.log_param = nn.Parameter(torch.zeros(n_output))

    def forward(
        self,
        zeta: torch.Tensor,
        batch: torch.Tensor | None = None,
        library: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Likelihood parameters: ``mu``/``theta`` (+ ``pi_logits``), ``mean``/``log_var``, or
        ``logits``."""
        if self.n_batch:
            zeta = torch.cat([zeta, batch], dim=-1)
        hidden = self.body(zeta)
        out = self.head(hidden)
        if self.likelihood in ("nb", "zinb"):
            log_mu = torch.log_softmax(out, dim=-1) + torch.log(library.clamp_min(1e-8))
            params = {"mu": torch.exp(log_mu), "log_mu": log_mu, "theta": torch.exp(self.log_param)}
            if self.dropout_head is not None:
                params["pi_logits"] = self.dropout_head(hidden)
            return params
        if self.likelihood == "gaussian":
            return {"mean": out, "log_var": self.log_param}
        return {"logits": out}
