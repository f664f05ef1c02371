"""Scale: one QBM-VAE epoch from disk at 10^4, 10^5 and 10^6 cells, against memory and scvi-tools.

Simulated counts (``qbm_lite.data.write_simulated``, 2,000 genes, sparse CSR ``.h5ad``, written
chunk by chunk and cached in ``--data-dir``). Every measured run is its own subprocess so its peak
resident memory (``VmHWM``) is its own. Prints, per size, cells per second and peak RSS of one
epoch read from disk (backed ``.h5ad``, block-shuffled), the same epoch with the sparse matrix in
memory, and scvi-tools' SCVI in memory; then the ratios the project tracks:

- peak RSS of the largest from-disk epoch (goal <= 3 GB at 10^6 cells);
- from-disk over in-memory throughput at 10^5 cells (goal >= 0.5);
- time per epoch, largest size over 10^5 (goal <= 12 for 10^6 / 10^5: linear in cells);
- the 256-unit prior's time per step and sampler share with Gibbs and with the simulated CIM;
- on a CUDA machine, the same epoch on the GPU (cells/s, peak GPU memory).

Usage: ``python benchmarks/scale_bench.py [--cells 10000 100000 1000000] [--skip-scvi]``.
Wall times on a shared machine are inflated by its load; the script prints the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _peak_rss_gb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def worker(mode: str, path: str, batch_size: int, device: str) -> dict:
    """One epoch in this process; returns cells/s and peak RSS."""
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    import anndata as ad

    from qbm_lite import QBMVAE
    from qbm_lite.data import read_backed

    t0 = time.perf_counter()
    if mode == "scvi":
        import scvi

        adata = ad.read_h5ad(path)
        scvi.model.SCVI.setup_anndata(adata, batch_key="batch")
        model = scvi.model.SCVI(adata, n_latent=10)
        t1 = time.perf_counter()
        model.train(
            max_epochs=1,
            batch_size=batch_size,
            accelerator="cpu" if device == "cpu" else "auto",
            train_size=1.0,
            enable_progress_bar=False,
            enable_model_summary=False,
            logger=False,
            enable_checkpointing=False,
        )
    else:
        adata = read_backed(path) if mode == "disk" else ad.read_h5ad(path)
        model = QBMVAE(adata, batch_key="batch", n_latent=10, device=device)
        t1 = time.perf_counter()
        model.train(
            max_epochs=1,
            batch_size=batch_size,
            train_size=1.0,
            prior_warmup_epochs=0,  # time the epoch with the prior's negative phase
            progress=False,
        )
    seconds = time.perf_counter() - t1
    out = {
        "mode": mode,
        "cells": int(adata.n_obs),
        "setup_s": t1 - t0,
        "epoch_s": seconds,
        "cells_per_s": adata.n_obs / seconds,
        "peak_rss_gb": _peak_rss_gb(),
    }
    if mode != "scvi":
        out["sampler_share"] = sum(model.history["time_sampler"]) / seconds
    if device.startswith("cuda"):
        out["peak_gpu_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def run_worker(mode: str, path: Path, batch_size: int, device: str = "cpu") -> dict:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, __file__, "--worker", mode, str(path), "--batch-size", str(batch_size)]
    cmd += ["--device", device]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"mode": mode, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def prior_step_times(n_latent: int = 256, steps: int = 5) -> list[dict]:
    """Time per training step of the 256-unit prior with Gibbs and the CIM (in this process)."""
    from qbm_lite import QBMVAE
    from qbm_lite.data import simulate

    adata = simulate(n_cells=128 * steps, n_genes=2000, n_batches=2, seed=0)
    rows = []
    for sampler in ("gibbs", "cim"):
        m = QBMVAE(adata, batch_key="batch", n_latent=n_latent, sampler=sampler)
        m.train(
            max_epochs=1,
            batch_size=128,
            train_size=1.0,
            prior_warmup_epochs=0,
            log_z="none",
            progress=False,
        )
        t = m.history["time_epoch"][-1]
        rows.append(
            {
                "sampler": sampler,
                "s_per_step": t / steps,
                "sampler_share": m.history["time_sampler"][-1] / t,
            }
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--genes", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--data-dir", default=str(ROOT / ".bench_data"))
    p.add_argument("--skip-scvi", action="store_true")
    p.add_argument("--skip-prior", action="store_true")
    p.add_argument("--worker", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.batch_size, args.device)))
        return

    import torch

    from qbm_lite.data import write_simulated

    print(f"load average at start: {os.getloadavg()}")
    results: dict[int, dict[str, dict]] = {}
    for n in args.cells:
        path = Path(args.data_dir) / f"sim_{n}x{args.genes}.h5ad"
        if not path.exists():
            t = time.perf_counter()
            write_simulated(path, n, args.genes, seed=0)
            print(f"wrote {path.name} in {time.perf_counter() - t:.0f} s")
        modes = ["disk"]
        if n <= 100_000:
            modes.append("memory")
            if not args.skip_scvi:
                modes.append("scvi")
        if torch.cuda.is_available():
            modes.append("disk-cuda")
        results[n] = {}
        for mode in modes:
            base, device = (mode.split("-") + ["cpu"])[:2]
            r = run_worker(base, path, args.batch_size, device)
            results[n][mode] = r
            print(n, mode, json.dumps(r))
    print("\n| cells | mode | cells/s | epoch (s) | peak RSS (GB) |")
    print("|---|---|---|---|---|")
    for n, by_mode in results.items():
        for mode, r in by_mode.items():
            if "error" in r:
                print(f"| {n} | {mode} | error: {r['error']} | | |")
                continue
            print(
                f"| {n} | {mode} | {r['cells_per_s']:.0f} | {r['epoch_s']:.1f} | "
                f"{r['peak_rss_gb']:.2f} |"
            )
    ok = {n: r for n, r in results.items() if "epoch_s" in r.get("disk", {})}
    if ok:
        largest = max(ok)
        print(
            f"\npeak RSS, {largest} cells from disk: {ok[largest]['disk']['peak_rss_gb']:.2f} GB"
            " (goal <= 3 GB at 10^6)"
        )
    if 100_000 in ok and "epoch_s" in results[100_000].get("memory", {}):
        r = ok[100_000]["disk"]["cells_per_s"] / results[100_000]["memory"]["cells_per_s"]
        print(f"from-disk / in-memory throughput at 10^5 cells: {r:.2f} (goal >= 0.5)")
    if 100_000 in ok and max(ok) > 100_000:
        big = max(ok)
        r = ok[big]["disk"]["epoch_s"] / ok[100_000]["disk"]["epoch_s"]
        print(f"epoch time {big} / 10^5 cells: {r:.1f} (goal <= {12 * big / 1e6:.0f})")
    for n, by_mode in results.items():
        if "epoch_s" in by_mode.get("scvi", {}) and "epoch_s" in by_mode.get("memory", {}):
            r = by_mode["memory"]["cells_per_s"] / by_mode["scvi"]["cells_per_s"]
            print(f"QBM-VAE (memory) / SCVI cells/s at {n} cells: {r:.2f}")
    if not args.skip_prior:
        for row in prior_step_times():
            print(
                f"256-unit prior, {row['sampler']}: {row['s_per_step'] * 1e3:.0f} ms per step, "
                f"sampler share {row['sampler_share']:.0%}"
            )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
