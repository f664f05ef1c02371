"""Shared pytest set-up: the book-build test runs after every chapter has been executed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move tests marked ``run_last`` (the book build) behind the nbmake chapter runs."""
    items.sort(key=lambda item: item.get_closest_marker("run_last") is not None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "run_last: run after every other test (the book build)")
    config.addinivalue_line(
        "markers", "default_prior_warmup: keep QBMVAE's data-dependent default prior warm-up"
    )


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository's root folder."""
    return ROOT


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Unit tests use small matrices: one torch thread is faster, and steadier on shared cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _prior_learned_from_the_start(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Unit tests train for a few epochs on a few hundred cells, where the default prior warm-up
    (a quarter of scvi-tools' 400 epochs) would hold the prior uniform for the whole test and
    leave the prior's gradient and the samplers untested. Tests learn the prior from the first
    epoch unless they pass ``prior_warmup_epochs`` or are marked ``default_prior_warmup``."""
    if request.node.get_closest_marker("default_prior_warmup") is None:
        from qbm_lite.vae import model

        monkeypatch.setattr(model, "default_prior_warmup_epochs", lambda n_cells: 0)
