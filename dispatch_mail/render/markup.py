"""The parsed Markdown of text fields → escaped HTML, and → plaintext with numbered links.

Parsing (and link validation) happened when the manifest was loaded
(``project/markup.py``); here the same tree is only written out, once per format.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from dispatch_mail.project.markup import (
    Block,
    CodeBlock,
    CodeSpan,
    EmSpan,
    HeadingBlock,
    ImageSpan,
    Inline,
    ListBlock,
    Markdown,
    ParagraphBlock,
    QuoteBlock,
    RuleBlock,
    Span,
    StrikeSpan,
    StrongSpan,
    TableBlock,
    TextSpan,
)
from dispatch_mail.render.bidi import FIRST_STRONG_ISOLATE, POP_ISOLATE, isolate
from dispatch_mail.render.code import code_html
from dispatch_mail.render.linebreak import TEXT_WIDTH, display_width, wrap

LinkRewrite = Callable[[str], str]
__all__ = ["TEXT_WIDTH", "References", "display_width", "inline_html", "inline_text", "wrap"]
# width:100%: an image of a percentage width adds nothing to a table cell's minimum width,
# so a wide diagram shrinks on a phone instead of widening the whole email
IMAGE_STYLE = "display:block;width:100%;max-width:100%;height:auto;border:0;margin:0 0 14px"
# a Markdown image spans the text column (600 px less the theme's 32 px padding each side);
# the attribute is for Outlook, which ignores CSS widths and shows an image at its own size
IMAGE_WIDTH = 536


def _unchanged(url: str) -> str:
    return url


# --------------------------------------------------------------------------- HTML


def inline_html(
    inline: Inline,
    link_url: LinkRewrite = _unchanged,
    link_style: str = "",
    direction: str | None = None,
) -> str:
    """Escaped HTML for an inline run; ``link_url`` rewrites hrefs (UTM tagging).

    With the text's ``direction``, runs of the other direction are isolated (``<span dir>``).
    """
    return "".join(_span_html(s, link_url, link_style, direction) for s in inline.spans)


def _isolated_html(direction: str) -> Callable[[str], str]:
    """A run of the other direction in a ``<span dir>``: the HTML default for ``[dir]`` is
    ``unicode-bidi: isolate``, and email clients keep ``dir`` where many drop ``<bdi>``."""
    other = "ltr" if direction == "rtl" else "rtl"
    return lambda text: f'<span dir="{other}">{escape(text)}</span>'


def _span_html(span: Span, link_url: LinkRewrite, link_style: str, direction: str | None) -> str:
    if isinstance(span, TextSpan):
        if not direction:
            return escape(span.text)
        return isolate(span.text, direction, _isolated_html(direction), escape)
    if isinstance(span, CodeSpan):
        return f"<code>{escape(span.text)}</code>"
    if isinstance(span, ImageSpan):  # the image's own URL is never tagged: not a click
        title = f' title="{escape(span.title)}"' if span.title else ""
        return (
            f'<img class="md-image" src="{escape(span.url)}" alt="{escape(span.alt)}"{title} '
            f'width="{IMAGE_WIDTH}" style="{IMAGE_STYLE}">'
        )
    inner = "".join(_span_html(c, link_url, link_style, direction) for c in span.children)
    if isinstance(span, StrongSpan):
        return f"<strong>{inner}</strong>"
    if isinstance(span, EmSpan):
        return f"<em>{inner}</em>"
    if isinstance(span, StrikeSpan):
        return f"<del>{inner}</del>"
    style = f' style="{link_style}"' if link_style else ""
    return f'<a href="{escape(link_url(span.url))}"{style}>{inner}</a>'


def markdown_html(
    md: Markdown,
    link_url: LinkRewrite = _unchanged,
    link_style: str = "",
    heading_level: int = 3,
    direction: str | None = None,
) -> str:
    """Block Markdown as HTML; ``heading_level`` keeps headings in order where the text sits."""
    h = max(2, min(6, heading_level))
    return "".join(_block_html(b, link_url, link_style, h, direction) for b in md.blocks)


def _block_html(
    block: Block, link_url: LinkRewrite, link_style: str, h: int, direction: str | None
) -> str:
    def inline(value: Inline) -> str:
        return inline_html(value, link_url, link_style, direction)

    if isinstance(block, ParagraphBlock):
        return f"<p>{inline(block.inline)}</p>"
    if isinstance(block, HeadingBlock):
        return f'<h{h} class="md-heading">{inline(block.inline)}</h{h}>'
    if isinstance(block, QuoteBlock):
        return f"<blockquote>{inline(block.inline)}</blockquote>"
    if isinstance(block, CodeBlock):
        return code_html(block.text, block.language)
    if isinstance(block, TableBlock):
        return _table_html(block, inline)
    if isinstance(block, RuleBlock):
        return '<hr class="md-rule">'
    tag = "ol" if block.ordered else "ul"
    start = f' start="{block.start}"' if block.ordered and block.start != 1 else ""
    items = "".join(
        f"<li>{inline(item.inline)}"
        + "".join(_block_html(n, link_url, link_style, h, direction) for n in item.lists)
        + "</li>"
        for item in block.items
    )
    return f"<{tag}{start}>{items}</{tag}>"


def _table_html(table: TableBlock, inline: Callable[[Inline], str]) -> str:
    """A data table that scrolls inside its own box on a phone rather than widening the email."""

    def cell(tag: str, value: Inline, column: int) -> str:
        align = table.align[column] if column < len(table.align) else None
        style = f' style="text-align:{align}"' if align else ""
        return f"<{tag}{style}>{inline(value)}</{tag}>"

    head = "".join(cell("th", v, n) for n, v in enumerate(table.header))
    rows = "".join(
        "<tr>" + "".join(cell("td", v, n) for n, v in enumerate(row)) + "</tr>"
        for row in table.rows
    )
    return (
        '<div class="md-table-box"><table class="md-table">'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>"
    )


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


def inline_text(inline: Inline, refs: References, direction: str | None = None) -> str:
    """Plaintext of an inline run; with ``direction``, other-direction runs get Unicode isolates."""
    text = "".join(_span_text(s, refs) for s in inline.spans)
    return isolate(text, direction, _isolated, str) if direction else text


def _isolated(text: str) -> str:
    return f"{FIRST_STRONG_ISOLATE}{text}{POP_ISOLATE}"


def _span_text(span: Span, refs: References) -> str:
    if isinstance(span, TextSpan | CodeSpan):
        return span.text
    if isinstance(span, ImageSpan):
        return f"[Image: {span.alt}]"
    inner = "".join(_span_text(c, refs) for c in span.children)
    if isinstance(span, StrongSpan):
        return f"*{inner}*"
    if isinstance(span, EmSpan):
        return f"_{inner}_"
    if isinstance(span, StrikeSpan):
        return f"~~{inner}~~"
    if inner.strip() == span.url or inner.strip() == span.url.removeprefix("mailto:"):
        return refs.link_url(span.url) if not span.url.startswith("mailto:") else inner
    return f"{inner} [{refs.number(span.url)}]"


def markdown_text(md: Markdown, refs: References) -> str:
    """Block Markdown as wrapped plaintext: bullets, underlined headings, ``>`` quotes, code."""
    out: list[str] = []
    for block in md.blocks:
        out.append(_block_text(block, refs, ""))
        out.append("")
    return "\n".join(out).rstrip("\n")


def _block_text(block: Block, refs: References, indent: str) -> str:
    if isinstance(block, ListBlock):
        lines = []
        for n, item in enumerate(block.items, block.start):
            bullet = f"{n}. " if block.ordered else "- "
            pad = indent + " " * len(bullet)
            lines.append(wrap(inline_text(item.inline, refs), pad, indent + bullet))
            lines += [_block_text(nested, refs, pad) for nested in item.lists]
        return "\n".join(lines)
    if isinstance(block, HeadingBlock):
        title = inline_text(block.inline, refs)
        return f"{title}\n{'-' * min(display_width(title), TEXT_WIDTH)}"
    if isinstance(block, QuoteBlock):
        return wrap(inline_text(block.inline, refs), "> ")
    if isinstance(block, CodeBlock):  # verbatim: code is never wrapped
        return "\n".join(("    " + line).rstrip() for line in block.text.split("\n"))
    if isinstance(block, TableBlock):
        return table_text(block, refs)
    if isinstance(block, RuleBlock):
        return "-" * 24
    return wrap(inline_text(block.inline, refs), indent)


def table_text(table: TableBlock, refs: References) -> str:
    """Columns aligned by display width; a table wider than 72 columns: one record per row."""
    header = [inline_text(c, refs) for c in table.header]
    rows = [[inline_text(c, refs) for c in row] for row in table.rows]
    columns = len(header)
    widths = [
        max([display_width(header[n])] + [display_width(r[n]) for r in rows if n < len(r)])
        for n in range(columns)
    ]
    if sum(widths) + 2 * (columns - 1) > TEXT_WIDTH:
        records = []
        for row in rows:
            records.append(
                "\n".join(
                    wrap(f"{header[n]}: {value}" if n < columns else value, "  ", "")
                    for n, value in enumerate(row)
                )
            )
        return "\n\n".join(records)

    def line(cells: list[str]) -> str:
        out = []
        for n in range(columns):
            value = cells[n] if n < len(cells) else ""
            room = " " * (widths[n] - display_width(value))
            align = table.align[n] if n < len(table.align) else None
            out.append(room + value if align == "right" else value + room)
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule] + [line(r) for r in rows])
