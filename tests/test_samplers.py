"""Samplers against exact enumeration: Gibbs/Metropolis, SA at fixed beta, adapters, errors.

Tolerances for sampled distributions are not guessed: an i.i.d. sample of the same size from the
exact distribution has a total-variation distance (TV) from it that is pure sampling noise. We
draw several such exact samples, and require a sampler's TV to be at most 1.5 times the largest
of them. Each test also checks that the tolerance is tight enough to catch a real error (exact
samples at a 20 % wrong temperature must fail it).
"""

from __future__ import annotations

import dimod
import dimod.testing
import numpy as np
import pytest
import torch

from qbm_lite.exact import ExactBoltzmann, empirical_distribution, total_variation
from qbm_lite.ising import IsingModel, ferromagnet_2d, max_cut, sherrington_kirkpatrick
from qbm_lite.samplers import (
    AnnealingSampler,
    DimodSamplerAdapter,
    ExactSampler,
    GibbsSampler,
    SpinSampler,
    colour_classes,
    fixed_beta_schedule,
)

NUM_SAMPLES = 20_000


@pytest.fixture(scope="module")
def model() -> IsingModel:
    """8 spins on a random sparse graph with mixed-sign couplings and fields."""
    rng = np.random.default_rng(7)
    adjacency = max_cut(8, 0.5, seed=7).dense_J()
    upper = np.triu(adjacency * rng.normal(0.0, 0.8, size=(8, 8)), 1)
    return IsingModel(rng.normal(0.0, 0.4, size=8), upper + upper.T)


def _noise_tolerance(eb: ExactBoltzmann, beta: float, num_samples: int, reps: int = 8) -> float:
    p = eb.probabilities(beta)
    tvs = [
        total_variation(empirical_distribution(eb.sample(num_samples, beta, seed=k), eb.model.n), p)
        for k in range(reps)
    ]
    return 1.5 * max(tvs)


def _check_tv(model: IsingModel, spins: torch.Tensor | np.ndarray, beta: float) -> None:
    eb = ExactBoltzmann(model)
    spins = spins.numpy() if isinstance(spins, torch.Tensor) else spins
    assert spins.shape == (NUM_SAMPLES, model.n)
    tol = _noise_tolerance(eb, beta, NUM_SAMPLES)
    tv = total_variation(empirical_distribution(spins, model.n), eb.probabilities(beta))
    assert tv < tol, f"TV {tv:.4f} exceeds the sampling-noise tolerance {tol:.4f}"
    # the test has power: a 20 % temperature error is detected
    wrong = eb.sample(NUM_SAMPLES, beta * 1.2, seed=99)
    assert total_variation(empirical_distribution(wrong, model.n), eb.probabilities(beta)) > tol


@pytest.mark.parametrize("schedule", ["sequential", "checkerboard"])
@pytest.mark.parametrize("rule", ["heat-bath", "metropolis"])
def test_gibbs_matches_exact_distribution(model, schedule, rule):
    sampler = GibbsSampler(num_sweeps=40, schedule=schedule, rule=rule, seed=1)
    h, J = model.to_torch(dtype=torch.float64)
    _check_tv(model, sampler.sample_spins(h, J, NUM_SAMPLES, beta=1.0), 1.0)


@pytest.mark.parametrize(("beta", "num_sweeps"), [(0.4, 30), (1.6, 600)])
def test_gibbs_checkerboard_at_other_temperatures_float32(model, beta, num_sweeps):
    # at beta = 1.6 the chains need ~10x more sweeps to mix (60 sweeps leave TV ~ 0.1)
    sampler = GibbsSampler(num_sweeps=num_sweeps, schedule="checkerboard", seed=2)
    h, J = model.to_torch(dtype=torch.float32)
    s = sampler.sample_spins(h, J, NUM_SAMPLES, beta=beta)
    assert s.dtype == torch.float32 and set(s.unique().tolist()) == {-1.0, 1.0}
    _check_tv(model, s, beta)


def test_colour_classes_are_independent_sets():
    J = torch.as_tensor(ferromagnet_2d(4).dense_J())
    blocks = colour_classes(J)
    assert sorted(len(b) for b in blocks) == [8, 8]  # a checkerboard: two colours
    for b in blocks:
        assert (J[b][:, b] == 0).all()
    assert sorted(torch.cat(blocks).tolist()) == list(range(16))


def test_gibbs_is_seeded_and_persistent(model):
    h, J = model.to_torch()
    a = GibbsSampler(5, seed=3).sample_spins(h, J, 50)
    b = GibbsSampler(5, seed=3).sample_spins(h, J, 50)
    assert torch.equal(a, b)
    pcd = GibbsSampler(1, persistent=True, seed=0)
    first = pcd.sample_spins(h, J, 10)
    assert torch.equal(pcd.chains, first)
    pcd.chains = torch.ones(10, 8)
    hot = pcd.sample_spins(h, J, 10, beta=1e-3)  # one sweep from all-up at nearly infinite T
    assert not torch.equal(hot, torch.ones(10, 8))
    calls = []
    GibbsSampler(7, seed=0).sample_spins(h, J, 4, callback=lambda k, s: calls.append(k))
    assert calls == list(range(7))


def test_gibbs_accepts_sparse_couplings():
    model = ferromagnet_2d(4)
    h, J_sparse = model.to_torch()
    assert J_sparse.is_sparse
    a = GibbsSampler(10, schedule="checkerboard", seed=4).sample_spins(h, J_sparse, 64, beta=0.5)
    b = GibbsSampler(10, schedule="checkerboard", seed=4).sample_spins(
        h, J_sparse.to_dense(), 64, beta=0.5
    )
    assert torch.equal(a, b)
    nan = float("nan")
    bad = torch.sparse_coo_tensor([[0, 1], [1, 0]], [nan, nan], (2, 2), check_invariants=True)
    with pytest.raises(ValueError, match="NaN or infinite"):
        GibbsSampler(2).sample_spins(torch.zeros(2), bad, 4)


def test_gibbs_as_dimod_sampler_on_a_binary_bqm(model):
    sampler = GibbsSampler(num_sweeps=20, seed=0)
    dimod.testing.assert_sampler_api(sampler)
    bqm = model.to_bqm().change_vartype(dimod.BINARY, inplace=False)
    ss = sampler.sample(bqm, num_reads=200, beta=1.0, seed=5)
    dimod.testing.assert_sampleset_energies(ss, bqm)
    assert ss.vartype is dimod.BINARY and len(ss) == 200
    assert set(np.unique(ss.record.sample).tolist()) <= {0, 1}
    again = sampler.sample(bqm, num_reads=200, beta=1.0, seed=5)
    assert np.array_equal(ss.record.sample, again.record.sample)
    named = bqm.relabel_variables({i: f"x{i}" for i in range(8)}, inplace=False)
    ss_named = ExactSampler().sample(named, num_reads=50, seed=0)
    dimod.testing.assert_sampleset_energies(ss_named, named)
    assert set(ss_named.variables) == set(named.variables)


def test_exact_sampler_matches_exact_distribution(model):
    h, J = model.to_torch(dtype=torch.float64)
    sampler = ExactSampler(seed=0)
    assert isinstance(sampler, SpinSampler)
    _check_tv(model, sampler.sample_spins(h, J, NUM_SAMPLES, beta=1.0), 1.0)


@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_annealing_sampler_at_fixed_beta_matches_exact(model, beta):
    sampler = AnnealingSampler(num_sweeps=200, seed=0)
    h, J = model.to_torch(dtype=torch.float64)
    s = sampler.sample_spins(h, J, NUM_SAMPLES, beta=beta)
    assert s.dtype == torch.float64
    _check_tv(model, s, beta)


def test_fixed_beta_schedule_shape():
    schedule = fixed_beta_schedule(2.0, 100, warmup=0.3)
    assert schedule.shape == (100,) and np.all(schedule[30:] == 2.0)
    assert schedule[0] == pytest.approx(0.2) and np.all(np.diff(schedule) >= 0)


@pytest.mark.parametrize(
    "instance",
    [sherrington_kirkpatrick(14, seed=s) for s in range(3)] + [max_cut(14, 0.5, seed=1)],
)
def test_simulated_annealing_finds_the_exact_ground_state(instance):
    ground = ExactBoltzmann(instance).ground_energy
    ss = AnnealingSampler(num_sweeps=1000, seed=0).optimize(instance, num_reads=20)
    assert ss.first.energy == pytest.approx(ground, abs=1e-9)
    assert ss.record.energy.min() >= ground - 1e-9


@pytest.mark.parametrize("fold_beta", [True, False])
def test_dimod_sampler_adapter_matches_exact(model, fold_beta):
    beta = 0.7
    if fold_beta:  # the dimod sampler samples at its own beta = 1; the adapter scales the problem
        adapter = DimodSamplerAdapter(ExactSampler(), seed=11)
    else:
        adapter = DimodSamplerAdapter(ExactSampler(), beta_kwargs=lambda b: {"beta": b}, seed=11)
    h, J = model.to_torch(dtype=torch.float32)
    s = adapter.sample_spins(h, J, NUM_SAMPLES, beta=beta)
    assert s.dtype == torch.float32
    _check_tv(model, s, beta)


# --- bad input ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("h", "J", "num", "beta", "match"),
    [
        (torch.zeros(3, 1), torch.zeros(3, 3), 5, 1.0, "h must have shape"),
        (torch.zeros(3), torch.zeros(3, 2), 5, 1.0, "J must have shape \\(3, 3\\)"),
        (torch.tensor([0.0, float("nan")]), torch.zeros(2, 2), 5, 1.0, "NaN or infinite"),
        (torch.zeros(2), torch.tensor([[0, float("inf")], [float("inf"), 0]]), 5, 1.0, "NaN"),
        (torch.zeros(2), torch.tensor([[0.0, 1.0], [0.0, 0.0]]), 5, 1.0, "J must be symmetric"),
        (torch.zeros(2), torch.eye(2), 5, 1.0, "zero diagonal"),
        (torch.zeros(2), torch.zeros(2, 2), 0, 1.0, "num_samples must be a positive"),
        (torch.zeros(2), torch.zeros(2, 2), 5, -1.0, "beta must be a positive"),
        (torch.zeros(2), torch.zeros(2, 2), 5, float("inf"), "beta must be a positive"),
    ],
)
@pytest.mark.parametrize(
    "sampler",
    [GibbsSampler(2), ExactSampler(), AnnealingSampler(10), DimodSamplerAdapter(ExactSampler())],
    ids=["gibbs", "exact", "annealing", "adapter"],
)
def test_bad_sampling_requests_raise_clear_errors(sampler, h, J, num, beta, match):
    with pytest.raises(ValueError, match=match):
        sampler.sample_spins(h, J, num, beta=beta)


def test_bad_sampler_configuration():
    with pytest.raises(ValueError, match="schedule must be"):
        GibbsSampler(schedule="random")
    with pytest.raises(ValueError, match="rule must be"):
        GibbsSampler(rule="glauber")
    with pytest.raises(ValueError, match="num_sweeps must be a positive"):
        GibbsSampler(num_sweeps=0)
    with pytest.raises(ValueError, match="num_sweeps must be a positive"):
        AnnealingSampler(num_sweeps=0)
    with pytest.raises(ValueError, match="warmup must be a fraction"):
        AnnealingSampler(warmup=1.5)
    with pytest.raises(TypeError, match="must be a dimod.Sampler"):
        DimodSamplerAdapter(GibbsSampler)
    with pytest.raises(ValueError, match="exact enumeration of n=21"):
        ExactSampler().sample_spins(torch.zeros(21), torch.zeros(21, 21), 3)
