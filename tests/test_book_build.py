"""The book builds with warnings as errors, from chapters that nbmake has already executed.

``python3 tasks.py test`` copies the book to a staging folder (``.book-stage``), runs every
staged chapter through nbmake with ``--overwrite`` (so the copies carry their outputs) and sets
``QBM_LITE_BOOK_STAGE``; this test then builds the staged book with execution turned off, so no
chapter runs twice.
"""

from __future__ import annotations

import json
import re

import pytest
from book_stage import SKIP_REASON, STAGE, build, html_dir


@pytest.mark.run_last
@pytest.mark.skipif(STAGE is None, reason=SKIP_REASON)
def test_book_builds_without_warnings() -> None:
    stage = STAGE
    notebooks = sorted((stage / "book").glob("*.ipynb"))
    assert notebooks, f"no staged chapters in {stage}"
    for nb in notebooks:
        cells = json.loads(nb.read_text())["cells"]
        executed = [c for c in cells if c["cell_type"] == "code" and c.get("execution_count")]
        assert executed, f"{nb.name} was not executed before the build (nbmake --overwrite)"
    result = build(stage)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"jupyter-book build failed:\n{output[-6000:]}"
    html = html_dir(stage)
    for nb in notebooks:
        page = html / "book" / f"{nb.stem}.html"
        assert page.exists(), f"{page} was not built"
        colab = re.search(r'href="(https://colab\.research\.google\.com[^"]+)"', page.read_text())
        assert colab, f"{page.name} has no Colab launch link"
        assert colab.group(1).endswith(f"book/{nb.name}"), f"wrong Colab link: {colab.group(1)}"
    for page in ("api.html", "bibliography.html"):
        assert (html / "book" / page).exists(), f"{page} missing from the built book"
