"""IsingModel: energies, QUBO/BQM conversions (against dimod), generators and bad input."""

from __future__ import annotations

import io
import itertools

import dimod
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qbm_lite.exact import ExactBoltzmann
from qbm_lite.ising import (
    IsingModel,
    check_spins,
    cut_to_energy,
    cut_value,
    energy_to_cut,
    ferromagnet_2d,
    gset_random_graph,
    gset_toroidal_grid,
    ising_energy,
    max_cut,
    maxcut_value,
    read_gset,
    sherrington_kirkpatrick,
    write_gset,
)

finite = st.floats(-5, 5, allow_nan=False, allow_infinity=False)


@st.composite
def ising_problems(draw, max_n: int = 6):
    """A random model (n, h, J_upper as a dict, offset) plus a batch of random spin states."""
    n = draw(st.integers(1, max_n))
    h = np.array(draw(st.lists(finite, min_size=n, max_size=n)))
    pairs = list(itertools.combinations(range(n), 2))
    J = {p: draw(finite) for p in pairs if draw(st.booleans())}
    offset = draw(finite)
    states = np.array(
        draw(
            st.lists(
                st.lists(st.sampled_from([-1, 1]), min_size=n, max_size=n), min_size=1, max_size=8
            )
        )
    )
    return n, h, J, offset, states


def _model(n, h, J, offset, sparse=False):
    M = np.zeros((n, n))
    for (i, j), v in J.items():
        M[i, j] = M[j, i] = v
    return IsingModel(h, sp.csr_array(M) if sparse else M, offset)


def _loop_energy(h, J, offset, s):
    """The energy written out term by term, as the definition reads."""
    return (
        offset
        + sum(h[i] * s[i] for i in range(len(h)))
        + sum(v * s[i] * s[j] for (i, j), v in J.items())
    )


@settings(max_examples=60, deadline=None)
@given(ising_problems(), st.booleans())
def test_energy_matches_definition_and_dimod(problem, sparse):
    n, h, J, offset, states = problem
    model = _model(n, h, J, offset, sparse)
    expected = np.array([_loop_energy(h, J, offset, s) for s in states])
    np.testing.assert_allclose(model.energy(states), expected, atol=1e-9)
    bqm = dimod.BinaryQuadraticModel.from_ising(dict(enumerate(h)), J, offset)
    np.testing.assert_allclose(bqm.energies((states, range(n))), expected, atol=1e-9)
    np.testing.assert_allclose(model.to_bqm().energies((states, range(n))), expected, atol=1e-9)
    assert model.energy(states[0]) == pytest.approx(expected[0], abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(ising_problems(), st.booleans())
def test_qubo_conversion_agrees_with_dimod(problem, sparse):
    n, h, J, offset, states = problem
    model = _model(n, h, J, offset, sparse)
    Q, q_offset = model.to_qubo()
    Q = Q.toarray() if sp.issparse(Q) else Q
    assert np.allclose(Q, np.triu(Q)), "to_qubo must return an upper-triangular Q"
    ref_Q, ref_offset = dimod.ising_to_qubo(dict(enumerate(h)), J, offset)
    R = np.zeros((n, n))
    for (i, j), v in ref_Q.items():
        R[min(i, j), max(i, j)] += v
    np.testing.assert_allclose(Q, R, atol=1e-9)
    assert q_offset == pytest.approx(ref_offset, abs=1e-9)
    # x^T Q x + offset equals the Ising energy at s = 2x - 1
    x = (states + 1) // 2
    np.testing.assert_allclose(
        np.einsum("mi,ij,mj->m", x, Q, x) + q_offset, model.energy(states), atol=1e-8
    )


@settings(max_examples=60, deadline=None)
@given(ising_problems(), st.booleans(), st.booleans())
def test_from_qubo_agrees_with_dimod(problem, symmetric, sparse):
    n, h, J, offset, states = problem
    rng = np.random.default_rng(n)
    Q = rng.normal(size=(n, n))
    if symmetric:
        Q = (Q + Q.T) / 2
    model = IsingModel.from_qubo(sp.csr_array(Q) if sparse else Q, offset)
    ref_h, ref_J, ref_offset = dimod.qubo_to_ising(
        {(i, j): Q[i, j] for i in range(n) for j in range(n)}, offset
    )
    np.testing.assert_allclose(model.h, [ref_h.get(i, 0.0) for i in range(n)], atol=1e-9)
    for i, j in itertools.combinations(range(n), 2):
        expected = ref_J.get((i, j), 0.0) + ref_J.get((j, i), 0.0)
        assert model.J[i, j] == pytest.approx(expected, abs=1e-9)
    assert model.offset == pytest.approx(ref_offset, abs=1e-9)
    x = (states + 1) // 2
    np.testing.assert_allclose(
        model.energy(states), np.einsum("mi,ij,mj->m", x, Q, x) + offset, atol=1e-8
    )
    # round trip through QUBO gives the same model
    back = IsingModel.from_qubo(*model.to_qubo())
    np.testing.assert_allclose(back.h, model.h, atol=1e-9)
    np.testing.assert_allclose(back.dense_J(), model.dense_J(), atol=1e-9)
    assert back.offset == pytest.approx(model.offset, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(ising_problems())
def test_bqm_round_trip_spin_and_binary(problem):
    n, h, J, offset, states = problem
    model = _model(n, h, J, offset)
    for bqm in (model.to_bqm(), model.to_bqm().change_vartype(dimod.BINARY, inplace=False)):
        back = IsingModel.from_bqm(bqm)
        assert sorted(back.labels) == list(range(n))
        # spin k of `back` is variable back.labels[k]
        reordered = states[:, np.asarray(back.labels, dtype=int)]
        np.testing.assert_allclose(back.energy(reordered), model.energy(states), atol=1e-8)


def test_from_bqm_keeps_labels():
    bqm = dimod.BinaryQuadraticModel({"a": 1.0, "b": -0.5}, {("a", "c"): 2.0}, 0.25, "SPIN")
    model = IsingModel.from_bqm(bqm)
    assert sorted(model.labels) == ["a", "b", "c"]
    assert model.to_bqm() == bqm
    s = np.array([1, -1, -1])
    assert model.energy(s) == pytest.approx(bqm.energy(dict(zip(model.labels, s, strict=True))))


def test_torch_energy_matches_numpy_and_is_differentiable():
    model = IsingModel(
        np.array([0.3, -1.0, 0.5]), np.array([[0, 1.5, -2], [1.5, 0, 0.7], [-2, 0.7, 0]])
    )
    states = np.array(list(itertools.product([-1, 1], repeat=3)))
    h, J = model.to_torch(dtype=torch.float64)
    h.requires_grad_(True)
    e = ising_energy(torch.as_tensor(states, dtype=torch.float64), h, J)
    np.testing.assert_allclose(e.detach().numpy(), model.energy(states), atol=1e-12)
    e.sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), states.sum(axis=0), atol=1e-12)
    hs, Js = ferromagnet_2d(3).to_torch()
    assert Js.is_sparse and torch.allclose(
        Js.to_dense(), torch.as_tensor(ferromagnet_2d(3).dense_J(), dtype=torch.float32)
    )


def test_ferromagnet_2d_structure_and_ground_states():
    model = ferromagnet_2d(4)
    J = model.dense_J()
    assert model.n == 16 and model.is_sparse
    assert (np.count_nonzero(J, axis=1) == 4).all(), "periodic lattice: 4 neighbours each"
    eb = ExactBoltzmann(model)
    assert eb.ground_energy == pytest.approx(-32.0)  # 2 L^2 bonds, all satisfied
    gs = eb.ground_states()
    assert sorted(gs.sum(axis=1).tolist()) == [-16, 16]
    open_model = ferromagnet_2d(4, periodic=False)
    assert open_model.dense_J().sum() == pytest.approx(-2 * 24)  # 2 L (L - 1) bonds
    field = ferromagnet_2d(3, field=0.5)
    assert field.energy(np.ones(9)) < field.energy(-np.ones(9))  # a positive field favours +1


def test_sherrington_kirkpatrick_statistics():
    model = sherrington_kirkpatrick(200, seed=0)
    J = model.dense_J()
    upper = J[np.triu_indices(200, 1)]
    assert np.allclose(J, J.T) and np.all(np.diag(J) == 0) and np.all(model.h == 0)
    assert upper.var() * 200 == pytest.approx(1.0, rel=0.05)
    pm = sherrington_kirkpatrick(50, seed=1, distribution="pm1").dense_J()
    assert np.allclose(np.abs(pm[np.triu_indices(50, 1)]), 1 / np.sqrt(50))
    assert np.array_equal(sherrington_kirkpatrick(10, seed=3).J, sherrington_kirkpatrick(10, 3).J)


def test_max_cut_cut_value_matches_brute_force():
    model = max_cut(7, 0.6, seed=2, weighted=True)
    W = model.dense_J()
    states = np.array(list(itertools.product([-1, 1], repeat=7)))
    brute = np.array(
        [sum(W[i, j] for i in range(7) for j in range(i + 1, 7) if s[i] != s[j]) for s in states]
    )
    np.testing.assert_allclose(cut_value(model, states), brute, atol=1e-9)
    # the ground state of the Ising model is a maximum cut
    eb = ExactBoltzmann(model)
    assert cut_value(model, eb.ground_states()[0]) == pytest.approx(brute.max())


def test_model_equality():
    a, b = sherrington_kirkpatrick(5, seed=0), sherrington_kirkpatrick(5, seed=0)
    assert a == b and a != sherrington_kirkpatrick(5, seed=1)
    lattice = ferromagnet_2d(3)
    dense = IsingModel(lattice.h, lattice.dense_J())
    assert lattice == dense and dense == lattice  # storage does not matter
    assert lattice != IsingModel(lattice.h, lattice.dense_J(), offset=1.0)
    assert lattice != ferromagnet_2d(4) and lattice != "not a model"


def test_from_upper_and_scaled():
    upper = np.array([[0, 2.0, 0], [0, 0, -1.0], [0, 0, 0]])
    model = IsingModel.from_upper([1, 0, 0], upper)
    assert model.J[1, 0] == 2.0 and model.J[2, 1] == -1.0
    s = np.array([1, -1, 1])
    assert model.scaled(3.0).energy(s) == pytest.approx(3.0 * model.energy(s))


# --- bad input ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("h", "J", "match"),
    [
        (np.zeros(3), np.zeros((3, 2)), "square"),
        (np.zeros(3), np.zeros((2, 2)), "must match"),
        (np.zeros((3, 1)), np.zeros((3, 3)), "vector of length n"),
        (np.zeros(2), np.array([[0, 1.0], [2.0, 0]]), "symmetric"),
        (np.zeros(2), np.array([[1.0, 0], [0, 0]]), "zero diagonal"),
        (np.array([0.0, np.nan]), np.zeros((2, 2)), "h contains NaN"),
        (np.zeros(2), np.array([[0, np.inf], [np.inf, 0]]), "J contains NaN or infinite"),
        (np.zeros(2), sp.csr_array(np.array([[0, np.nan], [np.nan, 0]])), "J contains NaN"),
        (np.zeros(2), sp.csr_array(np.array([[0, 1.0], [0, 0]])), "symmetric"),
    ],
)
def test_bad_models_raise_clear_errors(h, J, match):
    with pytest.raises(ValueError, match=match):
        IsingModel(h, J)


def test_bad_offset_and_qubo():
    with pytest.raises(ValueError, match="offset must be finite"):
        IsingModel(np.zeros(2), np.zeros((2, 2)), offset=np.inf)
    with pytest.raises(ValueError, match="Q must be a square"):
        IsingModel.from_qubo(np.zeros((2, 3)))


@pytest.mark.parametrize(
    ("states", "match"),
    [
        (np.array([0, 1, 1]), "spins must be -1 or \\+1"),
        (np.array([1.0, np.nan, 1.0]), "NaN"),
        (np.ones(4), "4 spins but the model has 3"),
        (np.ones((2, 2, 3)), "shape \\(n,\\) or \\(m, n\\)"),
    ],
)
def test_bad_spins_raise_clear_errors(states, match):
    model = IsingModel(np.zeros(3), np.zeros((3, 3)))
    with pytest.raises(ValueError, match=match):
        model.energy(states)
    with pytest.raises(ValueError, match=match):
        check_spins(states, 3)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: ferromagnet_2d(1), "L must be at least 2"),
        (lambda: sherrington_kirkpatrick(1), "n must be at least 2"),
        (lambda: sherrington_kirkpatrick(5, distribution="cauchy"), "'gaussian' or 'pm1'"),
        (lambda: max_cut(5, edge_probability=0.0), "edge_probability"),
        (lambda: max_cut(1), "n must be at least 2"),
    ],
)
def test_bad_generator_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- Gset / rudy format, Gset-like generators, cuts --------------------------------------------
GSET_TEXT = """5 6
1 2 1
1 3 1
2 3 -1
2 4 1
3 5 1
4 5 -1
"""


def _brute_cut(W: np.ndarray, s: np.ndarray) -> float:
    n = len(s)
    return sum(W[i, j] for i in range(n) for j in range(i + 1, n) if s[i] != s[j])


def test_read_gset_builds_the_max_cut_model(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text(GSET_TEXT)
    model = read_gset(path)
    assert model.n == 5 and model.is_sparse and np.all(model.h == 0)
    W = model.dense_J()
    assert W[0, 1] == 1 and W[1, 2] == -1 and W[3, 4] == -1 and W[4, 3] == -1
    states = np.array(list(itertools.product([-1, 1], repeat=5)))
    brute = np.array([_brute_cut(W, s) for s in states])
    np.testing.assert_allclose(maxcut_value(model, states), brute)
    # cut <-> energy round trip, and the ground state is a maximum cut
    e = model.energy(states)
    np.testing.assert_allclose(cut_to_energy(model, energy_to_cut(model, e)), e)
    assert energy_to_cut(model, ExactBoltzmann(model).ground_energy) == pytest.approx(brute.max())
    assert cut_value is maxcut_value


def test_write_gset_round_trip(tmp_path):
    for model in (gset_random_graph(60, 0.1, "pm1", seed=1), gset_toroidal_grid(4, 5, seed=2)):
        write_gset(model, tmp_path / "m.txt")
        assert read_gset(tmp_path / "m.txt") == model
    buf = io.StringIO()
    write_gset(read_gset(io.StringIO(GSET_TEXT)), buf)
    assert buf.getvalue() == GSET_TEXT


def test_gset_like_generators():
    g = gset_random_graph(800, 0.01, seed=0)
    m = g.J.nnz // 2
    expected = 0.01 * 800 * 799 / 2
    assert abs(m - expected) < 4 * expected**0.5  # binomial edge count
    assert set(np.unique(g.J.data)) == {1.0} and g.is_sparse
    pm = gset_random_graph(200, 0.05, "pm1", seed=0)
    assert set(np.unique(pm.J.data)) == {-1.0, 1.0}
    assert np.array_equal(
        gset_random_graph(50, 0.1, seed=3).dense_J(), gset_random_graph(50, 0.1, seed=3).dense_J()
    )
    t = gset_toroidal_grid(20, 40, seed=0)
    degree = np.asarray((t.J != 0).sum(axis=1)).ravel()
    assert t.n == 800 and np.all(degree == 4) and t.J.nnz == 4 * 800
    assert set(np.unique(t.J.data)) == {-1.0, 1.0}
    # the unit-weight torus with even sides is bipartite: its maximum cut holds every edge
    checker = np.where(np.add.outer(np.arange(4), np.arange(6)) % 2 == 0, 1, -1).ravel()
    unit = gset_toroidal_grid(4, 6, "unit")
    assert maxcut_value(unit, checker) == pytest.approx(unit.J.nnz / 2)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "starts with a line 'n m'"),
        ("5\n", "starts with a line 'n m'"),
        ("a b\n", "two integers"),
        ("3 2\n1 2 1\n", "announces m=2"),
        ("3 1\n1 4 1\n", "1..3"),
        ("3 1\n2 2 1\n", "self-loop"),
        ("3 1\n1 2\n", "expected 'i j w'"),
        ("3 1\n1 2 x\n", "expected 'i j w'"),
        ("0 0\n", "n >= 1"),
    ],
)
def test_bad_gset_files_raise_clear_errors(text, match):
    with pytest.raises(ValueError, match=match):
        read_gset(io.StringIO(text))


def test_cut_of_a_model_with_fields_is_refused():
    with pytest.raises(ValueError, match="non-zero h"):
        maxcut_value(IsingModel(np.ones(2), np.zeros((2, 2))), np.ones(2))
    with pytest.raises(ValueError, match="weights"):
        gset_random_graph(10, 0.5, weights="gauss")
    with pytest.raises(ValueError, match="density"):
        gset_random_graph(10, 0.0)
    with pytest.raises(ValueError, match="at least 3"):
        gset_toroidal_grid(2, 5)
