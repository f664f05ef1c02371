"""Latent defaults of the QBM-VAE: number of units, relaxation sharpness, what is returned.

Issue 14, item 1: with 10 binary units almost every posterior probability ``q`` sits within 0.05
of 0 or 1, so the latent is nearly a clustering (few distinct codes, threads in a UMAP, Leiden
over-splitting the types). This script measures, on two datasets,

- ``sim``: ``qbm_lite.data.simulate`` (1,500 cells, 1,000 genes, 2 batches, 6 types) reduced by
  ``qbm_lite.data.prepare`` to 500 batch-aware highly variable genes;
- ``pbmc``: scanpy's bundled 700 PBMCs (10 annotated types, 765 genes) split at random into two
  batches with a known technical effect (``qbm_lite.data.add_batch_effect``),

the QBM-VAE (NB likelihood, batch as a decoder covariate, default sampler) for several
``(n_latent, relaxation_beta)`` pairs and the Gaussian-prior VAE as a reference, each over
``--seeds`` seeds with the same epochs and minibatch size. For every trained model three
representations are scored: ``q`` (posterior probabilities, what ``get_latent_representation``
returned before), ``logits`` (the encoder's logits, ``log q - log(1 - q)``) and ``zeta_mean`` (the
mean of the relaxed ``ζ`` under ``q``; for both relaxations an affine map of ``q`` with the same
scale in every unit, so its neighbour graph, and every score here, equals that of ``q``: the row
is a check of this script).

Scores: distinct binary codes (``q > 0.5``) per 1,000 cells; the share of ``q`` within 0.05 of 0
or 1 (saturation); Leiden ARI against the annotated types (15-NN graph, resolution 1, igraph
flavour); 15-NN label purity; graph connectivity, iLISI-based batch mixing and the scIB total
(``qbm_lite.metrics.integration_benchmark`` with the ``light`` preset, unscaled); and
``batch_mixing`` (``qbm_lite.metrics``). Printed: the mean over seeds (and the spread, max - min)
for each (config, representation).

Run: ``python benchmarks/latent_defaults_bench.py`` (44 minutes on a 2-core machine shared with
other jobs, load average 12-16; far less on idle cores); ``--configs "boltzmann L=20 beta=4"``
runs only the named configs; ``--quick`` trains 10 epochs on one seed as a smoke test. The
defaults of ``QBMVAE`` (32 units, ``relaxation_beta=4``, ``q`` returned) follow from this table;
see Chapter 4, "Latent defaults for single-cell data".
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

#: (label, model kwargs). The first row is the default before issue 14.
CONFIGS: list[tuple[str, dict]] = [
    ("boltzmann L=10 beta=8", {"n_latent": 10, "relaxation_beta": 8.0}),
    ("boltzmann L=20 beta=4", {"n_latent": 20, "relaxation_beta": 4.0}),
    ("boltzmann L=32 beta=8", {"n_latent": 32, "relaxation_beta": 8.0}),
    ("boltzmann L=32 beta=4", {"n_latent": 32, "relaxation_beta": 4.0}),
    ("boltzmann L=64 beta=8", {"n_latent": 64, "relaxation_beta": 8.0}),
    ("gaussian L=10", {"n_latent": 10, "prior": "gaussian"}),
]


def datasets(quick: bool) -> dict:
    """The two benchmark datasets, prepared (counts layer, log-normalized X, batch, labels)."""
    from qbm_lite import data

    sim = data.simulate(
        n_cells=800 if quick else 1500, n_genes=1000, n_batches=2, n_cell_types=6, seed=0
    )
    sim = data.prepare(sim, n_top_genes=500, batch_key="batch")
    pbmc = data.load("pbmc68k_reduced")
    pbmc = data.add_batch_effect(pbmc, n_batches=2, strength=0.5, seed=0)
    pbmc = data.prepare(pbmc, n_top_genes=pbmc.n_vars, batch_key="batch")
    return {"sim": (sim, "cell_type"), "pbmc": (pbmc, "bulk_labels")}


def representations(model) -> dict[str, np.ndarray]:
    """``q``, logits and the mean of ζ (Boltzmann prior) or the posterior mean (Gaussian)."""
    import torch

    module = model.module
    module.eval()
    with torch.no_grad():
        parts = [
            module.inference(x, b, sample=False) for x, b in model._minibatches(None, None, 4096)
        ]
    inf = {k: torch.cat([p[k] for p in parts]) for k in parts[0] if torch.is_tensor(parts[0][k])}
    if module.prior_name != "boltzmann":
        return {"mean": inf["z"].cpu().numpy()}
    q = inf["q"].cpu().numpy()
    relax = module.relaxation
    beta = relax.beta
    # E[ζ | z = 0] for r(ζ|0) ∝ exp(-β ζ) on [0, 1]; E[ζ | z = 1] = 1 - E[ζ | z = 0] (overlapping)
    # or 1 - E[ζ | z = 0] as well for spike-exp's r(ζ|1), whose r(ζ|0) is a spike at 0.
    m0 = 1.0 / beta - np.exp(-beta) / (1.0 - np.exp(-beta))
    e0 = 0.0 if relax.name == "spike-exp" else m0
    zeta_mean = (1 - q) * e0 + q * (1.0 - m0)
    return {"q": q, "logits": inf["logits"].cpu().numpy(), "zeta_mean": zeta_mean}


def local_scores(emb: np.ndarray, labels: np.ndarray, q: np.ndarray | None) -> dict[str, float]:
    """Codes per 1,000 cells, saturation, Leiden ARI and 15-NN label purity."""
    import anndata as ad
    import scanpy as sc
    from sklearn.metrics import adjusted_rand_score
    from sklearn.neighbors import NearestNeighbors

    out: dict[str, float] = {}
    if q is not None:
        codes = np.unique(q > 0.5, axis=0).shape[0]
        out["codes_per_1000"] = 1000.0 * codes / q.shape[0]
        out["saturated"] = float(np.mean((q < 0.05) | (q > 0.95)))
    idx = NearestNeighbors(n_neighbors=16).fit(emb).kneighbors(emb)[1][:, 1:]
    out["knn_purity"] = float((labels[idx] == labels[:, None]).mean())
    tmp = ad.AnnData(X=np.zeros((emb.shape[0], 1), dtype=np.float32))
    tmp.obsm["emb"] = emb.astype(np.float32)
    sc.pp.neighbors(tmp, use_rep="emb", n_neighbors=15, random_state=0)
    sc.tl.leiden(tmp, resolution=1.0, flavor="igraph", n_iterations=2, random_state=0)
    out["leiden_ari"] = float(adjusted_rand_score(labels, tmp.obs["leiden"]))
    out["n_leiden"] = float(tmp.obs["leiden"].nunique())
    return out


def run(args) -> pd.DataFrame:
    from qbm_lite import QBMVAE, metrics
    from qbm_lite.config import torch_threads

    rows = []
    for dname, (adata, label_key) in datasets(args.quick).items():
        labels = adata.obs[label_key].astype(str).to_numpy()
        keys: dict[str, str] = {}
        for seed in range(args.seeds):
            for cname, kwargs in CONFIGS:
                if args.configs and cname not in args.configs:
                    continue
                t0 = time.perf_counter()
                with torch_threads(1):
                    model = QBMVAE(
                        adata,
                        layer="counts",
                        batch_key="batch",
                        likelihood="nb",
                        seed=seed,
                        **kwargs,
                    )
                    model.train(
                        max_epochs=args.epochs[dname],
                        batch_size=128,
                        prior_warmup_epochs=args.epochs[dname] // 4,
                        progress=False,
                    )
                seconds = time.perf_counter() - t0
                reps = representations(model)
                q = reps.get("q")
                for rname, emb in reps.items():
                    key = f"{cname}|{rname}|{seed}"
                    adata.obsm[key] = emb
                    keys[key] = key
                    row = {"data": dname, "config": cname, "rep": rname, "seed": seed}
                    row.update(local_scores(emb, labels, q if rname != "mean" else None))
                    row["batch_mixing"] = metrics.batch_mixing(emb, adata.obs["batch"])
                    row["train_s"] = seconds
                    rows.append(row)
                print(f"  {dname} seed {seed} {cname}: trained in {seconds:.0f} s", flush=True)
        with warnings.catch_warnings():
            # scib-metrics' light preset on tiny data: nothing here is actionable.
            warnings.filterwarnings("ignore", category=UserWarning, module="scib_metrics")
            bench = metrics.integration_benchmark(
                adata, keys, batch_key="batch", label_key=label_key, metrics="light", plot=False
            )
        sc = bench.scores
        for row in rows:
            if row["data"] != dname:
                continue
            key = f"{row['config']}|{row['rep']}|{row['seed']}"
            row["graph_conn"] = float(sc.loc[key, "Graph connectivity"])
            row["ilisi"] = float(sc.loc[key, "iLISI"])
            row["scib_bio"] = float(sc.loc[key, "Bio conservation"])
            row["scib_batch"] = float(sc.loc[key, "Batch correction"])
            row["scib_total"] = float(sc.loc[key, "Total"])
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 epochs, one seed")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--csv", default=None, help="also write the per-seed table here")
    parser.add_argument(
        "--configs", nargs="*", default=None, help="run only these configs (labels as printed)"
    )
    args = parser.parse_args()
    args.epochs = {"sim": 40, "pbmc": 80}
    if args.quick:
        args.epochs, args.seeds = {"sim": 10, "pbmc": 10}, 1
    start = time.perf_counter()
    table = run(args)
    if args.csv:
        table.to_csv(args.csv, index=False)
    cols = [
        "codes_per_1000",
        "saturated",
        "n_leiden",
        "leiden_ari",
        "knn_purity",
        "graph_conn",
        "batch_mixing",
        "ilisi",
        "scib_bio",
        "scib_batch",
        "scib_total",
    ]
    grouped = table.groupby(["data", "config", "rep"], sort=False)[cols]
    mean = grouped.mean()
    spread = grouped.max() - grouped.min()
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print("\nMean over seeds:")
        print(mean.round(3).to_string())
        print("\nSpread over seeds (max - min):")
        print(spread.round(3).to_string())
    print(f"\ntotal time {time.perf_counter() - start:.0f} s; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
