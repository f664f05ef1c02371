"""Data: bundled images, single-cell data (bundled, simulated, online registry)."""

from qbm_lite.data.images import load_digits_binary

__all__ = ["load_digits_binary"]
