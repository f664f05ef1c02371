"""Run-time settings shared by the library and the book: quick mode, seeds, devices, warnings."""

from __future__ import annotations

import os
import random
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import torch

T = TypeVar("T")

#: True when the environment variable ``QBM_LITE_QUICK`` is set to ``1`` (or ``true``/``yes``).
#: Chapters shrink their data sizes and epochs in quick mode so that each runs in under a minute.
QUICK: bool = os.environ.get("QBM_LITE_QUICK", "0").strip().lower() in {"1", "true", "yes", "on"}

DeviceName = Literal["auto", "cpu", "cuda"] | str


def quick(full: T, quick_value: T) -> T:
    """Return ``quick_value`` in quick mode and ``full`` otherwise."""
    return quick_value if QUICK else full


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and PyTorch, and return a fresh NumPy generator for ``seed``."""
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)  # noqa: NPY002 (scanpy and umap read the global state)
    torch.manual_seed(int(seed))
    return np.random.default_rng(int(seed))


def get_device(device: DeviceName = "auto") -> torch.device:
    """Resolve ``"auto"`` to CUDA when available and the CPU otherwise; check explicit names."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={device!r} was requested but CUDA is not available here; "
            "use device='auto' or device='cpu'."
        )
    return dev


def torch_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch random generator on ``device``, seeded with ``seed`` (fresh entropy if None)."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


@contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run with ``num_threads`` torch CPU threads (``None``: unchanged), then restore them."""
    if num_threads is not None and int(num_threads) < 1:
        raise ValueError(f"num_threads must be a positive integer or None; got {num_threads}.")
    previous = torch.get_num_threads()
    if num_threads is not None and int(num_threads) != previous:
        torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def _module_name(filename: str) -> str:
    """Dotted name of the module at ``filename`` as its path tells ("a/b/c.py" -> "a.b.c")."""
    return ".".join(Path(filename).with_suffix("").parts)


@contextmanager
def collect_warnings(
    category: type[Warning], module: str, message: str = ""
) -> Iterator[list[str]]:
    """Collect one known library warning instead of printing it; show every other warning.

    A library warning printed in a chapter shows the reader the builder's file paths and a
    message out of context. Wrap the call that triggers a *known* warning, then say what it
    means where it matters (e.g. in a result's notes). Only warnings of ``category`` raised from
    ``module`` whose text matches ``message`` are collected; any other warning raised inside the
    block is shown as usual, after the block.

    Parameters
    ----------
    category
        Warning class to collect (subclasses match too), e.g. ``UserWarning``.
    module
        Dotted name of the module that calls ``warnings.warn``, e.g.
        ``"scib_metrics.metrics._pcr_comparison"`` (matched against the warning's file path).
    message
        Regular expression that the start of the warning's text must match ("" matches all).

    Yields
    ------
    list of str
        The collected messages, one per occurrence, filled in when the block ends.

    Examples
    --------
    >>> import warnings
    >>> with collect_warnings(UserWarning, "qbm_lite.config") as seen:
    ...     pass
    >>> seen
    []
    """
    if not (isinstance(category, type) and issubclass(category, Warning)):
        raise TypeError(f"category must be a Warning subclass, e.g. UserWarning; got {category!r}.")
    if not module or not isinstance(module, str):
        raise ValueError(f"module must be a dotted module name; got {module!r}.")
    pattern = re.compile(message)
    collected: list[str] = []
    with warnings.catch_warnings(record=True) as records:
        # Count every occurrence of the collected warning, not only the first per code line.
        warnings.filterwarnings(
            "always", message=message, category=category, module=re.escape(module)
        )
        yield collected
    for record in records:
        known = (
            issubclass(record.category, category)
            and _module_name(record.filename).endswith(module)
            and pattern.match(str(record.message))
        )
        if known:
            collected.append(str(record.message))
        else:
            warnings.showwarning(
                record.message, record.category, record.filename, record.lineno, record.file
            )
