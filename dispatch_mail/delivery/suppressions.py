"""`dispatch suppressions`: the store as the owner sees it; list, add, lift, import, export.

Each function finds the project from a folder, opens its store (the URL given,
else DISPATCH_DATABASE_URL, else the project's SQLite file), does one thing and
closes it. An import reads the same suppression files a list's ``suppression``
names, as strictly (every bad row named with its line, nothing imported then);
importing a file twice adds nothing the second time. An export is a CSV a
spreadsheet opens without running anything in it, written whole or not at all.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dispatch_mail.delivery.audience import normalize, read_suppressed
from dispatch_mail.delivery.csvfile import inert_cell
from dispatch_mail.errors import UsageError
from dispatch_mail.project.files import atomic_write
from dispatch_mail.project.loader import find_project_root, load_project
from dispatch_mail.project.paths import shown_path
from dispatch_mail.project.schema import validate_email
from dispatch_mail.project.settings import Project
from dispatch_mail.suppression import (
    ALL_LISTS,
    REASONS,
    Reason,
    Suppression,
    SuppressionStore,
    open_store,
)

EXPORT_COLUMNS = ("email", "list", "reason", "source", "at", "issue", "evidence")


@dataclass(frozen=True)
class ImportResult:
    path: str  # the CSV as shown
    read: int  # addresses in the file
    added: int  # of them, newly suppressed; the rest already were

    @property
    def already(self) -> int:
        return self.read - self.added


# ------------------------------------------------------------------ the five commands
def list_suppressions(
    start: Path,
    *,
    reason: str | None = None,
    list_name: str | None = None,
    url: str | None = None,
) -> list[Suppression]:
    """The suppressions (of one reason; applying to one list), oldest first."""
    with _store(start, url, list_name) as store:
        return list(store.entries(reason=_reason(reason), list_name=list_name))


def add_suppression(
    start: Path,
    email: str,
    *,
    reason: str,
    list_name: str | None = None,
    url: str | None = None,
) -> tuple[Suppression, bool]:
    """Suppress one address (on every list unless one is named); False: it already was."""
    address = _address(email)
    with _store(start, url, list_name) as store:
        suppression = Suppression(
            email=address,
            list=list_name or ALL_LISTS,
            reason=_reason(reason) or "manual",
            source="manual",
            at=_now(),
        )
        return suppression, store.add(suppression)


def remove_suppression(
    start: Path, email: str, *, list_name: str | None = None, url: str | None = None
) -> int:
    """Lift an address's suppressions (on one list, or every one); how many were lifted."""
    address = _address(email)
    with _store(start, url, list_name) as store:
        return store.remove(address, list_name)


def import_suppressions(
    start: Path,
    csv_path: Path,
    *,
    list_name: str | None = None,
    reason: str = "manual",
    url: str | None = None,
) -> ImportResult:
    """Suppress every address of a suppression file (the format a list's ``suppression`` uses).

    The file is read whole before the store is touched: a file with a bad row imports nothing.
    """
    checked = _reason(reason) or "manual"
    with _store(start, url, list_name) as store:
        keys = sorted(read_suppressed(csv_path))
        at = _now()
        added = sum(
            store.add(Suppression(key, list_name or ALL_LISTS, checked, "import", at))
            for key in keys
        )
    return ImportResult(shown_path(csv_path), len(keys), added)


def export_suppressions(start: Path, csv_path: Path, *, url: str | None = None) -> int:
    """Write every suppression to a CSV (EXPORT_COLUMNS), atomically; how many rows."""
    with _store(start, url, None) as store:
        entries = list(store.entries())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for entry in entries:
        row = as_record(entry)
        writer.writerow([inert_cell(str(row[column] or "")) for column in EXPORT_COLUMNS])
    atomic_write(csv_path, buffer.getvalue())
    return len(entries)


def as_record(suppression: Suppression) -> dict[str, str | None]:
    """A suppression as data (JSON, CSV): its time in ISO 8601, UTC."""
    return {
        "email": suppression.email,
        "list": suppression.list,
        "reason": suppression.reason,
        "source": suppression.source,
        "at": datetime.fromtimestamp(suppression.at, UTC).isoformat(timespec="seconds"),
        "issue": suppression.issue,
        "evidence": suppression.evidence,
    }


# ------------------------------------------------------------------ checking what was asked
@contextmanager
def _store(start: Path, url: str | None, list_name: str | None) -> Iterator[SuppressionStore]:
    """The store of the project found from ``start``, open; the list name checked against it."""
    project = load_project(find_project_root(start))
    _check_list(project, list_name)
    with open_store(project, url=url) as store:
        yield store


def _check_list(project: Project, list_name: str | None) -> None:
    if list_name is None or list_name == ALL_LISTS or list_name in project.lists:
        return
    known = ", ".join(sorted(project.lists)) or "none"
    raise UsageError(
        f"no list {list_name!r} in dispatch.yaml (its lists: {known}; '{ALL_LISTS}': every list)"
    )


def _reason(reason: str | None) -> Reason | None:
    if reason is None:
        return None
    for known in REASONS:
        if reason == known:
            return known
    raise UsageError(f"unknown reason {reason!r} (one of: {', '.join(REASONS)})")


def _address(email: str) -> str:
    address = normalize(email)
    problem = validate_email(address)
    if problem is not None:
        raise UsageError(f"cannot use {address!r}: {problem}")
    return address


def _now() -> float:
    return time.time()
