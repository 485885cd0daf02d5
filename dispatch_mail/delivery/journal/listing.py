"""Reading the list into the journal: the list as it is at each run is the truth.

A send can span days (a daily quota, a stop and a resume): meanwhile people
unsubscribe, are deleted from the list, or have their name corrected. Each run
reads the list again, in one transaction: new recipients are added; those
already sent or failed keep their row and history; whoever is still to send but
now suppressed or gone from the list is not sent; a changed name or spelling of
the address reaches those still to send.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass

from dispatch_mail.delivery.audience import Exclusion, Recipient
from dispatch_mail.delivery.journal.file import rollback
from dispatch_mail.mail.headers import make_message_id
from dispatch_mail.project.addresses import dedupe_key

# the states of a row whose message is still to go
UNSENT = "('pending','held','sending','deferred')"
_BATCH = 2000
_Values = tuple[str, str, str, str, float, float]


@dataclass(frozen=True)
class ListSync:
    """What reading the list into the journal did."""

    added: int  # new recipients
    excluded: int  # rows of the list that are not sent to, with their reasons
    removed: int  # recipients still to send whom the list no longer has


def sync_list(
    conn: sqlite3.Connection, items: Iterable[Recipient | Exclusion], domain: str, slug: str
) -> ListSync:
    """Make the journal's recipients still to send the list's, in one commit."""
    now = time.time()
    batch: list[_Values] = []
    exclusions: list[tuple[str, int, str, str]] = []
    listed: set[str] = set()
    prefix = secrets.token_hex(4)
    conn.execute("BEGIN IMMEDIATE")
    try:
        before = _count(conn)
        conn.execute("DELETE FROM exclusions")
        for n, item in enumerate(items):
            if isinstance(item, Recipient):
                key = dedupe_key(item.email)
                listed.add(key)
                # the Message-ID is fixed once: every retry of this recipient reuses it
                # (RFC 1047 duplicates)
                message_id = make_message_id(slug, prefix, n, domain)
                fields = json.dumps(item.fields, ensure_ascii=False)
                batch.append((item.email, key, fields, message_id, now, now))
                if len(batch) >= _BATCH:
                    _upsert(conn, batch)
            else:
                exclusions.append((item.path, item.line, item.email, item.reason))
        _upsert(conn, batch)
        added = _count(conn) - before
        conn.executemany(
            "INSERT INTO exclusions(source, line, email, reason) VALUES (?,?,?,?)", exclusions
        )
        # whoever unsubscribed or bounced since the send started is not sent to now;
        # rows already sent or failed keep their history
        conn.executemany(
            f"DELETE FROM recipients WHERE email_key=? AND state IN {UNSENT}",
            [(dedupe_key(e[2]),) for e in exclusions if e[3].startswith("suppressed") and e[2]],
        )
        removed = _remove_unlisted(conn, listed) if before else 0
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return ListSync(added, len(exclusions), removed)


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM recipients").fetchone()[0])


def _upsert(conn: sqlite3.Connection, batch: list[_Values]) -> None:
    """New rows inserted; a row still to send takes the list's current name and spelling."""
    if batch:
        conn.executemany(
            "INSERT INTO recipients(email, email_key, fields, message_id, created_at,"
            " updated_at) VALUES (?,?,?,?,?,?) ON CONFLICT(email_key) DO UPDATE SET"
            " email=excluded.email, fields=excluded.fields, updated_at=excluded.updated_at"
            f" WHERE recipients.state IN {UNSENT} AND (recipients.fields IS NOT"
            " excluded.fields OR recipients.email IS NOT excluded.email)",
            batch,
        )
        batch.clear()


def _remove_unlisted(conn: sqlite3.Connection, listed: set[str]) -> int:
    """Delete the rows still to send of those the list no longer has; how many."""
    gone = [
        (row_id,)
        for row_id, key in conn.execute(
            f"SELECT id, email_key FROM recipients WHERE state IN {UNSENT}"
        )
        if key not in listed
    ]
    conn.executemany("DELETE FROM recipients WHERE id=?", gone)
    return len(gone)
