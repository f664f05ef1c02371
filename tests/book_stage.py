"""The staged, quick-mode book that ``python3 tasks.py test`` executes, built once per session.

``tasks.py test`` copies the book to ``.book-stage``, runs every staged chapter through nbmake
with ``--overwrite`` (so the copies carry their outputs) and sets ``QBM_LITE_BOOK_STAGE``. The
book-build test and the browser test both need the HTML built from it; whichever runs first
builds it (execution off, warnings as errors) and the other reuses the result.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

STAGE: Path | None = (
    Path(os.environ["QBM_LITE_BOOK_STAGE"]) if os.environ.get("QBM_LITE_BOOK_STAGE") else None
)
SKIP_REASON = "run through `python3 tasks.py test`, which stages the book"


@functools.cache
def build(stage: Path) -> subprocess.CompletedProcess[str]:
    """Run ``jupyter-book build STAGE -W --keep-going`` once; HTML lands in STAGE/_build/html."""
    jb = Path(sys.executable).with_name("jupyter-book")
    return subprocess.run(
        [str(jb), "build", str(stage), "-W", "--keep-going"], capture_output=True, text=True
    )


def html_dir(stage: Path) -> Path:
    """Where the built HTML is."""
    return stage / "_build" / "html"
