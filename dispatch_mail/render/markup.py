"""The parsed Markdown of text fields → escaped HTML, and → plaintext with numbered links.

Parsing (and link validation) happened when the manifest was loaded
(``project/markup.py``); here the same tree is only written out, once per format.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from html import escape

from dispatch_mail.project.markup import (
    CodeSpan,
    EmSpan,
    HeadingBlock,
    Inline,
    ListBlock,
    Markdown,
    ParagraphBlock,
    QuoteBlock,
    Span,
    StrongSpan,
    TextSpan,
)

LinkRewrite = Callable[[str], str]
TEXT_WIDTH = 72


def _unchanged(url: str) -> str:
    return url


# --------------------------------------------------------------------------- HTML


def inline_html(inline: Inline, link_url: LinkRewrite = _unchanged, link_style: str = "") -> str:
    """Escaped HTML for an inline run; ``link_url`` rewrites hrefs (UTM tagging)."""
    return "".join(_span_html(s, link_url, link_style) for s in inline.spans)


def _span_html(span: Span, link_url: LinkRewrite, link_style: str) -> str:
    if isinstance(span, TextSpan):
        return escape(span.text)
    if isinstance(span, CodeSpan):
        return f"<code>{escape(span.text)}</code>"
    inner = "".join(_span_html(c, link_url, link_style) for c in span.children)
    if isinstance(span, StrongSpan):
        return f"<strong>{inner}</strong>"
    if isinstance(span, EmSpan):
        return f"<em>{inner}</em>"
    style = f' style="{link_style}"' if link_style else ""
    return f'<a href="{escape(link_url(span.url))}"{style}>{inner}</a>'


def markdown_html(
    md: Markdown,
    link_url: LinkRewrite = _unchanged,
    link_style: str = "",
    heading_level: int = 3,
) -> str:
    """Block Markdown as HTML; ``heading_level`` keeps headings in order where the text sits."""
    h = max(2, min(6, heading_level))
    parts: list[str] = []
    for block in md.blocks:
        if isinstance(block, ParagraphBlock):
            parts.append(f"<p>{inline_html(block.inline, link_url, link_style)}</p>")
        elif isinstance(block, HeadingBlock):
            parts.append(
                f'<h{h} class="md-heading">{inline_html(block.inline, link_url, link_style)}</h{h}>'
            )
        elif isinstance(block, QuoteBlock):
            parts.append(
                f"<blockquote>{inline_html(block.inline, link_url, link_style)}</blockquote>"
            )
        else:
            tag = "ol" if block.ordered else "ul"
            lis = "".join(f"<li>{inline_html(i, link_url, link_style)}</li>" for i in block.items)
            parts.append(f"<{tag}>{lis}</{tag}>")
    return "".join(parts)


# --------------------------------------------------------------------------- plaintext


class References:
    """Numbered link references for plaintext: ``text [3]`` in the body, URLs listed after."""

    def __init__(self, link_url: LinkRewrite = _unchanged):
        self.urls: list[str] = []
        self.link_url = link_url

    def number(self, url: str) -> int:
        url = self.link_url(url)
        if url not in self.urls:
            self.urls.append(url)
        return self.urls.index(url) + 1

    def take(self) -> list[tuple[int, str]]:
        """The references gathered since the last call, numbered, then forgotten."""
        out = list(enumerate(self.urls, 1))
        self.urls = []
        return out


def inline_text(inline: Inline, refs: References) -> str:
    return "".join(_span_text(s, refs) for s in inline.spans)


def _span_text(span: Span, refs: References) -> str:
    if isinstance(span, (TextSpan, CodeSpan)):
        return span.text
    inner = "".join(_span_text(c, refs) for c in span.children)
    if isinstance(span, StrongSpan):
        return f"*{inner}*"
    if isinstance(span, EmSpan):
        return f"_{inner}_"
    if inner.strip() == span.url or inner.strip() == span.url.removeprefix("mailto:"):
        return refs.link_url(span.url) if not span.url.startswith("mailto:") else inner
    return f"{inner} [{refs.number(span.url)}]"


def wrap(text: str, indent: str = "", first: str | None = None, width: int = TEXT_WIDTH) -> str:
    """Wrap at ``width`` columns; URLs and other long words are never broken."""
    return textwrap.fill(
        " ".join(str(text).split()),
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def markdown_text(md: Markdown, refs: References) -> str:
    """Block Markdown as wrapped plaintext: bullets, underlined headings, ``>`` quotes."""
    out: list[str] = []
    for block in md.blocks:
        if isinstance(block, ListBlock):
            for n, item in enumerate(block.items, 1):
                bullet = f"{n}. " if block.ordered else "- "
                out.append(wrap(inline_text(item, refs), " " * len(bullet), bullet))
        elif isinstance(block, HeadingBlock):
            title = inline_text(block.inline, refs)
            out.append(f"{title}\n{'-' * min(len(title), TEXT_WIDTH)}")
        elif isinstance(block, QuoteBlock):
            out.append(wrap(inline_text(block.inline, refs), "> "))
        else:
            out.append(wrap(inline_text(block.inline, refs)))
        out.append("")
    return "\n".join(out).rstrip("\n")
