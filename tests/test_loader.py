"""The data path: block sampler, row readers on every storage, the chunked writer, and that the
model gives the same latent whatever the storage, within a memory bound from disk."""

import os
import subprocess
import sys
import textwrap

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from qbm_lite import QBMVAE
from qbm_lite.data import BlockSampler, CellLoader, RowReader, read_backed, write_simulated


# --- the block sampler -------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "block", "buffer", "batch"), [(100, 1, 4, 7), (1000, 64, 3, 50)])
def test_sampler_visits_every_cell_once_per_epoch(n, block, buffer, batch):
    s = BlockSampler(n, batch, block, buffer, seed=0)
    for epoch in range(3):
        s.set_epoch(epoch)
        batches = list(s)
        assert len(batches) == len(s)
        seen = np.concatenate(batches)
        assert np.array_equal(np.sort(seen), np.arange(n))
        assert max(len(b) for b in batches) <= batch


def test_sampler_order_depends_on_seed_and_epoch():
    def order(seed, epoch):
        s = BlockSampler(500, 32, 16, 4, seed=seed)
        s.set_epoch(epoch)
        return np.concatenate(list(s))

    assert np.array_equal(order(0, 0), order(0, 0))
    assert not np.array_equal(order(0, 0), order(1, 0))
    assert not np.array_equal(order(0, 0), order(0, 1))
    assert not np.array_equal(order(0, 0), np.arange(500))


def test_sampler_reads_contiguous_blocks():
    s = BlockSampler(1000, 50, 100, 2, seed=3)
    for positions, batches in s.buffers():
        # A buffer is made of whole blocks of consecutive cells (2 blocks of 100 here).
        starts = np.unique(positions // 100)
        assert len(positions) == 200 and len(starts) == 2
        assert np.array_equal(np.sort(np.concatenate(batches)), positions)


@pytest.mark.parametrize("n", [1000, 1003])
def test_each_rank_gets_a_disjoint_equal_share(n):
    world = 4
    shares = []
    for rank in range(world):
        s = BlockSampler(n, 32, 10, 3, seed=5, rank=rank, world_size=world)
        s.set_epoch(2)
        shares.append(np.concatenate(list(s)))
        assert len(s) == len(BlockSampler(n, 32, 10, 3, seed=5, rank=0, world_size=world))
    assert len({len(x) for x in shares}) == 1  # equal number of cells, so of batches
    union = np.concatenate(shares)
    assert set(union.tolist()) == set(range(n))
    if n % world == 0:
        assert len(union) == n  # disjoint
    else:
        assert len(union) - n == world - n % world  # wrapped padding, as DistributedSampler


def test_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        BlockSampler(10, 0)
    with pytest.raises(ValueError, match="rank"):
        BlockSampler(10, 2, rank=2, world_size=2)


# --- readers on every storage ------------------------------------------------------------------
def _counts(n=300, g=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.negative_binomial(2, 0.5, size=(n, g)).astype(np.float32)
    X[rng.random(X.shape) < 0.5] = 0
    return X


def _stores(X, tmp_path):
    a = ad.AnnData(sp.csr_matrix(X))
    a.write_h5ad(tmp_path / "s.h5ad")
    a.write_zarr(tmp_path / "s.zarr")
    ad.AnnData(X).write_h5ad(tmp_path / "d.h5ad")
    return {
        "dense": X,
        "csr": sp.csr_matrix(X),
        "csc": sp.csc_matrix(X),
        "int": X.astype(np.int32),
        "backed-sparse": ad.read_h5ad(tmp_path / "s.h5ad", backed="r").X,
        "backed-dense": ad.read_h5ad(tmp_path / "d.h5ad", backed="r").X,
        "zarr": read_backed(tmp_path / "s.zarr").X,
    }


def test_readers_agree_on_every_storage(tmp_path):
    X = _counts()
    rng = np.random.default_rng(1)
    idx = rng.choice(X.shape[0], 50, replace=False)  # unsorted, scattered
    for name, store in _stores(X, tmp_path).items():
        r = RowReader(store, max_gap=8)
        assert r.on_disk == name.startswith(("backed", "zarr")), name
        np.testing.assert_array_equal(r.dense(idx), X[idx], err_msg=name)
        assert r.dense(idx).dtype == np.float32


def test_backed_csc_is_refused_with_the_fix(tmp_path):
    ad.AnnData(sp.csc_matrix(_counts())).write_h5ad(tmp_path / "c.h5ad")
    with pytest.raises(TypeError, match="tocsr"):
        RowReader(ad.read_h5ad(tmp_path / "c.h5ad", backed="r").X)
    with pytest.raises(TypeError, match="cannot read cells"):
        RowReader([[1, 2]])


def test_loader_yields_every_row_with_its_batch(tmp_path):
    X = _counts(n=130)
    codes = np.arange(130) % 3
    store = _stores(X, tmp_path)["backed-sparse"]
    loader = CellLoader(
        RowReader(store),
        batch_codes=codes,
        n_batch=3,
        batch_size=16,
        shuffle=True,
        block_size=8,
        blocks_per_buffer=3,
    )
    rows = []
    for mb in loader:
        np.testing.assert_array_equal(mb.x.numpy(), X[mb.index])
        np.testing.assert_array_equal(mb.batch.argmax(1).numpy(), codes[mb.index])
        rows.append(mb.index)
    assert np.array_equal(np.sort(np.concatenate(rows)), np.arange(130))


@pytest.mark.parametrize("store", ["dense", "csr", "backed-sparse"])
def test_minibatches_have_the_requested_size(tmp_path, store):
    # Regression: in memory the buffer was 16 cells (block 1 x 16 blocks), which cut every
    # minibatch of 128 down to 16 cells.
    X = _counts(n=300)
    reader = RowReader(_stores(X, tmp_path)[store])
    for block_size, blocks_per_buffer in [(None, 16), (4, 16), (4, 3), (1, 16)]:
        loader = CellLoader(
            reader,
            batch_size=64,
            shuffle=True,
            block_size=block_size,
            blocks_per_buffer=blocks_per_buffer,
        )
        sizes = [len(mb.index) for mb in loader]
        assert sizes == [64] * 4 + [44], (block_size, blocks_per_buffer, sizes)


def test_write_simulated_h5ad_and_zarr_hold_the_same_cells(tmp_path):
    h = write_simulated(tmp_path / "a.h5ad", 700, 30, chunk_cells=256, seed=4)
    z = write_simulated(tmp_path / "a.zarr", 700, 30, chunk_cells=256, seed=4)
    a, b = ad.read_h5ad(h), read_backed(z)
    assert a.shape == (700, 30) and sp.issparse(a.X) and a.X.format == "csr"
    np.testing.assert_array_equal(a.X.toarray(), RowReader(b.X).dense(np.arange(700)))
    assert list(a.obs["batch"]) == list(b.obs["batch"])
    assert a.X.sum() > 0 and np.array_equal(a.X.data, np.round(a.X.data))
    other = write_simulated(tmp_path / "c.h5ad", 700, 30, chunk_cells=256, seed=5)
    assert not np.array_equal(ad.read_h5ad(other).X.toarray(), a.X.toarray())
    with pytest.raises(FileExistsError, match="overwrite"):
        write_simulated(h, 10, 5)
    with pytest.raises(ValueError, match=".h5ad or .zarr"):
        write_simulated(tmp_path / "x.csv", 10, 5)


# --- the model on every storage ----------------------------------------------------------------
def _adata(X, tmp_path):
    n = X.shape[0]
    obs = pd.DataFrame(
        {"batch": pd.Categorical(np.where(np.arange(n) % 2, "b1", "b0"))},
        index=[f"c{i}" for i in range(n)],
    )
    var = pd.DataFrame(index=[f"g{j}" for j in range(X.shape[1])])
    return ad.AnnData(X, obs=obs, var=var)


def test_same_latent_from_memory_sparse_backed_and_zarr(tmp_path):
    X = _counts(n=200, g=15)
    dense = _adata(X, tmp_path)
    sparse = _adata(sp.csr_matrix(X), tmp_path)
    sparse.write_h5ad(tmp_path / "m.h5ad")
    sparse.write_zarr(tmp_path / "m.zarr")
    m = QBMVAE(dense, batch_key="batch", n_latent=4, n_hidden=16)
    m.train(max_epochs=2, batch_size=32, progress=False)
    m.save(tmp_path / "model")
    ref = m.get_latent_representation()
    inputs = {
        "csr": sparse,
        "csc": _adata(sp.csc_matrix(X), tmp_path),
        "int64": _adata(X.astype(np.int64), tmp_path),
        "view": _adata(np.vstack([X, X[:5]]), tmp_path)[:200],
        "backed": ad.read_h5ad(tmp_path / "m.h5ad", backed="r"),
        "zarr": read_backed(tmp_path / "m.zarr"),
    }
    for name, a in inputs.items():
        np.testing.assert_allclose(m.get_latent_representation(a), ref, atol=1e-6, err_msg=name)
        loaded = QBMVAE.load(tmp_path / "model", a)
        np.testing.assert_allclose(loaded.get_latent_representation(), ref, atol=1e-6)
        # Library sizes and the count constant come from the streaming pass.
        assert loaded.library_median == pytest.approx(m.library_median)
        torch.testing.assert_close(loaded.x_lgamma, m.x_lgamma)
    backed = QBMVAE(inputs["backed"], batch_key="batch", n_latent=4, n_hidden=16)
    backed.train(max_epochs=1, batch_size=32, progress=False, block_size=16)
    assert np.isfinite(backed.history["train_loss"]).all()


def test_backed_data_with_bad_values_gives_the_same_clear_error(tmp_path):
    X = _counts(n=50, g=6)
    X[3, 2] = 1.5
    _adata(sp.csr_matrix(X), tmp_path).write_h5ad(tmp_path / "bad.h5ad")
    with pytest.raises(ValueError, match="non-integer"):
        QBMVAE(ad.read_h5ad(tmp_path / "bad.h5ad", backed="r"))
    obj = _adata(X, tmp_path)
    obj.X = X.astype(object)
    with pytest.raises(TypeError, match="dtype object"):
        QBMVAE(obj, likelihood="gaussian")


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch
    from qbm_lite import QBMVAE
    from qbm_lite.data import read_backed

    def peak_mb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) / 1024

    torch.set_num_threads(1)
    adata = read_backed(sys.argv[1])
    kw = dict(batch_key="batch", n_latent=6, n_hidden=32, dropout=0.0)
    # Warm-up in memory on 2,000 cells: torch's one-time allocations go into the baseline.
    small = QBMVAE(adata[:2000].to_memory(), **kw)
    small.train(max_epochs=1, train_size=1.0, progress=False)
    small.get_latent_representation(batch_size=2048)
    del small
    base = peak_mb()
    m = QBMVAE(adata, **kw)
    m.train(max_epochs=1, batch_size=128, train_size=1.0, progress=False)
    peak = peak_mb()
    z = m.get_latent_representation(batch_size=1024, indices=np.arange(0, adata.n_obs, 97))
    assert np.isfinite(z).all()
    print(base, peak)
    """
)


def test_an_epoch_from_disk_stays_under_a_memory_bound(tmp_path):
    n_cells, n_genes, bound_mb = 100_000, 1000, 100
    dense_mb = n_cells * n_genes * 4 / 2**20  # 381 MB as a dense float32 matrix
    assert dense_mb > 3 * bound_mb
    rng = np.random.default_rng(0)
    X = sp.random(n_cells, n_genes, density=0.03, format="csr", dtype=np.float32, rng=rng)
    X.data = np.ceil(X.data * 5)  # counts 1..5
    a = _adata(X, tmp_path)
    a.write_h5ad(tmp_path / "big.h5ad")
    del a, X
    script = tmp_path / "run.py"
    script.write_text(_MEMORY_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "big.h5ad")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    base, peak = map(float, out.stdout.split()[-2:])
    assert peak - base < bound_mb, (base, peak)
