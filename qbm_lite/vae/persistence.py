"""Saving and loading models: plain Python types only, and scvi-tools' path convention.

``model.save("models/run1")`` writes ``models/run1/model.pt`` (a directory that holds the model,
as scvi-tools does; missing parent folders are created); a path ending in ``.pt`` or ``.pth`` is
used as the file itself. Everything written is a tensor or a plain Python ``str``, ``int``,
``float``, ``bool``, ``None``, list or dict, so ``torch.load(..., weights_only=True)`` reads it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MODEL_FILE", "model_file_for_load", "model_file_for_save", "plain"]

#: File name inside a model directory (scvi-tools uses ``model.pt`` too).
MODEL_FILE = "model.pt"
_SUFFIXES = (".pt", ".pth")


def plain(value: Any, name: str = "value") -> Any:
    """``value`` as plain Python types (numpy scalars and ``str`` subclasses such as ``np.str_``
    become ``int``/``float``/``bool``/``str``; lists, tuples and dicts are converted deeply).

    Raises
    ------
    TypeError
        For anything else (e.g. an object that ``weights_only=True`` could not load).
    """
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool | int | float):
        return _builtin_number(value)  # subclasses of bool, int and float
    if isinstance(value, list | tuple):
        return [plain(v, name) for v in value]
    if isinstance(value, dict):
        return {str(plain(k, name)): plain(v, name) for k, v in value.items()}
    raise TypeError(
        f"{name} has type {type(value).__name__}, which cannot be saved as a plain Python value; "
        "pass a str, int, float, bool or None."
    )


def _builtin_number(value: Any) -> bool | int | float:
    for t in (bool, int, float):
        if isinstance(value, t):
            return t(value)
    raise TypeError(type(value).__name__)  # pragma: no cover - guarded by the caller


def _is_file_path(path: Path) -> bool:
    return path.suffix in _SUFFIXES


def model_file_for_save(path: str | os.PathLike, overwrite: bool) -> Path:
    """Where :meth:`QBMVAE.save` writes for ``path``; creates missing folders.

    Raises
    ------
    FileExistsError
        If the model file exists and ``overwrite`` is False.
    ValueError
        If a path meant as a file names an existing directory.
    """
    path = Path(path).expanduser()
    if _is_file_path(path):
        if path.is_dir():
            raise ValueError(
                f"{path} is a directory; pass the directory without a .pt suffix to write "
                f"{MODEL_FILE} inside it, or another file name."
            )
        target = path
    else:
        if path.exists() and not path.is_dir():
            raise ValueError(
                f"{path} exists and is not a directory; pass a directory (the model is written "
                f"to <dir>/{MODEL_FILE}) or a file name ending in .pt."
            )
        target = path / MODEL_FILE
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"{target} already exists; pass overwrite=True to replace it, or another path."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def model_file_for_load(path: str | os.PathLike) -> Path:
    """The model file :meth:`QBMVAE.load` reads for ``path`` (a directory or a file).

    Raises
    ------
    FileNotFoundError
        Naming the file that was looked for.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        target = path / MODEL_FILE
        if not target.is_file():
            found = sorted(p.name for p in path.iterdir())[:10]
            raise FileNotFoundError(
                f"{path} is a directory without {MODEL_FILE} (it holds {found}); pass the "
                "directory given to model.save, or the saved file itself."
            )
        return target
    if not path.is_file():
        raise FileNotFoundError(
            f"no saved model at {path}; pass the directory given to model.save (holding "
            f"{MODEL_FILE}) or the saved .pt file."
        )
    return path
