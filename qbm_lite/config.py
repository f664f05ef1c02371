"""Run-time settings shared by the library and the book: quick mode, seeds and devices."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
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
