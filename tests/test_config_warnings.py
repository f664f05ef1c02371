"""collect_warnings: a known library warning is collected, every other warning still shows."""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qbm_lite.config import collect_warnings

NOISY = """
import warnings


def warn(text, category=UserWarning):
    warnings.warn(text, category)
"""


@pytest.fixture
def noisy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A throw-away package ``fakelib.noisy`` whose ``warn`` raises a warning from its own file."""
    (tmp_path / "fakelib").mkdir()
    (tmp_path / "fakelib" / "__init__.py").write_text("")
    (tmp_path / "fakelib" / "noisy.py").write_text(NOISY)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("fakelib.noisy")
    for name in ("fakelib.noisy", "fakelib"):
        sys.modules.pop(name, None)


def test_known_warning_is_collected_every_time_and_not_shown(noisy) -> None:
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("default")
        with collect_warnings(UserWarning, "fakelib.noisy", "score is negative") as seen:
            noisy.warn("score is negative, set to 0")
            noisy.warn("score is negative, set to 0")  # same line twice: both counted
    assert seen == ["score is negative, set to 0"] * 2
    assert shown == []


@pytest.mark.parametrize(
    ("text", "category", "module", "message"),
    [
        ("something else", UserWarning, "fakelib.noisy", "score is negative"),  # other text
        ("score is negative", FutureWarning, "fakelib.noisy", "score"),  # other category
        ("score is negative", UserWarning, "otherlib.noisy", "score"),  # other module
    ],
)
def test_other_warnings_still_show(noisy, text, category, module, message) -> None:
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with collect_warnings(UserWarning, module, message) as seen:
            noisy.warn(text, category)
    assert seen == []
    assert [str(w.message) for w in shown] == [text]
    assert shown[0].filename.endswith("noisy.py")


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="Warning subclass"):
        with collect_warnings(ValueError, "x"):  # type: ignore[arg-type]
            pass
    with pytest.raises(ValueError, match="dotted module name"):
        with collect_warnings(UserWarning, ""):
            pass


def test_collects_scib_metrics_negative_pcr_warning() -> None:
    """The real warning site that Chapter 5 meets: scib-metrics clamps a negative PCR score."""
    pcr = pytest.importorskip("scib_metrics.metrics._pcr_comparison")
    rng = np.random.default_rng(0)
    batch = np.repeat([0, 1], 50)
    before = rng.normal(size=(100, 5)).astype(np.float32)
    after = before.copy()
    after[:, 0] += 8.0 * batch  # integration made the batches *more* separate
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with collect_warnings(UserWarning, "scib_metrics.metrics._pcr_comparison", "PCR") as seen:
            score = pcr.pcr_comparison(before, after, batch, categorical=True)
    assert score == 0
    assert len(seen) == 1 and "negative" in seen[0]
    assert not [w for w in shown if "PCR" in str(w.message)]


def test_integration_benchmark_records_clamped_pcr_instead_of_warning() -> None:
    """End to end: an embedding with *more* batch variance than the unintegrated one."""
    ad = pytest.importorskip("anndata")
    from qbm_lite import metrics

    rng = np.random.default_rng(1)
    n = 200  # scib-metrics' neighbour graphs need more than 90 cells
    labels = np.repeat(np.arange(2), n // 2)
    batch = np.tile(np.repeat([0, 1], n // 4), 2)
    pre = rng.normal(0, 1, size=(n, 6)) + 4.0 * labels[:, None]
    worse = pre.copy()
    worse[:, 1] += 30.0 * batch  # integration that separated the batches
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical(batch.astype(str)),
            "cell_type": pd.Categorical(labels.astype(str)),
        },
        index=[f"c{i}" for i in range(n)],
    )
    adata = ad.AnnData(X=np.zeros((n, 3), dtype=np.float32), obs=obs)
    adata.obsm["X_pca"], adata.obsm["X_worse"], adata.obsm["X_same"] = pre, worse, pre.copy()
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        result = metrics.integration_benchmark(
            adata, {"worse": "X_worse", "same": "X_same"}, "batch", "cell_type",
            metrics="light", plot=False,
        )  # fmt: skip
    assert result.scores.loc["worse", "PCR comparison"] == 0.0
    assert result.scores.loc["same", "PCR comparison"] == pytest.approx(0.0, abs=1e-6)
    assert "worse" in result.pcr_clipped
    assert not [w for w in shown if "PCR comparison" in str(w.message)]
