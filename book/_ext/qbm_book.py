"""Book-wide Sphinx additions for QBM-Lite (loaded through ``_config.yml``'s local_extensions).

What it does, so that the built book reads the same offline as online:

- **Colab badge from the book itself.** The chapters' first cell shows Colab's badge image from
  Colab's own site (right for GitHub and Colab); in the built book the image comes from
  ``book/_static/colab-badge.svg`` so that it loads with no network.
- **Alt text for output figures.** Without it the HTML writer uses an image's file path (a hash)
  as its alt text. A figure output gets the cell's own ``mystnb.image.alt`` metadata when a chapter
  sets one (MyST-NB's per-cell image options), else a description naming the section it is in.
- **Each page script once.** sphinx-thebe registers its inline configuration script after the
  HTML builder has started, so Sphinx writes it twice and the second copy raises
  "Identifier 'THEBE_JS_URL' has already been declared" in every page; duplicates are dropped.
- **Author-year bibliography.** The bibliography's labels read "Vahdat et al., 2018a" instead of
  alpha codes, so they match the author-year citations in the text, and two works by the same
  authors in the same year get a letter (DVAE++ and DVAE#): the letter appears in the citation too.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pybtex.plugin
from docutils import nodes
from pybtex.richtext import Text
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.template import join, node
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform
from sphinxcontrib.bibtex.plugin import register_plugin
from sphinxcontrib.bibtex.style.referencing import GroupReferenceStyle
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle
from sphinxcontrib.bibtex.style.referencing.basic_author_year import (
    BasicAuthorYearParentheticalReferenceStyle,
    BasicAuthorYearTextualReferenceStyle,
)
from sphinxcontrib.bibtex.style.referencing.extra_year import ExtraYearReferenceStyle
from sphinxcontrib.bibtex.style.template import join2, post_text, pre_text, reference

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_BADGE = "/book/_static/colab-badge.svg"  # "/..." is relative to the book's root folder

STYLE_NAME = "qbm_author_year"  # pybtex formatting + label style, and the referencing style


# --- images ---------------------------------------------------------------------------------
class LocalColabBadge(SphinxTransform):
    """Serve Colab's badge image from the book's static files (the link itself is unchanged)."""

    default_priority = 100

    def apply(self, **kwargs: Any) -> None:
        for image in self.document.findall(nodes.image):
            if image.get("uri") == COLAB_BADGE:
                image["uri"] = LOCAL_BADGE
                image.setdefault("alt", "Open In Colab")


def _section_title(node_: nodes.Node) -> str | None:
    parent = node_.parent
    while parent is not None:
        if isinstance(parent, nodes.section) and parent.children:
            title = parent.children[0]
            if isinstance(title, nodes.title):
                return title.astext()
        parent = parent.parent
    return None


def _in_cell_output(node_: nodes.Node) -> bool:
    parent = node_.parent
    while parent is not None:
        if "cell_output" in parent.get("classes", []):
            return True
        parent = parent.parent
    return False


class OutputImageAltText(SphinxTransform):
    """Give every figure in a cell's output an alt text (the default is its hashed file path)."""

    default_priority = 101

    def apply(self, **kwargs: Any) -> None:
        for image in self.document.findall(nodes.image):
            if image.get("alt") or not _in_cell_output(image):
                continue
            section = _section_title(image)
            image["alt"] = (
                f"Figure computed by the code cell above, in the section “{section}”"
                if section
                else "Figure computed by the code cell above"
            )


# --- page scripts ---------------------------------------------------------------------------
def drop_duplicate_assets(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Keep the first of identical script (and style sheet) entries of a page."""
    for key in ("script_files", "css_files"):
        assets = context.get(key)
        if not assets:
            continue
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        unique = []
        for asset in assets:  # copies may differ in priority, or in None vs "" for inline
            attributes = getattr(asset, "attributes", {}) or {}
            name = str(getattr(asset, "filename", asset) or "")  # None and "": inline
            ident = (name, tuple(sorted((k, str(v)) for k, v in attributes.items())))
            if ident not in seen:
                seen.add(ident)
                unique.append(asset)
        assets[:] = unique


# --- bibliography: author-year labels ---------------------------------------------------------
def _plain(latex: str) -> str:
    return Text.from_latex(latex).render_as("text").strip()


def _label_names(entry: Any) -> str:
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    last = [_plain(" ".join(p.prelast_names + p.last_names)) for p in persons]
    if not last:
        return _plain(entry.fields.get("title", entry.key))
    if len(last) == 1:
        return last[0]
    if len(last) == 2:
        return f"{last[0]} and {last[1]}"
    return f"{last[0]} et al."


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels "Name, 2018", "Name and Other, 2018", "Name et al., 2018"; a, b, ... on clashes."""

    def format_labels(self, sorted_entries: Iterable[Any]) -> Iterator[str]:
        entries = list(sorted_entries)
        bases = [f"{_label_names(e)}, {e.fields.get('year', 'n.d.')}" for e in entries]
        totals = Counter(bases)
        seen: Counter[str] = Counter()
        for base in bases:
            if totals[base] == 1:
                yield base
            else:
                yield base + "abcdefghijklmnopqrstuvwxyz"[seen[base]]
                seen[base] += 1


class AuthorYearStyle(PlainStyle):
    """pybtex's plain style, sorted by author and year, with :class:`AuthorYearLabelStyle`."""

    default_label_style = STYLE_NAME
    default_sorting_style = "author_year_title"


_LABEL_YEAR = re.compile(r", (n\.d\.|\d{4}[a-z]?)$")


@node
def label_year(children: list, data: dict[str, Any]) -> Text:
    """The year of an entry as its label shows it ("2018a" when two works share author-year)."""
    assert not children
    label = data["formatted_entry"].label
    match = _LABEL_YEAR.search(label)
    return Text(match.group(1) if match else data["entry"].fields.get("year", "n.d."))


@dataclass
class _Parenthetical(BasicAuthorYearParentheticalReferenceStyle):
    def inner(self, role_name: str) -> Any:
        return join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[
            pre_text,
            reference[
                join(sep=self.author_year_sep)[
                    self.person.author_or_editor_or_title(full="s" in role_name), label_year
                ]
            ],
            post_text,
        ]


@dataclass
class _Textual(BasicAuthorYearTextualReferenceStyle):
    def inner(self, role_name: str) -> Any:
        return join(sep=self.text_reference_sep)[
            self.person.author_or_editor_or_title(full="s" in role_name),
            join[
                self.bracket.left,
                join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[
                    pre_text, reference[label_year], post_text
                ],
                self.bracket.right,
            ],
        ]


@dataclass
class _Year(ExtraYearReferenceStyle):
    def inner(self, role_name: str) -> Any:
        return reference[label_year]


@dataclass
class AuthorYearLabelReferenceStyle(AuthorYearReferenceStyle):
    """sphinxcontrib-bibtex's author_year citations, with the label's year ("2018a")."""

    def __post_init__(self) -> None:
        replace = {
            BasicAuthorYearParentheticalReferenceStyle: _Parenthetical,
            BasicAuthorYearTextualReferenceStyle: _Textual,
            ExtraYearReferenceStyle: _Year,
        }
        # Build the stock group, then swap in the three styles that print a year.
        styles_before = list(self.styles)
        AuthorYearReferenceStyle.__post_init__(self)
        added = self.styles[len(styles_before) :]
        self.styles = styles_before
        for style in added:
            cls = replace.get(type(style))
            if cls is not None:
                fields = {k: getattr(style, k) for k in style.__dataclass_fields__}
                style = cls(**fields)
            self.styles.append(style)
        self.role_style.clear()
        GroupReferenceStyle.__post_init__(self)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_transform(LocalColabBadge)
    app.add_transform(OutputImageAltText)
    app.connect("html-page-context", drop_duplicate_assets, priority=900)
    pybtex.plugin.register_plugin("pybtex.style.labels", STYLE_NAME, AuthorYearLabelStyle)
    pybtex.plugin.register_plugin("pybtex.style.formatting", STYLE_NAME, AuthorYearStyle)
    register_plugin(
        "sphinxcontrib.bibtex.style.referencing", STYLE_NAME, AuthorYearLabelReferenceStyle
    )
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
