"""CSV files as spreadsheets and mail tools save them: the encoding, the email column, the records.

A list or a suppression file read the wrong way loses people silently: a UTF-16
export decoded as UTF-8 has no 'email' column, an "Email Address" header is not
'email'. So the byte order mark decides the encoding, the usual names of an
email column are all recognized, and a file that still cannot be read is an
error with its line, never an empty list.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from dispatch_mail.errors import UsageError
from dispatch_mail.project.paths import shown_path

# byte order marks, longest first (a UTF-32-LE mark starts with the UTF-16-LE one)
_BOMS: tuple[tuple[bytes, str, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)

# header names of an email column, compared without case, spaces, '-' or '_'
EMAIL_HEADERS = frozenset({"email", "emailaddress", "emailaddr"})
# names that mean the email column in a file of addresses, but may be a postal one in a list
LOOSE_EMAIL_HEADERS = frozenset({"mail", "address", "mailaddress", "emails"})

_SEPARATORS = re.compile(r"[\s_\-]+")
LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SURROGATE = re.compile("[\ud800-\udfff]")

Record = tuple[int, list[str] | None, str | None]  # (line, cells or None, problem)


def header_key(name: str) -> str:
    """'E-mail Address', 'email_address' and ' EMAIL ' all become 'emailaddress' or 'email'."""
    return _SEPARATORS.sub("", name).casefold()


def email_columns(header: Sequence[str], names: frozenset[str]) -> list[int]:
    """The indexes of the header's cells that name an email column."""
    return [i for i, cell in enumerate(header) if header_key(cell) in names]


def undecodable(text: str) -> bool:
    """True when ``text`` holds what the file's encoding could not decode.

    UTF-8 is decoded with surrogateescape and UTF-16/32 with surrogatepass, so a
    bad byte or a lone surrogate stays in the text as a surrogate code point,
    which no valid text holds.
    """
    return _SURROGATE.search(text) is not None


def break_count(cells: Iterable[str]) -> int:
    """Line breaks inside quoted cells: how far a record's last line is from its first."""
    return len(LINE_BREAK.findall("\0".join(cells)))  # NUL: no line break across two cells


@contextmanager
def open_csv(path: Path) -> Iterator[tuple[TextIO, str]]:
    """The file as text in the encoding its byte order mark names (UTF-8 without one), and its name.

    Decoding never fails on a bad byte: it costs only the record it is in (see
    :func:`undecodable`); a strict decoder fails on the whole read-ahead chunk,
    losing and misplacing every row around it.
    """
    shown = shown_path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise UsageError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    with handle:
        start = handle.peek(4)[:4]
        marked = [(codec, name) for bom, codec, name in _BOMS if start.startswith(bom)]
        if not marked and b"\x00" in start[:2]:
            raise UsageError(
                f"{shown}:1: looks like UTF-16 without a byte order mark (save the file as UTF-8)"
            )
        encoding, name = marked[0] if marked else ("utf-8-sig", "UTF-8")
        errors = "surrogateescape" if name == "UTF-8" else "surrogatepass"
        yield io.TextIOWrapper(handle, encoding=encoding, errors=errors, newline=""), name


def records(text: TextIO, shown: str, encoding: str) -> Iterator[Record]:
    """Each CSV record of ``text`` with the line it starts on (as editors count), or its problem.

    Blank lines are skipped. A record that does not decode is a problem of its own
    line; a file whose encoding breaks off (a UTF-16 file cut in the middle of a
    character) is an error, since where its rows end cannot be known.
    """
    reader = csv.reader(text)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, None, f"malformed CSV: {exc}"
            continue
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"{shown}:{reader.line_num + 1}: not valid {encoding}: {exc.reason}"
                " (save the file as UTF-8)"
            ) from None
        if not cells:
            continue
        line = reader.line_num - break_count(cells)
        if undecodable("".join(cells)):
            yield line, None, f"not valid {encoding} (save the file as UTF-8)"
            continue
        yield line, cells, None


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")


def inert_cell(text: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula (OWASP, CSV injection)."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text
