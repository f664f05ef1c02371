"""RBM and Boltzmann machine: energies, conversions, log Z and training, against enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse
import torch

import qbm_lite
from qbm_lite.boltzmann import RBM, BoltzmannMachine, check_binary
from qbm_lite.exact import ExactBoltzmann
from qbm_lite.samplers import ExactSampler, GibbsSampler


def binary_states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def random_rbm(n_visible: int, n_hidden: int, scale: float = 1.0, seed: int = 0) -> RBM:
    gen = torch.Generator().manual_seed(seed)
    rbm = RBM(n_visible, n_hidden, seed=seed).double()
    with torch.no_grad():
        rbm.W.copy_(scale * torch.randn(n_visible, n_hidden, generator=gen))
        rbm.visible_bias.copy_(scale * torch.randn(n_visible, generator=gen))
        rbm.hidden_bias.copy_(scale * torch.randn(n_hidden, generator=gen))
    return rbm


def random_bm(n: int, scale: float = 0.5, seed: int = 0) -> BoltzmannMachine:
    gen = torch.Generator().manual_seed(seed)
    upper = torch.triu(scale * torch.randn(n, n, generator=gen, dtype=torch.float64), 1)
    return BoltzmannMachine.from_ising(scale * torch.randn(n, generator=gen), upper + upper.T)


def joint_energies(rbm: RBM) -> torch.Tensor:
    """E(v, h) for all visible (rows) and hidden (columns) states by brute force."""
    vs, hs = binary_states(rbm.n_visible), binary_states(rbm.n_hidden)
    W, a, b = (p.detach().double() for p in (rbm.W, rbm.visible_bias, rbm.hidden_bias))
    return -(vs @ a)[:, None] - (hs @ b)[None, :] - vs @ W @ hs.T


def exact_rbm_log_likelihood(rbm: RBM, X: torch.Tensor) -> float:
    """Average log p(v) from the joint table: log Σ_h exp(-E(v,h)) - log Σ_{v,h} exp(-E)."""
    E = joint_energies(rbm)
    log_pv = torch.logsumexp(-E, 1) - torch.logsumexp(-E.flatten(), 0)
    idx = (X.double() @ (2.0 ** torch.arange(rbm.n_visible - 1, -1, -1).double())).long()
    return float(log_pv[idx].mean())


# --- energies, conditionals and conversions ---------------------------------------------------
def test_free_energy_matches_enumeration_over_hidden_units():
    rbm = random_rbm(5, 4)
    E = joint_energies(rbm)
    expected = -torch.logsumexp(-E, dim=1)
    got = rbm.free_energy(binary_states(5))
    torch.testing.assert_close(got, expected)
    # and the energy method agrees with the table
    v, h = binary_states(5)[7:8], binary_states(4)[11:12]
    torch.testing.assert_close(rbm.energy(v, h), E[7:8, 11])


def test_conditionals_match_enumeration():
    rbm = random_rbm(4, 3, seed=1)
    E = joint_energies(rbm)
    p_joint = torch.softmax(-E.flatten(), 0).reshape(E.shape)
    vs, hs = binary_states(4), binary_states(3)
    p_h_given_v = p_joint / p_joint.sum(1, keepdim=True)  # (16, 8)
    torch.testing.assert_close(rbm.hidden_probs(vs), p_h_given_v @ hs)
    p_v_given_h = p_joint / p_joint.sum(0, keepdim=True)
    torch.testing.assert_close(rbm.visible_probs(hs), (p_v_given_h.T @ vs))


@pytest.mark.parametrize("shape", [(4, 3), (3, 5)])
def test_rbm_to_ising_energies_match_enumeration(shape):
    rbm = random_rbm(*shape, seed=2)
    model = rbm.to_ising_model()
    n_v, n_h = shape
    E = joint_energies(rbm)
    for iv, ih in itertools.product(range(2**n_v), range(2**n_h)):
        x = torch.cat([binary_states(n_v)[iv], binary_states(n_h)[ih]])
        assert model.energy((2 * x - 1).numpy().astype(int)) == pytest.approx(float(E[iv, ih]))
    # same distribution: exact log Z of the Ising model equals the RBM's
    assert ExactBoltzmann(model).log_partition() == pytest.approx(rbm.log_partition(), abs=1e-9)
    h, J = rbm.to_ising()
    assert torch.equal(J, J.T) and torch.all(torch.diagonal(J) == 0)


def test_rbm_from_ising_round_trip_and_rejects_non_bipartite():
    rbm = random_rbm(4, 3, seed=3)
    back = RBM.from_ising(*rbm.to_ising(), n_visible=4).double()
    for name in ("W", "visible_bias", "hidden_bias"):
        torch.testing.assert_close(getattr(back, name), getattr(rbm, name), rtol=0, atol=1e-6)
    h, J = rbm.to_ising()
    J = J.clone()
    J[0, 1] = J[1, 0] = 0.3
    with pytest.raises(ValueError, match="bipartite"):
        RBM.from_ising(h, J, n_visible=4)


def test_bm_energy_is_the_ising_energy_of_spins():
    bm = random_bm(6, seed=4)
    model = bm.to_ising_model()
    xs = binary_states(6)
    expected = model.energy((2 * xs - 1).numpy().astype(int))
    torch.testing.assert_close(
        bm.energy(xs.float()).double(), torch.as_tensor(expected), atol=1e-5, rtol=1e-5
    )
    h, J = bm.to_ising()
    bm2 = BoltzmannMachine.from_ising(h, J)
    torch.testing.assert_close(bm2.couplings(), bm.couplings())


# --- partition functions and likelihoods ------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 3), (3, 7), (5, 5)])
def test_rbm_exact_log_partition_matches_brute_force(shape):
    rbm = random_rbm(*shape, seed=5)
    expected = float(torch.logsumexp(-joint_energies(rbm).flatten(), 0))
    assert rbm.log_partition("exact") == pytest.approx(expected, abs=1e-9)


def test_bm_exact_log_partition_matches_brute_force():
    bm = random_bm(8, seed=6)
    xs = binary_states(8)
    s = 2 * xs - 1
    h, J = (t.double() for t in bm.to_ising())
    energies = s @ h + torch.stack([s[i] @ J @ s[i] / 2 for i in range(len(s))])
    assert bm.log_partition() == pytest.approx(float(torch.logsumexp(-energies, 0)), abs=1e-6)


def test_log_likelihood_normalizes_and_matches_joint_table():
    rbm = random_rbm(5, 3, seed=7)
    all_v = binary_states(5)
    lp = rbm.log_likelihood(all_v, reduction="none")
    assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-9)
    X = all_v[[0, 3, 3, 17, 30]]
    assert rbm.log_likelihood(X) == pytest.approx(exact_rbm_log_likelihood(rbm, X), abs=1e-9)
    bm = random_bm(5, seed=7)
    assert np.exp(bm.log_likelihood(all_v, reduction="none")).sum() == pytest.approx(1.0, abs=1e-6)


def test_pseudo_log_likelihood_matches_enumerated_conditionals():
    rbm = random_rbm(5, 3, seed=8)
    all_v = binary_states(5)
    log_pv = torch.as_tensor(rbm.log_likelihood(all_v, reduction="none"))
    x = all_v[13]
    expected = 0.0
    for i in range(5):
        flipped = x.clone()
        flipped[i] = 1 - flipped[i]
        j = int(flipped @ 2.0 ** torch.arange(4, -1, -1).double())
        expected += float(log_pv[13] - torch.logaddexp(log_pv[13], log_pv[j]))
    assert float(rbm.pseudo_log_likelihood(x[None])) == pytest.approx(expected, abs=1e-9)
    # Boltzmann machine: same check
    bm = random_bm(5, seed=8)
    log_px = torch.as_tensor(bm.log_likelihood(all_v, reduction="none"))
    expected = 0.0
    for i in range(5):
        flipped = x.clone()
        flipped[i] = 1 - flipped[i]
        j = int(flipped @ 2.0 ** torch.arange(4, -1, -1).double())
        expected += float(log_px[13] - torch.logaddexp(log_px[13], log_px[j]))
    assert float(bm.pseudo_log_likelihood(x[None])) == pytest.approx(expected, abs=1e-5)


# --- training -------------------------------------------------------------------------------
def _toy_data(n: int = 6, m: int = 60, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    protos = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1], [1, 0, 1, 0, 1, 0]])[:, :n]
    X = protos[rng.integers(0, 3, m)]
    flip = rng.random(X.shape) < 0.1
    return torch.as_tensor(np.where(flip, 1 - X, X), dtype=torch.float32)


def _exact_gradient(rbm: RBM, X: torch.Tensor) -> dict[str, torch.Tensor]:
    """Autograd gradient of the exact average log-likelihood from the joint table."""
    params = {
        n: p.detach().double().clone().requires_grad_(True) for n, p in rbm.named_parameters()
    }
    vs, hs = binary_states(rbm.n_visible), binary_states(rbm.n_hidden)
    E = (
        -(vs @ params["visible_bias"])[:, None]
        - (hs @ params["hidden_bias"])[None]
        - vs @ params["W"] @ hs.T
    )
    log_pv = torch.logsumexp(-E, 1) - torch.logsumexp(-E.flatten(), 0)
    idx = (X.double() @ (2.0 ** torch.arange(rbm.n_visible - 1, -1, -1).double())).long()
    log_pv[idx].mean().backward()
    return {n: p.grad for n, p in params.items()}


def test_one_pcd_step_follows_the_exact_gradient_and_raises_the_likelihood():
    X = _toy_data()
    rbm = RBM(6, 3, init_std=0.5, seed=1)
    before = exact_rbm_log_likelihood(rbm, X)
    grad = _exact_gradient(rbm, X)
    old = {n: p.detach().double().clone() for n, p in rbm.named_parameters()}
    # one full-batch PCD step with many well-mixed chains: close to exact gradient ascent
    rbm.fit(
        X,
        epochs=1,
        batch_size=len(X),
        method="pcd",
        k=25,
        num_chains=8000,
        lr=0.1,
        optimizer="sgd",
        momentum=0.0,
        init_from_data=False,
        monitor="none",
        progress=False,
    )
    step = torch.cat([(p.detach().double() - old[n]).flatten() for n, p in rbm.named_parameters()])
    exact = torch.cat([grad[n].flatten() for n, _ in rbm.named_parameters()])
    cosine = float(step @ exact / (step.norm() * exact.norm()))
    assert cosine > 0.95, cosine
    assert exact_rbm_log_likelihood(rbm, X) > before + 0.5 * 0.1 * float(exact @ exact)


def test_bm_step_with_exact_sampler_raises_the_likelihood():
    X = _toy_data()
    bm = BoltzmannMachine(6, init_std=0.3, seed=2)
    before = bm.log_likelihood(X)
    bm.fit(
        X,
        epochs=1,
        batch_size=len(X),
        sampler=ExactSampler(seed=0),
        num_chains=8000,
        lr=0.1,
        optimizer="sgd",
        momentum=0.0,
        init_from_data=False,
        monitor="none",
        progress=False,
    )
    assert bm.log_likelihood(X) > before + 0.01
    assert torch.equal(bm.J, bm.J.T)


@pytest.mark.parametrize("kind", ["cd", "pcd", "gibbs-sampler"])
def test_training_improves_exact_log_likelihood(kind):
    X = _toy_data(m=120, seed=3)
    rbm = RBM(6, 4, seed=3)
    start = rbm.log_likelihood(X)
    kwargs = (
        {"method": kind}
        if kind != "gibbs-sampler"
        else {
            "sampler": GibbsSampler(num_sweeps=2, schedule="checkerboard", persistent=True, seed=0)
        }
    )
    rbm.fit(
        X,
        epochs=30,
        batch_size=20,
        lr=0.05,
        optimizer="adam",
        lr_schedule="linear",
        progress=False,
        seed=0,
        **kwargs,
    )
    assert len(rbm.history) == 30 and {"epoch", "time", "lr", "train_ll"} <= rbm.history[-1].keys()
    assert rbm.history[-1]["train_ll"] == pytest.approx(rbm.log_likelihood(X[:1000]), abs=1e-4)
    # the best independent-pixel model is the reference the RBM must beat clearly
    p = X.double().mean(0)
    independent = float((X * torch.log(p) + (1 - X) * torch.log(1 - p)).sum(1).mean())
    assert rbm.log_likelihood(X) > independent + 0.5 > start + 0.3


def test_bm_training_with_gibbs_pcd_improves_likelihood_and_monitors_validation():
    X = _toy_data(m=120, seed=4)
    bm = BoltzmannMachine(6, seed=4)
    start = bm.log_likelihood(X)
    bm.fit(
        X,
        epochs=10,
        batch_size=20,
        lr=0.05,
        optimizer="adam",
        progress=False,
        X_val=X[:30],
        monitor="pll",
    )
    assert "val_pll" in bm.history[-1] and "train_ll" not in bm.history[-1]
    assert bm.log_likelihood(X) > start + 0.5
    assert list(bm.history_df.columns)[:3] == ["epoch", "time", "lr"]


def test_max_time_stops_training():
    X = _toy_data(m=120)
    rbm = RBM(6, 4).fit(X, epochs=None, max_time=0.3, batch_size=4, monitor="none", progress=False)
    assert 0.3 <= rbm.history[-1]["time"] < 1.5


def test_gibbs_samples_follow_the_exact_distribution():
    rbm = random_rbm(4, 2, scale=1.0, seed=9).float()
    v = rbm.sample(4000, num_steps=100, seed=0)
    counts = np.bincount(
        (v.double() @ (2.0 ** torch.arange(3, -1, -1).double())).long().numpy(), minlength=16
    )
    p = np.exp(rbm.log_likelihood(binary_states(4), reduction="none"))
    assert 0.5 * np.abs(counts / counts.sum() - p).sum() < 0.05
    v2 = rbm.sample(4000, sampler=ExactSampler(seed=1))
    counts2 = np.bincount(
        (v2.double() @ (2.0 ** torch.arange(3, -1, -1).double())).long().numpy(), minlength=16
    )
    assert 0.5 * np.abs(counts2 / counts2.sum() - p).sum() < 0.05


def test_top_level_names_resolve():
    assert qbm_lite.RBM is RBM and qbm_lite.BoltzmannMachine is BoltzmannMachine


# --- bad input -----------------------------------------------------------------------------------
def test_non_binary_data_is_rejected_with_a_hint():
    rbm = RBM(4, 2)
    with pytest.raises(ValueError, match="binarize"):
        rbm.fit(np.full((3, 4), 0.5), epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"x = \(s \+ 1\) / 2"):
        rbm.log_likelihood(-np.ones((3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        check_binary(np.array([[0.0, np.nan, 1.0, 0.0]]), 4)
    with pytest.raises(TypeError, match="toarray"):
        check_binary(scipy.sparse.csr_array(np.eye(4)), 4)
    with pytest.raises(TypeError, match="numbers"):
        check_binary(np.array([["a", "b", "c", "d"]]), 4)


def test_shape_mismatch_is_rejected():
    rbm = RBM(4, 2)
    with pytest.raises(ValueError, match="5 columns but the model has 4"):
        rbm.fit(np.zeros((3, 5)), epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"X\[None, :\]"):
        rbm.log_likelihood(np.zeros(4))
    with pytest.raises(ValueError, match="X_val"):
        rbm.fit(np.zeros((3, 4)), X_val=np.zeros((3, 3)), epochs=1, progress=False)


def test_exact_log_partition_of_a_large_model_is_refused():
    with pytest.raises(ValueError, match="method='ais'"):
        RBM(40, 30).log_partition("exact")
    with pytest.raises(ValueError, match="method='ais'"):
        BoltzmannMachine(30).log_partition("exact")
    assert np.isfinite(RBM(200, 10).log_partition("exact"))  # the small layer is what counts


def test_bad_options_are_rejected():
    rbm, X = RBM(4, 2), np.zeros((3, 4))
    with pytest.raises(ValueError, match="method"):
        rbm.fit(X, method="pt", progress=False)
    with pytest.raises(ValueError, match="never stops"):
        rbm.fit(X, epochs=None, progress=False)
    with pytest.raises(TypeError, match="SpinSampler"):
        rbm.fit(X, sampler=object(), progress=False)
    with pytest.raises(ValueError, match="method"):
        rbm.log_partition("magic")
    with pytest.raises(ValueError, match="positive integer"):
        RBM(0, 3)


def test_gibbs_chain_records_states_and_monitor_every_skips_epochs():
    rbm = random_rbm(5, 3, seed=10).float()
    start = binary_states(5)[:7]
    chain = rbm.gibbs_chain(start, num_steps=10, record_every=5, seed=0)
    assert chain.shape == (3, 7, 5) and torch.equal(chain[0], start.float())
    assert set(torch.unique(chain).tolist()) <= {0.0, 1.0}
    X = _toy_data(m=40)
    rbm2 = RBM(6, 2).fit(X, epochs=5, monitor_every=2, monitor="pll", progress=True)
    has = ["train_pll" in r for r in rbm2.history]
    assert has == [False, True, False, True, True]
    assert [r["epoch"] for r in rbm2.history] == [1, 2, 3, 4, 5]
    times = [r["time"] for r in rbm2.history]
    rbm2.fit(X, epochs=1, monitor="none", progress=False)  # time keeps counting across calls
    assert rbm2.history[-1]["epoch"] == 6 and rbm2.history[-1]["time"] >= times[-1]


# --- exact gradients ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 3), (3, 6)])
def test_rbm_exact_gradient_matches_autograd_of_the_joint_table(shape):
    rbm = random_rbm(*shape, scale=0.7, seed=11)
    X = binary_states(shape[0])[[1, 2, 2, 5, 7]]
    expected = _exact_gradient(rbm, X)
    got = rbm.exact_gradient(X)
    assert set(got) == set(expected)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-9, atol=1e-10)
    # a sampled negative phase with exact samples converges to it
    neg = rbm.sample(200_000, sampler=ExactSampler(seed=0))
    sampled = {n: rbm.statistics(X)[n] - rbm.statistics(neg)[n] for n in expected}
    assert max(float((sampled[n] - expected[n]).abs().max()) for n in expected) < 0.02


def test_bm_exact_gradient_matches_autograd():
    bm = random_bm(6, seed=12)
    X = binary_states(6)[[0, 9, 33, 33, 60]]
    h, J = (t.double() for t in bm.to_ising())
    h = h.clone().requires_grad_(True)
    U = torch.triu(J, 1).clone().requires_grad_(True)
    Jsym = U + U.T
    s = 2 * X - 1
    energy = s @ h + 0.5 * ((s @ Jsym) * s).sum(-1)
    ll = (-energy).mean() - qbm_lite.exact.log_partition_torch(h, Jsym)
    ll.backward()
    got = bm.exact_gradient(X)
    torch.testing.assert_close(got["h"].double(), h.grad, rtol=1e-5, atol=1e-6)
    iu = torch.triu_indices(6, 6, 1)
    torch.testing.assert_close(
        got["J"].double()[iu[0], iu[1]], U.grad[iu[0], iu[1]], rtol=1e-5, atol=1e-6
    )


# --- divergence -----------------------------------------------------------------------------------
class _NaNSampler:
    def sample_spins(self, h, J, num_samples, *, beta=1.0):
        return torch.full((num_samples, h.shape[0]), float("nan"), dtype=h.dtype)


@pytest.mark.parametrize("cls", [RBM, BoltzmannMachine])
def test_divergence_stops_training_and_keeps_finite_weights(cls):
    X = _toy_data()
    model = cls(6, 3) if cls is RBM else cls(6)
    with pytest.raises(FloatingPointError, match=r"smaller lr \(now 1e\+38\)"):
        model.fit(X, epochs=20, lr=1e38, optimizer="sgd", momentum=0.9, progress=False)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert np.isfinite(model.log_likelihood(X))
    fresh = cls(6, 3) if cls is RBM else cls(6)
    with pytest.raises(FloatingPointError, match="_NaNSampler"):
        fresh.fit(X, epochs=1, sampler=_NaNSampler(), progress=False)
    assert all(torch.isfinite(p).all() for p in fresh.parameters())
    with pytest.raises(ValueError, match="finite learning rate"):
        fresh.fit(X, epochs=1, lr=float("inf"), progress=False)


def test_default_fit_monitors_once_at_the_end():
    X = _toy_data(m=120)
    rbm = RBM(6, 4).fit(X, epochs=5, progress=False)
    assert ["train_ll" in r for r in rbm.history] == [False] * 4 + [True]


@pytest.mark.parametrize("shape", [(4, 2), (2, 4)])
def test_sample_exact_follows_the_joint_table(shape):
    rbm = random_rbm(*shape, scale=1.0, seed=13)
    v, hid = rbm.sample_exact(40_000, seed=0, return_hidden=True)
    nv, nh = shape
    weights = 2.0 ** torch.arange(nv + nh - 1, -1, -1).double()
    idx = (torch.cat([v, hid], 1).double() @ weights).long().numpy()
    counts = np.bincount(idx, minlength=2 ** (nv + nh)) / len(idx)
    p = torch.softmax(-joint_energies(rbm).flatten(), 0).numpy()  # (v, h) row-major = same order
    assert 0.5 * np.abs(counts - p).sum() < 0.03
    # a model at the wrong temperature is rejected by the same tolerance
    hot = torch.softmax(-0.7 * joint_energies(rbm).flatten(), 0).numpy()
    assert 0.5 * np.abs(counts - hot).sum() > 0.03


def test_gradient_bias_variance_recovers_known_bias_and_noise():
    from qbm_lite.boltzmann import gradient_bias_variance

    gen = torch.Generator().manual_seed(0)
    exact = {"a": torch.zeros(50), "b": torch.zeros(2, 25)}
    shift = torch.full((50,), 0.1)  # bias of norm 0.1 * sqrt(50) = 0.707
    ests = [
        {
            "a": shift + 0.2 * torch.randn(50, generator=gen),
            "b": 0.2 * torch.randn(2, 25, generator=gen),
        }
        for _ in range(400)
    ]
    out = gradient_bias_variance(ests, exact)
    assert out["bias"] == pytest.approx(0.1 * np.sqrt(50), rel=0.05)
    assert out["std"] == pytest.approx(0.2 * np.sqrt(100), rel=0.05)
    assert out["rmse"] ** 2 == pytest.approx(out["bias"] ** 2 + out["std"] ** 2, rel=0.05)
    unbiased = gradient_bias_variance([{"a": e["a"] - shift, "b": e["b"]} for e in ests], exact)
    assert unbiased["bias"] < 0.2 * out["bias"]
    with pytest.raises(ValueError, match="at least 2"):
        gradient_bias_variance(ests[:1], exact)
