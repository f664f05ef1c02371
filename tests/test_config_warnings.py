"""collect_warnings: a known library warning is collected, every other warning still shows."""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

import numpy as np
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
