"""Recipients: read from CSV, validated, normalized, de-duplicated, and never a suppressed one.

Rows are streamed (a list of 100,000 is never held as dicts in memory twice);
every row that is excluded is accounted for with its file, line and reason, so
a send plan can say exactly who will not get the issue and why. The suppression
file is read strictly: a row it cannot read is an error, never a person mailed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import getaddresses
from pathlib import Path

from dispatch_mail.delivery.csvfile import (
    EMAIL_HEADERS,
    LINE_BREAK,
    LOOSE_EMAIL_HEADERS,
    Record,
    email_columns,
    open_csv,
    records,
)
from dispatch_mail.errors import ContentError, Problem, UsageError
from dispatch_mail.project.addresses import dedupe_key
from dispatch_mail.project.paths import shown_path
from dispatch_mail.project.schema import validate_email
from dispatch_mail.project.wording import plural

MAX_FIELD_LENGTH = 500
_NAMED = re.compile(r"^[^<>@]*<([^<>]+)>\s*$")  # display name (no address in it) <address>
MAX_PROBLEMS = 20  # of a suppression file, shown; the rest are counted
LIST_ENCODINGS = ("UTF-8",)  # a recipients CSV's, as before: a UTF-16 one is refused, not misread


@dataclass(frozen=True)
class Recipient:
    email: str
    fields: dict[str, str]  # every CSV column, for personalization

    @property
    def name(self) -> str:
        return self.fields.get("name", "").strip()


@dataclass(frozen=True)
class Exclusion:
    path: str
    line: int
    email: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.email or '(no address)'}: {self.reason}"


def normalize(address: str) -> str:
    """Trim and lower-case the domain; the local part's case is kept (RFC 5321 lets it matter)."""
    address = address.strip()
    if "@" not in address:
        return address
    local, domain = address.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def _printable(text: str, limit: int = 254) -> str:
    """Text from a refused row, safe to print: control characters escaped."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _records_of(path: Path, encodings: tuple[str, ...] = ()) -> Iterator[Record]:
    """The file's CSV records, the file open while they are read; only ``encodings`` if given."""
    shown = shown_path(path)
    with open_csv(path) as (text, encoding):
        if encodings and encoding not in encodings:
            raise UsageError(
                f"{shown}:1: the header is not valid {encodings[0]}"
                f" (a {encoding} file: save the file as {encodings[0]})"
            )
        yield from records(text, shown, encoding)


# ------------------------------------------------------------------ the suppression file
def read_suppressed(path: Path | None) -> set[str]:
    """Addresses never to send to: a CSV with an email column anywhere, or one address a line.

    The column is found by its usual names (email, E-mail Address, mail…), a cell
    may be ``Name <address>``, and the file may be UTF-8 or UTF-16/32 with a byte
    order mark. A named file that is missing, or a row that gives no address, is
    an error before anything is sent: suppressing nobody is never assumed.
    """
    if path is None:
        return set()
    shown = shown_path(path)
    if not path.exists():
        raise UsageError(
            f"{shown}: the suppression file does not exist, so nobody would be excluded"
            " (create it, empty if nobody has unsubscribed yet)"
        )
    suppressed: set[str] = set()
    problems: list[Problem] = []
    column: int | None = None  # the email column, once the first row is read
    headerless = False
    for line, cells, problem in _records_of(path):
        if cells is None or not "".join(cells).strip():
            if problem:
                problems.append(Problem(shown, line, 0, "", problem))
            continue
        if column is None:
            found = _suppression_column(cells)
            if isinstance(found, str):  # the rest cannot be read without a column
                problems.append(Problem(shown, line, 0, "", found))
                break
            column, headerless = found
            if not headerless:
                continue
        addresses, problem = _suppressed_row(cells, column, headerless)
        if problem:
            problems.append(Problem(shown, line, 0, "", problem))
        suppressed.update(dedupe_key(address) for address in addresses)
    if problems:
        raise ContentError(_capped(problems))
    return suppressed


def _suppression_column(cells: list[str]) -> tuple[int, bool] | str:
    """(the email column, whether there is no header) from the first row, or what is wrong."""
    for names in (EMAIL_HEADERS, LOOSE_EMAIL_HEADERS):  # 'address' only when no 'email'
        found = email_columns(cells, names)
        if len(found) > 1:
            columns = ", ".join(_printable(cells[i].strip()) for i in found)
            return f"more than one email column ({columns}): keep one"
        if found:
            return found[0], False
    filled = [i for i, cell in enumerate(cells) if cell.strip()]
    if len(filled) == 1 and _addresses(cells[filled[0]]):
        return filled[0], True
    return (
        f"no email column (found: {_printable(', '.join(cells))}):"
        " name it 'email', or give one address a line"
    )


def _suppressed_row(cells: list[str], column: int, headerless: bool) -> tuple[list[str], str]:
    """(addresses, problem) of one row of a suppression file; the problem is '' when it reads."""
    if headerless and sum(1 for cell in cells if cell.strip()) > 1:
        return [], f"one address a line expected, found {len(cells)} cells"
    cell = cells[column].strip() if len(cells) > column else ""
    if not cell:
        return [], "no address in the email column"
    addresses = _addresses(cell)
    if not addresses:
        return [], f"{_printable(cell)!r} is not an email address (nor Name <address>)"
    return addresses, ""


def _addresses(cell: str) -> list[str]:
    """The addresses of ``a@b.org``, ``Name <a@b.org>`` or a list of them; [] if a part is not.

    A display name with a comma (``Smith, Bob <bob@b.org>``, a CSV reader has taken
    its quotes) is one name and one address, not a list.
    """
    named = _NAMED.match(cell)  # the usual cases first: getaddresses is slow
    address = normalize(named.group(1) if named else cell)
    if validate_email(address) is None:
        return [address]
    parts = [normalize(part) for _, part in getaddresses([cell])]
    if not parts or any(validate_email(part) is not None for part in parts):
        return []
    return parts


def _capped(problems: list[Problem]) -> list[Problem]:
    """The first MAX_PROBLEMS problems, and one that counts the rest (a file read all wrong)."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    rest = problems[MAX_PROBLEMS:]
    note = f"and {plural(len(rest), 'more problem')} from this line on"
    return [*problems[:MAX_PROBLEMS], Problem(rest[0].path, rest[0].line, 0, "", note)]


# ------------------------------------------------------------------ the recipients CSV
def _table(path: Path) -> tuple[list[str], int, Iterator[Record]]:
    """(the header's column names, the email column's index, the records after it) of a list.

    The header is read at once, so a list without an email column fails before
    any row is taken for a recipient; the records are streamed.
    """
    shown = shown_path(path)
    rows = _records_of(path, LIST_ENCODINGS)
    line, header, problem = next(rows, (1, [], None))
    if header is None:
        reason = problem or "unreadable"
        if reason.startswith("not valid"):
            reason = f"the header is {reason}"
        raise UsageError(f"{shown}:{line}: {reason}")
    columns = email_columns(header, EMAIL_HEADERS)
    if len(columns) > 1:
        names = ", ".join(_printable(header[i].strip()) for i in columns)
        raise UsageError(f"{shown}:{line}: more than one email column ({names}): keep one")
    if not columns:
        found = _printable(", ".join(header)) or "nothing"
        raise UsageError(f"{shown}:{line}: needs an 'email' column (found: {found})")
    return [cell.strip().lower() for cell in header], columns[0], rows


def _labelled(names: list[str], cells: list[str]) -> list[tuple[str, str]]:
    """Each cell with its column's name ('#6' past the header); a short row's missing ones ''."""
    padded = cells + [""] * (len(names) - len(cells))
    return [(names[i] if i < len(names) else f"#{i + 1}", cell) for i, cell in enumerate(padded)]


def _swallowed(
    shown: str, line: int, cells: list[tuple[str, str]], at: int, width: int
) -> Iterator[Exclusion]:
    """The rows an unbalanced quote pulled into one field, each reported on its own line.

    A quote that is opened and never closed makes the CSV reader take every
    following line, up to the next quote, as one field: those recipients would
    vanish without a word. Each swallowed line that reads as a row (as many
    cells as the header, or a valid address where the email column is) is
    named; an injected "Bcc: x@y" is not a row.
    """
    base = line
    for key, value in cells:
        pieces = LINE_BREAK.split(value)
        for offset, piece in enumerate(pieces[1:], 1):
            if "@" not in piece:
                continue
            try:
                row = next(csv.reader([piece]))
            except (csv.Error, StopIteration):
                continue
            address = normalize(row[at]) if len(row) > at else ""
            if "@" in address and (len(row) == width or validate_email(address) is None):
                yield Exclusion(
                    shown,
                    base + offset,
                    _printable(address),
                    f"not read: inside the quoted {key!r} field that starts on line {line}"
                    " (an unbalanced quote?)",
                )
        base += len(pieces) - 1


def _refusal(cells: list[tuple[str, str]]) -> str | None:
    """Why a row's cells cannot go into a message (a header injection, an overlong field)."""
    for key, value in cells:
        if any(c in value for c in "\r\n\x00"):
            return f"header injection: column {key!r} contains a line break or NUL"
        if len(value) > MAX_FIELD_LENGTH:
            return f"column {key!r} is longer than {MAX_FIELD_LENGTH} characters"
    return None


FILE_SUPPRESSED = "suppressed: unsubscribed or bounced"  # the reason of a suppression file's row


def scan_audience(
    path: Path, suppressed: Mapping[str, str] | set[str] | None = None
) -> Iterator[Recipient | Exclusion]:
    """Stream a recipients CSV: each row a Recipient, or an Exclusion with its line and reason.

    ``suppressed``: the dedupe keys not to send to; a mapping gives each one's reason
    (the suppression store's "suppressed (unsubscribed, one-click): …"), a set the file's.

    The email column is the one named email, e-mail, Email Address… (any case,
    space, '-' or '_'); UTF-16 and UTF-32 files with a byte order mark are read.
    """
    shown = shown_path(path)
    seen: dict[str, int] = {}
    suppressed = suppressed or set()
    names, at, rows = _table(path)
    width = len([name for name in names if name])
    for line, row, problem in rows:
        if row is None:
            yield Exclusion(shown, line, "", problem or "unreadable row")
            continue
        cells = _labelled(names, row)
        address = normalize(cells[at][1])
        bad = (validate_email(address) or _refusal(cells)) if address else "no address"
        if bad is not None:
            yield Exclusion(shown, line, _printable(address), f"invalid: {bad}")
            yield from _swallowed(shown, line, cells, at, width)
            continue
        key = dedupe_key(address)
        if key in suppressed:
            why = suppressed[key] if isinstance(suppressed, Mapping) else FILE_SUPPRESSED
            yield Exclusion(shown, line, address, why)
            continue
        if key in seen:
            yield Exclusion(shown, line, address, f"duplicate: same address as line {seen[key]}")
            continue
        seen[key] = line
        fields = dict(cells[: len(names)])
        fields["email"] = address
        yield Recipient(address, fields)


def tally_exclusions(exclusions: Iterable[Exclusion]) -> dict[str, int]:
    """How many rows were excluded for each kind of reason (the text before any ':')."""
    tally: dict[str, int] = {}
    for exclusion in exclusions:
        kind = exclusion.reason.split(":")[0]
        tally[kind] = tally.get(kind, 0) + 1
    return tally
