"""Which issue folder names can become an issue's files and web address.

The folder's name is the slug: it names ``build/<slug>/``, the archive's
``<slug>/index.html`` and the issue's URL. Most names work, accents, spaces and
right-to-left scripts included (links percent-encode them); refused are the
names that cannot be written, printed or told apart safely, each as a located
problem before anything is written.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from dispatch_mail.errors import Problem
from dispatch_mail.project.paths import shown_path

# C0 controls (tab and newline included), DEL and the C1 controls.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# Bidirectional overrides and isolates: they make a name display other than it is.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
# Lone surrogates: how Python keeps the bytes of a name that is not UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Not allowed in XML: the feed would have to drop them from the issue's links.
_NONCHARACTER = re.compile("[\ufffe\uffff]")
_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]")
_RENAME = "rename the folder: its name becomes the issue's file names and web address"


def visible(text: str) -> str:
    """``text`` with every character a terminal would act on, or hide, spelled out."""

    def spelled(match: re.Match[str]) -> str:
        code = ord(match.group())
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
            return f"\\x{code - 0xDC00:02x}"
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _UNSHOWABLE.sub(spelled, text)


def slug_problems(issue_dir: Path) -> list[Problem]:
    """What is wrong with ``issue_dir``'s name as a slug; empty when it can be used."""
    name = issue_dir.name
    where = visible(shown_path(issue_dir))
    if _SURROGATE.search(name):
        return [_problem(where, f"the folder's name is not valid UTF-8; {_RENAME}")]
    for pattern, what in (
        (_CONTROL, "a control character"),
        (_BIDI, "a bidirectional control, which makes the name display other than it is"),
        (_NONCHARACTER, "a character that XML does not allow"),
    ):
        found = pattern.search(name)
        if found:
            char = visible(found.group())
            return [_problem(where, f"the folder's name holds {what} ({char}); {_RENAME}")]
    return []


def archive_slug_problems(issue_dirs: Iterable[Path], reserved: Iterable[str]) -> list[Problem]:
    """Names whose archive pages would land on the archive's own files or on each other.

    ``reserved`` are the names the archive writes at its top (index.html, feed.xml…).
    Names are compared as case-insensitive, normalising file systems (macOS, Windows)
    and many servers compare them, so a site built on Linux works when copied there.
    """
    taken = {_folded(name): name for name in reserved}
    problems = []
    seen: dict[str, Path] = {}
    for folder in issue_dirs:
        where = visible(shown_path(folder))
        key = _folded(folder.name)
        if folder.name.startswith("."):
            problems.append(
                _problem(
                    where,
                    "a folder whose name starts with a dot is hidden: web servers often "
                    "refuse to serve it, so its archive page would not be found; rename the folder",
                )
            )
        elif key in taken:
            problems.append(
                _problem(
                    where,
                    f"the archive's own {taken[key]} has this name, so the issue's page "
                    "cannot be written there; rename the folder",
                )
            )
        elif key in seen:
            other = visible(shown_path(seen[key]))
            problems.append(
                _problem(
                    where,
                    f"differs from {other} only in case or in how its accents are encoded: "
                    "on many disks and servers the two archive pages would be one; "
                    "rename one of the folders",
                )
            )
        else:
            seen[key] = folder
    return problems


def _folded(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def _problem(where: str, message: str) -> Problem:
    return Problem(where, 0, 0, "", message)
