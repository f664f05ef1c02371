"""Data-parallel training with PyTorch DDP: 2 CPU processes (gloo) launched by torchrun."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _env():
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def _torchrun(args, cwd):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    out = subprocess.run(
        cmd + args, capture_output=True, text=True, env=_env(), cwd=cwd, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def _write_data(path, n=320, g=20):
    rng = np.random.default_rng(0)
    X = rng.negative_binomial(3, 0.4, size=(n, g)).astype(np.float32)
    obs = pd.DataFrame(
        {"batch": pd.Categorical(rng.choice(["b0", "b1"], n))}, index=[f"c{i}" for i in range(n)]
    )
    ad.AnnData(X, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(g)])).write_h5ad(path)


def test_torchrun_cli_ranks_end_identical(tmp_path):
    _write_data(tmp_path / "cells.h5ad")
    args = ["-m", "qbm_lite.train", "cells.h5ad", "--out", "run", "--epochs", "2"]
    args += ["--batch-size", "32", "--n-latent", "4", "--n-hidden", "16", "--batch-key", "batch"]
    args += ["--train-size", "0.9", "--prior-warmup-epochs", "1"]  # epoch 2 learns the prior
    _torchrun(args, tmp_path)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["max_param_diff_across_ranks"] == 0.0
    hist = summary["history"]
    assert len(hist["train_loss"]) == 2 and np.isfinite(hist["train_loss"]).all()
    assert hist["log_z_method"] == ["exact", "exact"]
    z = np.load(tmp_path / "run" / "latent.npy")
    assert z.shape == (320, 4) and np.isfinite(z).all()
    names = (tmp_path / "run" / "obs_names.txt").read_text().split()
    assert names[:2] == ["c0", "c1"]
    from qbm_lite import QBMVAE

    model = QBMVAE.load(tmp_path / "run", ad.read_h5ad(tmp_path / "cells.h5ad"))
    np.testing.assert_allclose(model.get_latent_representation(), z, atol=1e-6)


_STEP_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    import torch.distributed as dist
    from qbm_lite.samplers import ExactSampler
    from qbm_lite.vae import VAEModule
    from qbm_lite.vae.relaxations import sample_relaxed
    from qbm_lite.vae.training import Trainer

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()

    def make():
        torch.manual_seed(0)
        m = VAEModule(12, "nb", "boltzmann", ExactSampler(seed=0), n_batch=2, n_latent=5,
                      n_hidden=16, dropout=0.0)
        # Fixed relaxation noise: the only randomness left in a forward pass.
        m.relaxation.rsample = lambda q, generator=None: sample_relaxed(
            q, torch.full_like(q, 0.37), "overlapping", 8.0)
        with torch.no_grad():  # a non-uniform prior, so that its gradient is not trivial
            m.prior.h.copy_(torch.linspace(-0.5, 0.5, 5))
            m.prior.J_upper.copy_(torch.linspace(-0.3, 0.3, 10))
        return m

    g = torch.Generator().manual_seed(1)
    x = torch.poisson(torch.full((2 * 16, 12), 3.0), generator=g)
    b = torch.nn.functional.one_hot(torch.arange(32) % 2, 2).float()

    module = make()
    trainer = Trainer(module, {}, lr=0.05)  # wraps the module in DDP (world_size 2)
    assert isinstance(trainer.net, torch.nn.parallel.DistributedDataParallel)
    mine = slice(rank * 16, (rank + 1) * 16)
    # negative=None: the exact, differentiable log Z instead of a sampled negative phase.
    out = trainer.net(x[mine], b[mine], None, 1.0, None)
    trainer.optimizer.zero_grad()
    out.loss.backward()
    trainer.optimizer.step()
    params = torch.cat([p.detach().reshape(-1) for p in module.parameters()])

    if rank == 0:
        ref = make()
        opt = torch.optim.Adam(ref.parameters(), lr=0.05)
        ref(x, b, None, 1.0, None).loss.backward()
        opt.step()
        expected = torch.cat([p.detach().reshape(-1) for p in ref.parameters()])
        moved = (expected - torch.cat([p.detach().reshape(-1) for p in make().parameters()]))
        diff = (params - expected).abs().max().item()
        print("RESULT", diff, moved.abs().max().item(), flush=True)
    gathered = [torch.empty_like(params) for _ in range(world)]
    dist.all_gather(gathered, params)
    if rank == 0:
        print("RANKS", (gathered[0] - gathered[1]).abs().max().item(), flush=True)
    dist.destroy_process_group()
    """
)


def test_one_ddp_step_equals_one_step_on_the_union(tmp_path):
    (tmp_path / "step.py").write_text(_STEP_SCRIPT)
    out = _torchrun(["step.py"], tmp_path)
    lines = {ln.split()[0]: ln.split()[1:] for ln in out.stdout.splitlines() if ln.strip()}
    diff, moved = map(float, lines["RESULT"])
    assert moved > 1e-3  # the step changed the weights...
    assert diff < 1e-6  # ...exactly as one step on the union of the ranks' minibatches
    assert float(lines["RANKS"][0]) == 0.0


@pytest.mark.parametrize("sampler", ["gibbs"])
def test_ranks_draw_different_negative_phases(sampler):
    # Without a process group, rank offsets do not apply: the seed alone decides.
    import torch

    from qbm_lite.vae import make_sampler
    from qbm_lite.vae.training import _reseed_sampler

    a, b = make_sampler(sampler, 0), make_sampler(sampler, 0)
    _reseed_sampler(b, 7)
    h, J = torch.zeros(6), torch.zeros(6, 6)
    assert not torch.equal(a.sample_spins(h, J, 64), b.sample_spins(h, J, 64))
