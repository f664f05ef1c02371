"""Single-cell data: bundled loaders, the simulator, the online registry, prepare()."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urlparse

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from qbm_lite import data
from qbm_lite.data import registry


def _dense(X) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def _lognorm_pca(counts: np.ndarray, n_comps: int = 10) -> np.ndarray:
    lib = counts.sum(axis=1, keepdims=True)
    return PCA(n_components=n_comps, random_state=0).fit_transform(np.log1p(counts / lib * 1e4))


def _same_label_fraction(X: np.ndarray, labels: np.ndarray, k: int = 15) -> float:
    idx = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)[1][:, 1:]
    return float((labels[idx] == labels[:, None]).mean())


# --- bundled data --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pbmc() -> ad.AnnData:
    return data.load("pbmc68k_reduced")


def test_pbmc68k_counts_are_integers_and_consistent(pbmc: ad.AnnData) -> None:
    counts = pbmc.layers["counts"]
    assert pbmc.shape == (700, 765)
    assert data.counts_are_integers(counts)
    dense = _dense(counts).astype(np.float64)
    n_counts = pbmc.obs["n_counts"].to_numpy(dtype=np.float64)
    # The 765 genes are a subset: their total can't exceed the cell's total over all genes.
    assert np.all(dense.sum(axis=1) <= n_counts + 1e-6)
    assert dense.sum(axis=1).min() > 0
    # Independent check: normalizing the recovered counts reproduces the shipped .raw, which
    # scanpy stored rounded to 3 decimals.
    renormalized = np.log1p(dense / n_counts[:, None] * 1e4)
    assert np.abs(renormalized - _dense(pbmc.raw.X)).max() <= 5e-4 + 1e-6
    # Same sparsity pattern as .raw: no count was invented or lost.
    assert np.array_equal(dense > 0, _dense(pbmc.raw.X) > 0)


def test_krumsiek11_loads_with_unique_names() -> None:
    k = data.load("krumsiek11")
    assert k.shape == (640, 11)
    assert k.obs_names.is_unique
    assert "cell_type" in k.obs


# --- simulator -----------------------------------------------------------------------------


def test_simulate_is_deterministic_and_integer() -> None:
    a = data.simulate(300, 100, 2, 4, seed=3)
    b = data.simulate(300, 100, 2, 4, seed=3)
    c = data.simulate(300, 100, 2, 4, seed=4)
    assert np.array_equal(_dense(a.X), _dense(b.X))
    assert a.obs.equals(b.obs)
    assert not np.array_equal(_dense(a.X), _dense(c.X))
    assert data.counts_are_integers(a.layers["counts"])
    assert a.shape == (300, 100)
    assert set(a.obs["batch"].cat.categories) == {"batch0", "batch1"}
    assert a.obs["cell_type"].nunique() == 4
    assert np.array_equal(a.obs["library_size"], _dense(a.X).sum(axis=1))


def test_simulate_batch_effect_is_present_and_measurable() -> None:
    kw = {"n_cells": 900, "n_genes": 300, "n_batches": 3, "n_cell_types": 4, "seed": 0}
    strong = data.simulate(batch_strength=0.8, **kw)
    none = data.simulate(batch_strength=0.0, library_shift=0.0, **kw)
    frac = {}
    for name, a in {"strong": strong, "none": none}.items():
        X = _lognorm_pca(_dense(a.X))
        frac[name] = _same_label_fraction(X, a.obs["batch"].cat.codes.to_numpy())
    # 3 batches: perfect mixing gives about 1/3 of neighbours from the same batch.
    assert frac["none"] < 0.45
    assert frac["strong"] > 0.9
    # The gene-wise factors are recoverable: per-gene mean ratios between two batches follow
    # the true factor ratios (restricted to one cell type so biology cancels).
    cells = strong.obs["cell_type"] == "type0"
    counts = _dense(strong.X)[cells.to_numpy()]
    counts = counts / counts.sum(axis=1, keepdims=True)
    batch = strong.obs.loc[cells, "batch"].to_numpy()
    m0, m1 = counts[batch == "batch0"].mean(0), counts[batch == "batch1"].mean(0)
    expressed = (m0 > 1e-3) & (m1 > 1e-3)
    true = (strong.var["batch_factor_0"] / strong.var["batch_factor_1"]).to_numpy()
    ratio = np.log(m0[expressed] / m1[expressed])
    rho = stats.spearmanr(ratio, np.log(true[expressed])).statistic
    assert rho > 0.8


def test_simulate_overdispersion_and_dropout() -> None:
    a = data.simulate(2000, 200, 1, 1, library_scale=0.0, dropout=0.0, seed=1)
    counts = _dense(a.X)
    mean, var = counts.mean(0), counts.var(0)
    high = mean > 5
    assert high.sum() > 10
    # Negative binomial: the variance exceeds the Poisson variance for expressed genes.
    assert np.mean(var[high] > 1.5 * mean[high]) > 0.9
    lo = data.simulate(500, 200, 1, 2, dropout=0.0, seed=2)
    hi = data.simulate(500, 200, 1, 2, dropout=0.8, seed=2)
    assert (_dense(hi.X) == 0).mean() > (_dense(lo.X) == 0).mean() + 0.05


@pytest.mark.parametrize("kind", ["linear", "branching"])
def test_simulate_trajectory_has_true_pseudotime(kind: str) -> None:
    a = data.simulate(800, 300, 2, 6, trajectory=kind, batch_strength=0.0, seed=0)
    t = a.obs["pseudotime"].to_numpy()
    assert t.min() >= 0 and t.max() <= 1
    if kind == "branching":
        assert set(a.obs["branch"].cat.categories) == {"stem", "A", "B"}
        assert (a.obs.loc[a.obs["branch"] == "stem", "pseudotime"] < 0.5).all()
    pc1 = _lognorm_pca(_dense(a.X), 2)[:, 0]
    keep = (a.obs["branch"] == "stem").to_numpy() if kind == "branching" else slice(None)
    assert abs(stats.spearmanr(pc1[keep], t[keep]).statistic) > 0.7


def test_simulate_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="n_batches"):
        data.simulate(n_batches=0)
    with pytest.raises(ValueError, match="trajectory"):
        data.simulate(trajectory="circle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cell_type_probs"):
        data.simulate(100, 10, 1, 3, cell_type_probs=[0.5, 0.5])


# --- registry ------------------------------------------------------------------------------

EXPECTED_ONLINE = {"pbmc3k", "paul15", "pbmc_4k8k", "pancreas", "lung_atlas", "human_immune"}


def test_registry_entries_are_well_formed() -> None:
    assert set(data.REGISTRY) == EXPECTED_ONLINE
    for name, entry in data.REGISTRY.items():
        assert {
            "description",
            "files",
            "reader",
            "shape",
            "counts",
            "batch_key",
            "label_key",
        } <= set(entry), name
        assert entry["files"], name
        for spec in entry["files"]:
            url = urlparse(spec["url"])
            assert url.scheme in ("http", "https") and url.hostname, spec["url"]
            assert spec["fname"] and not spec["fname"].startswith("/")
            sha = spec["sha256"]
            assert sha is None or re.fullmatch(r"[0-9a-f]{64}", sha), (name, sha)
            if sha is None:
                assert spec.get("sha256_note"), f"{name}: a null sha256 needs a note"
        n_obs, n_vars = entry["shape"]
        assert n_obs > 0 and n_vars > 0
    for name in ("pancreas", "lung_atlas", "human_immune", "pbmc_4k8k"):
        assert data.REGISTRY[name]["batch_key"] and data.REGISTRY[name]["label_key"]


def test_registry_json_in_repo_matches_the_package(root) -> None:
    stored = json.loads((root / "data" / "registry.json").read_text())
    assert stored == json.loads(registry.registry_json())


def test_list_datasets_names_everything() -> None:
    table = data.list_datasets()
    assert set(table.index) == EXPECTED_ONLINE | set(data.OFFLINE_DATASETS)
    assert table.loc["pbmc68k_reduced", "offline"] and not table.loc["pancreas", "offline"]


def test_offline_load_of_online_dataset_fails_fast(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("QBM_LITE_DATA_DIR", str(tmp_path))
    entry = registry.get_entry("pancreas")
    # Port 9 on loopback: nothing listens, the connection is refused at once (no network used).
    entry["files"][0]["url"] = "http://127.0.0.1:9/pancreas.h5ad"
    monkeypatch.setitem(registry.REGISTRY, "pancreas", entry)
    start = time.perf_counter()
    with pytest.raises(data.DatasetOfflineError) as err:
        data.load("pancreas", timeout=2.0)
    assert time.perf_counter() - start < 5.0
    for offline in data.OFFLINE_DATASETS:
        assert offline in str(err.value)
    assert not any(tmp_path.rglob("*.h5ad"))


def test_offline_load_with_sockets_blocked(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("QBM_LITE_DATA_DIR", str(tmp_path))

    def no_network(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(registry.socket, "create_connection", no_network)
    with pytest.raises(data.DatasetOfflineError, match="pbmc68k_reduced"):
        data.load("lung_atlas")


def test_cached_file_loads_without_network(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("QBM_LITE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(registry, "_reachable", lambda url, timeout: False)
    small = data.simulate(50, 20, 2, 2, seed=0)
    target = tmp_path / "pancreas" / "human_pancreas_norm_complexBatch.h5ad"
    target.parent.mkdir(parents=True)
    small.write_h5ad(target)
    with pytest.warns(UserWarning, match="no published sha256"):
        loaded = data.load("pancreas")
    assert loaded.shape == (50, 20)
    assert np.array_equal(_dense(loaded.layers["counts"]), _dense(small.layers["counts"]))
    assert (target.parent / (target.name + ".sha256")).exists()


def test_cached_file_changed_after_first_use_is_refused(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("QBM_LITE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(registry, "_reachable", lambda url, timeout: False)
    target = tmp_path / "pancreas" / "human_pancreas_norm_complexBatch.h5ad"
    target.parent.mkdir(parents=True)
    data.simulate(50, 20, 2, 2, seed=0).write_h5ad(target)
    with pytest.warns(UserWarning):
        data.load("pancreas")
    data.simulate(60, 20, 2, 2, seed=1).write_h5ad(target)  # the cached file is replaced
    with pytest.raises(ValueError, match="no longer matches the sha256"):
        data.load("pancreas")


def test_load_unknown_name_lists_choices() -> None:
    with pytest.raises(ValueError, match="pbmc68k_reduced"):
        data.load("no_such_dataset")
    with pytest.raises(TypeError):
        data.load("pbmc68k_reduced", n_cells=10)


# --- prepare -------------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", ["seurat_v3", "pearson_residuals"])
def test_prepare_keeps_counts_and_log_normalizes(flavor: str) -> None:
    raw = data.simulate(400, 150, 2, 3, seed=5)
    out = data.prepare(raw, n_top_genes=60, batch_key="batch", flavor=flavor)
    assert out.n_vars == 60 and out.n_obs == 400
    assert raw.n_vars == 150  # the input is left alone
    counts = _dense(out.layers["counts"])
    assert data.counts_are_integers(counts)
    assert np.array_equal(counts, _dense(raw[:, out.var_names].layers["counts"]))
    expected = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)
    assert np.allclose(_dense(out.X), expected, atol=1e-4)
    assert out.var["highly_variable"].all()


def test_prepare_prefers_informative_genes() -> None:
    raw = data.simulate(600, 300, 2, 4, de_prob=0.1, de_scale=1.0, seed=6)
    out = data.prepare(raw, n_top_genes=60, batch_key="batch")
    # Genes chosen as highly variable should separate the cell types better than random ones.
    chosen = _lognorm_pca(_dense(out.layers["counts"]), 5)
    rng = np.random.default_rng(0)
    rand = raw[:, rng.choice(raw.n_vars, 60, replace=False)]
    other = _lognorm_pca(_dense(rand.layers["counts"]), 5)
    labels = raw.obs["cell_type"].cat.codes.to_numpy()
    assert _same_label_fraction(chosen, labels) > _same_label_fraction(other, labels)


def test_prepare_errors_without_counts() -> None:
    pbmc = data.load("pbmc68k_reduced")
    del pbmc.layers["counts"]
    with pytest.raises(ValueError, match="counts"):
        data.prepare(pbmc, 100)
    with pytest.raises(ValueError, match="batch_key"):
        data.prepare(data.simulate(50, 20, 2, 2), 10, batch_key="donor")


def test_add_batch_effect_on_real_cells(pbmc: ad.AnnData) -> None:
    out = data.add_batch_effect(pbmc, n_batches=2, strength=0.8, seed=0)
    again = data.add_batch_effect(pbmc, n_batches=2, strength=0.8, seed=0)
    assert np.array_equal(_dense(out.layers["counts"]), _dense(again.layers["counts"]))
    assert data.counts_are_integers(out.layers["counts"])
    assert "batch" not in pbmc.obs  # the input is left alone
    labels = out.obs["batch"].cat.codes.to_numpy()
    before = _same_label_fraction(_lognorm_pca(_dense(pbmc.layers["counts"])), labels)
    after = _same_label_fraction(_lognorm_pca(_dense(out.layers["counts"])), labels)
    assert before < 0.65  # random halves: about half of the neighbours share the batch
    assert after > before + 0.2
    with pytest.raises(ValueError, match="batch"):
        data.add_batch_effect(out)


# --- prepare on degenerate input (issue 9.1): a clear error, never a crashed interpreter -------


def _with_batches(sizes: list[int], seed: int = 0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    X = rng.negative_binomial(2, 0.3, size=(n, 120)).astype(np.float32)
    names = np.repeat([f"B{i}" for i in range(len(sizes))], sizes)
    obs = pd.DataFrame({"batch": names}, index=[f"c{i}" for i in range(n)])
    return ad.AnnData(X, obs=obs)


@pytest.mark.parametrize("flavor", ["seurat_v3", "pearson_residuals"])
def test_prepare_refuses_a_one_cell_batch_and_names_it(flavor: str) -> None:
    # seurat_v3's loess used to end the process with SIGSEGV here (100 + 100 + 1 cells).
    a = _with_batches([100, 100, 1])
    with pytest.raises(ValueError, match=r"'B2': 1 cell.*batch_key=None"):
        data.prepare(a, n_top_genes=20, batch_key="batch", flavor=flavor)
    # Two cells are enough; so is dropping the batch from the selection.
    assert data.prepare(_with_batches([100, 100, 2]), 20, "batch", flavor=flavor).n_obs == 202
    assert data.prepare(a, 20, batch_key=None, flavor=flavor).n_obs == 201


@pytest.mark.parametrize("n_varying", [0, 3, 8])
def test_prepare_refuses_batches_whose_genes_are_constant(n_varying: int) -> None:
    a = _with_batches([100, 100])
    a.X[:100, n_varying:] = 1  # batch B0: all genes but a few are constant
    with pytest.raises(ValueError, match=rf"'B0': 100 cells but only {n_varying} varying"):
        data.prepare(a, n_top_genes=20, batch_key="batch")
    # Pearson residuals cope with genes that are constant within a batch.
    out = data.prepare(a, n_top_genes=20, batch_key="batch", flavor="pearson_residuals")
    assert np.isfinite(_dense(out.X)).all()


def test_prepare_names_missing_batches_backed_data_and_empty_cells(tmp_path) -> None:
    a = _with_batches([50, 50])
    a.obs["batch"] = a.obs["batch"].astype(object)
    a.obs.iloc[[3, 7], 0] = np.nan
    with pytest.raises(ValueError, match=r"'batch'.*2 missing"):
        data.prepare(a, 20, batch_key="batch")
    b = _with_batches([50, 50])
    b.write_h5ad(tmp_path / "b.h5ad")
    with pytest.raises(ValueError, match="to_memory"):
        data.prepare(ad.read_h5ad(tmp_path / "b.h5ad", backed="r"), 20)
    c = _with_batches([50, 50])
    c.X[5] = 0
    with pytest.raises(ValueError, match="1 cell.*no counts"):
        data.prepare(c, 20)
