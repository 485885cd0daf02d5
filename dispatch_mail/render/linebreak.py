"""Plaintext wrapping for every script: 72 columns of display width, URLs never broken.

Text of narrow characters separated by spaces (Latin, Cyrillic, Greek, Arabic…)
wraps at spaces, as ``textwrap`` would, with no library loaded.
Text holding wide characters (CJK) or combining marks is broken where Unicode's
line-breaking algorithm (UAX #14, by uniseg) allows, and measured by East Asian
Width (wcwidth): a Japanese paragraph has no spaces, and each of its characters
takes two columns. Either way a URL is one unit, and a reference marker
(``[3]``) stays with the word before it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

TEXT_WIDTH = 72
_MARKER = re.compile(r"\[\d{1,4}\][.,;:!?)»”’」』。、]*")
_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|mailto:|www\.)", re.I)


@lru_cache(maxsize=4096)
def _is_simple_char(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) not in ("W", "F") and not unicodedata.combining(ch)


def _is_simple(text: str) -> bool:
    return text.isascii() or all(_is_simple_char(ch) for ch in text)


def display_width(text: str) -> int:
    """Columns a terminal gives ``text``: 2 for wide characters, 0 for combining marks."""
    if _is_simple(text):
        return len(text)
    from wcwidth import wcswidth

    width = wcswidth(text)
    return width if width >= 0 else len(text)  # a control character: count code points


def wrap(text: str, indent: str = "", first: str | None = None, width: int = TEXT_WIDTH) -> str:
    """Wrap at ``width`` display columns; URLs and other unbreakable words are never broken."""
    words = _glued(" ".join(str(text).split()).split(" "))
    return _fill(_units(words), indent if first is None else first, indent, width)


def _glued(words: list[str]) -> list[tuple[str, str]]:
    """(word, the reference markers that follow it): a marker never starts a line."""
    out: list[tuple[str, str]] = []
    for word in words:
        if out and _MARKER.fullmatch(word):
            out[-1] = (out[-1][0], out[-1][1] + " " + word)
        elif word:
            out.append((word, ""))
    return out


def _units(words: list[tuple[str, str]]) -> list[tuple[str, bool]]:
    """(piece, a space before it) for every place a line may break."""
    units: list[tuple[str, bool]] = []
    for word, markers in words:
        if _is_simple(word) or _URL.match(word):
            units.append((word + markers, True))
            continue
        from uniseg.linebreak import line_break_units

        pieces = list(line_break_units(word))
        units += [(piece, n == 0) for n, piece in enumerate(pieces)]
        units[-1] = (units[-1][0] + markers, units[-1][1])
    return units


def _fill(units: list[tuple[str, bool]], first: str, indent: str, width: int) -> str:
    lines: list[str] = []
    line, used = first, display_width(first)
    empty = True
    for piece, spaced in units:
        gap = " " if spaced and not empty else ""
        size = display_width(piece)
        if not empty and used + len(gap) + size > width:
            lines.append(line.rstrip())
            line, used, gap = indent, display_width(indent), ""
            empty = True
        line += gap + piece
        used += len(gap) + size
        empty = False
    if not empty:
        lines.append(line.rstrip())
    return "\n".join(lines)
