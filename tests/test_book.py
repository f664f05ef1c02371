"""Text checks that keep the book honest: every chapter listed, output-free, launchable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
COLAB = "https://colab.research.google.com/github/qbm-lite/qbm-lite/blob/main/"


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def _cells(nb: Path) -> list[dict]:
    return json.loads(nb.read_text())["cells"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def test_there_are_chapters() -> None:
    assert CHAPTERS, "book/ holds no chapters"


def test_toc_lists_exactly_the_chapters_that_exist() -> None:
    listed = _toc_files()
    for entry in listed:
        assert list(ROOT.glob(entry + ".*")), f"_toc.yml lists {entry}, which does not exist"
    for nb in CHAPTERS:
        assert f"book/{nb.stem}" in listed, f"{nb.name} is not listed in _toc.yml"


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_chapter_is_stored_without_outputs(nb: Path) -> None:
    for cell in _cells(nb):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{nb.name} is stored with outputs"
            assert cell.get("execution_count") is None, f"{nb.name} has execution counts"


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_chapter_has_badge_install_cell_and_sections(nb: Path) -> None:
    cells = _cells(nb)
    first = _source(cells[0])
    assert first.startswith("# "), f"{nb.name} must open with its title"
    assert f"({COLAB}book/{nb.name})" in first, f"{nb.name}: Colab badge URL must match its path"
    install = _source(cells[1])
    assert cells[1]["cell_type"] == "code" and "google.colab" in install
    assert "pip install" in install and "qbm-lite" in install
    # The local command it names must be the README's (there is no Makefile).
    assert "python3 tasks.py book" in install and "make book" not in install
    text = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    for heading in ("Learning objectives", "Key takeaways", "Exercises", "References"):
        assert re.search(rf"^##+ .*{heading}", text, re.M), f"{nb.name} lacks '{heading}'"
    h1 = re.findall(r"^# ", text, re.M)
    assert len(h1) == 1, f"{nb.name} must have exactly one level-1 heading"
    assert ":class: dropdown" in text or "hide-input" in json.dumps(cells), (
        f"{nb.name}: exercise solutions must be hidden"
    )


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_chapter_citations_exist(nb: Path) -> None:
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    text = "\n".join(_source(c) for c in _cells(nb))
    for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text):
        for key in group.split(","):
            assert key.strip() in keys, f"{nb.name} cites unknown key {key.strip()!r}"


def test_bibliography_has_no_duplicate_keys() -> None:
    keys = re.findall(r"@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text())
    dupes = {k for k in keys if keys.count(k) > 1}
    assert not dupes, f"duplicate keys in references.bib: {sorted(dupes)}"


def test_config_points_launch_buttons_at_the_repository() -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "cache"
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    repo = config["repository"]["url"].removeprefix("https://github.com/")
    branch = config["repository"]["branch"]
    assert COLAB == f"https://colab.research.google.com/github/{repo}/blob/{branch}/"
    assert "sphinx.ext.autodoc" in config["sphinx"]["extra_extensions"]


def test_bibliography_parses() -> None:
    """The file merges by union (.gitattributes), which can drop a closing brace: parse it."""
    from pybtex.database import parse_file

    entries = parse_file(str(ROOT / "book" / "references.bib")).entries
    keys = re.findall(r"@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text())
    assert len(entries) == len(keys)
