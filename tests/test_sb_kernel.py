"""The compiled simulated-bifurcation kernel against the torch loop it replaces on sparse CPUs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from qbm_lite.ising import gset_random_graph, sherrington_kirkpatrick
from qbm_lite.samplers import cim_dynamics
from qbm_lite.samplers.cim import SimulatedCIMSampler, default_num_steps, optimizer_couplings
from qbm_lite.samplers.cim_dynamics import coupling_scale, simulated_bifurcation
from qbm_lite.samplers.sb_kernel import compiled_sb_available, sb_steps_csr


def _gaussian_sparse(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fields and symmetric CSR couplings with Gaussian weights (not integers: rounding shows)."""
    rng = np.random.default_rng(seed)
    upper = sp.triu(sp.random(n, n, density=0.03, random_state=seed), 1).tocoo()
    upper.data = rng.normal(size=upper.nnz)
    J = (upper + upper.T).tocsr()
    Jt = torch.sparse_csr_tensor(
        torch.from_numpy(J.indptr).long(),
        torch.from_numpy(J.indices).long(),
        torch.from_numpy(J.data).float(),
        size=(n, n),
        check_invariants=True,
    )
    return torch.from_numpy(rng.normal(0, 0.3, n)).float(), Jt


def _problems():
    h, J = gset_random_graph(300, 0.03, seed=5).to_torch()
    yield "unit-weight graph", h.float(), optimizer_couplings(J.float())
    yield "gaussian weights and fields", *_gaussian_sparse(200, 7)


@pytest.mark.parametrize("discrete", [False, True], ids=["bSB", "dSB"])
@pytest.mark.parametrize(
    "name,h,J", list(_problems()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_compiled_kernel_matches_the_torch_loop(name, h, J, discrete):
    assert J.layout == torch.sparse_csr
    gen = torch.Generator().manual_seed(0)
    x0 = 0.2 * torch.rand(5, J.shape[0], generator=gen) - 0.1  # 5 reads: not a SIMD width
    y0 = 0.2 * torch.rand(5, J.shape[0], generator=gen) - 0.1
    c0 = 0.5 * coupling_scale(J)
    kw = {"c0": c0, "dt": 0.9, "discrete": discrete}
    ref = simulated_bifurcation(x0, y0, h, J, 40, backend="torch", **kw)
    fast = simulated_bifurcation(x0, y0, h, J, 40, backend="compiled", **kw)
    torch.testing.assert_close(fast.x, ref.x, atol=1e-5, rtol=0)
    assert fast.x.abs().max() <= 1.0  # the walls hold
    assert (fast.x.abs() == 1.0).any()  # and were reached: the test ran the bifurcation


def test_compiled_kernel_records_and_calls_back_like_the_torch_loop():
    h, J = gset_random_graph(120, 0.05, seed=2).to_torch()
    J = optimizer_couplings(J.float())
    x0, y0 = torch.full((3, 120), 0.05), torch.zeros(3, 120)
    seen: dict[str, list[int]] = {"torch": [], "compiled": []}
    runs = {}
    for backend in ("torch", "compiled"):
        runs[backend] = simulated_bifurcation(
            x0,
            y0,
            h.float(),
            J,
            12,
            c0=0.2,
            record_every=5,
            callback=lambda t, x, b=backend: seen[b].append(t),
            backend=backend,
        )
    assert runs["compiled"].times == runs["torch"].times == [0, 5, 10, 12]
    torch.testing.assert_close(
        runs["compiled"].snapshots, runs["torch"].snapshots, atol=1e-6, rtol=0
    )
    assert seen["compiled"] == seen["torch"] == list(range(12))


@pytest.mark.parametrize("backend", ["torch", "compiled"])
def test_both_backends_leave_their_inputs_alone(backend):
    h, J = gset_random_graph(60, 0.1, seed=3).to_torch()
    J = optimizer_couplings(J.float())
    for reads in (1, 4):  # one read: (1, n).T is already contiguous, a view of the input
        x0, y0 = torch.full((reads, 60), 0.05), torch.full((reads, 60), -0.01)
        x_copy, y_copy = x0.clone(), y0.clone()
        out = simulated_bifurcation(x0, y0, h.float(), J, 10, c0=0.3, backend=backend)
        assert not torch.equal(out.x, x0)  # it moved
        assert torch.equal(x0, x_copy) and torch.equal(y0, y_copy)


def test_compiled_kernel_in_pieces_equals_one_call_and_handles_edge_cases():
    """Steps run one call at a time equal one call; zero amplitudes, int32 indices, a0 != 1."""
    h, J = gset_random_graph(100, 0.06, seed=8).to_torch()
    J = optimizer_couplings(J.float())
    J32 = torch.sparse_csr_tensor(
        J.crow_indices().int(),
        J.col_indices().int(),
        J.values(),
        size=J.shape,
        check_invariants=True,
    )
    gen = torch.Generator().manual_seed(1)
    X0 = (0.2 * torch.rand(100, 6, generator=gen) - 0.1).contiguous()
    X0[:5] = 0.0  # torch.sign(0) = 0: these spins feel no dSB coupling at first
    Y0 = torch.zeros(100, 6)
    kw = {"c0": 0.2, "dt": 0.8, "a0": 1.5, "discrete": True}
    whole_x, whole_y = X0.clone(), Y0.clone()
    sb_steps_csr(whole_x, whole_y, J, h, 0, 30, 30, **kw)
    parts_x, parts_y = X0.clone(), Y0.clone()
    for t in range(30):
        sb_steps_csr(parts_x, parts_y, J32, h.double(), t, t + 1, 30, **kw)
    torch.testing.assert_close(parts_x, whole_x, atol=1e-6, rtol=0)
    ref = simulated_bifurcation(X0.T, Y0.T, h, J, 30, backend="torch", **kw)
    torch.testing.assert_close(whole_x.T, ref.x, atol=1e-5, rtol=0)
    one = simulated_bifurcation(X0.T, Y0.T, h, J, 1, backend="compiled", **kw)
    torch.testing.assert_close(
        one.x, simulated_bifurcation(X0.T, Y0.T, h, J, 1, backend="torch", **kw).x
    )


def test_auto_backend_uses_the_kernel_on_one_thread_only(monkeypatch):
    calls = []
    real = cim_dynamics.sb_steps_csr
    monkeypatch.setattr(
        cim_dynamics, "sb_steps_csr", lambda *a, **k: (calls.append(1), real(*a, **k))[1]
    )
    h, J = gset_random_graph(80, 0.1, seed=4).to_torch()
    Jc = optimizer_couplings(J.float())
    x0, y0 = torch.full((2, 80), 0.05), torch.zeros(2, 80)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        simulated_bifurcation(x0, y0, h.float(), Jc, 5, c0=0.3)
        assert calls, "one thread, CPU, CSR: the compiled kernel runs"
        calls.clear()
        simulated_bifurcation(x0, y0, h.float(), Jc.to_dense(), 5, c0=0.3)
        assert not calls, "dense couplings stay with torch"
        torch.set_num_threads(2)
        simulated_bifurcation(x0, y0, h.float(), Jc, 5, c0=0.3)
        assert not calls, "several threads: torch's threaded product"
    finally:
        torch.set_num_threads(previous)


def test_compiled_backend_refuses_what_it_cannot_run():
    h, J = gset_random_graph(50, 0.1, seed=1).to_torch()
    x0 = torch.zeros(2, 50)
    with pytest.raises(ValueError, match="backend='compiled' needs"):
        simulated_bifurcation(x0, x0, h, J.to_dense(), 3, c0=0.1, backend="compiled")
    with pytest.raises(ValueError, match="backend must be"):
        simulated_bifurcation(x0, x0, h, J, 3, c0=0.1, backend="numba")
    Jc = optimizer_couplings(J.float())
    assert compiled_sb_available(x0, Jc) and not compiled_sb_available(x0.double(), Jc)
    with pytest.raises(ValueError, match=r"shape \(n, reads\)"):
        sb_steps_csr(x0, x0, Jc, h, 0, 1, 1, c0=0.1, dt=1.0, a0=1.0, discrete=True)
    X = torch.zeros(50, 2)
    with pytest.raises(ValueError, match="one field per spin"):  # would be read out of bounds
        sb_steps_csr(X, X.clone(), Jc, h[:10], 0, 1, 1, c0=0.1, dt=1.0, a0=1.0, discrete=True)
    with pytest.raises(ValueError, match="float32 CPU tensors"):
        sb_steps_csr(X, X.double(), Jc, h, 0, 1, 1, c0=0.1, dt=1.0, a0=1.0, discrete=True)
    assert not compiled_sb_available(x0, Jc, y=x0.double())


def test_auto_dynamics_is_dsb_on_sparse_and_bsb_on_dense_couplings():
    sparse = gset_random_graph(300, 0.02, seed=6)
    dense = sherrington_kirkpatrick(40, seed=1)
    cim = SimulatedCIMSampler(seed=0)
    assert cim.dynamics == "auto"
    assert cim.optimizer_dynamics(sparse.to_torch()[1]) == "dsb"
    assert cim.optimizer_dynamics(sparse.to_torch()[1].to_dense()) == "dsb"  # layout by density
    assert cim.optimizer_dynamics(dense.to_torch()[1]) == "bsb"
    assert SimulatedCIMSampler(dynamics="bsb").optimizer_dynamics(sparse.to_torch()[1]) == "bsb"
    ss = cim.sample(sparse.to_bqm(), num_reads=4)
    assert ss.info["dynamics"] == "dsb"
    assert cim.properties["dynamics"] == "auto"  # the setting; the info says what ran
    assert cim.sample(dense.to_bqm(), num_reads=4).info["dynamics"] == "bsb"
    with pytest.raises(ValueError, match="resolve 'auto'"):
        default_num_steps(300, "auto")
