"""What a single-cell analyst needs after the latent: denoised expression, generated counts, DE.

:class:`RNASeqMixin` gives :class:`~qbm_lite.vae.model.QBMVAE` the scvi-tools methods of the same
names (scvi-tools' ``RNASeqMixin``, Lopez et al. 2018):

- :meth:`~RNASeqMixin.get_normalized_expression`: the decoder's expression frequencies ``ρ``
  (denoised, library-size free), averaged over posterior samples of the latent;
- :meth:`~RNASeqMixin.posterior_predictive_sample`: counts drawn from the likelihood (NB
  dispersion and ZINB dropout included) given posterior samples, for model checks;
- :meth:`~RNASeqMixin.differential_expression`: Bayesian differential expression from posterior
  samples of ``ρ`` in two groups of cells (Lopez et al. 2018; Boyeau et al. 2019, the "change"
  mode): the log-fold-change distribution per gene, ``P(|LFC| > δ)`` and a posterior-expected
  false-discovery-rate control.

The mixin uses only the model's stable attributes: ``module`` (``inference``, ``generative``,
``relaxation``, ``prior_name``, ``n_batch``), ``config``, ``batch_categories``, ``var_names``,
``device`` and ``adata``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from qbm_lite.vae._cells import (
    batch_codes,
    check_cell_data,
    iter_cells,
    obs_labels,
    resolve_indices,
)

__all__ = ["RNASeqMixin", "fdr_de_prediction"]

_COUNT_LIKELIHOODS = ("nb", "zinb")
_EPS = 1e-8


def fdr_de_prediction(proba_de: np.ndarray, fdr_target: float = 0.05) -> np.ndarray:
    """Call genes DE so that the posterior expected FDR of the calls is at most ``fdr_target``.

    Sort genes by ``P(DE)`` (descending) and keep the largest top set whose mean ``1 - P(DE)``
    (the expected proportion of false discoveries among the calls) is ``<= fdr_target``
    (Newton et al. 2004; scvi-tools' ``_fdr_de_prediction``, Boyeau et al. 2019).

    Parameters
    ----------
    proba_de
        Posterior probabilities of differential expression, ``(n_genes,)`` in ``[0, 1]``.
    fdr_target
        Target false-discovery rate in ``(0, 1)``.

    Returns
    -------
    numpy.ndarray
        Boolean ``(n_genes,)``: ``True`` for the genes called DE.
    """
    p = np.asarray(proba_de, dtype=float)
    if p.ndim != 1 or not np.all((p >= 0) & (p <= 1)):
        raise ValueError("proba_de must be a 1-D array of probabilities in [0, 1].")
    if not 0 < fdr_target < 1:
        raise ValueError(f"fdr_target must be in (0, 1); got {fdr_target}.")
    order = np.argsort(-p, kind="stable")
    expected_fdr = np.cumsum(1 - p[order]) / np.arange(1, p.size + 1)
    n_called = int(np.sum(expected_fdr <= fdr_target))
    called = np.zeros(p.size, dtype=bool)
    called[order[:n_called]] = True
    return called


@contextlib.contextmanager
def _seeded(device: torch.device, seed: int) -> Iterator[None]:
    """Fork torch's random state, seed it, and restore the caller's state afterwards."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


class RNASeqMixin:
    """Denoised expression, posterior-predictive counts and Bayesian DE for :class:`QBMVAE`."""

    # --- helpers ---------------------------------------------------------------------------
    def _cells(self, adata):
        if adata is None:
            return self.adata
        check_cell_data(self, adata)
        return adata

    def _gene_mask(self, gene_list: Sequence[str] | None) -> np.ndarray:
        if gene_list is None:
            return np.arange(len(self.var_names))
        if isinstance(gene_list, str):
            raise TypeError("gene_list must be a list of gene names, not a single string.")
        pos = {g: i for i, g in enumerate(self.var_names)}
        unknown = [g for g in gene_list if g not in pos]
        if unknown:
            raise ValueError(
                f"genes {unknown[:5]} are not among the model's genes (model.var_names)."
            )
        return np.array([pos[g] for g in gene_list], dtype=np.int64)

    def _batch_list(self, batch: str | Sequence[str] | None) -> list[int] | None:
        """Positions of the requested batches, or ``None`` for each cell's own batch."""
        if batch is None:
            return None
        names = [batch] if isinstance(batch, str) else list(batch)
        if not self.module.n_batch:
            raise ValueError(
                "batch was given but the model has no batch covariate (set up with fewer than two "
                "batches); leave batch=None."
            )
        cats = list(self.batch_categories)
        unknown = [b for b in names if str(b) not in cats]
        if unknown or not names:
            raise ValueError(f"batch must name one or more of {cats}; got {batch!r}.")
        return [cats.index(str(b)) for b in names]

    def _posterior(self, x: torch.Tensor, b: torch.Tensor | None) -> dict[str, torch.Tensor]:
        return self.module.inference(x, b, sample=False)

    def _sample_latent(self, post: dict[str, torch.Tensor], n: int) -> torch.Tensor:
        """``n`` posterior samples ``(n, cells, n_latent)``: relaxed ζ, or Gaussian draws."""
        if self.module.prior_name == "boltzmann":
            q = post["q"].expand(n, *post["q"].shape)
            return self.module.relaxation.rsample(q)
        mu = post["mu"].expand(n, *post["mu"].shape)
        return mu + torch.randn_like(mu) * torch.exp(0.5 * post["log_var"])

    def _decode_mean(
        self,
        z: torch.Tensor,
        onehots: list[torch.Tensor | None],
        library: torch.Tensor | float,
    ) -> torch.Tensor:
        """Decoder expression averaged over the given batch covariates.

        Counts: ``ρ * library`` (ZINB's dropout not applied, as in scvi-tools); Gaussian: the
        mean; Bernoulli: the probability.
        """
        total = None
        for onehot in onehots:
            b = None if onehot is None else onehot.expand(*z.shape[:-1], onehot.shape[-1])
            ones = torch.ones(*z.shape[:-1], 1, device=z.device, dtype=z.dtype)
            params = self.module.generative(z, b, ones)
            lik = self.config["likelihood"]
            if lik in _COUNT_LIKELIHOODS:
                value = params["mu"] * library
            elif lik == "gaussian":
                value = params["mean"].expand(*z.shape[:-1], params["mean"].shape[-1])
            else:
                value = torch.sigmoid(params["logits"])
            total = value if total is None else total + value
        return total / len(onehots)

    def _onehots(
        self, own: torch.Tensor | None, batches: list[int] | None, m: int
    ) -> list[torch.Tensor | None]:
        if batches is None:
            return [own]
        eye = torch.eye(self.module.n_batch, device=self.device)
        return [eye[k].expand(m, -1) for k in batches]

    # --- normalized expression -------------------------------------------------------------
    @torch.no_grad()
    def get_normalized_expression(
        self,
        adata=None,
        indices: Sequence[int] | np.ndarray | None = None,
        batch: str | Sequence[str] | None = None,
        gene_list: Sequence[str] | None = None,
        library_size: float | Literal["latent"] = 1.0,
        n_samples: int = 1,
        return_mean: bool = True,
        batch_size: int = 256,
        seed: int | None = None,
        return_numpy: bool = False,
    ) -> pd.DataFrame | np.ndarray:
        """Denoised expression of each cell: the decoder's output for posterior latent samples.

        For count likelihoods this is ``ρ_g`` (the decoder's softmax over genes, the expected
        share of each gene in the cell's transcripts) times ``library_size``; it is free of the
        sampling noise and of the cell's sequencing depth (scvi-tools' meaning; Lopez et al.
        2018). For the Gaussian likelihood it is the decoder mean, for Bernoulli the
        probability.

        Parameters
        ----------
        adata
            Cells with the model's genes (default: the training data).
        indices
            Row positions (or a boolean mask) of the cells to use; all cells by default.
        batch
            ``None``: decode each cell in its own batch. A batch name, or a list of them:
            decode every cell in those batches and average (scvi-tools' ``transform_batch``),
            e.g. all ``model.batch_categories`` for batch-free expression.
        gene_list
            Genes to return (default all, in the model's order).
        library_size
            Counts only: a number scales ``ρ`` to that many counts per cell (1: frequencies,
            1e4: counts per 10k); ``"latent"`` uses each cell's observed total count.
        n_samples
            Posterior samples of the latent per cell.
        return_mean
            Average over the samples; with ``False`` and ``n_samples > 1`` the samples are
            returned as an array ``(n_samples, n_cells, n_genes)``.
        batch_size
            Cells per chunk.
        seed
            Seed of the posterior samples (default: the model's seed). Torch's global random
            state is left as it was.
        return_numpy
            Return an array ``(n_cells, n_genes)`` instead of a DataFrame.

        Returns
        -------
        pandas.DataFrame or numpy.ndarray
            ``(n_cells, n_genes)`` with ``obs_names`` as index and genes as columns, or the
            array described under ``return_mean``.

        Raises
        ------
        ValueError
            Unknown genes or batches, a non-positive ``library_size``, ``library_size`` given
            for a non-count likelihood, or data that do not match the model.
        """
        adata = self._cells(adata)
        idx = resolve_indices(adata, indices)
        genes = self._gene_mask(gene_list)
        n_samples = _check_positive_int("n_samples", n_samples)
        counts = self.config["likelihood"] in _COUNT_LIKELIHOODS
        if isinstance(library_size, str):
            if library_size != "latent":
                raise ValueError(
                    f"library_size must be a number or 'latent'; got {library_size!r}."
                )
        elif not (np.isfinite(library_size) and library_size > 0):
            raise ValueError(f"library_size must be positive; got {library_size!r}.")
        if not counts and library_size != 1.0:
            raise ValueError(
                f"library_size applies to count likelihoods; this model's likelihood is "
                f"{self.config['likelihood']!r}, so leave library_size=1."
            )
        batches = self._batch_list(batch)
        codes = batch_codes(self, adata) if batches is None else None
        self.module.eval()
        keep_all = not return_mean and n_samples > 1
        shape = (n_samples, len(idx), len(genes)) if keep_all else (len(idx), len(genes))
        out = np.empty(shape, dtype=np.float32)
        gt = torch.as_tensor(genes, device=self.device)
        with _seeded(self.device, self.config["seed"] if seed is None else seed):
            for where, x, b in iter_cells(self, adata, idx, batch_size, codes):
                z = self._sample_latent(self._posterior(x, b), n_samples)
                lib = x.sum(-1, keepdim=True) if library_size == "latent" else float(library_size)
                value = self._decode_mean(z, self._onehots(b, batches, x.shape[0]), lib)
                value = value[..., gt]
                if keep_all:
                    out[:, where] = value.cpu().numpy()
                else:
                    out[where] = value.mean(0).cpu().numpy()
        if keep_all or return_numpy:
            return out
        names = np.asarray(adata.obs_names)[idx]
        return pd.DataFrame(out, index=names, columns=np.asarray(self.var_names)[genes])

    # --- generated counts ------------------------------------------------------------------
    def _draw(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """One draw from the likelihood with the decoder's parameters."""
        lik = self.config["likelihood"]
        if lik in _COUNT_LIKELIHOODS:
            mu, theta = params["mu"], params["theta"].expand_as(params["mu"])
            # NB as a Gamma-Poisson mixture: λ ~ Gamma(θ, rate θ / μ), x ~ Poisson(λ).
            lam = torch.distributions.Gamma(theta, theta / mu.clamp_min(_EPS)).sample()
            x = torch.poisson(lam)
            if lik == "zinb":
                dropped = torch.bernoulli(torch.sigmoid(params["pi_logits"])).bool()
                x = x.masked_fill(dropped, 0.0)
            return x
        if lik == "gaussian":
            mean = params["mean"]
            return mean + torch.randn_like(mean) * torch.exp(0.5 * params["log_var"])
        return torch.bernoulli(torch.sigmoid(params["logits"]))

    @torch.no_grad()
    def posterior_predictive_sample(
        self,
        adata=None,
        indices: Sequence[int] | np.ndarray | None = None,
        n_samples: int = 1,
        gene_list: Sequence[str] | None = None,
        batch_size: int = 256,
        seed: int | None = None,
    ) -> np.ndarray:
        """Data drawn from the model's posterior predictive distribution, cell by cell.

        For each cell: a latent sample from ``q(z | x)``, the decoder in the cell's own batch at
        the cell's observed library size, then a draw from the likelihood (NB with the learned
        per-gene dispersion, ZINB also with its dropout; Gaussian with its variance; Bernoulli).
        Comparing these counts with the data (per-gene mean, variance, zero fraction) is the
        usual posterior-predictive check (scvi-tools' method of the same name).

        Parameters
        ----------
        adata
            Cells with the model's genes (default: the training data).
        indices
            Row positions (or a boolean mask) of the cells; all by default.
        n_samples
            Draws per cell.
        gene_list
            Genes to return (default all).
        batch_size
            Cells per chunk.
        seed
            Seed of the draws (default: the model's seed); torch's global state is restored.

        Returns
        -------
        numpy.ndarray
            ``(n_cells, n_genes)`` for ``n_samples=1``, else ``(n_cells, n_genes, n_samples)``
            (scvi-tools' layout), float32 (integer-valued for count likelihoods).
        """
        adata = self._cells(adata)
        idx = resolve_indices(adata, indices)
        genes = self._gene_mask(gene_list)
        n_samples = _check_positive_int("n_samples", n_samples)
        codes = batch_codes(self, adata)
        self.module.eval()
        out = np.empty((len(idx), len(genes), n_samples), dtype=np.float32)
        gt = torch.as_tensor(genes, device=self.device)
        with _seeded(self.device, self.config["seed"] if seed is None else seed):
            for where, x, b in iter_cells(self, adata, idx, batch_size, codes):
                z = self._sample_latent(self._posterior(x, b), n_samples)
                bb = None if b is None else b.expand(n_samples, *b.shape)
                lib = x.sum(-1, keepdim=True).expand(n_samples, -1, -1)
                draws = self._draw(self.module.generative(z, bb, lib))
                out[where] = draws[..., gt].permute(1, 2, 0).cpu().numpy()
        return out[..., 0] if n_samples == 1 else out

    # --- differential expression -----------------------------------------------------------
    def _comparisons(
        self, adata, groupby, group1, group2, idx1, idx2
    ) -> list[tuple[str, np.ndarray, str, np.ndarray]]:
        """The (name1, rows1, name2, rows2) comparisons asked for."""
        if groupby is None:
            if idx1 is None:
                raise ValueError(
                    "differential_expression needs groupby (an obs column) or idx1 (cells of "
                    "group 1; idx2 defaults to the other cells)."
                )
            if group1 is not None or group2 is not None:
                raise ValueError("group1/group2 name categories of groupby; pass groupby too.")
            rows1 = resolve_indices(adata, idx1)
            if idx2 is None:
                rows2 = np.setdiff1d(np.arange(adata.n_obs), rows1)
            else:
                rows2 = resolve_indices(adata, idx2)
            return [("group1", rows1, "group2" if idx2 is not None else "rest", rows2)]
        if idx1 is not None or idx2 is not None:
            raise ValueError("pass either groupby (with group1/group2) or idx1/idx2, not both.")
        labels = obs_labels(adata, groupby).to_numpy()
        col = adata.obs[groupby]
        cats = (
            [str(c) for c in col.cat.categories if (labels == str(c)).any()]
            if isinstance(col.dtype, pd.CategoricalDtype)
            else sorted(set(labels))
        )
        firsts = cats if group1 is None else [group1] if isinstance(group1, str) else list(group1)
        comps = []
        for g1 in firsts:
            if str(g1) not in cats:
                raise ValueError(f"group1 {g1!r} is not a category of obs[{groupby!r}]: {cats}.")
            rows1 = np.flatnonzero(labels == str(g1))
            if group2 is None:
                comps.append((str(g1), rows1, "rest", np.flatnonzero(labels != str(g1))))
            else:
                if str(group2) not in cats:
                    raise ValueError(
                        f"group2 {group2!r} is not a category of obs[{groupby!r}]: {cats}."
                    )
                comps.append((str(g1), rows1, str(group2), np.flatnonzero(labels == str(group2))))
        for name1, rows1, name2, rows2 in comps:
            if len(rows1) == 0 or len(rows2) == 0:
                raise ValueError(f"comparison {name1} vs {name2} has an empty group of cells.")
        return comps

    def _encode_cells(self, adata, rows: np.ndarray, batch_size: int):
        """Posterior parameters, batch one-hots and raw counts sums for the cells ``rows``."""
        codes = batch_codes(self, adata)
        posts: list[dict[str, torch.Tensor]] = []
        onehots: list[torch.Tensor] = []
        for _, x, b in iter_cells(self, adata, rows, batch_size, codes):
            post = self._posterior(x, b)
            posts.append({k: v for k, v in post.items() if k in ("q", "mu", "log_var")})
            if b is not None:
                onehots.append(b)
        post = {k: torch.cat([p[k] for p in posts]) for k in posts[0]}
        return post, (torch.cat(onehots) if onehots else None)

    def _raw_stats(self, adata, sets: list[np.ndarray], batch_size: int) -> list[dict]:
        """Per gene and cell set: mean count, share of non-zero cells, mean count per 10k."""
        rows = np.unique(np.concatenate(sets))
        member = sp.csr_matrix(
            (
                np.ones(sum(len(s) for s in sets)),
                (
                    np.repeat(np.arange(len(sets)), [len(s) for s in sets]),
                    np.concatenate([np.searchsorted(rows, s) for s in sets]),
                ),
            ),
            shape=(len(sets), len(rows)),
        )
        sums = np.zeros((3, len(sets), len(self.var_names)))
        for where, x, _ in iter_cells(self, adata, rows, batch_size, None):
            xn = x.cpu().numpy().astype(np.float64)
            lib = np.maximum(xn.sum(1, keepdims=True), 1.0)
            m = member[:, where]
            sums[0] += m @ xn
            sums[1] += m @ (xn > 0)
            sums[2] += m @ (xn / lib * 1e4)
        n = np.array([len(s) for s in sets], dtype=float)[:, None]
        return [
            {"raw_mean": sums[0, k] / n[k], "nonzero": sums[1, k] / n[k], "norm": sums[2, k] / n[k]}
            for k in range(len(sets))
        ]

    def _scale_samples(
        self,
        post: dict[str, torch.Tensor],
        onehot: torch.Tensor | None,
        choice: np.ndarray,
        batch_correction: bool,
        chunk: int = 512,
    ) -> np.ndarray:
        """``ρ`` for one posterior sample of each chosen cell ``(len(choice), n_genes)``."""
        all_batches = list(range(self.module.n_batch)) if batch_correction else None
        out = np.empty((len(choice), len(self.var_names)), dtype=np.float32)
        for start in range(0, len(choice), chunk):
            sel = torch.as_tensor(choice[start : start + chunk], device=self.device)
            part = {k: v[sel] for k, v in post.items()}
            z = self._sample_latent(part, 1)
            own = None if onehot is None else onehot[sel]
            rho = self._decode_mean(z, self._onehots(own, all_batches, len(sel)), 1.0)
            out[start : start + len(sel)] = rho[0].cpu().numpy()
        return out

    @torch.no_grad()
    def differential_expression(
        self,
        adata=None,
        groupby: str | None = None,
        group1: str | Sequence[str] | None = None,
        group2: str | None = None,
        idx1: Sequence[int] | np.ndarray | None = None,
        idx2: Sequence[int] | np.ndarray | None = None,
        mode: Literal["change", "vanilla"] = "change",
        delta: float = 0.25,
        n_samples: int = 5000,
        batch_correction: bool = False,
        fdr_target: float = 0.05,
        pseudocounts: float = 0.0,
        batch_size: int = 256,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """Bayesian differential expression between two groups of cells (scVI's method).

        For each group, ``n_samples`` cells are drawn at random (with replacement) and for each a
        posterior sample of the normalized expression ``ρ`` is decoded; pairing the two groups'
        samples gives ``n_samples`` draws of the log2 fold change per gene,
        ``LFC_g = log2(ρ_g¹ + c) - log2(ρ_g² + c)``, a distribution that holds both the
        posterior uncertainty and the heterogeneity within each group (Lopez et al. 2018;
        Boyeau et al. 2019, scvi-tools' ``mode="change"``). A gene is DE when
        ``|LFC| > delta``; its posterior probability ``proba_de = P(|LFC| > δ)`` is estimated by
        the share of samples, and genes are called DE at a posterior expected false discovery
        rate ``fdr_target`` (:func:`fdr_de_prediction`). ``mode="vanilla"`` instead reports
        ``P(ρ¹ > ρ²)`` (Lopez et al. 2018) and makes no FDR call.

        Because the pairs are random cells, variation *within* a group counts as change: two
        random halves of a mixture of cell types get mean LFCs near 0 but a high ``proba_de``
        for the genes that differ between the types (``tests/test_vae_analysis.py`` shows it).
        Compare homogeneous groups (a cell type against another, or one against the rest), and
        read ``lfc_mean`` next to ``proba_de``.

        Parameters
        ----------
        adata
            Cells with the model's genes (default: the training data).
        groupby
            Column of ``obs`` defining the groups. With ``group1=None`` every category is
            compared with all other cells ("one vs rest", one block of rows per category).
        group1, group2
            Categories of ``groupby``: ``group1`` (or a list, each compared in turn) against
            ``group2`` (default: all cells not in ``group1``).
        idx1, idx2
            Instead of ``groupby``: row positions or boolean masks of the two groups
            (``idx2`` defaults to all other cells).
        mode
            ``"change"`` (default) or ``"vanilla"``.
        delta
            Smallest absolute log2 fold change that counts as DE (``"change"`` mode), > 0.
        n_samples
            Posterior samples per group.
        batch_correction
            Decode every sample in every batch of the model and average (batch-free expression)
            instead of each cell's own batch.
        fdr_target
            Target posterior expected FDR for the ``is_de_fdr_<target>`` column.
        pseudocounts
            ``c`` added to ``ρ`` before the logarithm (``ρ`` is never 0, so 0 is safe).
        batch_size
            Cells per chunk when encoding and reading counts.
        seed
            Seed of the cell choice and the posterior samples (default: the model's seed).

        Returns
        -------
        pandas.DataFrame
            One row per gene (index: gene names) and comparison, sorted within each comparison by
            ``proba_de`` and then ``|lfc_mean|`` (descending). Columns (scvi-tools' names):
            ``proba_de``, ``proba_not_de``, ``bayes_factor`` (``log p / (1 - p)``),
            ``lfc_mean``, ``lfc_median``, ``lfc_std``, ``lfc_min``, ``lfc_max``, ``scale1``,
            ``scale2`` (mean ``ρ``), ``delta``, ``raw_mean1/2``, ``non_zeros_proportion1/2``,
            ``raw_normalized_mean1/2`` (counts per 10k), ``is_de_fdr_<target>``,
            ``comparison``, ``group1``, ``group2``. ``"vanilla"`` has ``proba_m1`` (``P(ρ¹ >
            ρ²)``), ``proba_m2`` and ``bayes_factor`` instead of the ``proba_de`` family.

        Raises
        ------
        ValueError
            A likelihood other than NB/ZINB, unknown groups, empty groups, conflicting group
            arguments, or out-of-range ``delta``, ``fdr_target``, ``n_samples``,
            ``pseudocounts``.
        """
        if self.config["likelihood"] not in _COUNT_LIKELIHOODS:
            raise ValueError(
                "differential_expression needs a count likelihood ('nb' or 'zinb'); this model's "
                f"is {self.config['likelihood']!r}. Train on raw counts with likelihood='nb'."
            )
        if mode not in ("change", "vanilla"):
            raise ValueError(f"mode must be 'change' or 'vanilla'; got {mode!r}.")
        if not (np.isfinite(delta) and delta > 0):
            raise ValueError(f"delta must be a positive log2 fold change; got {delta!r}.")
        if not 0 < fdr_target < 1:
            raise ValueError(f"fdr_target must be in (0, 1); got {fdr_target!r}.")
        if not (np.isfinite(pseudocounts) and pseudocounts >= 0):
            raise ValueError(f"pseudocounts must be >= 0; got {pseudocounts!r}.")
        n_samples = _check_positive_int("n_samples", n_samples)
        if batch_correction and not self.module.n_batch:
            raise ValueError("batch_correction needs a model with a batch covariate.")
        adata = self._cells(adata)
        comps = self._comparisons(adata, groupby, group1, group2, idx1, idx2)
        rows = np.unique(np.concatenate([r for c in comps for r in (c[1], c[3])]))
        self.module.eval()
        seed = self.config["seed"] if seed is None else int(seed)
        rng = np.random.default_rng(seed)
        post, onehot = self._encode_cells(adata, rows, batch_size)
        raw = self._raw_stats(adata, [r for c in comps for r in (c[1], c[3])], batch_size)
        frames = []
        with _seeded(self.device, seed):
            for k, (name1, rows1, name2, rows2) in enumerate(comps):
                pick1 = np.searchsorted(rows, rng.choice(rows1, size=n_samples, replace=True))
                pick2 = np.searchsorted(rows, rng.choice(rows2, size=n_samples, replace=True))
                s1 = self._scale_samples(post, onehot, pick1, batch_correction)
                s2 = self._scale_samples(post, onehot, pick2, batch_correction)
                frame = _de_table(s1, s2, mode, delta, pseudocounts, fdr_target)
                frame.index = pd.Index(self.var_names, name="gene")
                for j, r in enumerate((raw[2 * k], raw[2 * k + 1]), start=1):
                    frame[f"raw_mean{j}"] = r["raw_mean"]
                    frame[f"non_zeros_proportion{j}"] = r["nonzero"]
                    frame[f"raw_normalized_mean{j}"] = r["norm"]
                frame["comparison"] = f"{name1} vs {name2}"
                frame["group1"], frame["group2"] = name1, name2
                frames.append(_sorted(frame, mode))
        return pd.concat(frames)


def _de_table(
    s1: np.ndarray, s2: np.ndarray, mode: str, delta: float, pseudocounts: float, fdr: float
) -> pd.DataFrame:
    """Per-gene statistics from paired samples of ``ρ`` in two groups ``(n_samples, n_genes)``."""
    table: dict[str, np.ndarray | float] = {}
    lfc = np.log2(s1.astype(np.float64) + pseudocounts + _EPS) - np.log2(
        s2.astype(np.float64) + pseudocounts + _EPS
    )
    if mode == "change":
        p = np.mean(np.abs(lfc) > delta, axis=0)
        table["proba_de"] = p
        table["proba_not_de"] = 1.0 - p
    else:
        p = np.mean(s1 > s2, axis=0)
        table["proba_m1"] = p
        table["proba_m2"] = 1.0 - p
    table["bayes_factor"] = np.log(p + _EPS) - np.log(1.0 - p + _EPS)
    table["lfc_mean"] = lfc.mean(0)
    table["lfc_median"] = np.median(lfc, axis=0)
    table["lfc_std"] = lfc.std(0)
    table["lfc_min"] = lfc.min(0)
    table["lfc_max"] = lfc.max(0)
    table["scale1"] = s1.mean(0)
    table["scale2"] = s2.mean(0)
    table["delta"] = delta if mode == "change" else np.nan
    frame = pd.DataFrame(table)
    if mode == "change":
        frame[f"is_de_fdr_{fdr}"] = fdr_de_prediction(p, fdr)
    return frame


def _sorted(frame: pd.DataFrame, mode: str) -> pd.DataFrame:
    key = "proba_de" if mode == "change" else "bayes_factor"
    order = np.lexsort((-frame["lfc_mean"].abs().to_numpy(), -frame[key].abs().to_numpy()))
    return frame.iloc[order]
