"""Topology benchmark: does the QBM-VAE keep trajectories and cell-type geometry 20-30 % better?

Data: ``qbm_lite.data.simulate`` with a branching trajectory (a stem that splits into two
branches, 9 types: 3 stretches per part), 10,000 cells, 2,000 genes, 3 batches (gene-wise batch
factors with log-scale sd 0.5, library shifts 0.3), reduced by ``qbm_lite.data.prepare`` to 1,000
batch-aware highly variable genes. Known truth: ``obs["pseudotime"]`` and the lineage graph in
``uns["simulation"]["lineage"]``.

Methods: every method of the shared comparison protocol that ``qbm_lite.baselines.METHODS``
offers (PCA, scVI, LDVAE, AUTOZI, the Gaussian VAE, the QBM-VAE, and, where present, Harmony,
Scanorama and the uniform-prior discrete VAE control), trained by
``qbm_lite.baselines.train_methods`` with its fair defaults, 3 seeds, one torch thread. The
QBM-VAE's ``q`` is quantised in practice (most bits near 0 or 1) and ties in kNN graphs, so its
logits are scored as well ("QBM-VAE (logits)"): ``obsm["X_qbmvae_logits"]`` when
``train_methods`` writes it, else ``logit(q)`` in float64 (exact except where ``q`` rounded to 1
in float32).

Scores per method and seed (``qbm_lite.metrics``): scGraph's three columns (corrected, the
default), trajectory conservation (scIB: DPT against each batch's own unintegrated DPT, per-batch
mean), the Spearman ρ of the DPT with the *true* pseudotime, and PAGA agreement with the true
lineage (AUROC, precision, recall). Printed: mean ± sd over seeds, the ratios QBM-VAE / scVI,
QBM-VAE / Gaussian VAE and QBM-VAE / uniform-prior VAE with 95 % Fieller intervals over the
paired seeds (``qbm_lite.metrics.paired_ratio``), and a verdict on the paper's +20-30 % claim.

Run: ``python benchmarks/topology_bench.py`` (long: all methods x 3 seeds on 10,000 cells;
measured with ``--epochs 50 --jobs 2`` on 2 cores shared with a test run: 2,482 s of training
and 194 s of scoring, of which about 76 s is pynndescent compiling on its first call);
``--quick`` runs 1,500 cells, 600 genes, 10 epochs and PCA, scVI, the Gaussian VAE, the
uniform-prior control (where present) and the QBM-VAE as a smoke test.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from qbm_lite import baselines, data, metrics

#: The shared comparison protocol, in order; methods this checkout lacks are skipped.
PROTOCOL = (
    "PCA",
    "Harmony",
    "Scanorama",
    "scVI",
    "LDVAE",
    "AUTOZI",
    "Gaussian VAE",
    "Uniform-prior VAE",
    "QBM-VAE",
)
QUICK_METHODS = ("PCA", "scVI", "Gaussian VAE", "Uniform-prior VAE", "QBM-VAE")
DENOMINATORS = ("scVI", "Gaussian VAE", "Uniform-prior VAE")
HEADLINE = ("Corr-Weighted", "trajectory_conservation", "pseudotime_spearman", "paga_auc")


def logits_of(adata, key: str) -> np.ndarray:
    """The discrete VAE's logits: ``obsm[key + "_logits"]`` if written, else ``logit(q)``."""
    if f"{key}_logits" in adata.obsm:
        return np.asarray(adata.obsm[f"{key}_logits"], dtype=np.float64)
    q = np.asarray(adata.obsm[key], dtype=np.float64)
    eps = np.finfo(np.float32).eps
    q = np.clip(q, eps, 1 - eps)
    return np.log(q) - np.log1p(-q)


def train_seeds(adata, methods, seeds, **kwargs) -> dict[int, dict[str, str]]:
    """Train every method once per seed; keys get a ``_seed{s}`` suffix."""
    out = {}
    for seed in seeds:
        keys = baselines.train_methods(adata, methods, "batch", seed=seed, **kwargs)
        renamed = {}
        for name, key in keys.items():
            new = f"{key}_seed{seed}"
            if name in ("QBM-VAE", "Uniform-prior VAE"):
                adata.obsm[f"{new}_logits"] = logits_of(adata, key)
                adata.obsm.pop(f"{key}_logits", None)
            adata.obsm[new] = adata.obsm.pop(key)
            renamed[name] = new
            if name in ("QBM-VAE", "Uniform-prior VAE"):
                renamed[f"{name} (logits)"] = f"{new}_logits"
        out[seed] = renamed
    return out


def score_seed(adata, keys: dict[str, str], lineage) -> pd.DataFrame:
    """All topology scores of one seed's embeddings, tidy."""
    graph = metrics.scgraph(adata, keys, "batch", "cell_type", tidy=True)
    traj = metrics.trajectory_benchmark(
        adata,
        keys,
        "cell_type",
        reference_key="dpt_reference",
        true_key="pseudotime",
        lineage=lineage,
        batch_key="batch",
    )
    return pd.concat([graph, traj], ignore_index=True)


def verdict(r: metrics.PairedRatio) -> str:
    """Where the interval for QBM-VAE / baseline stands against 1 and the claimed 1.2-1.3."""
    if r.low > 1.0:
        return "QBM-VAE ahead, " + ("compatible with +20 %" if r.high >= 1.2 else "by < 20 %")
    if r.high < 1.0:
        return "QBM-VAE behind"
    return "no difference" + (" (and +20 % excluded)" if r.high < 1.2 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--genes", type=int, default=2_000)
    parser.add_argument("--hvg", type=int, default=1_000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--latent", type=int, default=10)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default=None, help="comma-separated (default: protocol)")
    parser.add_argument("--jobs", type=int, default=2, help="models trained at once (processes)")
    args = parser.parse_args()
    chosen = PROTOCOL
    if args.quick:
        args.cells, args.genes, args.hvg, args.epochs = 1500, 600, 400, 10
        chosen = QUICK_METHODS
    if args.methods:
        chosen = tuple(m.strip() for m in args.methods.split(","))
    methods = [m for m in chosen if m in baselines.METHODS]
    skipped = [m for m in chosen if m not in baselines.METHODS]
    seeds = [int(s) for s in args.seeds.split(",")]

    start = time.perf_counter()
    raw = data.simulate(
        n_cells=args.cells,
        n_genes=args.genes,
        n_batches=3,
        n_cell_types=9,
        trajectory="branching",
        batch_strength=0.5,
        library_shift=0.3,
        seed=0,
    )
    adata = data.prepare(raw, n_top_genes=args.hvg, batch_key="batch")
    lineage = adata.uns["simulation"]["lineage"]
    metrics.reference_pseudotime(adata, "cell_type", "type0", batch_key="batch")
    print(
        f"data: {adata.n_obs} cells x {adata.n_vars} HVGs, 3 batches, 9 types on a branching "
        f"path (ready in {time.perf_counter() - start:.1f} s); load {os.getloadavg()[0]:.1f}"
    )
    print(f"methods: {', '.join(methods)}; seeds {seeds}; {args.epochs} epochs")
    if skipped:
        print(f"not in this checkout's baselines.METHODS (skipped): {', '.join(skipped)}")

    t0 = time.perf_counter()
    keys = train_seeds(
        adata,
        methods,
        seeds,
        n_latent=args.latent,
        max_epochs=args.epochs,
        batch_size=128,
        num_threads=1,
        n_jobs=args.jobs,
    )
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    tidy = pd.concat(
        [score_seed(adata, keys[s], lineage).assign(seed=s) for s in seeds], ignore_index=True
    )
    t_score = time.perf_counter() - t0
    print(f"training {t_train:.0f} s, scoring {t_score:.0f} s\n")

    summary = metrics.summarize(tidy)
    table = summary.apply(lambda r: f"{r['mean']:.3f} ± {r['sd']:.3f}", axis=1).unstack()
    order = [m for m in tidy["method"].unique()]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("mean ± sd over seeds:")
        print(table.loc[order].to_string())

    print("\nratios with 95 % Fieller intervals over paired seeds:")
    rows = []
    for num in ("QBM-VAE", "QBM-VAE (logits)"):
        for den in DENOMINATORS:
            if num not in order or den not in order:
                continue
            for metric in HEADLINE:
                a = tidy.query("method == @num and metric == @metric").sort_values("seed")
                b = tidy.query("method == @den and metric == @metric").sort_values("seed")
                r = metrics.paired_ratio(a["value"], b["value"], names=(num, den), metric=metric)
                rows.append(r)
                print(f"  {r}  -> {verdict(r)}")
    n_sig = sum(r.low > 1.0 for r in rows)
    n_claim = sum(r.low > 1.0 and r.high >= 1.2 for r in rows)
    n_below = sum(r.high < 1.2 for r in rows)
    print(
        f"\nverdict on the +20-30 % claim: of {len(rows)} ratios, {n_sig} show the QBM-VAE "
        f"ahead (interval above 1), {n_claim} of them compatible with +20 % or more, and "
        f"{n_below} exclude +20 % (interval wholly below 1.2)."
    )


if __name__ == "__main__":
    main()
