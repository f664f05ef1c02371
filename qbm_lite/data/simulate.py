"""A splatter-style simulator of single-cell counts with batches, cell types and trajectories.

The generative story follows Splat (Zappia et al., 2017) in spirit, kept small and readable:

1. gene base means from a Gamma distribution; a fraction of genes is differentially expressed
   (DE) between cell types by log-normal factors;
2. per-cell library sizes from a log-normal distribution;
3. batches: a gene-wise multiplicative factor per batch (log-normal with scale
   ``batch_strength``) plus a shift of the batch's mean log library size (``library_shift``);
4. counts from a negative binomial (Gamma-Poisson) with a gene-wise inverse dispersion, so the
   variance grows as ``mu + mu**2 / theta`` (the mean-variance relation of UMI data);
5. dropout: extra zeros with probability ``dropout / (1 + mu)``, so lowly expressed entries drop
   out more often.

Optional close subtypes (``n_subtypes``) split some types in two halves that differ by a small,
controllable set of log fold changes (``subtype_de_scale``), so "close subtypes" has an answer
key: ``uns["simulation"]["close_pairs"]`` lists the pairs.

Optional trajectories replace discrete types by a continuous path (``"linear"``) or a stem that
splits into two branches (``"branching"``); the true pseudotime goes to ``obs["pseudotime"]`` and
the cell types become consecutive stretches of the path.
"""

from __future__ import annotations

from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["add_batch_effect", "lineage_edges", "simulate"]

TrajectoryName = Literal["linear", "branching"]


def _check_positive_int(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def _check_nonneg(name: str, value: float) -> None:
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")


def _de_factors(
    rng: np.random.Generator, n_groups: int, n_genes: int, de_prob: float, de_scale: float
) -> np.ndarray:
    """Log fold changes (n_groups, n_genes): a ``de_prob`` share of genes up or down per group."""
    is_de = rng.random((n_groups, n_genes)) < de_prob
    size = rng.lognormal(mean=0.0, sigma=0.4, size=(n_groups, n_genes)) * de_scale
    sign = np.where(rng.random((n_groups, n_genes)) < 0.5, -1.0, 1.0)
    return np.where(is_de, sign * size, 0.0)


def _trajectory(
    rng: np.random.Generator,
    kind: TrajectoryName,
    n_cells: int,
    n_cell_types: int,
    n_genes: int,
    de_prob: float,
    de_scale: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cells on a path: (log fold changes per cell, pseudotime, type index, branch name)."""
    n_segments = 1 if kind == "linear" else 3
    # Each segment moves the expression profile by one set of DE factors (a straight line in
    # log space); the branches start where the stem ends. A path spreads its change over a
    # continuum, so it gets twice the DE genes and scale of a discrete type to stay visible.
    deltas = _de_factors(rng, n_segments, n_genes, min(1.0, 2 * de_prob), 2 * de_scale)
    t = rng.random(n_cells)
    if kind == "linear":
        logfc = t[:, None] * deltas[0][None, :]
        branch = np.full(n_cells, "path", dtype=object)
        bins = np.minimum((t * n_cell_types).astype(int), n_cell_types - 1)
        return logfc, t, bins, branch
    # Branching: pseudotime in [0, 1]; stem on [0, 0.5), then branch A or B on [0.5, 1].
    on_b = rng.random(n_cells) < 0.5
    stem_part = np.minimum(t, 0.5) / 0.5
    branch_part = np.clip(t - 0.5, 0.0, None) / 0.5
    branch_delta = np.where(on_b[:, None], deltas[2][None, :], deltas[1][None, :])
    logfc = stem_part[:, None] * deltas[0][None, :] + branch_part[:, None] * branch_delta
    branch = np.where(t < 0.5, "stem", np.where(on_b, "B", "A")).astype(object)
    # Types: the stem and each branch are cut into consecutive stretches.
    n_stem = max(1, n_cell_types // 3)
    n_branch = max(1, (n_cell_types - n_stem) // 2)
    stem_bin = np.minimum((t / 0.5 * n_stem).astype(int), n_stem - 1)
    br_bin = np.minimum(((t - 0.5) / 0.5 * n_branch).astype(int), n_branch - 1)
    bins = np.where(t < 0.5, stem_bin, n_stem + br_bin + np.where(on_b, n_branch, 0))
    return logfc, t, bins, branch


def lineage_edges(kind: TrajectoryName, n_cell_types: int) -> list[tuple[str, str]]:
    """The true lineage graph between the type names of a simulated trajectory.

    ``(parent, child)`` pairs of ``"type<k>"`` names, following how :func:`simulate` cuts the
    path into stretches: a chain for ``"linear"``; for ``"branching"`` a chain along the stem
    whose last stretch is the parent of the first stretch of each branch, then a chain along
    each branch. Used as the truth for PAGA (:func:`qbm_lite.metrics.paga_agreement`).
    """
    if kind == "linear":
        chains = [list(range(n_cell_types))]
        roots: list[tuple[int, int]] = []
    else:
        n_stem = max(1, n_cell_types // 3)
        n_branch = max(1, (n_cell_types - n_stem) // 2)
        stem = list(range(n_stem))
        a = list(range(n_stem, n_stem + n_branch))
        b = list(range(n_stem + n_branch, n_stem + 2 * n_branch))
        chains = [stem, a, b]
        roots = [(stem[-1], a[0]), (stem[-1], b[0])]
    pairs = [(c[i], c[i + 1]) for c in chains for i in range(len(c) - 1)] + roots
    return [(f"type{p}", f"type{c}") for p, c in pairs]


def simulate(
    n_cells: int = 2000,
    n_genes: int = 500,
    n_batches: int = 3,
    n_cell_types: int = 6,
    *,
    batch_strength: float = 0.5,
    library_shift: float = 0.3,
    de_prob: float = 0.1,
    de_scale: float = 0.5,
    mean_shape: float = 0.6,
    mean_rate: float = 0.3,
    library_size: float = 3000.0,
    library_scale: float = 0.3,
    theta: float = 5.0,
    dropout: float = 0.2,
    trajectory: TrajectoryName | None = None,
    cell_type_probs: np.ndarray | list[float] | None = None,
    n_subtypes: int = 0,
    subtype_de_scale: float = 0.2,
    seed: int = 0,
) -> ad.AnnData:
    """Simulate UMI-like counts with cell types (or a trajectory) and batch effects.

    Parameters
    ----------
    n_cells, n_genes
        Size of the count matrix.
    n_batches
        Number of batches; cells are assigned to batches uniformly at random.
    n_cell_types
        Number of cell types (for trajectories: the number of stretches the path is cut into).
    batch_strength
        Standard deviation of the gene-wise log multiplicative batch factors (0 means no
        gene-wise batch effect).
    library_shift
        Standard deviation of the per-batch shift of the mean log library size.
    de_prob, de_scale
        Fraction of genes differentially expressed per cell type and the scale of their log
        fold changes.
    mean_shape, mean_rate
        Gamma distribution of the gene base means (Splat's defaults).
    library_size, library_scale
        Median and log-scale standard deviation of the library sizes.
    theta
        Typical NB inverse dispersion; each gene draws its own around it (smaller is noisier).
    dropout
        Extra zeros: entry (i, g) is zeroed with probability ``dropout / (1 + mu_ig)``.
    trajectory
        ``None`` for discrete cell types, ``"linear"`` or ``"branching"`` for a continuous path
        with the true pseudotime in ``obs["pseudotime"]``.
    cell_type_probs
        Cell-type proportions (discrete types only); uniform if ``None``.
    n_subtypes
        Discrete types only: split the first ``n_subtypes`` types (``type0``, ``type1``, ...)
        each into two close subtypes ``type<k>a`` and ``type<k>b`` (half of the type's cells
        each, at random). The two share their parent's profile and differ by log fold changes
        ``±δ/2`` on a ``de_prob`` share of genes, with ``δ`` drawn like a type's but with
        scale ``subtype_de_scale``. The labels become ``n_cell_types + n_subtypes`` types;
        ``obs["parent_type"]`` keeps the parent and ``uns["simulation"]["close_pairs"]`` lists
        ``[a, b]`` pairs. ``0`` (default) leaves the simulation exactly as without it.
    subtype_de_scale
        Scale of the subtypes' log fold-change difference (compare ``de_scale`` between types;
        0 makes the two halves identical in distribution).
    seed
        Random seed; the same seed gives the same data.

    Returns
    -------
    anndata.AnnData
        Integer counts in ``X`` (CSR, float32) and ``layers["counts"]``; ``obs`` has ``batch``,
        ``cell_type``, ``library_size``, with ``n_subtypes`` also ``parent_type``, and for
        trajectories ``pseudotime`` and ``branch``;
        ``var`` has ``base_mean``, ``theta``, ``batch_factor_<b>`` and, for discrete types,
        ``de_logfc_<type>`` (each type's natural-log fold change before the per-cell
        renormalization: a gene is truly DE between types ``a`` and ``b`` when the two
        differ; with ``n_subtypes`` these are the parent types' changes);
        ``uns["simulation"]`` records the parameters and, for trajectories, the true lineage
        graph between the types (``uns["simulation"]["lineage"] = {"parent": [...],
        "child": [...]}``, see :func:`lineage_edges`).
    """
    for name, value, minimum in [
        ("n_cells", n_cells, 1),
        ("n_genes", n_genes, 1),
        ("n_batches", n_batches, 1),
        ("n_cell_types", n_cell_types, 1),
        ("seed", seed, 0),
    ]:
        _check_positive_int(name, value, minimum)
    for name, value in [
        ("batch_strength", batch_strength),
        ("library_shift", library_shift),
        ("de_scale", de_scale),
        ("library_scale", library_scale),
        ("subtype_de_scale", subtype_de_scale),
    ]:
        _check_nonneg(name, value)
    for name, value in [
        ("mean_shape", mean_shape),
        ("mean_rate", mean_rate),
        ("library_size", library_size),
        ("theta", theta),
    ]:
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    if not 0.0 <= de_prob <= 1.0 or not 0.0 <= dropout <= 1.0:
        raise ValueError(
            f"de_prob and dropout are probabilities in [0, 1]; got {de_prob!r} and {dropout!r}."
        )
    if trajectory not in (None, "linear", "branching"):
        raise ValueError(f"trajectory must be None, 'linear' or 'branching'; got {trajectory!r}.")
    _check_positive_int("n_subtypes", n_subtypes, 0)
    if n_subtypes > n_cell_types:
        raise ValueError(
            f"n_subtypes ({n_subtypes}) cannot exceed n_cell_types ({n_cell_types}): each split "
            "type gives one pair of subtypes."
        )
    if n_subtypes and trajectory is not None:
        raise ValueError("n_subtypes applies to discrete types; use trajectory=None.")
    if trajectory == "branching" and n_cell_types < 3:
        raise ValueError("a branching trajectory needs n_cell_types >= 3 (stem + two branches).")

    rng = np.random.default_rng(seed)
    base_mean = rng.gamma(shape=mean_shape, scale=1.0 / mean_rate, size=n_genes)
    gene_theta = theta * rng.lognormal(0.0, 0.5, size=n_genes)
    batch = rng.integers(0, n_batches, size=n_cells)

    pseudotime = branch = type_logfc = None
    if trajectory is None:
        probs = np.full(n_cell_types, 1.0 / n_cell_types)
        if cell_type_probs is not None:
            probs = np.asarray(cell_type_probs, dtype=float)
            if probs.shape != (n_cell_types,) or (probs < 0).any() or probs.sum() <= 0:
                raise ValueError(
                    f"cell_type_probs must be {n_cell_types} non-negative numbers with a positive "
                    f"sum; got {cell_type_probs!r}."
                )
            probs = probs / probs.sum()
        types = rng.choice(n_cell_types, size=n_cells, p=probs)
        type_logfc = _de_factors(rng, n_cell_types, n_genes, de_prob, de_scale)
        logfc = type_logfc[types]
        if n_subtypes:
            half_b, logfc = _split_subtypes(
                rng, types, logfc, n_subtypes, de_prob, subtype_de_scale
            )
    else:
        if cell_type_probs is not None:
            raise ValueError("cell_type_probs applies to discrete types; use trajectory=None.")
        logfc, pseudotime, types, branch = _trajectory(
            rng, trajectory, n_cells, n_cell_types, n_genes, de_prob, de_scale
        )

    # Batch effects: gene-wise log factors and a library-size shift per batch.
    batch_logfac = rng.normal(0.0, batch_strength, size=(n_batches, n_genes))
    lib_shift = rng.normal(0.0, library_shift, size=n_batches)
    log_lib = rng.normal(np.log(library_size), library_scale, size=n_cells) + lib_shift[batch]

    # Relative expression per cell (a composition over genes), scaled by the library size.
    log_rel = np.log(base_mean)[None, :] + logfc + batch_logfac[batch]
    rel = np.exp(log_rel - log_rel.max(axis=1, keepdims=True))
    rel /= rel.sum(axis=1, keepdims=True)
    mu = rel * np.exp(log_lib)[:, None]

    # Negative binomial as a Gamma-Poisson mixture, then dropout.
    lam = rng.gamma(shape=gene_theta[None, :], scale=mu / gene_theta[None, :])
    counts = rng.poisson(lam)
    if dropout > 0:
        counts[rng.random(counts.shape) < dropout / (1.0 + mu)] = 0

    type_names = np.array([f"type{k}" for k in range(n_cell_types)], dtype=object)
    parent_names = type_names[types]
    labels, categories, close_pairs = parent_names, list(type_names), []
    if n_subtypes:
        labels, categories, close_pairs = _subtype_labels(types, half_b, n_cell_types, n_subtypes)
    batch_names = np.array([f"batch{b}" for b in range(n_batches)], dtype=object)
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical(batch_names[batch], categories=list(batch_names)),
            "cell_type": pd.Categorical(labels, categories=categories),
            "library_size": counts.sum(axis=1).astype(np.int64),
        },
        index=[f"cell{i}" for i in range(n_cells)],
    )
    if n_subtypes:
        obs["parent_type"] = pd.Categorical(parent_names, categories=list(type_names))
    if trajectory is not None:
        obs["pseudotime"] = pseudotime
        obs["branch"] = pd.Categorical(branch)
        # Stretches of a path may be empty for tiny n_cells; keep only used categories.
        obs["cell_type"] = obs["cell_type"].cat.remove_unused_categories()
    var = pd.DataFrame(
        {"base_mean": base_mean, "theta": gene_theta},
        index=[f"gene{g}" for g in range(n_genes)],
    )
    for b in range(n_batches):
        var[f"batch_factor_{b}"] = np.exp(batch_logfac[b])
    if type_logfc is not None:  # ground truth for differential expression
        for k, name in enumerate(type_names):
            var[f"de_logfc_{name}"] = type_logfc[k]

    X = sp.csr_matrix(counts.astype(np.float32))
    adata = ad.AnnData(X=X, obs=obs, var=var)
    adata.layers["counts"] = X.copy()
    adata.uns["simulation"] = {
        "n_batches": n_batches,
        "n_cell_types": n_cell_types,
        "batch_strength": batch_strength,
        "library_shift": library_shift,
        "de_prob": de_prob,
        "de_scale": de_scale,
        "theta": theta,
        "dropout": dropout,
        "trajectory": trajectory or "none",
        "seed": seed,
    }
    if trajectory is not None:
        edges = lineage_edges(trajectory, n_cell_types)
        adata.uns["simulation"]["lineage"] = {
            "parent": [p for p, _ in edges],
            "child": [c for _, c in edges],
        }
    if n_subtypes:
        adata.uns["simulation"].update(
            n_subtypes=n_subtypes, subtype_de_scale=subtype_de_scale, close_pairs=close_pairs
        )
    return adata


def _split_subtypes(
    rng: np.random.Generator,
    types: np.ndarray,
    logfc: np.ndarray,
    n_subtypes: int,
    de_prob: float,
    scale: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Split types ``0..n_subtypes-1`` in halves ``a``/``b`` shifted by ``∓δ/2`` in log space."""
    half_b = rng.random(types.size) < 0.5
    delta = _de_factors(rng, n_subtypes, logfc.shape[1], de_prob, scale)
    split = types < n_subtypes
    sign = np.where(half_b, 0.5, -0.5)[split, None]
    logfc = logfc.copy()
    logfc[split] += sign * delta[types[split]]
    return half_b & split, logfc


def _subtype_labels(
    types: np.ndarray, half_b: np.ndarray, n_cell_types: int, n_subtypes: int
) -> tuple[np.ndarray, list[str], list[list[str]]]:
    """Labels ``type<k>a`` / ``type<k>b`` for split types, ``type<k>`` for the others."""
    categories, pairs = [], []
    for k in range(n_cell_types):
        if k < n_subtypes:
            categories += [f"type{k}a", f"type{k}b"]
            pairs.append([f"type{k}a", f"type{k}b"])
        else:
            categories.append(f"type{k}")
    suffix = np.where(types < n_subtypes, np.where(half_b, "b", "a"), "")
    labels = np.array([f"type{t}{s}" for t, s in zip(types, suffix, strict=True)], dtype=object)
    return labels, categories, pairs


def add_batch_effect(
    adata: ad.AnnData,
    n_batches: int = 2,
    *,
    strength: float = 0.5,
    library_shift: float = 0.3,
    layer: str = "counts",
    batch_key: str = "batch",
    seed: int = 0,
) -> ad.AnnData:
    """Split real cells into batches at random and give each batch a known technical effect.

    Each cell's counts are redrawn as ``Poisson(counts * f[b, g] * s[b])`` with gene-wise
    factors ``f ~ LogNormal(0, strength)`` and a library scale ``s = exp(N(0, library_shift))``
    per batch ``b``. The biology stays that of the real cells, and because batches are assigned
    at random, any structure that separates them is the added effect (a semi-synthetic
    benchmark with known truth).

    Parameters
    ----------
    adata
        Cells with raw counts in ``layers[layer]``.
    n_batches
        Number of batches to split the cells into.
    strength, library_shift
        Log-scale standard deviations of the gene-wise factors and the library scale.
    layer
        Layer with the counts; the result's ``X`` and ``layers[layer]`` hold the new counts.
    batch_key
        ``obs`` column to write the batch labels to (must not exist yet).
    seed
        Random seed.

    Returns
    -------
    anndata.AnnData
        A copy with new counts, ``obs[batch_key]`` and ``var["batch_factor_<b>"]``.
    """
    _check_positive_int("n_batches", n_batches, 2)
    _check_nonneg("strength", strength)
    _check_nonneg("library_shift", library_shift)
    if layer not in adata.layers:
        raise ValueError(f"adata.layers has no {layer!r}; put the raw counts there first.")
    if batch_key in adata.obs:
        raise ValueError(f"obs already has a {batch_key!r} column; pass another batch_key.")
    rng = np.random.default_rng(seed)
    counts = adata.layers[layer]
    counts = counts.toarray() if sp.issparse(counts) else np.asarray(counts)
    batch = rng.integers(0, n_batches, size=adata.n_obs)
    factors = rng.lognormal(0.0, strength, size=(n_batches, adata.n_vars))
    scales = np.exp(rng.normal(0.0, library_shift, size=n_batches))
    new = rng.poisson(counts * factors[batch] * scales[batch][:, None])
    out = adata.copy()
    X = sp.csr_matrix(new.astype(np.float32))
    out.X = X
    out.layers[layer] = X.copy()
    names = np.array([f"batch{b}" for b in range(n_batches)], dtype=object)
    out.obs[batch_key] = pd.Categorical(names[batch], categories=list(names))
    for b in range(n_batches):
        out.var[f"batch_factor_{b}"] = factors[b]
    return out
