"""Code blocks in email: escaped, highlighted by Pygments with inline styles, wrapping on phones.

Email clients drop <style> classes unevenly, so colours go on each span; spans
are only made for tokens that have a colour or weight other than the block's own
(whitespace and plain text get none, the style's black is the block's text colour),
and neighbours of one style share a span, which keeps a code-heavy issue under
Gmail's clip. The block
keeps a light background in dark mode too, so that the colours keep their contrast.
Pygments is imported only when an issue has a code block with a language.
"""

from __future__ import annotations

from functools import lru_cache
from html import escape
from typing import Any

TEXT_COLOUR = "1f2328"
PRE_STYLE = (
    f"margin:0 0 14px;padding:10px 12px;background:#f6f8fa;color:#{TEXT_COLOUR};border-radius:6px;"
    "font-family:Menlo,Consolas,monospace;font-size:13px;line-height:1.45;"
    "white-space:pre-wrap;word-wrap:break-word;overflow-wrap:anywhere;word-break:break-word"
)
STYLE_NAME = "xcode"  # every colour of it reaches 4.5:1 on the block's background
# the style's plain text: a span for it would only repeat the block's own colour
_PLAIN_COLOURS = frozenset({"000000", TEXT_COLOUR})


def code_html(text: str, language: str | None) -> str:
    """A ``<pre>`` block; highlighted when Pygments knows ``language``, else plain and escaped."""
    body = _highlighted(text, language) if language else None
    return (
        f'<pre class="code" style="{PRE_STYLE}"><code>'
        f"{body if body is not None else escape(text)}</code></pre>"
    )


def _highlighted(text: str, language: str) -> str | None:
    lexer = _lexer(language.lower())
    if lexer is None:
        return None
    runs: list[tuple[str, str]] = []  # (style, text): one span per run of a style
    for token_type, value in lexer.get_tokens(text):
        style = _span_style(token_type) if value.strip() else None  # blanks join either side
        if runs and (style is None or style == runs[-1][0]):
            runs[-1] = (runs[-1][0], runs[-1][1] + value)
        else:
            runs.append((style or "", value))
    return "".join(
        f'<span style="{style}">{escape(value)}</span>' if style else escape(value)
        for style, value in runs
    ).rstrip("\n")


@lru_cache(maxsize=64)
def _lexer(language: str) -> Any:
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        return get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


@lru_cache(maxsize=512)
def _span_style(token_type: Any) -> str:
    from pygments.styles import get_style_by_name

    found = get_style_by_name(STYLE_NAME).style_for_token(token_type)
    out = []
    if found["color"] and found["color"].lower() not in _PLAIN_COLOURS:
        out.append(f"color:#{found['color']}")
    if found["bold"]:
        out.append("font-weight:bold")
    if found["italic"]:
        out.append("font-style:italic")
    return ";".join(out)
