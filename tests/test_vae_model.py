"""The AnnData-facing QBMVAE: training, outputs, seeds, save/load and bad-input errors."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from qbm_lite import QBMVAE
from qbm_lite.samplers import ExactSampler


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


SMALL = {"n_hidden": 16, "n_latent": 4}


@pytest.fixture(scope="module")
def adata():
    return make_adata()


@pytest.mark.parametrize("prior", ["boltzmann", "gaussian"])
def test_train_and_outputs(adata, prior):
    m = QBMVAE(adata, layer="counts", batch_key="batch", likelihood="nb", prior=prior, **SMALL)
    m.train(max_epochs=3, batch_size=32, progress=False)
    for key in [
        "train_loss",
        "train_reconstruction",
        "train_kl",
        "validation_loss",
        "time_sampler",
        "time_networks",
        "time_epoch",
    ]:
        assert len(m.history[key]) == 3 and np.isfinite(m.history[key]).all()
    np.testing.assert_allclose(
        m.history["train_loss"],
        np.add(m.history["train_reconstruction"], m.history["train_kl"]),
        rtol=1e-5,
    )
    z = m.get_latent_representation()
    assert z.shape == (adata.n_obs, 4) and np.isfinite(z).all()
    np.testing.assert_array_equal(z, m.get_latent_representation())  # deterministic
    if prior == "boltzmann":
        assert (z >= 0).all() and (z <= 1).all()
        # With 4 units the KL's value includes the exact log Z, so it is a true KL (>= 0).
        assert min(m.history["validation_kl"]) >= 0 and len(m.history["log_z"]) == 3
        assert sum(m.history["time_sampler"]) > 0
    else:
        assert sum(m.history["time_sampler"]) == 0
    samples = m.sample_prior(7, batch="b1")
    assert samples.shape == (7, adata.n_vars) and (samples >= 0).all()


def test_iwae_bound_is_above_elbo(adata):
    m = QBMVAE(adata, layer="counts", likelihood="nb", prior="boltzmann", **SMALL)
    m.train(max_epochs=3, batch_size=32, progress=False)
    elbo = m.get_elbo().mean()
    iw = m.get_marginal_ll(n_samples=100).mean()
    assert np.isfinite(elbo) and iw > elbo - 0.5


@pytest.mark.parametrize("likelihood", ["zinb", "gaussian", "bernoulli"])
def test_other_likelihoods_train(likelihood):
    a = make_adata(n=60, g=10)
    if likelihood == "bernoulli":
        a.X = (a.layers["counts"] > 3).astype(np.float32)
    layer = "counts" if likelihood == "zinb" else None
    m = QBMVAE(a, layer=layer, likelihood=likelihood, prior="boltzmann", sampler="exact", **SMALL)
    m.train(max_epochs=2, batch_size=16, progress=False)
    assert np.isfinite(m.history["train_loss"]).all()
    assert np.isfinite(m.get_elbo()).all()


def test_same_seed_same_result_other_seed_differs(adata):
    def run(seed):
        m = QBMVAE(adata, layer="counts", batch_key="batch", seed=seed, **SMALL)
        return m.train(max_epochs=2, batch_size=32, progress=False).get_latent_representation()

    a, b, c = run(3), run(3), run(4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_save_load_roundtrip(adata, tmp_path):
    m = QBMVAE(adata, layer="counts", batch_key="batch", sampler=ExactSampler(seed=0), **SMALL)
    m.train(max_epochs=2, batch_size=32, progress=False)
    path = tmp_path / "model.pt"
    m.save(path)
    state = torch.load(path, weights_only=True)  # plain python + tensors only
    assert state["config"]["n_latent"] == 4
    m2 = QBMVAE.load(path, adata)
    np.testing.assert_array_equal(m.get_latent_representation(), m2.get_latent_representation())
    assert m2.history == m.history and m2.epochs_trained == 2
    m2.train(max_epochs=1, batch_size=32, progress=False)  # training can continue
    assert len(m2.history["train_loss"]) == 3
    # Genes that don't match are refused, in a different order too.
    with pytest.raises(ValueError, match="genes do not match"):
        QBMVAE.load(path, adata[:, :-1].copy())
    with pytest.raises(ValueError, match="genes do not match"):
        QBMVAE.load(path, adata[:, ::-1].copy())
    with pytest.raises(ValueError, match="genes do not match"):
        m.get_latent_representation(adata[:, 1:].copy())


def test_latent_of_new_data(adata):
    m = QBMVAE(adata, layer="counts", batch_key="batch", prior="gaussian", **SMALL)
    m.train(max_epochs=1, batch_size=32, progress=False)
    sub = adata[:10].copy()
    np.testing.assert_allclose(
        m.get_latent_representation(sub), m.get_latent_representation()[:10], rtol=1e-5, atol=1e-6
    )


def test_early_stopping_restores_and_stops(adata):
    m = QBMVAE(adata, layer="counts", prior="gaussian", **SMALL)
    m.train(max_epochs=200, batch_size=64, lr=0.05, early_stopping=True, patience=2, progress=False)
    assert len(m.history["train_loss"]) < 200


def _with(adata, fn):
    a = adata.copy()
    fn(a)
    return a


@pytest.mark.parametrize(
    ("mutate", "kwargs", "match"),
    [
        (lambda a: a.layers["counts"].__setitem__((0, 0), 1.5), {}, "non-integer"),
        (lambda a: a.layers["counts"].__setitem__((0, 0), -1), {}, "negative"),
        (lambda a: a.layers["counts"].__setitem__((0, 0), np.nan), {}, "NaN"),
        (lambda a: a.layers["counts"].__setitem__((0, 0), np.inf), {}, "infinite"),
        (lambda a: None, {"layer": "nope"}, "layer 'nope'"),
        (lambda a: None, {"batch_key": "donor"}, "batch_key 'donor'"),
        (lambda a: None, {"likelihood": "poisson"}, "likelihood"),
        (lambda a: None, {"prior": "laplace"}, "prior"),
        (lambda a: None, {"layer": None}, "non-integer"),  # log-normalized X with NB
        (lambda a: None, {"layer": None, "likelihood": "bernoulli"}, "bernoulli"),
        (lambda a: None, {"sampler": "magic"}, "sampler"),
    ],
)
def test_bad_input_errors(adata, mutate, kwargs, match):
    args = {"layer": "counts", **kwargs}
    with pytest.raises(ValueError, match=match):
        QBMVAE(_with(adata, mutate), **args)


def test_empty_and_wrong_type():
    with pytest.raises(ValueError, match="empty"):
        QBMVAE(ad.AnnData(np.zeros((0, 5), dtype=np.float32)))
    with pytest.raises(TypeError, match="AnnData"):
        QBMVAE(np.zeros((5, 5)))


def test_sampler_names_resolve():
    from qbm_lite.samplers import AnnealingSampler, GibbsSampler
    from qbm_lite.samplers.cim import SimulatedCIMSampler
    from qbm_lite.vae import make_sampler

    assert isinstance(make_sampler(None), GibbsSampler) and make_sampler("gibbs").persistent
    assert isinstance(make_sampler("exact"), ExactSampler)
    assert isinstance(make_sampler("annealing"), AnnealingSampler)
    assert isinstance(make_sampler("cim"), SimulatedCIMSampler)
    with pytest.raises(TypeError, match="sample_spins"):
        make_sampler(object())


def test_any_dimod_sampler_through_the_adapter(adata):
    import dimod

    from qbm_lite.samplers import DimodSamplerAdapter

    sampler = DimodSamplerAdapter(dimod.RandomSampler())  # not Boltzmann, but pluggable
    m = QBMVAE(adata, layer="counts", sampler=sampler, num_negative=16, **SMALL)
    m.train(max_epochs=1, batch_size=64, progress=False)
    assert np.isfinite(m.history["train_loss"]).all()


def test_log_z_by_ais_and_large_priors(adata):
    m = QBMVAE(adata, layer="counts", n_hidden=16, n_latent=6, sampler="exact")
    m.train(max_epochs=2, batch_size=32, progress=False)
    with torch.no_grad():
        exact = float(m.module.prior.log_partition())
    ais = m.log_partition_ais(num_chains=200, num_betas=300)
    assert abs(ais.log_z - exact) < max(5 * ais.std_err, 0.02)
    torch.manual_seed(0)
    e_exact = m.get_elbo()
    e_given = m.get_elbo(log_z=exact)
    np.testing.assert_allclose(e_exact, e_given, rtol=1e-5)  # same seed inside, same draws
    assert np.isfinite(m.get_marginal_ll(n_samples=5, log_z="ais")).all()
    with pytest.raises(ValueError, match="'ais'"):
        m.get_elbo(log_z="aiss")
    big = QBMVAE(adata, layer="counts", n_hidden=16, n_latent=21)
    big.train(max_epochs=2, batch_size=64, progress=False)  # no log Z needed to train
    # Above 20 units the history's log Z is an AIS estimate at the call's last epoch only.
    assert big.history["log_z_method"] == ["none", "ais"]
    assert np.isnan(big.history["log_z"][0]) and big.history["log_z_std_err"][1] > 0
    big.train(max_epochs=1, batch_size=64, progress=False, log_z="none")
    assert big.history["log_z_method"][-1] == "none"
    with pytest.raises(ValueError, match="n_latent <= 20"):
        big.get_elbo()


def test_prior_warmup_holds_the_prior_fixed_then_learns_it(adata):
    m = QBMVAE(adata, layer="counts", batch_key="batch", prior="boltzmann", **SMALL)
    enc0 = m.module.encoder.head.weight.detach().clone()
    m.train(max_epochs=2, batch_size=32, prior_warmup_epochs=2, progress=False)
    prior = m.module.prior
    # Held at the initial uniform prior (h = J = 0) while the networks trained.
    assert torch.count_nonzero(prior.h) == 0 and torch.count_nonzero(prior.J_upper) == 0
    assert not torch.equal(enc0, m.module.encoder.head.weight)
    # Under the uniform prior the KL is n log 2 - H(q): a true KL, >= 0, <= n log 2.
    assert 0 <= min(m.history["train_kl"]) and max(m.history["train_kl"]) <= 4 * np.log(2) + 1e-4
    m.train(max_epochs=1, batch_size=32, prior_warmup_epochs=2, progress=False)  # epoch 3: learn
    assert torch.count_nonzero(prior.h) > 0 and torch.count_nonzero(prior.J_upper) > 0


@pytest.mark.default_prior_warmup
def test_prior_warmup_default_warns_and_zero_is_the_old_behaviour(adata):
    def latent(**kw):
        m = QBMVAE(adata, layer="counts", prior="boltzmann", seed=3, **SMALL)
        m.train(max_epochs=8, batch_size=32, progress=False, **kw)
        return m.get_latent_representation(), m.module.prior.h.detach().clone()

    # 120 cells: the default warm-up (a quarter of scvi-tools' 400 epochs) outlasts the call.
    with pytest.warns(UserWarning, match="prior stays uniform.*warm-up lasts 100 epochs"):
        z_default, h_default = latent()
    z_all, _ = latent(prior_warmup_epochs=8)
    np.testing.assert_array_equal(z_default, z_all)
    assert torch.count_nonzero(h_default) == 0
    _, h0 = latent(prior_warmup_epochs=0)
    assert torch.count_nonzero(h0) > 0
    with pytest.raises(ValueError, match="prior_warmup_epochs"):
        QBMVAE(adata, layer="counts", **SMALL).train(max_epochs=1, prior_warmup_epochs=-1)
