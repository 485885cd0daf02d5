"""Code blocks in email: escaped, highlighted by Pygments with inline styles, wrapping on phones.

Email clients drop <style> classes unevenly, so colours go on each span; spans
are only made for tokens that have a colour or weight (whitespace and plain
text get none), which keeps a code-heavy issue under Gmail's clip. The block
keeps a light background in dark mode too, so that the colours keep their contrast.
Pygments is imported only when an issue has a code block with a language.
"""

from __future__ import annotations

from functools import lru_cache
from html import escape
from typing import Any

PRE_STYLE = (
    "margin:0 0 14px;padding:10px 12px;background:#f6f8fa;color:#1f2328;border-radius:6px;"
    "font-family:Menlo,Consolas,monospace;font-size:13px;line-height:1.45;"
    "white-space:pre-wrap;word-wrap:break-word;overflow-wrap:anywhere;word-break:break-word"
)
STYLE_NAME = "xcode"  # every colour of it reaches 4.5:1 on the block's background


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
    parts: list[str] = []
    for token_type, value in lexer.get_tokens(text):
        style = _span_style(token_type)
        chunk = escape(value)
        parts.append(f'<span style="{style}">{chunk}</span>' if style and value.strip() else chunk)
    return "".join(parts).rstrip("\n")


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
    if found["color"]:
        out.append(f"color:#{found['color']}")
    if found["bold"]:
        out.append("font-weight:bold")
    if found["italic"]:
        out.append("font-style:italic")
    return ";".join(out)
