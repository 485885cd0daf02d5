"""markdown-it-py's tokens → our Markdown tree, with a problem for whatever a field may not hold.

CommonMark with GFM tables and strikethrough; raw HTML off (it stays text).
markdown-it-py drops links whose scheme it dislikes and leaves them as text; we
let it keep every link, so that a ``javascript:`` one is reported where it is
written rather than shown as source. Imported only for text that has markup.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from dispatch_mail.project.markup import (
    Block,
    CodeBlock,
    CodeSpan,
    EmSpan,
    HeadingBlock,
    ImageSpan,
    Inline,
    LinkSpan,
    ListBlock,
    ListItem,
    ParagraphBlock,
    QuoteBlock,
    RuleBlock,
    Span,
    StrikeSpan,
    StrongSpan,
    TableBlock,
    TextSpan,
)
from dispatch_mail.project.urls import url_problem

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

_SPAN_KINDS: dict[str, type[StrongSpan | EmSpan | StrikeSpan]] = {
    "strong": StrongSpan,
    "em": EmSpan,
    "s": StrikeSpan,
}
_ALIGN = {"text-align:left": "left", "text-align:center": "center", "text-align:right": "right"}


@functools.cache
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.validateLink = lambda url: True  # type: ignore[method-assign]  # url_problem decides
    return md


def read_inline(text: str) -> tuple[tuple[Span, ...], list[str]]:
    """An inline field: code, emphasis, strikethrough and links; no images."""
    problems: list[str] = []
    spans = _spans(_parser().parseInline(text)[0].children or [], problems, images=False)
    return spans, problems


def inline_field_problems(source: str) -> list[str]:
    """What a text of several lines holds that an inline field cannot: any block but
    one paragraph (a list, a table, code, a heading, a quote, a second paragraph)."""
    tokens = _parser().parse(source)
    problems = []
    paragraphs = 0
    for token in tokens:
        if token.level != 0 or token.nesting == -1:
            continue
        if token.type == "paragraph_open":
            paragraphs += 1
        else:
            problems.append(
                f"{_line(token)}{_name(token.type)} cannot go in this field, which holds "
                "one paragraph of inline Markdown (code, emphasis, links); "
                "put it in the intro or a section of kind: markdown"
            )
    if paragraphs > 1:
        problems.append(
            f"this field holds one paragraph (it has {paragraphs}): "
            "join them, or put them in the intro or a section of kind: markdown"
        )
    return problems


def read_blocks(source: str) -> tuple[tuple[Block, ...], list[str]]:
    problems: list[str] = []
    tokens = _parser().parse(source)
    blocks, _ = _blocks(tokens, 0, len(tokens), problems, "")
    return tuple(blocks), problems


# --------------------------------------------------------------------------- inline


def _spans(tokens: list[Token], problems: list[str], *, images: bool) -> tuple[Span, ...]:
    stack: list[tuple[str, str, list[Span]]] = [("", "", [])]  # (kind, url, spans so far)
    for token in tokens:
        kind = token.type
        spans = stack[-1][2]
        if kind == "text":
            _add_text(spans, token.content)
        elif kind in ("softbreak", "hardbreak"):
            _add_text(spans, " ")
        elif kind == "code_inline":
            spans.append(CodeSpan(token.content))
        elif kind == "image":
            spans.append(_image(token, problems, allowed=images))
        elif kind.endswith("_open"):
            url = str(token.attrs.get("href", "")) if kind == "link_open" else ""
            stack.append((kind.removesuffix("_open"), url, []))
        elif kind.endswith("_close") and len(stack) > 1:
            opened, url, inner = stack.pop()
            stack[-1][2].append(_closed(opened, url, inner, problems))
        elif kind == "html_inline":  # not produced with html off; kept as text if ever
            _add_text(spans, token.content)
    while len(stack) > 1:  # never left open by markdown-it; closed so nothing is lost
        opened, url, inner = stack.pop()
        stack[-1][2].append(_closed(opened, url, inner, problems))
    return tuple(stack[0][2])


def _add_text(spans: list[Span], text: str) -> None:
    if spans and isinstance(spans[-1], TextSpan):
        spans[-1] = TextSpan(spans[-1].text + text)
    elif text:
        spans.append(TextSpan(text))


def _closed(kind: str, url: str, inner: list[Span], problems: list[str]) -> Span:
    if kind == "link":
        error = url_problem(url)
        words = "".join(_text_of(s) for s in inner)
        if error:
            problems.append(f"link [{words}]: {error}")
        if not words.strip() and not any(isinstance(s, ImageSpan) for s in inner):
            problems.append(f"link to {url!r} has no text")
        return LinkSpan(url, tuple(inner))
    return _SPAN_KINDS.get(kind, EmSpan)(tuple(inner))


def _text_of(span: Span) -> str:
    if isinstance(span, TextSpan | CodeSpan):
        return span.text
    if isinstance(span, ImageSpan):
        return span.alt
    return "".join(_text_of(c) for c in span.children)


def _image(token: Token, problems: list[str], *, allowed: bool) -> Span:
    url, alt = str(token.attrs.get("src", "")), token.content.strip()
    if not allowed:
        problems.append(
            f"images are not allowed in this field (![{alt}]({url})); "
            "put them in a Markdown body or an item's image"
        )
        return TextSpan(alt)
    error = url_problem(url, https_only=True)
    if error:
        problems.append(f"image ![{alt}]: {error}")
    if not alt:
        problems.append(f"image {url!r} has no alt text: write ![what it shows]({url})")
    title = token.attrs.get("title")
    return ImageSpan(url, alt, str(title) if title else None)


# --------------------------------------------------------------------------- blocks


def _blocks(
    tokens: list[Token], i: int, end: int, problems: list[str], inside: str
) -> tuple[list[Block], int]:
    """Blocks from ``tokens[i:end]``; ``inside`` names the container, for what it may not hold."""
    out: list[Block] = []
    while i < end:
        token = tokens[i]
        kind = token.type
        where = _line(token)
        if kind == "paragraph_open":
            inline = _inline(tokens[i + 1], problems)
            out.append(QuoteBlock(inline) if inside else ParagraphBlock(inline))
            i += 3
            continue
        close = _closing(tokens, i)
        if inside:
            problems.append(f"{where}{_name(kind)} cannot go inside {inside}")
        elif kind == "heading_open":
            out.append(HeadingBlock(_inline(tokens[i + 1], problems)))
        elif kind == "blockquote_open":
            quoted, _ = _blocks(tokens, i + 1, close, problems, "a quote")
            out.extend(quoted)
        elif kind in ("bullet_list_open", "ordered_list_open"):
            out.append(_list(tokens, i, close, problems))
        elif kind in ("fence", "code_block"):
            language = token.info.split()[0] if token.info.strip() else None
            out.append(CodeBlock(token.content.rstrip("\n"), language))
        elif kind == "table_open":
            out.append(_table(tokens, i, close, problems))
        elif kind == "hr":
            out.append(RuleBlock())
        elif kind == "html_block":  # not produced with html off
            problems.append(f"{where}raw HTML is not allowed; write Markdown")
        i = close + 1
    return out, i


def _closing(tokens: list[Token], i: int) -> int:
    """The index of the token that closes ``tokens[i]`` (itself for a leaf)."""
    if tokens[i].nesting != 1:
        return i
    depth, j = 0, i
    while j < len(tokens):
        depth += tokens[j].nesting
        if depth == 0:
            return j
        j += 1
    return len(tokens) - 1


def _inline(token: Token, problems: list[str]) -> Inline:
    return Inline(token.content, _spans(token.children or [], problems, images=True))


def _list(tokens: list[Token], i: int, close: int, problems: list[str]) -> ListBlock:
    ordered = tokens[i].type == "ordered_list_open"
    start = int(tokens[i].attrs.get("start", 1) or 1) if ordered else 1
    items: list[ListItem] = []
    j = i + 1
    while j < close:
        item_close = _closing(tokens, j)  # tokens[j] is list_item_open
        texts: list[Inline] = []
        nested: list[ListBlock] = []
        k = j + 1
        while k < item_close:
            kind = tokens[k].type
            if kind == "paragraph_open":
                texts.append(_inline(tokens[k + 1], problems))
                k += 3
                continue
            end = _closing(tokens, k)
            if kind in ("bullet_list_open", "ordered_list_open"):
                nested.append(_list(tokens, k, end, problems))
            else:
                problems.append(f"{_line(tokens[k])}{_name(kind)} cannot go inside a list item")
            k = end + 1
        if len(texts) > 1:
            problems.append(
                f"{_line(tokens[j])}a list item may hold one paragraph (it has {len(texts)})"
            )
        inline = texts[0] if texts else Inline("", ())
        items.append(ListItem(inline, tuple(nested)))
        j = item_close + 1
    return ListBlock(ordered, tuple(items), start)


def _table(tokens: list[Token], i: int, close: int, problems: list[str]) -> TableBlock:
    header: list[Inline] = []
    align: list[str | None] = []
    rows: list[tuple[Inline, ...]] = []
    row: list[Inline] = []
    in_head = False
    for j in range(i, close):
        token = tokens[j]
        if token.type == "thead_open":
            in_head = True
        elif token.type == "thead_close":
            in_head = False
        elif token.type in ("th_open", "td_open") and in_head:
            align.append(_ALIGN.get(str(token.attrs.get("style", ""))))
        elif token.type == "inline":
            (header if in_head else row).append(_inline(token, problems))
        elif token.type == "tr_close" and not in_head:
            rows.append(tuple(row))
            row = []
    return TableBlock(tuple(header), tuple(align), tuple(rows))


def _line(token: Token) -> str:
    return f"line {token.map[0] + 1}: " if token.map else ""


def _name(kind: str) -> str:
    return {
        "heading_open": "a heading",
        "blockquote_open": "a quote",
        "bullet_list_open": "a list",
        "ordered_list_open": "a list",
        "fence": "code",
        "code_block": "code",
        "table_open": "a table",
        "hr": "a rule",
        "html_block": "raw HTML",
    }.get(kind, kind.removesuffix("_open"))
