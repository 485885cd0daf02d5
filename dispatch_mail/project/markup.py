"""The small Markdown dialect allowed in manifest text fields.

Why our own: the same parsed tree must render to escaped HTML *and* to
readable plaintext, and every link in it must be validated (with the field's
position) when the manifest is loaded, long before rendering. A full Markdown
library would hand us HTML to take apart again.

Inline: ``**strong**``, ``*em*`` / ``_em_``, ```code```, ``[text](url)`` and
backslash escapes. Blocks (``Markdown`` fields): paragraphs, ``-``/``*``
bullets, ``1.`` numbered lists, ``###`` headings and ``>`` quotes.

This module parses; ``render/markup.py`` turns the tree into HTML and plaintext.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

from dispatch_mail.project.urls import url_problem

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
class LinkSpan:
    url: str
    children: tuple[Span, ...]


Span = TextSpan | CodeSpan | StrongSpan | EmSpan | LinkSpan


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
        _collect_links(self.spans, found)
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
class ListBlock:
    ordered: bool
    items: tuple[Inline, ...]


Block = ParagraphBlock | HeadingBlock | QuoteBlock | ListBlock


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
            if isinstance(block, ListBlock):
                out.extend(block.items)
            else:
                out.append(block.inline)
        return out

    def links(self) -> list[LinkSpan]:
        return [link for inline in self.inlines() for link in inline.links()]

    @property
    def plain(self) -> str:
        return " ".join(i.plain for i in self.inlines())


def _plain(span: Span) -> str:
    if isinstance(span, (TextSpan, CodeSpan)):
        return span.text
    return "".join(_plain(c) for c in span.children)


def _collect_links(spans: tuple[Span, ...], found: list[LinkSpan]) -> None:
    for span in spans:
        if isinstance(span, LinkSpan):
            found.append(span)
        if isinstance(span, (StrongSpan, EmSpan, LinkSpan)):
            _collect_links(span.children, found)


# --------------------------------------------------------------------------- parsing

_PUNCT_ESCAPABLE = set("\\`*_[](){}#+-.!>~|<&")
# An unmatched marker is retried as literal text, which made the work grow
# exponentially with the number of markers ("*a " * 20 took half a second, and
# each further marker doubled it). The memo and the closer check keep ordinary
# text linear without changing any result; the budget bounds whatever is left,
# so that no text can stall a build.
_STEPS_PER_CHAR = 400
_TOO_COMPLEX = "too many unmatched '*', '_' or '[' to read; write literal ones as \\*, \\_ or \\["


class _TooComplex(Exception):
    pass


class _InlineParser:
    """Recursive descent over one string; unmatched markers stay literal text."""

    def __init__(self, source: str, problems: list[str], budget: list[int] | None = None):
        self.s = source
        self.problems = problems
        self.budget = budget if budget is not None else [_STEPS_PER_CHAR * len(source) + 10_000]
        self.memo: dict[tuple[int, str | None, int], tuple[list[Span], int, bool]] = {}
        self.closers: dict[str, list[int]] = {}

    def parse(
        self, start: int, stop_at: str | None, depth: int = 0
    ) -> tuple[list[Span], int, bool]:
        """Parse until ``stop_at`` (a closing marker) or the end; return spans, position, closed."""
        key = (start, stop_at, depth)
        if key not in self.memo:
            self.memo[key] = self._parse(start, stop_at, depth)
        spans, end, closed = self.memo[key]
        return list(spans), end, closed

    def _closer_after(self, pos: int, marker: str) -> bool:
        """Whether ``marker`` could close anywhere at or after ``pos`` (if not, it cannot open)."""
        if marker not in self.closers:
            s = self.s
            self.closers[marker] = [
                j
                for j in range(1, len(s))
                if s.startswith(marker, j) and self._can_close(j, marker)
            ]
            self.spend(len(s))
        found = self.closers[marker]
        return bisect_left(found, pos) < len(found)

    def spend(self, steps: int) -> None:
        self.budget[0] -= steps
        if self.budget[0] < 0:
            raise _TooComplex

    def _parse(self, start: int, stop_at: str | None, depth: int) -> tuple[list[Span], int, bool]:
        spans: list[Span] = []
        buf: list[str] = []
        i = start
        s = self.s

        def flush() -> None:
            if buf:
                spans.append(TextSpan("".join(buf)))
                buf.clear()

        while i < len(s):
            self.spend(1)
            if stop_at is not None and s.startswith(stop_at, i) and self._can_close(i, stop_at):
                flush()
                return spans, i + len(stop_at), True
            ch = s[i]
            if ch == "\\" and i + 1 < len(s) and s[i + 1] in _PUNCT_ESCAPABLE:
                buf.append(s[i + 1])
                i += 2
                continue
            if ch == "`":
                end = s.find("`", i + 1)
                if end > i + 1:
                    flush()
                    spans.append(CodeSpan(s[i + 1 : end]))
                    i = end + 1
                    continue
            if depth < 8 and ch in "*_":
                marker = s[i : i + 2] if s.startswith(ch * 2, i) else ch
                if self._can_open(i, marker) and self._closer_after(i + len(marker), marker):
                    inner, end, closed = self.parse(i + len(marker), marker, depth + 1)
                    if closed and inner:
                        flush()
                        kind = StrongSpan if len(marker) == 2 else EmSpan
                        spans.append(kind(tuple(inner)))
                        i = end
                        continue
                buf.append(marker)
                i += len(marker)
                continue
            if depth < 8 and ch == "[":
                link = self._link(i, depth)
                if link is not None:
                    flush()
                    spans.append(link[0])
                    i = link[1]
                    continue
            buf.append(ch)
            i += 1
        flush()
        return spans, i, False

    def _can_open(self, i: int, marker: str) -> bool:
        after = self.s[i + len(marker) : i + len(marker) + 1]
        if not after or after.isspace():
            return False
        if marker[0] == "_":  # snake_case words such as rte_flow are not emphasis
            before = self.s[i - 1 : i]
            return not (before.isalnum())
        return True

    def _can_close(self, i: int, marker: str) -> bool:
        before = self.s[i - 1 : i]
        if not before or before.isspace():
            return False
        if marker[0] == "_":
            after = self.s[i + len(marker) : i + len(marker) + 1]
            return not after.isalnum()
        return True

    def _link(self, i: int, depth: int) -> tuple[LinkSpan, int] | None:
        s = self.s
        # find the matching "]" (brackets may nest once or twice in titles)
        level, j = 0, i
        while j < len(s):
            if s[j] == "\\":
                j += 2
                continue
            if s[j] == "[":
                level += 1
            elif s[j] == "]":
                level -= 1
                if level == 0:
                    break
            j += 1
        self.spend(j - i)
        if j >= len(s) or not s.startswith("(", j + 1):
            return None
        close = s.find(")", j + 2)
        if close < 0:
            return None
        url = s[j + 2 : close].strip()
        if url.startswith("<") and url.endswith(">"):
            url = url[1:-1].strip()
        error = url_problem(url)
        if error:
            self.problems.append(f"link [{s[i + 1 : j]}]: {error}")
        inner = _InlineParser(s[i + 1 : j], self.problems, self.budget).parse(0, None, depth + 1)[0]
        if not inner:
            self.problems.append(f"link to {url!r} has no text")
        return LinkSpan(url, tuple(inner)), close + 1


def parse_inline(source: str) -> tuple[Inline, list[str]]:
    """Parse inline Markdown; return the tree and the problems found (bad links)."""
    problems: list[str] = []
    text = " ".join(source.split("\n")) if "\n" in source else source
    try:
        spans, _, _ = _InlineParser(text, problems).parse(0, None)
    except _TooComplex:
        problems.append(_TOO_COMPLEX)
        spans = [TextSpan(text)]
    return Inline(source, tuple(spans)), problems


_BULLET = re.compile(r"^\s{0,3}[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s{0,3}\d{1,3}[.)]\s+(.*)$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")


def parse_markdown(source: str) -> tuple[Markdown, list[str]]:
    """Parse block Markdown into paragraphs, headings, quotes and lists."""
    problems: list[str] = []
    blocks: list[Block] = []
    para: list[str] = []
    quote: list[str] = []
    items: list[str] = []
    ordered = False

    def inline(text: str) -> Inline:
        parsed, errs = parse_inline(text.strip())
        problems.extend(errs)
        return parsed

    def flush() -> None:
        nonlocal para, quote, items
        if para:
            blocks.append(ParagraphBlock(inline(" ".join(para))))
        if quote:
            blocks.append(QuoteBlock(inline(" ".join(quote))))
        if items:
            blocks.append(ListBlock(ordered, tuple(inline(t) for t in items)))
        para, quote, items = [], [], []

    for raw in source.splitlines():
        line = raw.rstrip()
        if not line.strip():
            flush()
            continue
        numbered = _NUMBERED.match(line)
        item = _BULLET.match(line) or numbered
        if item:
            is_ordered = numbered is not None
            if para or quote or (items and is_ordered != ordered):
                flush()
            ordered = is_ordered
            items.append(item.group(1))
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            blocks.append(HeadingBlock(inline(heading.group(1))))
            continue
        quoted = _QUOTE.match(line)
        if quoted and not para and not items:
            quote.append(quoted.group(1))
            continue
        if items and raw[:1].isspace():  # continuation of a list item
            items[-1] += " " + line.strip()
            continue
        if items or quote:
            flush()
        para.append(line.strip())
    flush()
    return Markdown(source, tuple(blocks)), problems
