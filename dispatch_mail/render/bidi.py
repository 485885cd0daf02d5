"""Mixed-direction text kept in order: runs of the other direction are isolated.

In an Arabic paragraph, "تبدأ في ٣ مايو. ／ 5月3日開講" is shown by the Unicode
bidirectional algorithm with the "5" pulled across the slash, so that it reads as
another date; a Latin name's digits and punctuation drift the same way. Each run
of the direction opposite to the text's own (a Latin or CJK run in Arabic, an
Arabic or Hebrew run in English) is isolated: a ``<span dir>`` in HTML (email
clients keep ``dir``; many drop ``<bdi>``), FSI…PDI in plaintext. A run starts at
its first strong letter (with the digits just before it) and ends at its last
letter or digit, so the punctuation between runs stays with the surrounding text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

FIRST_STRONG_ISOLATE, POP_ISOLATE = "\u2068", "\u2069"
# any character of the right-to-left blocks (Hebrew, Arabic, Syriac, Thaana, NKo, …)
_RTL_CHAR = re.compile(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc\U00010800-\U00010fff]")
_RUN = {"ltr": re.compile(r"D*R[RDN]*"), "rtl": re.compile(r"D*L[LDN]*")}


@lru_cache(maxsize=8192)
def _kind(ch: str) -> str:
    kind = unicodedata.bidirectional(ch)
    if kind == "L":
        return "L"
    if kind in ("R", "AL"):
        return "R"
    if kind in ("EN", "AN"):
        return "D"
    return "N"


def opposite_runs(text: str, direction: str) -> list[tuple[int, int]]:
    """(start, end) of each run of ``text`` whose direction is not ``direction``."""
    if direction == "ltr" and not _RTL_CHAR.search(text):
        return []  # the common case: no right-to-left letter at all
    kinds = "".join(_kind(ch) for ch in text)
    runs = []
    for match in _RUN.get(direction, _RUN["ltr"]).finditer(kinds):
        start, end = match.span()
        while end > start and kinds[end - 1] == "N":
            end -= 1
        if any(k in "LR" for k in kinds[start:end]):
            runs.append((start, end))
    if len(runs) == 1:
        start, end = runs[0]
        if not any(k in "LR" for k in kinds[:start] + kinds[end:]):
            return []  # all of it is one run: its container's direction is the place to say so
    return runs


def isolate(
    text: str, direction: str, wrap: Callable[[str], str], plain: Callable[[str], str]
) -> str:
    """``text`` with each opposite run passed through ``wrap``, the rest through ``plain``."""
    runs = opposite_runs(text, direction)
    if not runs:
        return plain(text)
    out, at = [], 0
    for start, end in runs:
        out += [plain(text[at:start]), wrap(text[start:end])]
        at = end
    out.append(plain(text[at:]))
    return "".join(out)
