#!/usr/bin/env python3
"""The project's two jobs on a fresh machine, with nothing but Python 3.11+ installed.

    python3 tasks.py book   # set up, then build the book, executing every chapter (full mode)
    python3 tasks.py test   # set up, then lint, run the unit tests and every chapter (quick mode)
                            # through nbmake, build the book from those executed chapters and
                            # read every page in headless Chromium with the network blocked

Set-up creates ``.venv`` beside this file and installs ``qbm_lite`` with its extras into it.
PyTorch is installed first as ``TORCH_SPEC`` (default ``torch==2.13.0``) unless the environment
already has one; override it (e.g. ``TORCH_SPEC="torch==2.13.0+cpu"``) to choose a build.
The test job also needs a Chromium browser for the browser test: on Debian or Ubuntu as root it
installs the distribution's ``chromium`` and ``chromium-driver`` with apt-get when they are
missing (Playwright drives that browser; it downloads none of its own).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAGE = ROOT / ".book-stage"  # not under _build: nbmake skips paths with _build
TORCH_SPEC = os.environ.get("TORCH_SPEC", "torch==2.13.0")


def venv_bin(name: str) -> str:
    """Path of an executable inside the project's virtual environment."""
    folder = "Scripts" if os.name == "nt" else "bin"
    return str(VENV / folder / name)


def run(*cmd: str, env: dict[str, str] | None = None) -> None:
    """Run a command from the project root and stop at the first failure."""
    print("+", " ".join(cmd), flush=True)
    result = subprocess.run(cmd, cwd=ROOT, env=env)
    if result.returncode != 0:
        sys.exit(result.returncode)


def setup() -> None:
    """Create the virtual environment and install the package with its extras (idempotent)."""
    if sys.version_info < (3, 11):  # noqa: UP036 (this script may run on an older python3)
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}.")
    stamp = VENV / ".installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    if not VENV.exists():
        run(sys.executable, "-m", "venv", str(VENV))
    python = venv_bin("python")
    has_torch = subprocess.run([python, "-c", "import torch"], capture_output=True).returncode == 0
    if not has_torch:
        run(python, "-m", "pip", "install", TORCH_SPEC)
    run(python, "-m", "pip", "install", "-e", ".[test]")
    stamp.write_text(digest)


def chromium() -> None:
    """Install the distribution's Chromium for the browser test when it is missing (Debian)."""
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run("apt-get", "update", env=env)
        run("apt-get", "install", "-y", "chromium", "chromium-driver", env=env)
    else:
        print(
            "Chromium is not installed and this is not Debian as root: install the 'chromium'"
            " package yourself, or tests/test_book_browser.py is skipped (it fails under CI).",
            flush=True,
        )


def book() -> None:
    """Build the book into _build/html, executing every chapter (cached by jupyter-cache)."""
    setup()
    run(venv_bin("jupyter-book"), "build", ".", "-W", "--keep-going")
    print(f"The book is in {ROOT / '_build' / 'html' / 'index.html'}")


def stage_book() -> None:
    """Copy the book's sources to STAGE, configured to build without executing anything."""
    shutil.rmtree(STAGE, ignore_errors=True)
    STAGE.mkdir(parents=True)
    shutil.copytree(ROOT / "book", STAGE / "book")
    shutil.copy(ROOT / "_toc.yml", STAGE / "_toc.yml")
    config = (ROOT / "_config.yml").read_text()
    if "execute_notebooks: cache" not in config:
        sys.exit("_config.yml must say 'execute_notebooks: cache' (tasks.py rewrites it to 'off').")
    staged = config.replace("execute_notebooks: cache", 'execute_notebooks: "off"')
    (STAGE / "_config.yml").write_text(staged)


def test() -> None:
    """Lint, then run the unit tests, every chapter in quick mode, the book build and the
    browser test of the built book."""
    setup()
    chromium()
    run(venv_bin("ruff"), "check", ".")
    run(venv_bin("ruff"), "format", "--check", ".")
    stage_book()
    env = dict(os.environ, QBM_LITE_QUICK="1", QBM_LITE_BOOK_STAGE=str(STAGE))
    chapters = sorted(str(p.relative_to(ROOT)) for p in (STAGE / "book").glob("*.ipynb"))
    run(
        venv_bin("python"), "-m", "pytest", "tests", *chapters,
        "--nbmake", "--nbmake-timeout=300", "--overwrite", "--durations=15", env=env,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("job", choices=["setup", "book", "test"])
    job = parser.parse_args().job
    {"setup": setup, "book": book, "test": test}[job]()


if __name__ == "__main__":
    main()
