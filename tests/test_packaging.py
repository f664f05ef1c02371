"""pyproject.toml and environment.yml list the same dependencies with the same bounds."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-")


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += [r for r in extra if not r.startswith("qbm-lite")]
    parsed = [Requirement(r) for r in reqs]
    return {_normalize(r.name): str(r.specifier) for r in parsed}


def _conda_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    entries: list[str] = []
    for dep in env["dependencies"]:
        entries += dep["pip"] if isinstance(dep, dict) else [dep]
    out = {}
    for entry in entries:
        req = Requirement(entry)
        name = CONDA_NAMES.get(req.name, req.name)
        if name not in ("python", "pip"):
            out[_normalize(name)] = str(req.specifier)
    return out


def test_environment_yml_mirrors_pyproject() -> None:
    assert _conda_requirements() == _pyproject_requirements()


def test_jupyter_book_stays_on_1x() -> None:
    spec = _pyproject_requirements()["jupyter-book"]
    assert "<2" in spec and ">=1.0.4.post1" in spec


def test_package_version_matches_pyproject() -> None:
    import qbm_lite

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert qbm_lite.__version__ == project["version"]
