"""`dispatch status`: what a send's journals say, as data; the CLI prints it."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dispatch_mail.delivery.csvfile import inert_cell
from dispatch_mail.delivery.journal import Deferred, Journal
from dispatch_mail.errors import NothingSent
from dispatch_mail.project.files import atomic_write
from dispatch_mail.project.loader import load
from dispatch_mail.project.paths import build_dir, journal_paths, shown_path


@dataclass(frozen=True)
class Failure:
    email: str
    code: int | None
    reply: str


@dataclass(frozen=True)
class JournalStatus:
    """One journal's counts, failures and (when asked) exclusions."""

    journal: str  # as shown to the user
    counts: Mapping[str, int]
    uncertain: int
    failures: tuple[Failure, ...]
    excluded: tuple[str, ...] = ()
    sending_now: str | None = None  # the send that holds the journal now: pid, host, since
    deferred: tuple[Deferred, ...] = ()
    sent_after_deferral: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "journal": self.journal,
            "counts": dict(self.counts),
            "uncertain": self.uncertain,
            "failures": [
                {"email": f.email, "code": f.code, "reply": f.reply} for f in self.failures
            ],
            "excluded": list(self.excluded),
            "sending_now": self.sending_now,
            "deferred": [
                {
                    "email": d.email,
                    "code": d.last_code,
                    "reply": d.last_reply,
                    "due": d.due,
                    "since": d.since,
                    "deferrals": d.deferrals,
                }
                for d in self.deferred
            ],
            "sent_after_deferral": self.sent_after_deferral,
        }


def send_status(
    issue_dir: Path,
    *,
    list_name: str | None = None,
    journal_path: Path | None = None,
    excluded: bool = False,
) -> list[JournalStatus]:
    """Every journal of the issue's sends (or the one named), read without changing them.

    Each is opened read-only, so this is safe while a send writes it, and leaves a
    file that is not a journal exactly as it was.
    """
    project, issue = load(issue_dir)
    paths = [journal_path] if journal_path else journal_paths(project, issue.slug, list_name)
    if not paths:
        folder = build_dir(project, issue.slug)
        raise NothingSent(
            f"no send journal for {issue.slug} in {shown_path(folder)} (nothing sent yet?)",
            issue=issue.slug,
        )
    statuses = []
    for path in paths:
        with Journal.read(path) as journal:
            holder = journal.lease_holder()
            statuses.append(
                JournalStatus(
                    journal=shown_path(path),
                    counts=journal.counts(),
                    uncertain=journal.uncertain_count(),
                    failures=tuple(
                        Failure(r.email, r.last_code, r.last_reply or "")
                        for r in journal.rows("failed")
                    ),
                    excluded=tuple(str(e) for e in journal.exclusions()) if excluded else (),
                    sending_now=holder.describe() if holder else None,
                    deferred=tuple(journal.deferred()),
                    sent_after_deferral=journal.sent_after_deferral(),
                )
            )
    return statuses


def write_failures_csv(path: Path, statuses: list[JournalStatus]) -> None:
    """Every journal's failed recipients in one CSV (email, code, reply), written atomically.

    Addresses come from the list and replies from the relay, so a cell that starts
    with = + - @ TAB, CR or NUL gets a leading ' (OWASP, CSV injection): a spreadsheet
    then shows it as text instead of running it as a formula.
    """

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["email", "code", "reply"])
    for status in statuses:
        writer.writerows(
            [inert_cell(f.email), f.code or "", inert_cell(f.reply)] for f in status.failures
        )
    atomic_write(path, buffer.getvalue())
