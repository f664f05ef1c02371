"""Tests of the simulated Coherent Ising Machine: dimod contract, dynamics, exact references."""

from __future__ import annotations

import unittest
import warnings

import dimod
import dimod.testing
import numpy as np
import pytest
import torch
from scipy.integrate import quad

from qbm_lite.exact import ExactBoltzmann, empirical_distribution, total_variation
from qbm_lite.ising import IsingModel, ferromagnet_2d, max_cut
from qbm_lite.samplers.cim import (
    DEFAULT_CALIBRATION_PATH,
    CIMCalibration,
    SimulatedCIMSampler,
    default_num_steps,
    fit_effective_beta,
    spin_glass,
)
from qbm_lite.samplers.cim_dynamics import (
    chaotic_amplitude_control,
    cim_amplitude_control,
    cim_langevin,
    simulated_bifurcation,
)
from qbm_lite.samplers.exact import ExactSampler


# --- the dimod contract ---------------------------------------------------------------------
@dimod.testing.load_sampler_bqm_tests(lambda: SimulatedCIMSampler(seed=0))
class TestDimodContract(unittest.TestCase):
    """dimod's own generated sampler tests: empty, 1-variable and path BQMs of every BQM class."""


def test_sampler_api():
    dimod.testing.assert_sampler_api(SimulatedCIMSampler())
    assert isinstance(SimulatedCIMSampler(), dimod.Sampler)


@pytest.mark.parametrize("beta", [None, 1.0])
def test_sampleset_energies_and_vartype(beta):
    model = spin_glass(12, seed=3, field_std=0.3)
    bqm = model.to_bqm()
    ss = SimulatedCIMSampler(seed=1).sample(bqm, num_reads=16, beta=beta)
    dimod.testing.assert_sampleset_energies(ss, bqm)
    assert len(ss) == 16 and ss.vartype is dimod.SPIN
    Q, offset = model.to_qubo()
    ssq = SimulatedCIMSampler(seed=1).sample_qubo(
        {(i, j): Q[i, j] for i, j in zip(*np.nonzero(Q), strict=True)}, num_reads=8, beta=beta
    )
    assert ssq.vartype is dimod.BINARY
    dimod.testing.assert_sampleset_energies(ssq, dimod.BQM.from_qubo(Q))


def test_seed_makes_runs_reproducible():
    bqm = spin_glass(10, seed=0).to_bqm()
    sampler = SimulatedCIMSampler()
    for beta in (None, 0.5):
        a = sampler.sample(bqm, num_reads=20, beta=beta, seed=7).record.sample
        b = sampler.sample(bqm, num_reads=20, beta=beta, seed=7).record.sample
        c = sampler.sample(bqm, num_reads=20, beta=beta, seed=8).record.sample
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
    s1 = SimulatedCIMSampler(seed=3).sample_spins(*spin_glass(8, 1).to_torch(), 50, beta=1.0)
    s2 = SimulatedCIMSampler(seed=3).sample_spins(*spin_glass(8, 1).to_torch(), 50, beta=1.0)
    torch.testing.assert_close(s1, s2)


def test_unknown_kwargs_warn_the_dimod_way():
    bqm = spin_glass(4, seed=0).to_bqm()
    with pytest.warns(dimod.exceptions.SamplerUnknownArgWarning):
        SimulatedCIMSampler(seed=0).sample(bqm, num_reads=2, not_a_parameter=3)


# --- optimization against exact ground states ------------------------------------------------
@pytest.mark.parametrize("dynamics", ["bsb", "dsb", "cac", "ahc"])
def test_optimizer_finds_exact_ground_state(dynamics):
    model = spin_glass(14, seed=5, field_std=0.2)
    exact = ExactBoltzmann(model)
    ss = SimulatedCIMSampler(dynamics=dynamics, seed=0).sample(model.to_bqm(), num_reads=32)
    assert ss.first.energy == pytest.approx(exact.ground_energy, abs=1e-9)


def test_sparse_lattice_reaches_ferromagnetic_ground_state():
    model = ferromagnet_2d(8)
    assert model.is_sparse or model.n == 64
    ss = SimulatedCIMSampler(seed=0).sample(model.to_bqm(), num_reads=16)
    assert ss.first.energy == pytest.approx(-128.0)


def test_sparse_and_dense_couplings_give_the_same_dynamics():
    model = spin_glass(30, seed=2, field_std=0.1)
    h, J = model.to_torch()
    Js = J.to_sparse()
    gen = torch.Generator().manual_seed(0)
    x0, y0 = 0.1 * torch.randn(5, 30, generator=gen), 0.1 * torch.randn(5, 30, generator=gen)
    dense = simulated_bifurcation(x0, y0, h, J, 50, c0=0.5, discrete=False)
    sparse = simulated_bifurcation(x0, y0, h, Js, 50, c0=0.5, discrete=False)
    torch.testing.assert_close(dense.x, sparse.x, atol=1e-4, rtol=0)


def test_dense_10000_spins_runs():
    n = 10_000
    J = torch.full((n, n), -1.0 / n)  # dense all-to-all ferromagnet (cheap to build)
    J.fill_diagonal_(0.0)
    s = SimulatedCIMSampler(seed=0, num_steps=5).optimize_spins(torch.zeros(n), J, 4)
    assert s.shape == (4, n) and set(s.unique().tolist()) <= {-1.0, 1.0}


def test_default_steps_scale_with_n():
    assert default_num_steps(10) == 200
    assert default_num_steps(1000) == 250
    assert default_num_steps(2000) > default_num_steps(1000)
    assert default_num_steps(1000, "cac") > default_num_steps(1000, "bsb")


# --- the dynamics, against independent references -----------------------------------------------
def test_langevin_without_noise_settles_at_the_dopo_amplitude():
    x0 = torch.tensor([[0.3, -0.2, 0.05]])
    pump = torch.full((400,), 2.5)
    traj = cim_langevin(x0, torch.zeros(3), torch.zeros(3, 3), pump, feedback=0.0, noise=0.0)
    torch.testing.assert_close(traj.x, torch.tensor([[1.0, -1.0, 1.0]]) * 1.5**0.5)


def test_langevin_single_dopo_matches_stationary_density():
    """A lone DOPO with field h samples exp(-2 V(x) / σ²): compare P(x > 0) with quadrature."""
    p, eps, sigma, field = 1.5, 0.1, 0.5, 0.8
    amp = (p - 1) ** 0.5

    def density(x: float) -> float:
        return np.exp(-2 * (x**4 / 4 - (p - 1) * x**2 / 2 + eps * amp * field * x) / sigma**2)

    p_up = quad(density, 0, 10)[0] / quad(density, -10, 10)[0]
    gen = torch.Generator().manual_seed(0)
    pump = torch.full((1500,), p)
    traj = cim_langevin(
        torch.zeros(20_000, 1),
        torch.tensor([field]),
        torch.zeros(1, 1),
        pump,
        feedback=eps,
        noise=sigma,
        dt=0.05,
        field_amplitude=amp,
        generator=gen,
    )
    assert float((traj.x > 0).float().mean()) == pytest.approx(p_up, abs=0.015)


def test_langevin_records_snapshots():
    traj = cim_langevin(
        torch.zeros(2, 3),
        torch.zeros(3),
        torch.zeros(3, 3),
        torch.linspace(0, 2, 10),
        feedback=0.1,
        noise=0.1,
        record_every=5,
    )
    assert traj.times == [0, 5, 10] and traj.snapshots.shape == (3, 2, 3)


def test_amplitude_control_and_bifurcation_solve_two_spins():
    J = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # antiferromagnetic: spins anti-align
    h = torch.zeros(2)
    gen = torch.Generator().manual_seed(1)
    x0 = 1e-3 * torch.randn(8, 2, generator=gen)
    x = cim_amplitude_control(x0, h, J, 0.5, 2.0, 300, feedback=0.5).x
    assert torch.all(torch.sign(x[:, 0]) == -torch.sign(x[:, 1]))
    cac = chaotic_amplitude_control(x0, h, J, 300, feedback=0.5)
    assert torch.all(cac.best_spins[:, 0] == -cac.best_spins[:, 1])
    sb = simulated_bifurcation(x0, x0.clone(), h, J, 100, c0=0.5, discrete=False)
    assert torch.all(sb.x.abs() <= 1.0)
    assert torch.all(torch.sign(sb.x[:, 0]) == -torch.sign(sb.x[:, 1]))
    dsb = simulated_bifurcation(x0, x0.clone(), h, J, 100, c0=0.5, discrete=True)
    assert torch.all(dsb.x.abs() <= 1.0)  # the walls hold
    with pytest.raises(ValueError, match="target"):
        cim_amplitude_control(x0, h, J, 0.5, 0.0, 10, feedback=0.5)


def _reference_cac_step(x, e, xi, a, J, feedback, pump, dt):
    """One Euler step of Leleu et al. (2021), eqs. for x and e, written out per spin in numpy."""
    n = len(x)
    x_new, e_new = np.empty(n), np.empty(n)
    for i in range(n):
        mvm = sum(J[i, j] * x[j] for j in range(n))
        x_new[i] = x[i] + dt * ((pump - 1) * x[i] - x[i] ** 3 - feedback * e[i] * mvm)
        e_new[i] = e[i] - dt * xi * (x[i] ** 2 - a) * e[i]
    return x_new, e_new


def test_chaotic_amplitude_control_follows_the_published_equations():
    """Two steps of CAC against the equations written out by hand, including the modulated
    target a = alpha + rho tanh(delta (H - H_opt)) and the growing error-variable rate."""
    model = spin_glass(5, seed=0)
    h, J = model.to_torch(dtype=torch.float64)
    Jn = J.numpy()
    x0 = torch.tensor([[0.3, -0.2, 0.1, -0.4, 0.25]], dtype=torch.float64)
    kw = dict(feedback=0.7, pump=0.2, alpha=1.0, rho=1.5, delta=10.0, rate_growth=0.5, dt=0.1)
    got = chaotic_amplitude_control(x0, h, J, 2, record_every=1, **kw)
    x, e, xi = x0.numpy()[0], np.ones(5), 0.0
    energy = lambda s: float(model.energy(s))  # noqa: E731
    s0 = np.where(x >= 0, 1, -1)
    H_opt = H = energy(s0)
    for step in range(2):
        a = kw["alpha"] + kw["rho"] * np.tanh(kw["delta"] * (H - H_opt))
        x, e = _reference_cac_step(x, e, xi, a, Jn, kw["feedback"], kw["pump"], kw["dt"])
        xi += kw["rate_growth"] * kw["dt"]
        H = energy(np.where(x >= 0, 1, -1))
        H_opt = min(H, H_opt)
        np.testing.assert_allclose(got.snapshots[step + 1, 0].numpy(), x, atol=1e-12)
    assert energy(got.best_spins[0].numpy()) == pytest.approx(H_opt)


def test_cac_target_rises_when_the_energy_is_worse_than_the_best():
    """The modulation is what makes CAC chaotic: a replica away from its best energy gets a
    larger target amplitude. Check the recorded amplitudes differ from a run with rho = 0."""
    model = spin_glass(30, seed=1)
    h, J = model.to_torch()
    x0 = 1e-3 * torch.randn(4, 30, generator=torch.Generator().manual_seed(0))
    on = chaotic_amplitude_control(x0, h, J, 300, feedback=0.5, rho=1.0)
    off = chaotic_amplitude_control(x0, h, J, 300, feedback=0.5, rho=0.0)
    assert not torch.allclose(on.x, off.x)
    assert float(on.x.abs().max()) <= 1.5 * 2**0.5 + 1e-6  # the amplitude guard holds


# --- sampling: calibration and fidelity against exact enumeration ------------------------------
def test_fit_effective_beta_recovers_exact_samples_beta():
    model = spin_glass(10, seed=11, field_std=0.3)
    states = ExactBoltzmann(model).sample(30_000, beta=0.7, seed=0)
    assert fit_effective_beta(model, states) == pytest.approx(0.7, abs=0.04)


def test_calibrated_pure_cim_has_the_requested_temperature():
    # Fresh instances (not the calibration ones); the effective beta varies from instance to
    # instance by about +-10 % at beta = 1, so the mean over three is checked to within 20 %.
    sampler = SimulatedCIMSampler(seed=0)
    fits = []
    for seed in (21, 22, 23):
        model = spin_glass(10, seed=seed)
        h, J = model.to_torch()
        spins = sampler.sample_spins(h, J, 10_000, beta=1.0, correction_sweeps=0)
        fits.append(fit_effective_beta(model, spins.numpy()))
    assert np.mean(fits) == pytest.approx(1.0, rel=0.2)


def test_corrected_cim_matches_exact_distribution():
    model = spin_glass(8, seed=4, field_std=0.3)
    exact = ExactBoltzmann(model)
    h, J = model.to_torch()
    p = exact.probabilities(1.0)
    reads = 20_000
    cim = SimulatedCIMSampler(seed=0)
    pure = total_variation(
        empirical_distribution(cim.sample_spins(h, J, reads, correction_sweeps=0).numpy()), p
    )
    corrected = total_variation(empirical_distribution(cim.sample_spins(h, J, reads).numpy()), p)
    floor = total_variation(
        empirical_distribution(ExactSampler(seed=0).sample_spins(h, J, reads).numpy()), p
    )
    assert corrected <= floor + 0.03
    assert pure < 0.2  # the pure machine is biased but not far off (regression guard)


def test_sample_spins_keeps_device_and_dtype():
    h, J = spin_glass(6, seed=0).to_torch(dtype=torch.float64)
    s = SimulatedCIMSampler(seed=0).sample_spins(h, J, 7, beta=2.0)
    assert s.shape == (7, 6) and s.dtype == torch.float64 and s.device == h.device
    assert set(s.unique().tolist()) <= {-1.0, 1.0}
    opt = SimulatedCIMSampler(seed=0).sample_spins(h, J, 3, beta=None)
    assert opt.shape == (3, 6)


def test_calibration_round_trip(tmp_path):
    cal = CIMCalibration.load()
    assert cal.settings == SimulatedCIMSampler().sampling_settings
    for beta in (0.1, 0.3, 1.0, 2.0, 10.0):
        assert cal.to_effective(cal.to_nominal(beta)) == pytest.approx(beta, rel=1e-6)
    cal.save(tmp_path / "c.json")
    assert CIMCalibration.load(tmp_path / "c.json") == cal
    assert DEFAULT_CALIBRATION_PATH.exists()
    with pytest.raises(ValueError, match="increasing"):
        CIMCalibration([1.0, 0.5], [1.0, 0.5])


def test_calibrate_measures_a_monotone_map():
    sampler = SimulatedCIMSampler(seed=0)
    models = [spin_glass(6, seed=s) for s in range(2)]
    cal = sampler.calibrate(models, nominal_betas=(0.5, 2.0), num_reads=4000)
    assert cal.effective_beta[0] < cal.effective_beta[1]
    assert sampler.calibration is cal


def test_changed_settings_warn_about_calibration():
    with pytest.warns(UserWarning, match="calibrat"):
        SimulatedCIMSampler(noise=0.5)


# --- bad input ------------------------------------------------------------------------------------
def test_bad_input_gets_clear_errors():
    sampler = SimulatedCIMSampler(seed=0)
    h, J = spin_glass(5, seed=0).to_torch()
    with pytest.raises(ValueError, match="symmetric"):
        sampler.sample_spins(h, J + torch.triu(torch.ones(5, 5), 1), 4)
    with pytest.raises(ValueError, match="NaN"):
        sampler.sample_spins(h * float("nan"), J, 4)
    with pytest.raises(ValueError, match="beta"):
        sampler.sample_spins(h, J, 4, beta=0.0)
    with pytest.raises(ValueError, match="beta"):
        sampler.sample(spin_glass(5, 0).to_bqm(), beta=-1.0)
    with pytest.raises(ValueError, match="dynamics"):
        SimulatedCIMSampler(dynamics="quantum")
    with pytest.raises(ValueError, match="correction_sweeps"):
        sampler.sample_spins(h, J, 4, correction_sweeps=-1)
    with pytest.raises(ValueError, match="pump"):
        SimulatedCIMSampler(pump=0.9)
    with pytest.raises(ValueError, match="num_threads"):
        SimulatedCIMSampler(num_threads=0)
    with pytest.raises(ValueError, match="symmetric"):
        IsingModel(np.zeros(2), [[0.0, 1.0], [2.0, 0.0]])


def test_thread_setting_is_restored_after_a_call():
    before = torch.get_num_threads()
    h, J = spin_glass(300, seed=0).to_torch()
    SimulatedCIMSampler(seed=0, num_threads=1).optimize_spins(h, J, 2, num_steps=3)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("dynamics", ["bsb", "cac"])
def test_max_cut_with_all_positive_couplings_is_solved(dynamics):
    # Max-Cut's J has one large eigenvalue (non-zero mean); the step sizes must stay stable.
    from dwave.samplers import SimulatedAnnealingSampler

    graph = max_cut(100, edge_probability=0.5, seed=0)
    bqm = graph.to_bqm()
    sa = SimulatedAnnealingSampler().sample(bqm, num_reads=8, num_sweeps=1000, seed=0)
    cim = SimulatedCIMSampler(dynamics=dynamics, seed=0).sample(bqm, num_reads=16)
    assert cim.first.energy <= sa.first.energy + 0.02 * abs(sa.first.energy)


def test_sample_spins_accepts_parameters_that_require_grad():
    h, J = spin_glass(8, seed=0).to_torch()
    h.requires_grad_(True)
    J.requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = SimulatedCIMSampler(seed=0).sample_spins(h, J, 16, beta=1.0)
    assert not s.requires_grad and s.shape == (16, 8)


# --- sparse couplings end to end ---------------------------------------------------------------
def test_optimizer_couplings_choose_the_layout_by_density():
    from qbm_lite.ising import gset_random_graph
    from qbm_lite.samplers.cim import SPARSE_DENSITY, optimizer_couplings

    sparse_graph = gset_random_graph(400, 0.02, seed=0)
    _, J = sparse_graph.to_torch()
    assert optimizer_couplings(J).layout == torch.sparse_csr
    assert optimizer_couplings(J.to_dense()).layout == torch.sparse_csr  # dense but sparse
    _, Jd = spin_glass(300, seed=0).to_torch()
    assert optimizer_couplings(Jd).layout == torch.strided
    assert optimizer_couplings(Jd.to_sparse()).layout == torch.strided  # sparse but dense
    _, Js = spin_glass(20, seed=0).to_torch()
    assert optimizer_couplings(Js).layout == torch.strided  # small: stays dense
    assert 0 < SPARSE_DENSITY < 1


@pytest.mark.parametrize("dynamics", ["bsb", "dsb", "cac", "ahc"])
def test_sparse_and_dense_inputs_give_the_same_optimizer_result(dynamics):
    """The same problem as a dense tensor and as a sparse one: identical spins (same seed)."""
    from qbm_lite.ising import gset_toroidal_grid

    model = gset_toroidal_grid(16, 16, seed=1)  # n = 256, density 1.6 %: runs as CSR
    h, J = model.to_torch()
    sampler = SimulatedCIMSampler(dynamics=dynamics, num_steps=60, seed=0)
    a = sampler.optimize_spins(h, J, 4, generator=torch.Generator().manual_seed(3))
    b = sampler.optimize_spins(h, J.to_dense(), 4, generator=torch.Generator().manual_seed(3))
    e_a, e_b = model.energy(a.numpy()), model.energy(b.numpy())
    np.testing.assert_allclose(e_a, e_b, atol=1e-6)


def test_gset_like_graph_solved_through_dimod_with_sparse_couplings():
    from dwave.samplers import SimulatedAnnealingSampler

    from qbm_lite.ising import gset_random_graph, maxcut_value

    graph = gset_random_graph(300, 0.03, seed=4)
    bqm = graph.to_bqm()
    ss = SimulatedCIMSampler(seed=0).sample(bqm, num_reads=16)
    dimod.testing.assert_sampleset_energies(ss, bqm)
    sa = SimulatedAnnealingSampler().sample(bqm, num_reads=16, num_sweeps=1000, seed=0)

    def cut(sampleset):
        order = [sampleset.variables.index(i) for i in range(300)]
        return maxcut_value(graph, sampleset.record.sample[:, order])

    assert cut(ss).max() >= 0.98 * cut(sa).max()  # within 2 % of SA's best cut


def test_num_sampling_steps_counts_the_integration_steps():
    sampler = SimulatedCIMSampler(seed=0)
    h, J = spin_glass(10, seed=0).to_torch()
    steps = sampler.num_sampling_steps(h, J, beta=1.0)
    traj = sampler.sample_trajectory(h, J, 2, beta=1.0, record_every=1)
    assert steps == len(traj.times) - 1 >= sampler.ramp_steps + sampler.hold_steps


def test_time_to_target_reports_not_reached_and_cumulative_time():
    from qbm_lite.samplers.benchmarking import TimedRun, run_annealing, run_cim, time_to_target

    runs = [TimedRun(np.ones((1, 2)), wall, wall) for wall in (0.1, 0.2, 0.4)]
    ladder = [(25, -1.0, runs[0]), (50, -2.0, runs[1]), (100, -3.0, runs[2])]
    k, run, total = time_to_target(ladder, -2.0)
    assert k == 50 and run is runs[1] and total == pytest.approx(0.3)
    assert time_to_target(ladder, -3.5) is None
    model = spin_glass(12, seed=0)
    sa = run_annealing(model, 50, num_reads=4)
    cim = run_cim(model, SimulatedCIMSampler(seed=0), 30, num_reads=4)
    for r in (sa, cim):
        assert r.spins.shape == (4, 12) and r.wall > 0 and r.energies(model).shape == (4,)
