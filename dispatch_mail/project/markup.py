"""The Markdown of manifest text fields, as a tree that renders to escaped HTML and to plaintext.

CommonMark, read by markdown-it-py (``project/markdown_reader.py``), with GFM's
tables and strikethrough. The same tree must render to escaped HTML *and* to
readable plaintext, and every link and image in it is validated (with the
field's position) when the manifest is loaded, long before rendering.

What each kind of field may hold is declared by its type:

- ``Inline`` (titles, one-line texts): ``**strong**``, ``*em*``, ``~~struck~~``,
  ```code```, ``[text](url)`` and ``<https://autolinks>``;
- ``Markdown`` (the intro, bodies): paragraphs, ``#`` headings, ``>`` quotes,
  lists (nested ones too), fenced and indented code, tables, images with alt text
  and ``---`` rules.

Anything a field may not hold is a problem at load time, never silently
flattened: an inline field of several lines is read as blocks too, and anything
but one paragraph there (a list, a table, code, a heading) is refused.
Raw HTML is never markup: it stays text, escaped.

This module holds the tree and the fast path for text with no markup at all;
``render/markup.py`` writes the tree out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------- tree


@dataclass(frozen=True)
class TextSpan:
    text: str


@dataclass(frozen=True)
class CodeSpan:
    text: str


@dataclass(frozen=True)
class StrongSpan:
    children: tuple[Span, ...]


@dataclass(frozen=True)
class EmSpan:
    children: tuple[Span, ...]


@dataclass(frozen=True)
class StrikeSpan:
    children: tuple[Span, ...]


@dataclass(frozen=True)
class LinkSpan:
    url: str
    children: tuple[Span, ...]


@dataclass(frozen=True)
class ImageSpan:
    """An image in a Markdown body: ``![alt](https://…)``; the alt text is required."""

    url: str
    alt: str
    title: str | None = None


Span = TextSpan | CodeSpan | StrongSpan | EmSpan | StrikeSpan | LinkSpan | ImageSpan


@dataclass(frozen=True)
class Inline:
    """A run of inline Markdown, parsed once at load time."""

    source: str
    spans: tuple[Span, ...]

    def __str__(self) -> str:
        return self.source

    @property
    def plain(self) -> str:
        """The words alone, with no markup and no URLs (for headings, alt text, titles)."""
        return "".join(_plain(s) for s in self.spans)

    def links(self) -> list[LinkSpan]:
        found: list[LinkSpan] = []
        _collect(self.spans, LinkSpan, found)
        return found

    def images(self) -> list[ImageSpan]:
        found: list[ImageSpan] = []
        _collect(self.spans, ImageSpan, found)
        return found


@dataclass(frozen=True)
class ParagraphBlock:
    inline: Inline


@dataclass(frozen=True)
class HeadingBlock:
    inline: Inline


@dataclass(frozen=True)
class QuoteBlock:
    inline: Inline


@dataclass(frozen=True)
class ListItem:
    inline: Inline
    lists: tuple[ListBlock, ...] = ()  # lists nested in this item


@dataclass(frozen=True)
class ListBlock:
    ordered: bool
    items: tuple[ListItem, ...]
    start: int = 1


@dataclass(frozen=True)
class CodeBlock:
    """Fenced or indented code, kept verbatim; ``language`` from the fence's info string."""

    text: str
    language: str | None = None


@dataclass(frozen=True)
class TableBlock:
    header: tuple[Inline, ...]
    align: tuple[str | None, ...]  # "left", "center", "right" or None, per column
    rows: tuple[tuple[Inline, ...], ...]


@dataclass(frozen=True)
class RuleBlock:
    """A thematic break (``---``)."""


Block = ParagraphBlock | HeadingBlock | QuoteBlock | ListBlock | CodeBlock | TableBlock | RuleBlock


@dataclass(frozen=True)
class Markdown:
    """A Markdown text of several blocks (the intro, a free Markdown section)."""

    source: str
    blocks: tuple[Block, ...]

    def __str__(self) -> str:
        return self.source

    def inlines(self) -> list[Inline]:
        out: list[Inline] = []
        for block in self.blocks:
            _block_inlines(block, out)
        return out

    def links(self) -> list[LinkSpan]:
        return [link for inline in self.inlines() for link in inline.links()]

    def images(self) -> list[ImageSpan]:
        return [image for inline in self.inlines() for image in inline.images()]

    @property
    def plain(self) -> str:
        return " ".join(i.plain for i in self.inlines())


def _block_inlines(block: Block, out: list[Inline]) -> None:
    if isinstance(block, ListBlock):
        for item in block.items:
            out.append(item.inline)
            for nested in item.lists:
                _block_inlines(nested, out)
    elif isinstance(block, TableBlock):
        out.extend(block.header)
        for row in block.rows:
            out.extend(row)
    elif isinstance(block, ParagraphBlock | HeadingBlock | QuoteBlock):
        out.append(block.inline)


def _plain(span: Span) -> str:
    if isinstance(span, TextSpan | CodeSpan):
        return span.text
    if isinstance(span, ImageSpan):
        return span.alt
    return "".join(_plain(c) for c in span.children)


def _collect(spans: tuple[Span, ...], kind: type[Any], found: list[Any]) -> None:
    for span in spans:
        if isinstance(span, kind):
            found.append(span)
        if isinstance(span, StrongSpan | EmSpan | StrikeSpan | LinkSpan):
            _collect(span.children, kind, found)


# --------------------------------------------------------------------------- parsing

# Text with none of these is plain words: it needs no parser (most titles and blurbs),
# so a build of such an issue never imports markdown-it-py.
# (an underscore inside a word, as in rte_flow, is never emphasis in CommonMark)
_INTRAWORD = r"(?<![^\W_])_|_(?![^\W_])"
# (an ampersand is markup only as an entity: "R&D" and "A & B" are text)
_ENTITY = r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
_INLINE_SYNTAX = re.compile(r"[\\`*\[\]<>!~]|" + _ENTITY + "|" + _INTRAWORD)
_BLOCK_SYNTAX = re.compile(
    r"[\\`*\[\]<>!~|#]|^(?: {4}|\t| {0,3}(?:[-+=]|\d{1,9}[.)]))|"
    + _ENTITY
    + "|"
    + _INTRAWORD,
    re.M,
)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def parse_inline(source: str) -> tuple[Inline, list[str]]:
    """Parse inline Markdown; return the tree and the problems found (bad links, images)."""
    text = " ".join(line.strip() for line in source.split("\n")) if "\n" in source else source
    # several lines may hold blocks (a list, a table, code, a second paragraph): refused,
    # never flattened into the line
    several = "\n" in source.strip("\n")
    blocks = several and (_BLOCK_SYNTAX.search(source) or _BLANK_LINE.search(source))
    if not blocks and not _INLINE_SYNTAX.search(text):
        return Inline(source, (TextSpan(text),) if text else ()), []
    from dispatch_mail.project.markdown_reader import inline_field_problems, read_inline

    spans, problems = read_inline(text)
    if blocks:
        problems = inline_field_problems(source) + problems
    return Inline(source, spans), problems


def parse_markdown(source: str) -> tuple[Markdown, list[str]]:
    """Parse block Markdown into paragraphs, headings, quotes, lists, code, tables and images."""
    if not _BLOCK_SYNTAX.search(source):
        paragraphs = [p for p in re.split(r"\n[ \t]*\n", source) if p.strip()]
        plain: tuple[Block, ...] = tuple(
            ParagraphBlock(Inline(p, (TextSpan(" ".join(p.split())),))) for p in paragraphs
        )
        return Markdown(source, plain), []
    from dispatch_mail.project.markdown_reader import read_blocks

    blocks, problems = read_blocks(source)
    return Markdown(source, blocks), problems
