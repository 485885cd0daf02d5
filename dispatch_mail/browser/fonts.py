"""Which characters of a rendered page Chromium drew as empty boxes, for want of a font.

A machine without CJK, Arabic or emoji fonts still takes screenshots; they just
show boxes ("tofu"), and nothing says so. Chromium itself tells us, through the
DevTools Protocol (``CSS.getPlatformFontsForNode``), which fonts it drew an
element's text with; a character none of those fonts has was drawn as the
primary font's empty box (it is counted under that font's name, so the glyph
counts alone cannot tell). Which characters a font has comes from fontconfig
(``fc-list``), the catalogue Chromium on Linux chooses its fonts from. Where
fontconfig is missing (macOS), only Chromium's ``LastResort`` font means a box.
"""

from __future__ import annotations

import bisect
import os
import shutil
import subprocess
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from dispatch_mail.browser.chromium import PageView
from dispatch_mail.project.wording import plural

CJK_PACKAGE = "fonts-noto-cjk"
EMOJI_PACKAGE = "fonts-noto-color-emoji"
CORE_PACKAGE = "fonts-noto-core"
FONT_PACKAGES = (CJK_PACKAGE, CORE_PACKAGE, EMOJI_PACKAGE)  # Debian's; what CI installs
CJK_RANGES = (
    (0x1100, 0x11FF), (0x2E80, 0x2FFF), (0x3000, 0x33FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
    (0xA960, 0xA97F), (0xAC00, 0xD7FF), (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF),
    (0x20000, 0x3FFFF),
)  # fmt: skip
EMOJI_RANGES = ((0x2600, 0x27BF), (0x1F000, 0x1FAFF))
# Where the blocks of scripts lie (outside them: Latin-1's signs, general punctuation, symbols).
SCRIPT_BLOCKS = ((0x0370, 0x1FFF), (0xA000, 0xABFF), (0x10000, 0x1CFFF), (0x1E000, 0x1EFFF))
# Default-ignorable code points (UAX #44): never drawn, so never a box, though few fonts list them.
IGNORABLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip
LAST_RESORT = {"LastResort", ".LastResort"}  # macOS's font of boxes
SAMPLE = 5  # distinct characters quoted in a warning
ANY_FONT = ""  # the key, in the coverage table, of every installed font's characters together
Ranges = list[tuple[int, int]]  # sorted (first, last) code points


@dataclass(frozen=True)
class MissingGlyphs:
    """Characters of one script that no font drew."""

    script: str  # "Arabic", "CJK", "emoji", "private use", …
    package: str | None  # the Debian package with a font for them; None: no standard font has them
    count: int  # characters drawn as boxes, repeats counted
    chars: str  # each distinct one, in order of first appearance

    def describe(self) -> str:
        """``12 characters (Arabic: "مرحبا"… U+0645 …) were drawn with no font (boxes); …``."""
        sample = self.chars[:SAMPLE]
        points = " ".join(f"U+{ord(c):04X}" for c in sample)
        more = "…" if len(self.chars) > SAMPLE else ""
        remedy = (
            f"install {self.package}"
            if self.package
            else f"no standard font has {'it' if len(self.chars) == 1 else 'them'}; "
            "use ordinary characters"
        )
        return (
            f'{plural(self.count, "character")} ({self.script}: "{sample}"{more} {points}{more}) '
            f"were drawn with no font (boxes); {remedy}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "script": self.script,
            "package": self.package,
            "count": self.count,
            "chars": self.chars,
            "code_points": [f"U+{ord(c):04X}" for c in self.chars],
        }


def missing_glyphs(view: PageView) -> list[MissingGlyphs]:
    """The characters of the page as laid out now that no font covered, grouped by script.

    Only text Chromium laid out counts (hidden text has no fonts); ASCII is
    left out, as every font has it. Chromium on Linux falls back to any
    installed font that has a character, so only elements holding a character
    no installed font has are asked about (a DevTools round trip each): the
    fonts Chromium used there settle it, a web font among them included.
    """
    view.devtools("DOM.enable")
    root = view.devtools("DOM.getDocument", {"depth": -1, "pierce": False})["root"]
    known = _coverage()
    installed = known.get(ANY_FONT)
    boxes: Counter[str] = Counter()
    css_enabled = False
    for node_id, text in _texts(root):
        chars = {c for c in text if _drawable(c) and not (installed and _covers(installed, c))}
        if not chars:
            continue
        if not css_enabled:
            view.devtools("CSS.enable")
            css_enabled = True
        fonts = view.devtools("CSS.getPlatformFontsForNode", {"nodeId": node_id})["fonts"]
        if not fonts:  # not rendered (display: none, <title>, …)
            continue
        boxed = {c for c in chars if not any(_has(known, font, c) for font in fonts)}
        boxes.update(c for c in text if c in boxed)
    return _grouped(boxes)


def _texts(node: dict[str, Any]) -> Iterator[tuple[int, str]]:
    """(element id, the text directly inside it) for every element, outside <head>."""
    if node.get("nodeName") in ("HEAD", "SCRIPT", "STYLE", "TEMPLATE", "NOSCRIPT"):
        return
    children = node.get("children", [])
    if node.get("nodeType") == 1:
        text = "".join(c.get("nodeValue", "") for c in children if c.get("nodeType") == 3)
        if text:
            yield node["nodeId"], text
    for child in children:
        yield from _texts(child)
    if "contentDocument" in node:
        yield from _texts(node["contentDocument"])


def _drawable(char: str) -> bool:
    """Non-ASCII and visible: the characters a missing font turns into boxes."""
    code = ord(char)
    if code < 0x80 or char.isspace() or unicodedata.category(char) == "Cc":
        return False
    return not _within(code, IGNORABLE_RANGES)


def _within(code: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(start <= code <= end for start, end in ranges)


def _has(known: dict[str, Ranges], font: dict[str, Any], char: str) -> bool:
    """Whether the font Chromium used has the character; unknown fonts get the benefit of doubt."""
    name, family = font.get("postScriptName", ""), font.get("familyName", "")
    if name in LAST_RESORT or family in LAST_RESORT:
        return False
    ranges = (name and known.get(name)) or known.get(f"family:{family}")
    if ranges is None:  # a web font, or no fontconfig: nothing to compare against
        return True
    return _covers(ranges, char)


def _covers(ranges: Ranges, char: str) -> bool:
    code = ord(char)
    at = bisect.bisect_right(ranges, (code, 0x10FFFF + 1)) - 1
    return at >= 0 and ranges[at][0] <= code <= ranges[at][1]


def _coverage() -> dict[str, Ranges]:
    """Each installed font's characters as sorted ranges, by PostScript name and by family,
    and those of all fonts together under ``ANY_FONT``.

    One ``fc-list`` call (tens of ms) per fontconfig setup; empty without fontconfig.
    """
    environment = (os.environ.get("FONTCONFIG_FILE"), os.environ.get("FONTCONFIG_PATH"))
    return _fontconfig_coverage(*environment)


@lru_cache(maxsize=4)
def _fontconfig_coverage(_config_file: str | None, _config_path: str | None) -> dict[str, Ranges]:
    # The arguments are the cache key: the environment that picks the fonts, as Chromium's does.
    fc_list = shutil.which("fc-list")
    if not fc_list:
        return {}
    try:
        listing = subprocess.run(
            [fc_list, "--format", "%{postscriptname}\t%{family[0]}\t%{charset}\n"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    coverage: dict[str, Ranges] = {}
    every: Ranges = []
    for line in listing.splitlines():
        name, _, rest = line.partition("\t")
        family, _, charset = rest.partition("\t")
        ranges = _ranges(charset)
        every += ranges
        if name:
            coverage.setdefault(name, ranges)
        # A family is as good as its widest member: Chromium reports the family it chose.
        widest = coverage.get(f"family:{family}")
        if widest is None or len(ranges) > len(widest):
            coverage[f"family:{family}"] = ranges
    if every:
        coverage[ANY_FONT] = _merged(every)
    return coverage


def _merged(ranges: Ranges) -> Ranges:
    merged: Ranges = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _ranges(charset: str) -> Ranges:
    """fontconfig's ``20-7e a0-17f 192`` as [(0x20, 0x7e), (0xa0, 0x17f), (0x192, 0x192)]."""
    ranges = []
    for part in charset.split():
        start, _, end = part.partition("-")
        try:
            ranges.append((int(start, 16), int(end or start, 16)))
        except ValueError:
            continue
    return sorted(ranges)


def _script(char: str) -> tuple[str, str | None]:
    """A reader's name for the character's script, and the package with a font for it.

    The name is the first word of the character's Unicode name ("ARABIC-INDIC
    DIGIT THREE": Arabic), for letters, marks and digits, and for punctuation in
    a script's own block (the Arabic comma); other punctuation is "symbols".
    """
    code, category = ord(char), unicodedata.category(char)
    if category == "Co":
        return "private use", None
    if category == "Cn":
        return "unassigned", None
    if _within(code, EMOJI_RANGES):
        return "emoji", EMOJI_PACKAGE
    if _within(code, CJK_RANGES):
        return "CJK", CJK_PACKAGE
    word = unicodedata.name(char, "").split(" ")[0].split("-")[0]
    if word and (category[0] in "LMN" or _within(code, SCRIPT_BLOCKS)):
        return word.title(), CORE_PACKAGE
    return "symbols", CORE_PACKAGE


def _grouped(boxes: Counter[str]) -> list[MissingGlyphs]:
    groups: dict[tuple[str, str | None], list[str]] = {}
    for char in boxes:  # Counter keeps first-seen order
        groups.setdefault(_script(char), []).append(char)
    found = [
        MissingGlyphs(script, package, sum(boxes[c] for c in chars), "".join(chars))
        for (script, package), chars in groups.items()
    ]
    return sorted(found, key=lambda m: -m.count)
