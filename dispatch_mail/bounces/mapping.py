"""From a return message back to what we sent: the VERP address, the Message-ID, the journal.

A bounce is believed only for a message dispatch sent. The VERP return path
names the journal row exactly (its MAC cannot be forged without the secret);
without it, the returned message's Message-ID is looked up in the journals, and
last the DSN's recipient itself must be a row that was mailed. A bounce that
matches none of these ("unmatched") is reported and never recorded: a forged
bounce must not suppress a stranger, nor a subscriber who never got that mail.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dispatch_mail.bounces.classify import Classification, Subject
from dispatch_mail.delivery.journal.lookup import JournalLookup, SentRow
from dispatch_mail.errors import DispatchError
from dispatch_mail.mail.tokens import TokenKeys
from dispatch_mail.mail.verp import TOKEN, read_verp, tag_of
from dispatch_mail.project.paths import BUILD_DIR, journal_paths, shown_path
from dispatch_mail.project.settings import Project

_PREFIX = "send-"


@dataclass(frozen=True)
class Target:
    """The address an event is recorded for, and the send it came from when known."""

    email: str
    issue: str | None
    list_name: str | None  # the journal's list (for a bounce: only shown; a bounce bars every list)
    via: str  # verp, message-id, journal, token, from


@dataclass
class _Journal:
    label: str
    lookup: JournalLookup
    mtime: float


class Resolver:
    """The project's journals, opened read-only once per run, and the keys that read tokens."""

    def __init__(self, project: Project, keys: TokenKeys | None) -> None:
        self.project = project
        self.keys = keys
        self.warnings: list[str] = []
        self._journals: list[_Journal] | None = None

    def journals(self) -> list[_Journal]:
        if self._journals is None:
            self._journals = sorted(self._open_all(), key=lambda j: j.mtime, reverse=True)
        return self._journals

    def _open_all(self) -> list[_Journal]:
        build = self.project.root / BUILD_DIR
        opened: list[_Journal] = []
        if not build.is_dir():
            return opened
        for folder in sorted(p for p in build.iterdir() if p.is_dir()):
            for path in journal_paths(self.project, folder.name):
                try:
                    lookup = JournalLookup(path)
                except DispatchError as exc:
                    self.warnings.append(f"skipped {shown_path(path)}: {exc}")
                    continue
                opened.append(_Journal(_label(path), lookup, _mtime(path)))
        return opened

    def close(self) -> None:
        for journal in self._journals or []:
            journal.lookup.close()
        self._journals = None

    # ------------------------------------------------------------------ bounces, complaints
    def bounce_target(self, found: Classification, subject: Subject) -> Target | None:
        """The sent row this bounce or complaint is about, or None (unmatched)."""
        by_verp = self._by_verp(found.verp_candidates)
        if by_verp is not None:
            return by_verp
        if found.returned_message_id:
            for journal in self.journals():
                row = journal.lookup.by_message_id(found.returned_message_id)
                if row is not None:
                    return _target(row, journal.label, "message-id")
        email = subject.email or found.returned_to
        if email:
            for journal in self.journals():
                row = journal.lookup.by_email(email)
                if row is not None:
                    return _target(row, journal.label, "journal")
        return None

    def _by_verp(self, candidates: tuple[str, ...]) -> Target | None:
        """The journal row a VERP address names, under the project's or any profile's template."""
        profiles = [p.return_path for p in self.project.smtp.values()]
        templates = [t for t in (self.project.return_path, *profiles) if t and TOKEN in t]
        if not templates or self.keys is None:
            return None
        for template in dict.fromkeys(templates):
            for address in candidates:
                verp = read_verp(self.keys.secret, template, address)
                if verp is None:
                    continue
                for journal in self.journals():
                    issue = journal.lookup.issue
                    if issue is None or verp.issue_tag != tag_of(issue):
                        continue
                    if verp.list_tag != tag_of(journal.label):
                        continue
                    row = journal.lookup.by_id(verp.row)
                    if row is not None:
                        return _target(row, journal.label, "verp")
        return None

    # ------------------------------------------------------------------ unsubscribe requests
    def unsubscribe_target(self, found: Classification) -> Target | None:
        """The token's list and address; without a genuine token, the From address on every list."""
        if found.token and self.keys is not None:
            claims = self.keys.open(found.token, lifetime_days=self.project.unsubscribe.token_days)
            if claims is not None:
                return Target(claims.email, claims.issue, claims.list_name, "token")
        if found.subjects and found.subjects[0].email:
            return Target(found.subjects[0].email, None, None, "from")
        return None


def _target(row: SentRow, label: str, via: str) -> Target:
    return Target(row.email, row.issue, label, via)


def _label(path: Path) -> str:
    stem = path.name.removesuffix(".journal")
    return stem[len(_PREFIX) :] if stem.startswith(_PREFIX) else stem


def _mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
