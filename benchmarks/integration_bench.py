"""Integration benchmark over seeds: QBM-VAE against its controls and the usual baselines.

Methods: QBM-VAE, Uniform-prior VAE (the same discrete VAE with its prior held uniform: the
control that isolates the learned Boltzmann prior), Gaussian VAE (same networks, continuous
latent), scVI, LDVAE, AUTOZI (scvi-tools, with their KL warm-up fitted inside the budget:
``qbm_lite.baselines.scvi_kl_warmup_epochs``), Harmony (harmonypy on 50 PCs of log-normalized
data), Scanorama (its defaults) and PCA (no integration). The discrete VAEs' encoder logits are
scored too, as a sensitivity check on the saturated ``q``.

Data: ``qbm_lite.data.simulate`` with 3 batches, 8 cell types in every batch and a strong batch
effect (gene-wise log factors with standard deviation 0.8, library shifts 0.5), reduced by
``qbm_lite.data.prepare`` to batch-aware highly variable genes. Every VAE trains on the counts
with the batch as a covariate, with the same latent size (10), epochs, minibatch size (128)
and seed, on one torch thread. Every method is trained once per seed (default 3 seeds; the data
are fixed).

Printed (scib-metrics, ``standard`` preset of ``qbm_lite.metrics``, unscaled):

1. each method's total (0.6 bio + 0.4 batch) and the total without the silhouette-based
   metrics, as mean ± sd over seeds, with bio, batch and the training time;
2. the per-metric table (mean over seeds);
3. paired differences over seeds with 95 % Student-t intervals (``qbm_lite.metrics.compare``):
   QBM-VAE − Uniform-prior VAE (what the learned prior adds), Uniform-prior VAE − Gaussian VAE
   (what discreteness adds) and QBM-VAE − the best other method by mean total, for both totals
   and per metric. "no difference" when the interval contains 0.

Budget: by default every VAE trains for scvi-tools' own default number of epochs for the data
size (``qbm_lite.baselines.scvi_default_max_epochs``: 400 below 20,000 cells), the schedule the
scvi-tools authors intend; ``--epochs N`` overrides it for all VAEs. Short budgets are not
neutral: a VAE that has not finished its KL warm-up keeps the batch. At ``--epochs 100`` (2,000
cells, 1,500 minibatch steps) the iLISI means over 3 seeds were QBM-VAE 0.756, uniform-prior VAE
0.631, Gaussian VAE 0.533, AUTOZI 0.367, scVI 0.330 and LDVAE 0.000.

Run: ``python benchmarks/integration_bench.py`` (2,000 cells, 400 epochs, 3 seeds, all methods,
``--jobs 2``: roughly 45 minutes of training on 2 cores; not completed on the development
machine), ``--epochs 100`` (measured: 1,002 s of training and 174 s of metrics on 2 cores shared
with a CI run, load average 3.6) or ``--quick`` (1,500 cells, 30 epochs, light metrics; a smoke
test of the protocol that cannot rank the methods).
``--seeds 0,1,2,3,4`` for more seeds, ``--sampler cim`` for the simulated CIM as the QBM-VAE's
negative-phase sampler.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import pandas as pd

from qbm_lite import baselines, data, metrics

SENSITIVITY = {
    "QBM-VAE (logits)": ("QBM-VAE", "X_qbmvae_logits"),
    "Uniform-prior VAE (logits)": ("Uniform-prior VAE", "X_uniform_vae_logits"),
}


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--cells", type=int, default=2_000)
    parser.add_argument("--genes", type=int, default=2_000)
    parser.add_argument("--hvg", type=int, default=1_000)
    parser.add_argument(
        "--epochs", type=int, default=None, help="default: scvi-tools' default for the size"
    )
    parser.add_argument("--latent", type=int, default=10)
    parser.add_argument("--batch-strength", type=float, default=0.8)
    parser.add_argument("--metrics", default="standard", choices=["light", "standard", "full"])
    parser.add_argument("--sampler", default=None, help="QBM-VAE sampler (default: Gibbs PCD)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--methods", default=",".join(baselines.METHODS))
    parser.add_argument("--jobs", type=int, default=2, help="models trained at once (processes)")
    args = parser.parse_args()
    if args.quick:
        args.cells, args.genes, args.hvg, args.epochs, args.metrics = 1500, 1000, 500, 30, "light"
    if args.epochs is None:
        args.epochs = baselines.scvi_default_max_epochs(args.cells)
    args.methods = [m.strip() for m in args.methods.split(",")]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    return args


def _score(adata, keys: dict[str, str], args) -> pd.DataFrame:
    keys = dict(keys)
    for name, (method, base_key) in SENSITIVITY.items():
        if method in keys:
            keys[name] = keys[method].replace(baselines.METHODS[method], base_key, 1)
    bench = metrics.integration_benchmark(
        adata, keys, "batch", "cell_type", metrics=args.metrics, plot=False
    )
    if bench.pcr_clipped:
        print(f"  PCR comparison clipped to 0 (more batch variance than PCA): {bench.pcr_clipped}")
    return bench.tidy


def _mean_sd(summary: pd.DataFrame, metric: str) -> pd.Series:
    rows = summary.xs(metric, level="metric")
    return rows.apply(lambda r: f"{r['mean']:.3f} ± {r['sd']:.3f}", axis=1)


def _print_comparison(tidy: pd.DataFrame, a: str, b: str, title: str) -> None:
    print(f"\n{title}: {a} − {b} (mean over seeds, 95% t interval)")
    table = metrics.metric_differences(tidy, a, b, method="t")
    with pd.option_context("display.float_format", "{:+.3f}".format, "display.width", 140):
        print(table.to_string())


def main() -> None:
    args = _parse()
    start = time.perf_counter()
    raw = data.simulate(
        n_cells=args.cells,
        n_genes=args.genes,
        n_batches=3,
        n_cell_types=8,
        batch_strength=args.batch_strength,
        library_shift=0.5,
        seed=args.data_seed,
    )
    adata = data.prepare(raw, n_top_genes=args.hvg, batch_key="batch")
    print(
        f"data: {adata.n_obs} cells x {adata.n_vars} HVGs, 3 batches, 8 types, "
        f"batch_strength={args.batch_strength}; methods: {args.methods}; seeds: {args.seeds}; "
        f"{args.epochs} epochs; metrics preset {args.metrics!r}"
    )
    kwargs = {}
    if args.sampler:
        kwargs = {m: {"sampler": args.sampler} for m in baselines.DISCRETE_METHODS}
        kwargs = {m: v for m, v in kwargs.items() if m in args.methods}
    with warnings.catch_warnings():
        # Lightning advises more data-loader workers; on a 2-core machine that would not help.
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        runs = baselines.train_methods_seeds(
            adata,
            args.methods,
            "batch",
            seeds=args.seeds,
            n_latent=args.latent,
            max_epochs=args.epochs,
            batch_size=128,
            method_kwargs=kwargs,
            num_threads=1,
            progress=True,
            n_jobs=args.jobs,
        )
    t_train = time.perf_counter() - start
    print("settings:", {m: s for m, s in runs.settings.items() if s})
    t0 = time.perf_counter()
    tidy = runs.score(adata, lambda a, k: _score(a, k, args), progress=True)
    t_metrics = time.perf_counter() - t0

    summary = metrics.summarize(pd.concat([tidy, runs.times], ignore_index=True))
    table = pd.DataFrame(
        {
            "Total": _mean_sd(summary, "Total"),
            "Total (no silhouettes)": _mean_sd(summary, "Total (no silhouettes)"),
            "Bio": _mean_sd(summary, "Bio conservation"),
            "Batch": _mean_sd(summary, "Batch correction"),
        }
    )
    seconds = summary.xs("train seconds", level="metric")["mean"]
    table["train s"] = seconds.reindex(table.index).map(lambda v: "" if pd.isna(v) else f"{v:.0f}")
    order = summary.xs("Total", level="metric")["mean"].sort_values(ascending=False).index
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(f"\nTotals over {len(args.seeds)} seeds (mean ± sd), best total first:")
        print(table.loc[order].to_string())
        per_metric = (
            summary["mean"]
            .unstack("metric")
            .loc[order, [m for m in pd.unique(tidy["metric"]) if m in summary.index.levels[1]]]
        )
        print("\nPer-metric means over seeds:")
        print(per_metric.round(3).T.to_string())

    names = set(tidy["method"])
    if {"QBM-VAE", "Uniform-prior VAE"} <= names:
        _print_comparison(tidy, "QBM-VAE", "Uniform-prior VAE", "What the learned prior adds")
    if {"Uniform-prior VAE", "Gaussian VAE"} <= names:
        _print_comparison(tidy, "Uniform-prior VAE", "Gaussian VAE", "What discreteness adds")
    others = [m for m in order if m in args.methods and m != "QBM-VAE"]
    if "QBM-VAE" in names and others:
        _print_comparison(tidy, "QBM-VAE", others[0], "Against the best other method")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(
        f"\ntraining {t_train:.0f} s, metrics {t_metrics:.0f} s, total "
        f"{time.perf_counter() - start:.0f} s; load average {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} (2 cores shared: times are inflated by other work)"
    )


if __name__ == "__main__":
    main()
