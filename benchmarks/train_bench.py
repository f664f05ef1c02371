"""Training speed of the QBM-VAE against the Gaussian-prior VAE and scvi-tools' SCVI.

Simulated negative-binomial counts (default 20,000 cells x 2,000 genes, 2 batches); each model
trains for the same epochs at batch size 128 in one process. Prints cells per second, seconds per
epoch, the sampler's share of the QBM-VAE's time and the peak resident-memory increase of each
run, then the two ratios the project tracks:

- QBM-VAE cells/s over SCVI cells/s (goal >= 1.0, aim 2.0);
- QBM-VAE time per epoch over the Gaussian-prior VAE's (goal <= 1.3).

Usage: ``python benchmarks/train_bench.py [--cells 20000] [--genes 2000] [--epochs 3]``.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import warnings

import numpy as np
import pandas as pd


def simulate_counts(n_cells: int, n_genes: int, n_batches: int = 2, seed: int = 0):
    """NB counts from 6 cell groups with log-normal gene programs and a batch-specific scaling."""
    import anndata as ad

    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 6, n_cells)
    batches = rng.integers(0, n_batches, n_cells)
    base = rng.lognormal(-1.0, 1.5, n_genes)
    programs = rng.lognormal(0.0, 0.8, (6, n_genes))
    batch_fx = rng.lognormal(0.0, 0.3, (n_batches, n_genes))
    library = rng.lognormal(np.log(1500), 0.4, n_cells)
    rate = base * programs[groups] * batch_fx[batches]
    rate = rate / rate.sum(1, keepdims=True) * library[:, None]
    theta = 5.0
    counts = rng.poisson(rng.gamma(theta, rate / theta)).astype(np.float32)
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical([f"batch{b}" for b in batches]),
            "group": pd.Categorical([f"group{g}" for g in groups]),
        },
        index=[f"cell{i}" for i in range(n_cells)],
    )
    adata = ad.AnnData(
        counts.copy(), obs=obs, var=pd.DataFrame(index=[f"gene{j}" for j in range(n_genes)])
    )
    adata.layers["counts"] = counts
    return adata


class PeakRSS:
    """Peak resident memory above the level at entry, polled from /proc every 5 ms (Linux)."""

    def __enter__(self):
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:  # not Linux: no memory figure
            return 0

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.005)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def mb(self) -> float:
        return (self.peak - self.base) / 2**20


def run_qbmvae(adata, prior: str, epochs: int, batch_size: int) -> dict:
    from qbm_lite import QBMVAE

    with PeakRSS() as mem:
        t0 = time.perf_counter()
        model = QBMVAE(adata, layer="counts", batch_key="batch", likelihood="nb", prior=prior)
        t1 = time.perf_counter()
        model.train(
            max_epochs=epochs,
            batch_size=batch_size,
            prior_warmup_epochs=epochs // 4,
            progress=False,
        )
        t2 = time.perf_counter()
    h = model.history
    return {
        "name": f"QBM-VAE ({prior} prior)",
        "setup_s": t1 - t0,
        "train_s": t2 - t1,
        "epoch_s": (t2 - t1) / epochs,
        "sampler_share": sum(h["time_sampler"]) / sum(h["time_epoch"]),
        "mem_mb": mem.mb,
    }


def run_scvi(adata, epochs: int, batch_size: int) -> dict | None:
    try:
        import scvi
    except ImportError:
        return None
    import logging

    logging.getLogger("scvi").setLevel(logging.WARNING)
    logging.getLogger("lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    scvi.settings.seed = 0
    adata = adata.copy()
    with PeakRSS() as mem, warnings.catch_warnings():
        # lightning's advice about dataloader workers; in-memory data needs none
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        t0 = time.perf_counter()
        scvi.model.SCVI.setup_anndata(adata, layer="counts", batch_key="batch")
        model = scvi.model.SCVI(adata, gene_likelihood="nb")
        t1 = time.perf_counter()
        model.train(
            max_epochs=epochs,
            batch_size=batch_size,
            accelerator="cpu",
            enable_progress_bar=False,
            enable_model_summary=False,
            logger=False,
            enable_checkpointing=False,
        )
        t2 = time.perf_counter()
    return {
        "name": f"scvi-tools SCVI {scvi.__version__}",
        "setup_s": t1 - t0,
        "train_s": t2 - t1,
        "epoch_s": (t2 - t1) / epochs,
        "sampler_share": float("nan"),
        "mem_mb": mem.mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--genes", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2, help="runs per model (fastest kept)")
    parser.add_argument("--no-scvi", action="store_true", help="skip scvi-tools")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    adata = simulate_counts(args.cells, args.genes)
    print(
        f"best of {args.repeats} interleaved runs each; "
        f"data: {args.cells} cells x {args.genes} genes, 2 batches; {args.epochs} epochs at batch "
        f"size {args.batch_size}; torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    runners = [
        lambda: run_qbmvae(adata, "boltzmann", args.epochs, args.batch_size),
        lambda: run_qbmvae(adata, "gaussian", args.epochs, args.batch_size),
    ]
    if not args.no_scvi:
        try:
            import scvi  # noqa: F401

            runners.append(lambda: run_scvi(adata, args.epochs, args.batch_size))
        except ImportError:
            print("scvi-tools is not installed: skipping the SCVI anchor")
    # The machine may be shared: interleave the repeats and keep each model's fastest run.
    results: list[dict] = [None] * len(runners)
    for _ in range(args.repeats):
        for i, run in enumerate(runners):
            r = run()
            if results[i] is None or r["train_s"] < results[i]["train_s"]:
                results[i] = r
    for r in results:
        r["cells_per_s"] = args.cells * args.epochs / r["train_s"]
        share = "" if np.isnan(r["sampler_share"]) else f"  sampler {100 * r['sampler_share']:.1f}%"
        print(
            f"{r['name']:<28} {r['cells_per_s']:>9.0f} cells/s  {r['epoch_s']:6.2f} s/epoch  "
            f"setup {r['setup_s']:5.2f} s  peak +{r['mem_mb']:6.0f} MB{share}"
        )
    print(
        "(peak + MB: rise of the process's resident memory during the run; memory that earlier "
        "runs freed is reused, so later runs can show less)"
    )
    qbm, gauss = results[0], results[1]
    ratio_gauss = qbm["epoch_s"] / gauss["epoch_s"]
    print(f"ratio QBM-VAE / Gaussian-prior VAE time per epoch: {ratio_gauss:.2f} (goal <= 1.3)")
    if len(results) > 2:
        ratio_scvi = qbm["cells_per_s"] / results[2]["cells_per_s"]
        print(f"ratio QBM-VAE / SCVI cells per second: {ratio_scvi:.2f} (goal >= 1.0, aim 2.0)")


if __name__ == "__main__":
    main()
