"""Finding the message a bounce is about: a journal row by its id or by its Message-ID.

`dispatch bounces` reads journals that a send may be writing at that moment, so
each file is opened read-only (``mode=ro``) and nothing in it changes. Only rows
that were handed to the relay (``sent``, or ``sending`` when a crash left the fate
unknown) can have bounced: a pending row never left, so a bounce "for" it is forged.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from dispatch_mail.delivery.journal.file import connect_for_reading, explain
from dispatch_mail.errors import JournalError
from dispatch_mail.project.addresses import dedupe_key
from dispatch_mail.project.paths import shown_path

_MAILED = "('sent', 'sending', 'failed')"  # failed: a later attempt failed, an earlier one may not
_COLUMNS = "id, email, message_id, state"


@dataclass(frozen=True)
class SentRow:
    """One recipient of one send, as a bounce is mapped back to it."""

    journal: Path
    issue: str | None  # the journal's meta "issue": the slug it was bound to
    id: int
    email: str
    message_id: str
    state: str


class JournalLookup:
    """One journal opened read-only for lookups; a context manager that closes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection = connect_for_reading(path)
        self.issue: str | None = self._issue()

    def _issue(self) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key='issue'", ())
        return None if row is None else str(row[0])

    def by_id(self, row_id: int) -> SentRow | None:
        """The row ``row_id`` (a VERP token's) if its message was handed to the relay."""
        return self._row(
            f"SELECT {_COLUMNS} FROM recipients WHERE id=? AND state IN {_MAILED}", (row_id,)
        )

    def by_message_id(self, message_id: str) -> SentRow | None:
        """The row whose message carried ``message_id`` (with or without its angle brackets)."""
        bare = message_id.strip().strip("<>")
        return self._row(
            f"SELECT {_COLUMNS} FROM recipients WHERE message_id IN (?, ?) AND state IN {_MAILED}",
            (f"<{bare}>", bare),
        )

    def by_email(self, email: str) -> SentRow | None:
        """The row of ``email`` (compared as the list compares it) if it was mailed."""
        return self._row(
            f"SELECT {_COLUMNS} FROM recipients WHERE email_key=? AND state IN {_MAILED}",
            (dedupe_key(email),),
        )

    def _row(self, sql: str, args: tuple[object, ...]) -> SentRow | None:
        found = self._one(sql, args)
        if found is None:
            return None
        row_id, email, message_id, state = found
        assert isinstance(row_id, int)
        return SentRow(self.path, self.issue, row_id, str(email), str(message_id), str(state))

    def _one(self, sql: str, args: tuple[object, ...]) -> tuple[object, ...] | None:
        try:
            row = self._conn.execute(sql, args).fetchone()
        except sqlite3.Error as exc:
            raise JournalError(
                f"{shown_path(self.path)}: cannot read the journal: {explain(exc)}", self.path
            ) from None
        return None if row is None else tuple(row)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> JournalLookup:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
