"""Recipients: read from CSV, validated, normalized, de-duplicated, and never a suppressed one.

Rows are streamed (a list of 100,000 is never held as dicts in memory twice);
every row that is excluded is accounted for with its file, line and reason, so
a send plan can say exactly who will not get the issue and why.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dispatch_mail.errors import UsageError
from dispatch_mail.project.paths import shown_path
from dispatch_mail.project.schema import validate_email

MAX_FIELD_LENGTH = 500


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


def dedupe_key(address: str) -> str:
    """Addresses that are the same mailbox in practice: the whole address case-folded."""
    return address.casefold()


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _undecodable(text: str) -> bool:
    """True when ``text`` holds bytes that were not UTF-8 (surrogateescape keeps them)."""
    return any("\udc80" <= c <= "\udcff" for c in text)


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str] | None, str | None]]:
    """(line number, row or None, problem) for each CSV record; decoding errors name their line.

    The file is decoded with surrogateescape, so a byte that is not UTF-8 costs
    only the record it is in: a strict decoder fails on the whole read-ahead
    chunk, losing (and misplacing) every row around it.
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise UsageError(f"{shown_path(path)}: cannot read: {exc.strerror or exc}") from None
    with handle:
        text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="surrogateescape", newline="")
        try:
            reader = csv.DictReader(text)
            header = reader.fieldnames
        except csv.Error as exc:
            raise UsageError(f"{shown_path(path)}:1: {exc}") from None
        if header and any(_undecodable(h or "") for h in header):
            raise UsageError(
                f"{shown_path(path)}:1: the header is not valid UTF-8 (save the file as UTF-8)"
            )
        if not header or "email" not in [h.strip().lower() for h in header]:
            found = ", ".join(header or []) or "nothing"
            raise UsageError(f"{shown_path(path)}:1: needs an 'email' column (found: {found})")
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield reader.line_num, None, f"malformed CSV: {exc}"
                continue
            values = [v for v in row.values() if isinstance(v, str)]
            # the line the record starts on (a quoted field may hold line breaks), as editors count
            line = reader.line_num - sum(len(_LINE_BREAK.findall(v)) for v in values)
            if any(_undecodable(v) for v in values):
                yield line, None, "not valid UTF-8 (save the file as UTF-8)"
                continue
            yield (
                line,
                {
                    (k or "").strip().lower(): (v if isinstance(v, str) else "")
                    for k, v in row.items()
                },
                None,
            )


def read_suppressed(path: Path | None) -> set[str]:
    """Addresses never to send to: a CSV with an 'email' column anywhere, or one address a line."""
    if path is None or not path.exists():
        return set()
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if not rows:
        return set()
    header = [cell.strip().lower() for cell in rows[0]]
    if "email" in header:
        column, rows = header.index("email"), rows[1:]
    else:
        column = 0
    return {
        dedupe_key(normalize(row[column]))
        for row in rows
        if len(row) > column and row[column].strip()
    }


def _printable(text: str, limit: int = 254) -> str:
    """An address from a refused row, safe to print: control characters escaped."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _swallowed(shown: str, line: int, row: dict[str, str]) -> Iterator[Exclusion]:
    """The rows an unbalanced quote pulled into one field, each reported on its own line.

    A quote that is opened and never closed makes the CSV reader take every
    following line, up to the next quote, as one field: those recipients would
    vanish without a word. Each swallowed line that reads as a row (as many
    cells as the header, or a valid address where the email column is) is
    named; an injected "Bcc: x@y" is not a row.
    """
    columns = list(row)  # the header's names, then "" for the cells of a row longer than the header
    at = columns.index("email") if "email" in columns else 0
    width = len([c for c in columns if c])
    base = line
    for key, value in row.items():
        pieces = _LINE_BREAK.split(value)
        for offset, piece in enumerate(pieces[1:], 1):
            if "@" not in piece:
                continue
            try:
                cells = next(csv.reader([piece]))
            except (csv.Error, StopIteration):
                continue
            address = normalize(cells[at]) if len(cells) > at else ""
            if "@" in address and (len(cells) == width or validate_email(address) is None):
                yield Exclusion(
                    shown,
                    base + offset,
                    _printable(address),
                    f"not read: inside the quoted {key!r} field that starts on line {line}"
                    " (an unbalanced quote?)",
                )
        base += len(pieces) - 1


def scan_audience(
    path: Path, suppressed: set[str] | None = None
) -> Iterator[Recipient | Exclusion]:
    """Stream a recipients CSV: each row a Recipient, or an Exclusion with its line and reason."""
    shown = shown_path(path)
    seen: dict[str, int] = {}
    suppressed = suppressed or set()
    for line, row, problem in _rows(path):
        if row is None:
            yield Exclusion(shown, line, "", problem or "unreadable row")
            continue
        address = normalize(row.get("email", ""))
        bad = validate_email(address) if address else "no address"
        if bad is None:
            for key, value in row.items():
                if any(c in value for c in "\r\n\x00"):
                    bad = f"header injection: column {key!r} contains a line break or NUL"
                    break
                if len(value) > MAX_FIELD_LENGTH:
                    bad = f"column {key!r} is longer than {MAX_FIELD_LENGTH} characters"
                    break
        if bad is not None:
            yield Exclusion(shown, line, _printable(address), f"invalid: {bad}")
            yield from _swallowed(shown, line, row)
            continue
        key = dedupe_key(address)
        if key in suppressed:
            yield Exclusion(shown, line, address, "suppressed: unsubscribed or bounced")
            continue
        if key in seen:
            yield Exclusion(shown, line, address, f"duplicate: same address as line {seen[key]}")
            continue
        seen[key] = line
        row["email"] = address
        yield Recipient(address, row)


def tally_exclusions(exclusions: Iterable[Exclusion]) -> dict[str, int]:
    """How many rows were excluded for each kind of reason (the text before any ':')."""
    tally: dict[str, int] = {}
    for exclusion in exclusions:
        kind = exclusion.reason.split(":")[0]
        tally[kind] = tally.get(kind, 0) + 1
    return tally
