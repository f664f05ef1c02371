"""Binary images bundled with scikit-learn: the 8x8 digits, binarized, with a fixed split."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

__all__ = ["load_digits_binary"]


def load_digits_binary(
    threshold: float = 8.0, test_size: float = 0.25, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits binarized at ``threshold`` (of 16), with a fixed split.

    Returns ``(X_train, X_test, y_train, y_test)``; ``X`` is float32 in {0, 1}, shape ``(m, 64)``.
    """
    digits = load_digits()
    X = (digits.data >= threshold).astype(np.float32)
    return tuple(  # type: ignore[return-value]
        train_test_split(
            X, digits.target, test_size=test_size, random_state=seed, stratify=digits.target
        )
    )
