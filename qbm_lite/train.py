"""Command-line training: ``python -m qbm_lite.train DATA --out DIR [options]``.

Reads an ``.h5ad`` file or a ``.zarr`` store (kept on disk by default, read in shuffled blocks),
trains a :class:`~qbm_lite.vae.model.QBMVAE`, and writes ``DIR/model.pt``, the embedding
``DIR/latent.npy`` (cells in file order; ``DIR/obs_names.txt`` names them) and
``DIR/summary.json`` (settings, final losses, timings).

The same entry point runs data-parallel on several processes with PyTorch DDP when launched by
``torchrun``, which sets ``RANK``, ``WORLD_SIZE`` and the rendezvous variables::

    # one machine, 2 processes (gloo on CPU, NCCL on GPU)
    torchrun --standalone --nproc_per_node=2 -m qbm_lite.train cells.h5ad --out run1
    # 2 machines x 4 GPUs: run on each machine (Slurm: srun inside an sbatch script)
    torchrun --nnodes=2 --nproc_per_node=4 --rdzv_backend=c10d \\
        --rdzv_endpoint=$MASTER_ADDR:29500 --rdzv_id=$SLURM_JOB_ID \\
        -m qbm_lite.train cells.h5ad --out run1 --device cuda

Each rank trains on its own share of every epoch; only rank 0 writes. ``summary.json`` records
the largest difference between the ranks' final parameters (0 when DDP kept them in step).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

__all__ = ["main", "parse_args"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line's options (``--help`` lists them)."""
    p = argparse.ArgumentParser(
        prog="python -m qbm_lite.train",
        description="Train a QBM-VAE on an .h5ad file or .zarr store (DDP under torchrun).",
    )
    p.add_argument("data", help="an .h5ad file or a .zarr store")
    p.add_argument("--out", required=True, help="output directory (model.pt, latent.npy, ...)")
    p.add_argument("--layer", default=None, help="layer with the counts (default: X)")
    p.add_argument("--batch-key", default=None, help="obs column with the batch")
    p.add_argument("--likelihood", default="nb", choices=["nb", "zinb", "gaussian", "bernoulli"])
    p.add_argument("--prior", default="boltzmann", choices=["boltzmann", "gaussian"])
    p.add_argument("--n-latent", type=int, default=10)
    p.add_argument("--n-hidden", type=int, default=128)
    p.add_argument("--sampler", default="gibbs", choices=["gibbs", "exact", "annealing", "cim"])
    p.add_argument("--num-negative", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=None, help="default: scvi-tools' rule")
    p.add_argument("--batch-size", type=int, default=128, help="cells per step and process")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--train-size", type=float, default=1.0)
    p.add_argument(
        "--prior-warmup-epochs",
        type=int,
        default=None,
        help="epochs with the prior held uniform (default: a quarter of scvi-tools' default "
        "epochs for this many cells)",
    )
    p.add_argument("--log-z", default="auto", choices=["auto", "exact", "ais", "none"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--in-memory", action="store_true", help="load the whole file first")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model")
    return p.parse_args(argv)


def _init_distributed(device: str) -> tuple[int, int, str]:
    """Join the process group torchrun describes (if any); returns rank, world size, device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device
    dist = torch.distributed
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    elif device == "auto":
        device = "cpu"
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def _rank_spread(module: torch.nn.Module, world: int) -> float:
    """Largest absolute difference of any parameter between the ranks (all ranks call this)."""
    flat = torch.cat([p.detach().reshape(-1) for p in module.parameters()]).cpu()
    if world == 1:
        return 0.0
    gathered = [torch.empty_like(flat) for _ in range(world)]
    if torch.distributed.get_backend() == "nccl":
        dev = next(module.parameters()).device
        gathered_dev = [g.to(dev) for g in gathered]
        torch.distributed.all_gather(gathered_dev, flat.to(dev))
        gathered = [g.cpu() for g in gathered_dev]
    else:
        torch.distributed.all_gather(gathered, flat)
    return float(max((g - flat).abs().max() for g in gathered))


def main(argv: list[str] | None = None) -> dict:
    """Run the command line; returns the summary (on every rank)."""
    import anndata as ad

    from qbm_lite.data.write import read_backed
    from qbm_lite.vae.model import QBMVAE

    args = parse_args(argv)
    rank, world, device = _init_distributed(args.device)
    try:
        t0 = time.perf_counter()
        path = Path(args.data)
        adata = ad.read_h5ad(path) if args.in_memory and path.suffix == ".h5ad" else None
        if adata is None:
            adata = read_backed(path)
            if args.in_memory:
                adata = adata.to_memory()
        model = QBMVAE(
            adata,
            layer=args.layer,
            batch_key=args.batch_key,
            likelihood=args.likelihood,
            prior=args.prior,
            n_latent=args.n_latent,
            n_hidden=args.n_hidden,
            sampler=args.sampler if args.prior == "boltzmann" else None,
            num_negative=args.num_negative,
            dropout=args.dropout,
            seed=args.seed,
            device=device,
        )
        t_setup = time.perf_counter() - t0
        model.train(
            max_epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            train_size=args.train_size,
            prior_warmup_epochs=args.prior_warmup_epochs,
            log_z=args.log_z,
            progress=rank == 0,
        )
        spread = _rank_spread(model.module, world)
        summary = {
            "data": str(path),
            "n_cells": int(adata.n_obs),
            "n_genes": int(adata.n_vars),
            "world_size": world,
            "device": str(model.device),
            "epochs": model.epochs_trained,
            "seconds_setup": t_setup,
            "seconds_total": time.perf_counter() - t0,
            "max_param_diff_across_ranks": spread,
            "history": {k: v for k, v in model.history.items()},
            "args": vars(args),
        }
        if rank == 0:
            out = Path(args.out)
            model.save(out, overwrite=args.overwrite)
            np.save(out / "latent.npy", model.get_latent_representation())
            (out / "obs_names.txt").write_text("\n".join(map(str, adata.obs_names)) + "\n")
            (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        return summary
    finally:
        if world > 1:
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
