"""Right-to-left text where the email reads left to right: the words would come out mirrored.

An Arabic or Hebrew paragraph in a left-to-right issue is shown with its
punctuation, digits and Latin names on the wrong side, and a screen reader reads
it in the wrong language. Each text of the manifest is checked against the
direction it will be rendered in: the issue's, or its section's or item's own
(``lang``/``dir``).
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Iterator

from dispatch_mail.project.markup import Inline, Markdown
from dispatch_mail.quality.facts import Context
from dispatch_mail.quality.findings import Finding
from dispatch_mail.render.strings import text_direction


def _direction(part: object, inherited: str) -> str:
    own_dir = getattr(part, "dir", None)
    if own_dir in ("ltr", "rtl"):
        return str(own_dir)
    if own_dir == "auto":
        return "auto"
    lang = getattr(part, "lang", None)
    return text_direction(lang) if isinstance(lang, str) and lang else inherited


def _texts(part: object, where: str, direction: str) -> Iterator[tuple[str, str, str]]:
    """(where, text, direction) of every text of a manifest object, nested ones included."""
    if isinstance(part, Inline | Markdown):
        yield where, part.plain, direction
    elif isinstance(part, str):
        yield where, part, direction
    elif isinstance(part, list | tuple):
        for n, value in enumerate(part):
            yield from _texts(value, f"{where}[{n}]", direction)
    elif dataclasses.is_dataclass(part) and not isinstance(part, type):
        direction = _direction(part, direction)
        for f in dataclasses.fields(part):
            if "doc" not in f.metadata or f.name in ("url", "lang", "dir", "kind", "id"):
                continue
            name = f"{where}.{f.name}" if where else f.name
            yield from _texts(getattr(part, f.name), name, direction)


def mostly_right_to_left(text: str) -> bool:
    strong = [unicodedata.bidirectional(ch) for ch in text]
    rtl = sum(1 for k in strong if k in ("R", "AL"))
    return rtl > 0 and rtl * 2 >= rtl + sum(1 for k in strong if k == "L")


def check_direction(ctx: Context) -> list[Finding]:
    issue = ctx.issue
    base = issue.dir or text_direction(issue.lang or ctx.project.lang)
    out = []
    for where, text, direction in _texts(issue, "", base):
        if direction == "ltr" and mostly_right_to_left(text):
            out.append(
                Finding(
                    "warning",
                    "text.rtl-without-dir",
                    "right-to-left text in a left-to-right part: set its lang (e.g. 'ar', "
                    "'he') or dir: rtl, so it is aligned, ordered and read aloud right",
                    where,
                )
            )
    return out
