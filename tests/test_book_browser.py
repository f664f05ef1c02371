"""The built book as a reader sees it: every page opened in headless Chromium, with no network.

Runs inside ``python3 tasks.py test`` on the quick-mode book built from the executed chapters
(see ``book_stage.py``). The pages are served from a local HTTP server on 127.0.0.1; every other
request is refused and recorded. Debian's ``chromium`` (installed by ``tasks.py setup``) is driven
by Playwright, which downloads no browser of its own here. For every page the test checks:

- the maths is typeset by the book's own MathJax (no raw TeX in the visible text);
- no cell output shows a warning, a traceback or a local filesystem path, and no page shows the
  builder's paths (repository, staging folder, virtual environment, home folder);
- every image loads, with a non-zero natural size, and no output figure is shrunk below
  ``MIN_FIGURE_SCALE`` of its own size to fit the column (its text would be too small to read);
- no table and no display equation is wider than the text column at a 1,280-pixel window;
- every Colab link of a chapter points at that chapter's notebook;
- no page asks for anything outside the local server.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from book_stage import SKIP_REASON, STAGE, build, html_dir

ROOT = Path(__file__).resolve().parents[1]
COLAB = "https://colab.research.google.com/github/qbm-lite/qbm-lite/blob/main/"
WINDOW = {"width": 1280, "height": 900}
# A figure drawn 1,390 px wide and shown in a 768 px column has its 10-pt labels at 7.7 px.
MIN_FIGURE_SCALE = 0.6
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Belt and braces beside the request routing below: resolve no host but the local one.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
# Folders of the build that hold assets, not pages.
ASSET_DIRS = {"_static", "_images", "_sources", "_sphinx_design_static", "_panels_static"}

# A warning, a traceback or a logged error in a cell's output.
NOISE = re.compile(
    r"Traceback \(most recent call last\)"
    r"|\b[A-Z][A-Za-z]*(?:Warning|Error)\b:?"
    r"|\bwarnings\.warn\b"
    r"|^\s*(?:WARNING|ERROR)\b"
    r"|\[(?:WARNING|ERROR)\]",
    re.M,
)
# An absolute path on a local disk (POSIX folders where builds live, or a Windows drive).
LOCAL_PATH = re.compile(
    r"(?<![\w/.:])/(?:home|root|tmp|work|usr|opt|var|srv|mnt|Users|private)/[\w.@+-]+"
    r"|\b[A-Za-z]:\\\\?[\w.-]+\\|site-packages"
)
# TeX that MathJax should have typeset: delimiters, or a control word, left in the visible text.
RAW_TEX = re.compile(
    r"\\\(|\\\)|\\\[|\\\]|\$\$"
    r"|\\(?:frac|mathbb|mathcal|mathrm|mathbf|sum|prod|int|beta|theta|sigma|alpha|partial|nabla"
    r"|left|right|begin|end|log|exp|langle|rangle|cdot|underbrace|text)\b"
    r"|\$[^$\s][^$\n]{0,80}\$"
)


# Collects, per page, what the reader would see; run after MathJax has typeset the page.
PAGE_PROBE = """
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await document.fonts.ready;
  const imgs = Array.from(document.images);
  for (const img of imgs) { img.loading = "eager"; }
  await Promise.all(imgs.map((img) => img.decode().catch(() => null)));
  const article = document.querySelector("article.bd-article") || document.body;
  const style = getComputedStyle(article);
  const box = article.getBoundingClientRect();
  const left = box.left + parseFloat(style.paddingLeft);
  const right = box.right - parseFloat(style.paddingRight);
  const column = right - left;
  const tooWide = [];
  const measure = (kind, el, rect) => {
    if (rect.width > column + 1 || rect.left < left - 1 || rect.right > right + 1) {
      tooWide.push({kind, width: Math.round(rect.width), column: Math.round(column),
                    text: el.innerText.replace(/\\s+/g, " ").slice(0, 80)});
    }
  };
  article.querySelectorAll("table").forEach((t) => measure("table", t, t.getBoundingClientRect()));
  const display = article.querySelectorAll('mjx-container[display="true"]');
  display.forEach((c) => {
    const math = c.querySelector("mjx-math");
    if (math) measure("equation", c, math.getBoundingClientRect());
  });
  // Visible text outside code, where raw TeX must not appear.
  const texts = [];
  const skip = "pre, code, script, style, textarea, mjx-container, .highlight, .linenos";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => (n.parentElement && !n.parentElement.closest(skip)
      ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_REJECT),
  });
  while (walker.nextNode()) texts.push(walker.currentNode.nodeValue);
  const mathNodes = Array.from(document.querySelectorAll("span.math, div.math"));
  return {
    text: document.body.innerText,
    proseText: texts.join(" "),
    mathNodes: mathNodes.length,
    untypeset: mathNodes.filter((m) => !m.querySelector("mjx-container"))
      .map((m) => m.textContent.slice(0, 80)),
    displayMath: display.length,
    images: imgs.map((img) => ({src: img.currentSrc || img.src, alt: img.alt,
      width: img.naturalWidth, height: img.naturalHeight, complete: img.complete,
      intended: parseFloat(img.getAttribute("width")) || img.naturalWidth,
      shown: Math.round(img.getBoundingClientRect().width),
      output: !!img.closest(".cell_output")})),
    outputs: Array.from(document.querySelectorAll(".cell_output")).map((o) => o.innerText),
    tables: article.querySelectorAll("table").length,
    tooWide,
    signatures: Array.from(document.querySelectorAll("dt.sig")).map((d) => d.innerText),
    colab: Array.from(document.querySelectorAll('a[href*="colab.research.google.com"]'))
      .map((a) => a.href),
  };
}
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib's name)
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A browser that stops reading a file it no longer needs is no failure of the book.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class Findings:
    """What the pages showed, and what went wrong where."""

    pages: int = 0
    images: int = 0
    output_images: int = 0
    math: int = 0
    smallest_figure: float = 1.0
    display_math: int = 0
    tables: int = 0
    colab_links: int = 0
    blocked: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, page: str, what: str) -> None:
        self.problems.append(f"{page}: {what}")


REDIRECT = re.compile(r'<meta http-equiv="refresh" content="0; url=([^"]+)"', re.I)


def _pages(html: Path) -> tuple[list[Path], dict[Path, str]]:
    """The book's pages, and the redirect stubs (such as index.html) with their targets."""
    pages, redirects = [], {}
    for path in sorted(html.rglob("*.html")):
        if ASSET_DIRS.intersection(path.relative_to(html).parts[:-1]):
            continue
        match = REDIRECT.search(path.read_text(errors="replace")[:2000])
        if match:
            redirects[path] = match.group(1)
        else:
            pages.append(path)
    return pages, redirects


def _builder_paths() -> list[str]:
    """Paths of this machine that a page must never show."""
    paths = {str(ROOT), str(STAGE), sys.prefix, str(Path.home()), tempfile.gettempdir()}
    return sorted(p for p in paths if len(p) > 4)  # never "/" or "/tmp"-like stubs alone


@functools.cache
def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def _serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 (a free port); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _require_chromium() -> tuple[object, str]:
    """Playwright's sync API and the path of the system's Chromium (skip, or fail under CI)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    chromium = _chromium()
    if not chromium:
        message = "Chromium is not installed; `python3 tasks.py test` installs Debian's as root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return playwright_api, chromium


def _browse(
    playwright_api: object, chromium: str, base: str, rels: list[str], findings: Findings
) -> list[tuple[str, dict]]:
    """Open each page in a fresh headless Chromium with the network blocked; return the probes.

    Blocked non-local requests and JavaScript errors are added to ``findings`` as problems.
    """
    outside: list[str] = []
    script_errors: list[str] = []
    probes: list[tuple[str, dict]] = []

    def route(route_: object) -> None:
        url = route_.request.url  # type: ignore[attr-defined]
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
            route_.continue_()  # type: ignore[attr-defined]
        else:
            outside.append(url)
            route_.abort("blockedbyclient")  # type: ignore[attr-defined]

    with tempfile.TemporaryDirectory(prefix="qbm-chromium-") as profile:
        with playwright_api.sync_playwright() as pw:  # type: ignore[attr-defined]
            context = pw.chromium.launch_persistent_context(
                profile,
                executable_path=chromium,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport=WINDOW,
                service_workers="block",
            )
            try:
                context.route("**/*", route)
                # Generous limits: a 2-core machine shared with other jobs can be slow.
                context.set_default_timeout(120_000)
                context.set_default_navigation_timeout(120_000)
                page = context.new_page()
                page.on("pageerror", lambda exc: script_errors.append(f"{page.url}: {exc}"))
                for rel in rels:
                    page.goto(base + rel, wait_until="load")
                    probes.append((rel, page.evaluate(PAGE_PROBE)))
            finally:
                context.close()
    findings.blocked += len(outside)
    for url in sorted(set(outside)):
        findings.add("(network)", f"a page asked for a non-local resource: {url}")
    for error in script_errors:
        findings.add("(script)", f"a page raised a JavaScript error: {error}")
    return probes


def _check_page(rel: str, probe: dict, findings: Findings, chapters: set[str]) -> None:
    findings.pages += 1
    findings.math += probe["mathNodes"]
    findings.display_math += probe["displayMath"]
    findings.tables += probe["tables"]
    for snippet in probe["untypeset"]:
        findings.add(rel, f"maths not typeset: {snippet!r}")
    for match in RAW_TEX.finditer(probe["proseText"]):
        context = probe["proseText"][max(0, match.start() - 40) : match.end() + 40]
        findings.add(rel, f"raw TeX in the text: {context!r}")
    for output in probe["outputs"]:
        for regex, what in ((NOISE, "a warning or traceback"), (LOCAL_PATH, "a local path")):
            match = regex.search(output)
            if match:
                context = output[max(0, match.start() - 60) : match.end() + 100]
                findings.add(rel, f"an output shows {what}: {context!r}")
    for path in _builder_paths():
        if re.search(re.escape(path) + r"(?![\w.-])", probe["text"]):
            findings.add(rel, f"the page shows the builder's path {path}")
    match = LOCAL_PATH.search(probe["proseText"])
    if match:
        context = probe["proseText"][max(0, match.start() - 60) : match.end() + 60]
        findings.add(rel, f"the text shows a local path: {context!r}")
    for image in probe["images"]:
        findings.images += 1
        findings.output_images += image["output"]
        if not (image["complete"] and image["width"] > 0 and image["height"] > 0):
            findings.add(rel, f"image does not load: {image['src']}")
        if re.search(r"[0-9a-f]{32}", image["alt"] or ""):
            findings.add(rel, f"image has its file name as alt text: {image['alt']}")
        elif image["output"] and not (image["alt"] or "").strip():
            findings.add(rel, f"output figure without alt text: {image['src']}")
        if image["output"] and image["intended"] > 0:
            scale = image["shown"] / image["intended"]
            findings.smallest_figure = min(findings.smallest_figure, scale)
            if scale < MIN_FIGURE_SCALE:
                findings.add(
                    rel,
                    f"a figure {image['intended']:.0f} px wide is shown at {scale:.0%} of its size"
                    f" (below {MIN_FIGURE_SCALE:.0%}): make it narrower or its text larger"
                    f" ({image['alt']})",
                )
    for item in probe["tooWide"]:
        findings.add(
            rel,
            f"{item['kind']} {item['width']} px wide in a {item['column']} px text column: "
            f"{item['text']!r}",
        )
    for signature in probe["signatures"]:
        if len(signature) > 400 or re.search(r"\bQUICK\b.*=\s*(True|False)", signature):
            findings.add(rel, f"the API shows a build-time value: {signature[:120]!r}...")
    stem = Path(rel).stem
    if rel.startswith("book/") and stem in chapters:
        if not probe["colab"]:
            findings.add(rel, "no Colab link")
        for href in probe["colab"]:
            findings.colab_links += 1
            if href != f"{COLAB}book/{stem}.ipynb":
                findings.add(rel, f"Colab link points elsewhere: {href}")


@pytest.mark.run_last
@pytest.mark.skipif(STAGE is None, reason=SKIP_REASON)
def test_every_page_reads_correctly_offline_in_chromium(capsys: pytest.CaptureFixture[str]) -> None:
    playwright_api, chromium = _require_chromium()
    result = build(STAGE)
    if result.returncode != 0:
        pytest.fail("the book did not build; see test_book_builds_without_warnings")
    html = html_dir(STAGE)
    chapters = {nb.stem for nb in (STAGE / "book").glob("*.ipynb")}
    findings = Findings()
    pages, redirects = _pages(html)
    for path, target in redirects.items():
        if not (path.parent / target).resolve().is_file():
            findings.add(path.name, f"redirects to a missing page: {target}")
    rels = [path.relative_to(html).as_posix() for path in pages]
    with _serve(html) as base:
        for rel, probe in _browse(playwright_api, chromium, base, rels, findings):
            _check_page(rel, probe, findings, chapters)
    summary = (
        f"book in Chromium {chromium}: {findings.pages} pages, {findings.images} images "
        f"({findings.output_images} output figures, the smallest shown at "
        f"{findings.smallest_figure:.0%} of its size), {findings.math} maths elements "
        f"({findings.display_math} display equations), {findings.tables} tables, "
        f"{findings.colab_links} Colab links checked at {WINDOW['width']} px; "
        f"{findings.blocked} non-local requests blocked; {len(findings.problems)} problems"
    )
    with capsys.disabled():
        print("\n" + summary)
    assert findings.pages > 0 and findings.math > 0 and findings.images > 0, summary
    assert not findings.problems, summary + ":\n" + "\n".join(findings.problems[:80])


# --- the checks themselves, on a small site with one planted defect of each kind -------------
_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title>
<style>img {{ max-width: 100%; }}</style></head>
<body><article class="bd-article" style="width: 700px">{}</article></body></html>"""
_DEFECTS = {
    "raw TeX in the text": r'<p>Energy <span class="math">\(E = -\sum_i h_i s_i\)</span></p>',
    "non-local resource": '<img src="https://colab.research.google.com/assets/colab-badge.svg">',
    "a warning or traceback": (
        '<div class="cell_output"><pre>m.py:49: UserWarning: score is negative</pre></div>'
    ),
    "a local path": '<div class="cell_output"><pre>saved to /home/ann/run/model.pt</pre></div>',
    "table": '<table><tr><td style="white-space: nowrap">' + "Total " * 200 + "</td></tr></table>",
    "image does not load": '<img src="missing.png" alt="a missing figure">',
    "file name as alt text": (
        '<div class="cell_output"><img src="small.svg" alt="../_images/'
        + "0123456789abcdef" * 4
        + '.png"></div>'
    ),
    "shown at": '<div class="cell_output"><img src="wide.svg" alt="a wide figure"></div>',
    "Colab link points elsewhere": (f'<a href="{COLAB}book/ch02_cim.ipynb">Open in Colab</a>'),
    "JavaScript error": "<script>undefinedFunctionOfTheBook();</script>",
}


def _svg(width: int) -> str:
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="40"></svg>'


def test_the_checks_catch_each_kind_of_defect(tmp_path: Path) -> None:
    """Each planted defect is reported, and a clean page yields no problem (no false alarm)."""
    playwright_api, chromium = _require_chromium()
    (tmp_path / "book").mkdir()
    (tmp_path / "small.svg").write_text(_svg(40))
    (tmp_path / "wide.svg").write_text(_svg(2000))
    rels = []
    for i, html in enumerate(_DEFECTS.values()):
        rel = f"book/ch{i:02d}_defect.html"
        (tmp_path / rel).write_text(_PAGE.format(html))
        rels.append(rel)
    clean = _PAGE.format(
        f'<h1>Chapter</h1><p>Plain text, a figure and a table.</p><img src="../small.svg" alt="x">'
        f'<table><tr><td>1</td><td>2</td></tr></table><a href="{COLAB}book/ch99_clean.ipynb">C</a>'
    )
    (tmp_path / "book" / "ch99_clean.html").write_text(clean)
    rels.append("book/ch99_clean.html")
    # The pages' images are relative to book/; put the files there as well.
    for name in ("small.svg", "wide.svg"):
        (tmp_path / "book" / name).write_text((tmp_path / name).read_text())
    chapters = {Path(rel).stem for rel in rels}
    findings = Findings()
    with _serve(tmp_path) as base:
        for rel, probe in _browse(playwright_api, chromium, base, rels, findings):
            _check_page(rel, probe, findings, chapters)
    report = "\n".join(findings.problems)
    for what in _DEFECTS:
        assert what in report, f"the planted defect {what!r} was not reported:\n{report}"
    assert "ch99_clean" not in report, report
