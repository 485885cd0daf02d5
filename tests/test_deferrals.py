"""Temporary refusals that outlast a run are deferred, never lost, and sent once when due.

Tried with a real Postfix answering 451 4.7.1 then restored, the first release said
"nothing to send" and those recipients never got the issue. Here a loopback relay
answers 451 to some recipients until it is "restored".
"""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from dispatch_mail.delivery.audience import Recipient
from dispatch_mail.delivery.journal import Journal
from dispatch_mail.project.loader import load
from dispatch_mail.suppression import Suppression, open_store
from tests.helpers.project import Project
from tests.helpers.send import invoke, recipients, send_args
from tests.helpers.smtp_server import SmtpServer

REFUSED = {"r00002@example.com", "r00005@example.com", "r00007@example.com"}


class Relay:
    """451 to REFUSED until restored."""

    def __init__(self) -> None:
        self.restored = False

    def __call__(self, address: str, attempt: int) -> str | None:
        if address in REFUSED and not self.restored:
            return "451 4.7.1 greylisted, try again later"
        return None


def message_ids(project: Project) -> dict[str, str]:
    with Journal.read(project.journal) as journal:
        return {row.email: row.message_id for row in journal.rows()}


def test_deferred_recipients_are_reached_once_with_their_message_id_after_the_restore(
    project: Project, server: SmtpServer
):
    relay = Relay()
    server.handler.fail("RCPT", relay)
    csv_path = project.csv(recipients(10))
    first = invoke(*send_args(project, server, csv_path, "--max-attempts", "2"))
    assert first.exit_code == 75, first.output  # EX_TEMPFAIL: nothing failed, some deferred
    assert "sent 7, failed 0, deferred 3," in first.stdout
    assert "deferred: 3 refused for now (4xx); the next is due at" in first.stderr
    assert "--retry-deferred" in first.stderr
    before = message_ids(project)
    with Journal.read(project.journal) as journal:
        deferred = {d.email: d for d in journal.deferred()}
    assert set(deferred) == REFUSED
    assert all(d.due > time.time() and d.last_code == 451 for d in deferred.values())

    status = invoke("status", str(project.issue_dir), "--journal", str(project.journal))
    assert "7/10 sent, 0 pending, 3 deferred, 0 failed" in status.stdout
    assert status.stdout.count("  deferred: r0000") == 3
    assert "451 4.7.1 greylisted" in status.stdout

    # not due yet: a plain resume sends nobody and says when
    again = invoke(*send_args(project, server, csv_path))
    assert again.exit_code == 75
    assert "nothing due now: 3 deferred, the next due at" in again.stdout
    assert server.handler.count() == 7

    relay.restored = True
    resumed = invoke(*send_args(project, server, csv_path, "--retry-deferred"))
    assert resumed.exit_code == 0, resumed.output
    assert "deferred:     3 refused for now last time" in resumed.stdout
    copies = server.handler.per_recipient()
    assert set(copies) == {email for email, _ in recipients(10)}
    assert set(copies.values()) == {1}  # everyone exactly once
    for received in server.handler.messages:
        if received.recipient in REFUSED:
            assert received.message["Message-ID"] == before[received.recipient]
    assert message_ids(project) == before
    status = invoke("status", str(project.issue_dir), "--journal", str(project.journal))
    assert "10/10 sent, 0 pending, 0 deferred, 0 failed" in status.stdout
    assert "reached after a deferral: 3" in status.stdout
    report = json.loads(
        invoke(
            "status", str(project.issue_dir), "--journal", str(project.journal), "--format", "json"
        ).stdout
    )
    assert report[0]["sent_after_deferral"] == 3 and report[0]["deferred"] == []


def test_a_deferred_recipient_who_unsubscribes_meanwhile_is_not_retried(
    project: Project, server: SmtpServer
):
    relay = Relay()
    server.handler.fail("RCPT", relay)
    csv_path = project.csv(recipients(10))
    assert invoke(*send_args(project, server, csv_path, "--max-attempts", "1")).exit_code == 75
    settings, _ = load(project.issue_dir)
    with open_store(settings) as store:
        gone = Suppression("r00005@example.com", "list", "unsubscribed", "one-click", time.time())
        store.add(gone)
    relay.restored = True
    resumed = invoke(*send_args(project, server, csv_path, "--retry-deferred"))
    assert resumed.exit_code == 0, resumed.output
    assert "suppressed (unsubscribed, one-click)" in resumed.stdout  # the plan says why
    assert "r00005@example.com" not in server.handler.per_recipient()
    assert server.handler.per_recipient()["r00002@example.com"] == 1


def test_a_deferral_is_due_after_its_wait_and_fails_when_its_lifetime_ends(tmp_path):
    with Journal.open(tmp_path / "send.journal") as journal:
        people = [Recipient(f"{n}@example.org", {"email": f"{n}@example.org"}) for n in "abc"]
        journal.add(people, "example.org", "one")
        a, b, c = journal.rows()
        for row in (a, b, c):
            journal.mark_sending(row.id)
        assert journal.mark_deferred(a.id, 451, "rcpt: 451 later", 0.05, lifetime=3600)
        assert journal.mark_deferred(b.id, 452, "rcpt: 452 full", 3600, lifetime=3600)
        assert not journal.mark_deferred(c.id, 421, "rcpt: 421 closing", 60, lifetime=0)
        assert journal.counts()["deferred"] == 2 and journal.counts()["failed"] == 1
        (failed,) = journal.rows("failed")
        assert failed.last_reply.startswith("deferred for 0 hours, gave up: rcpt: 421")
        time.sleep(0.1)  # a's wait is over; b's is an hour away
        assert journal.release_deferred() == (1, 1)
        (pending,) = journal.rows("pending")
        assert (pending.email, pending.attempts) == ("a@example.org", 0)
        assert journal.release_deferred(now=True) == (1, 0)
        # deferred again: the wait doubles, and the lifetime counts from the first deferral
        journal.mark_sending(a.id)
        assert journal.mark_deferred(a.id, 451, "rcpt: 451 later", 100, lifetime=3600)
        (again,) = journal.deferred()
        assert again.deferrals == 2 and 190 < again.due - time.time() <= 200


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE recipients (
    id INTEGER PRIMARY KEY, email TEXT NOT NULL, email_key TEXT NOT NULL UNIQUE,
    fields TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending','sending','sent','failed','held')),
    attempts INTEGER NOT NULL DEFAULT 0, message_id TEXT NOT NULL, last_code INTEGER,
    last_reply TEXT, not_before REAL NOT NULL DEFAULT 0, uncertain INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, sent_at REAL
);
CREATE TABLE exclusions (
    id INTEGER PRIMARY KEY, source TEXT, line INTEGER, email TEXT, reason TEXT
);
INSERT INTO recipients(email, email_key, fields, state, message_id, created_at, updated_at)
    VALUES ('a@example.org', 'a@example.org', '{}', 'sent', '<one.1@example.org>', 0, 0),
           ('b@example.org', 'b@example.org', '{}', 'pending', '<one.2@example.org>', 0, 0);
PRAGMA application_id=1146310740;
PRAGMA user_version=1;
"""


def test_a_journal_from_before_deferrals_is_read_as_it_is_and_upgraded_to_send(tmp_path):
    path = tmp_path / "old.journal"
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.close()
    with Journal.read(path) as journal:  # status: nothing changes
        assert journal.counts()["sent"] == 1 and journal.deferred() == []
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1
    with Journal.open(path) as journal:  # a send: the table gains the 'deferred' state
        (b,) = journal.rows("pending")
        journal.mark_sending(b.id)
        assert journal.mark_deferred(b.id, 451, "later", 60, lifetime=3600)
        assert journal.rows("sent").__next__().message_id == "<one.1@example.org>"
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2


@pytest.mark.parametrize("code", ["550 5.1.1 no such user", "554 5.7.1 rejected"])
def test_a_permanent_refusal_fails_at_once_and_is_never_deferred(
    project: Project, server: SmtpServer, code: str
):
    server.handler.fail("RCPT", lambda address, attempt: code if address in REFUSED else None)
    result = invoke(*send_args(project, server, project.csv(recipients(10))))
    assert result.exit_code == 1
    with Journal.read(project.journal) as journal:
        assert journal.counts()["failed"] == 3 and journal.counts()["deferred"] == 0
