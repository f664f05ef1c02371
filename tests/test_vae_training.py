"""Training and persistence of QBMVAE: plain-type saves, paths, divergence, scvi-tools habits,
warm-ups over several calls, AIS log Z in history, and the paper's 256-unit prior."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from qbm_lite import QBMVAE
from qbm_lite.vae import model as model_module
from qbm_lite.vae.training import (
    TrainingDivergedError,
    default_max_epochs,
    default_prior_warmup_epochs,
)

SMALL = {"n_hidden": 16, "n_latent": 4}


def _no():
    import contextlib

    return contextlib.nullcontext()


def make_adata(n=120, g=25, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.negative_binomial(3, 0.4, size=(n, g)).astype(np.float32)
    obs = pd.DataFrame(
        {"batch": pd.Categorical(rng.choice(["b0", "b1"], n))}, index=[f"c{i}" for i in range(n)]
    )
    adata = ad.AnnData(
        X=np.log1p(counts), obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(g)])
    )
    adata.layers["counts"] = counts
    return adata


@pytest.fixture(scope="module")
def adata():
    return make_adata()


# --- issue 9.5: what save writes is plain Python; every config field round-trips --------------
def test_numpy_scalar_settings_save_and_load(adata, tmp_path):
    kwargs = {
        "layer": np.str_("counts"),
        "batch_key": np.str_("batch"),
        "likelihood": np.str_("zinb"),
        "n_latent": np.int64(3),
        "n_hidden": np.int32(8),
        "n_layers": np.int64(2),
        "prior": np.str_("boltzmann"),
        "sampler": np.str_("exact"),
        "seed": np.int64(5),
        "relaxation": np.str_("spike-exp"),
        "relaxation_beta": np.float32(6.0),
        "encode_covariates": np.bool_(True),
        "dropout": np.float64(0.0),
        "num_negative": np.int16(32),
    }
    m = QBMVAE(adata, **kwargs)
    m.train(max_epochs=1, batch_size=64, progress=False)
    target = m.save(tmp_path / "m")
    state = torch.load(target, weights_only=True)
    for key, value in state["config"].items():
        assert type(value) in (str, int, float, bool, type(None)), (key, type(value))
    assert set(state["config"]) >= set(kwargs)
    m2 = QBMVAE.load(tmp_path / "m", adata)
    for key, value in kwargs.items():
        assert m2.config[key] == value and type(m2.config[key]) is type(m.config[key]), key
    np.testing.assert_array_equal(m.get_latent_representation(), m2.get_latent_representation())
    with pytest.raises(TypeError, match="layer must be a string"):
        QBMVAE(adata, layer=3)


# --- issue 9.7: paths ---------------------------------------------------------------------------
def test_save_and_load_paths_the_scvi_way(adata, tmp_path):
    m = QBMVAE(adata, layer="counts", **SMALL)
    m.train(max_epochs=1, batch_size=64, progress=False)
    z = m.get_latent_representation()
    target = m.save(tmp_path / "models" / "my_model/")  # missing parents are created
    assert target == tmp_path / "models" / "my_model" / "model.pt" and target.is_file()
    np.testing.assert_array_equal(QBMVAE.load(target.parent, adata).get_latent_representation(), z)
    np.testing.assert_array_equal(QBMVAE.load(target, adata).get_latent_representation(), z)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        m.save(tmp_path / "models" / "my_model")
    m.save(tmp_path / "models" / "my_model", overwrite=True)
    f = m.save(tmp_path / "deep" / "er" / "file.pt")
    assert f.is_file()
    (tmp_path / "clash").write_text("a file where a directory is meant")
    with pytest.raises(ValueError, match="not a directory"):
        m.save(tmp_path / "clash")
    with pytest.raises(FileNotFoundError, match="no saved model"):
        QBMVAE.load(tmp_path / "nothing", adata)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="without model.pt"):
        QBMVAE.load(tmp_path / "empty", adata)
    m.save(tmp_path / "with_data", save_anndata=True)
    again = QBMVAE.load(tmp_path / "with_data")  # adata read from the directory
    np.testing.assert_allclose(again.get_latent_representation(), z, atol=1e-6)


# --- issue 9.8: divergence ------------------------------------------------------------------------
def test_divergence_stops_with_a_clear_error_and_finite_weights(adata):
    m = QBMVAE(adata, likelihood="gaussian", prior="gaussian", **SMALL)
    with pytest.raises(TrainingDivergedError, match=r"smaller learning rate \(lr=1e\+06"):
        m.train(max_epochs=50, batch_size=32, lr=1e6, progress=False)
    for name, p in m.module.named_parameters():
        assert torch.isfinite(p).all(), name
    assert len(m.history.get("train_loss", [])) == m.epochs_trained < 50
    with pytest.warns(UserWarning, match="not been trained") if m.epochs_trained == 0 else _no():
        assert np.isfinite(m.get_latent_representation()).all()


def test_divergence_in_the_boltzmann_prior_is_caught(adata):
    m = QBMVAE(adata, layer="counts", **SMALL)
    with torch.no_grad():
        m.module.decoder.log_param.fill_(float("nan"))  # a broken parameter
    with pytest.raises(TrainingDivergedError, match="reconstruction"):
        m.train(max_epochs=1, batch_size=32, progress=False)
    assert m.epochs_trained == 0


# --- issue 14.5: scvi-tools habits --------------------------------------------------------------
def test_max_epochs_none_follows_scvi_tools(adata, monkeypatch):
    assert default_max_epochs(20_000) == 400 and default_max_epochs(100_000) == 80
    assert default_max_epochs(1_000_000) == 8 and default_max_epochs(120) == 400
    monkeypatch.setattr(model_module, "default_max_epochs", lambda n: 2 if n == 120 else 0)
    m = QBMVAE(adata, layer="counts", **SMALL).train(batch_size=64, progress=False)
    assert m.epochs_trained == 2


def test_scvi_argument_names(adata):
    m = QBMVAE(adata, layer="counts", prior="gaussian", **SMALL)
    m.train(
        max_epochs=1,
        batch_size=64,
        accelerator="cpu",
        early_stopping_patience=3,
        enable_progress_bar=False,
        validation_size=0.2,
        plan_kwargs={"lr": 1e-3, "weight_decay": 0.0},
        early_stopping_monitor="elbo_validation",
    )
    assert len(m.history["validation_loss"]) == 1
    with pytest.raises(TypeError, match="torchrun"):
        m.train(max_epochs=1, devices=2)
    with pytest.raises(TypeError, match="plan_kwargs"):
        m.train(max_epochs=1, plan_kwargs={"optimizer": "AdamW"})
    with pytest.raises(TypeError, match="unexpected argument 'epochs'.*max_epochs"):
        m.train(epochs=3)
    with pytest.raises(ValueError, match="accelerator"):
        m.train(max_epochs=1, accelerator="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            m.train(max_epochs=1, accelerator="gpu")


def test_latent_of_an_untrained_model_warns(adata):
    m = QBMVAE(adata, layer="counts", **SMALL)
    with pytest.warns(UserWarning, match="not been trained"):
        m.get_latent_representation()
    m.train(max_epochs=1, batch_size=64, progress=False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = m.get_latent_representation(indices=np.arange(10), give_mean=True)
    assert z.shape == (10, 4)
    np.testing.assert_allclose(z, m.get_latent_representation()[:10], atol=1e-6)
    draw = m.get_latent_representation(give_mean=False)
    assert draw.shape == (adata.n_obs, 4) and not np.array_equal(
        draw, m.get_latent_representation()
    )


def _same_weights(a, b) -> None:
    for (name, p), q in zip(a.module.named_parameters(), b.module.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)
    assert a.history["train_loss"] == b.history["train_loss"]


def _train_in_calls(adata, calls, **train_kwargs):
    m = QBMVAE(adata, layer="counts", batch_key="batch", seed=2, **SMALL)
    for n in calls:
        m.train(max_epochs=n, batch_size=32, kl_warmup_epochs=5, progress=False, **train_kwargs)
    return m


def test_four_epochs_twice_equal_eight(adata):
    _same_weights(
        _train_in_calls(adata, [4, 4], prior_warmup_epochs=3),
        _train_in_calls(adata, [8], prior_warmup_epochs=3),
    )


@pytest.mark.default_prior_warmup
def test_four_epochs_twice_equal_eight_with_the_default_warmup(adata, monkeypatch):
    # The default warm-up depends on the number of cells only, never on a call's max_epochs.
    assert default_prior_warmup_epochs(adata.n_obs) == 100
    assert default_prior_warmup_epochs(1_000_000) == 2
    assert default_prior_warmup_epochs(10**8) == 1
    # Here (120 cells) the prior stays uniform for 100 epochs, and each call says so.
    with pytest.warns(UserWarning, match="stays uniform"):
        m = _train_in_calls(adata, [2])
    assert m._prior_warmup_epochs == 100 and torch.count_nonzero(m.module.prior.h) == 0
    # With a default short enough to end inside the split, learning starts on the same epoch.
    monkeypatch.setattr(model_module, "default_prior_warmup_epochs", lambda n: 3)
    a, b = _train_in_calls(adata, [4, 4]), _train_in_calls(adata, [8])
    assert a._prior_warmup_epochs == b._prior_warmup_epochs == 3
    assert torch.count_nonzero(a.module.prior.h) > 0
    _same_weights(a, b)
    # The value in force is kept by later calls.
    a.train(max_epochs=1, batch_size=64, progress=False)
    assert a._prior_warmup_epochs == 3


# --- issue 13: true KL with AIS log Z, the 256-unit prior -------------------------------------
def test_ais_log_z_in_history_agrees_with_exact_at_16_units(adata):
    m = QBMVAE(adata, layer="counts", n_hidden=16, n_latent=16, seed=1)
    m.train(
        max_epochs=2,
        batch_size=32,
        prior_warmup_epochs=0,
        lr=5e-3,
        log_z="ais",
        log_z_every=1,
        ais_kwargs={"num_chains": 200, "num_betas": 400},
        progress=False,
    )
    h = m.history
    assert h["log_z_method"] == ["ais", "ais"]
    with torch.no_grad():
        exact = float(m.module.prior.log_partition())
    assert exact != pytest.approx(16 * np.log(2), abs=1e-3)  # the prior has moved
    se = h["log_z_std_err"][-1]
    assert se > 0 and abs(h["log_z"][-1] - exact) < 3 * se + 1e-3
    # The values are true KLs: the exact-log-Z evaluation agrees within the AIS error.
    from qbm_lite.vae.training import Trainer

    val_exact = Trainer(m.module, {}).evaluate(m._loader(None, m._split(0.9)[1], 64))
    assert abs(h["validation_kl"][-1] - val_exact["kl"]) < 3 * se + 1e-3


@pytest.mark.parametrize("sampler", ["gibbs", "cim"])
def test_the_papers_256_unit_prior_trains(sampler):
    a = make_adata(n=64, g=20)
    m = QBMVAE(a, layer="counts", n_latent=256, n_hidden=32, sampler=sampler, num_negative=16)
    m.train(max_epochs=2, batch_size=32, prior_warmup_epochs=0, log_z="none", progress=False)
    assert np.isfinite(m.history["train_loss"]).all() and sum(m.history["time_sampler"]) > 0
    assert torch.count_nonzero(m.module.prior.J_upper) > 0
    assert m.get_latent_representation().shape == (64, 256)
