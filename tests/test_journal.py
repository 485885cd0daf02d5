"""The send journal: real SQLite files, every state change committed, nothing foreign trusted."""

from __future__ import annotations

import csv
import sqlite3
import time
from pathlib import Path

import pytest

from dispatch_mail.delivery.audience import Exclusion, Recipient
from dispatch_mail.delivery.journal import APPLICATION_ID, SCHEMA_VERSION, STATES, Journal
from dispatch_mail.errors import JournalError, UsageError
from tests.helpers.send import invoke, recipients, send_args
from tests.helpers.smtp_server import reply_always


def people(*addresses: str) -> list[Recipient]:
    return [Recipient(a, {"email": a, "name": a.split("@")[0].title()}) for a in addresses]


def states(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT email, state FROM recipients"))


@pytest.fixture
def journal(tmp_path):
    with Journal.open(tmp_path / "send.journal") as j:
        j.bind("one", "hash-1")
        yield j


# ------------------------------------------------------------------ the file
def test_a_new_journal_is_marked_as_ours_and_in_wal_mode(tmp_path):
    path = tmp_path / "deep" / "send.journal"
    Journal.open(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_foreign_sqlite_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(JournalError, match="not a dispatch journal"):
        Journal.open(path)
    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    path = tmp_path / "send.journal"
    path.write_text("email,state\nann@example.com,sent\n")
    with pytest.raises(JournalError, match="not an SQLite file"):
        Journal.open(path)
    assert path.read_text().startswith("email,state")


def test_a_damaged_journal_is_refused(tmp_path):
    path = tmp_path / "send.journal"
    with Journal.open(path) as j:
        j.bind("one", "h")
        j.add(people(*(f"r{i}@example.com" for i in range(2000))), "example.org", "one")
        j.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    data[4096 : len(data) - 4096] = b"\xa5" * (len(data) - 8192)  # keep the header, ruin the pages
    path.write_bytes(bytes(data))
    with pytest.raises(JournalError, match="damaged"):
        Journal.open(path)


def test_a_journal_of_a_newer_dispatch_is_refused(tmp_path):
    path = tmp_path / "send.journal"
    Journal.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(JournalError, match="schema version"):
        Journal.open(path)


def test_reading_a_journal_that_does_not_exist_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no journal"):
        Journal.open(tmp_path / "none.journal", create=False)
    assert not (tmp_path / "none.journal").exists()


# ------------------------------------------------------------------ binding
def test_a_journal_belongs_to_one_issue_and_one_content(tmp_path):
    path = tmp_path / "send.journal"
    with Journal.open(path) as j:
        assert j.bind("one", "hash-1") is True
    with Journal.open(path) as j:
        assert j.bind("one", "hash-1") is False
        with pytest.raises(JournalError, match="belongs to issue 'one'"):
            j.bind("two", "hash-1")
        with pytest.raises(JournalError, match="rendered issue changed") as changed:
            j.bind("one", "hash-2")
        assert changed.value.hint == "force" and changed.value.path == path
        assert "--" not in str(changed.value), "the CLI names its own options"
        assert j.bind("one", "hash-2", force=True) is False
        assert j.get_meta("content_hash") == "hash-2"


# ------------------------------------------------------------------ rows
def test_adding_keeps_existing_rows_and_their_message_ids(journal):
    assert journal.add(people("ann@example.com", "bob@example.com"), "example.org", "one") == (2, 0)
    ids = {r.email: r.message_id for r in journal.rows()}
    first = next(journal.rows())
    journal.mark_sending(first.id)
    journal.mark_sent(first.id, 250, "OK")
    added, excluded = journal.add(
        [
            *people("ann@example.com", "bob@example.com", "carl@example.com"),
            Exclusion("l.csv", 5, "x", "invalid: bad"),
        ],
        "example.org",
        "one",
    )
    assert (added, excluded) == (1, 1)
    rows = {r.email: r for r in journal.rows()}
    assert rows["ann@example.com"].state == "sent"
    assert {e: rows[e].message_id for e in ids} == ids
    assert len({r.message_id for r in rows.values()}) == 3
    assert all(
        r.message_id.startswith("<one.") and r.message_id.endswith("@example.org>")
        for r in rows.values()
    )
    assert journal.exclusions() == [Exclusion("l.csv", 5, "x", "invalid: bad")]


def test_every_state_change_is_committed_at_once(journal, tmp_path):
    journal.add(people("ann@example.com"), "example.org", "one")
    (row,) = journal.rows()
    journal.mark_sending(row.id)
    assert states(journal.path) == {"ann@example.com": "sending"}  # seen by another connection
    journal.mark_sent(row.id, 250, "2.0.0 queued")
    assert states(journal.path) == {"ann@example.com": "sent"}
    (row,) = journal.rows()
    assert (row.attempts, row.last_code, row.last_reply) == (1, 250, "2.0.0 queued")


def test_retries_wait_for_their_time_and_failures_keep_the_reply(journal):
    journal.add(people("ann@example.com", "bob@example.com"), "example.org", "one")
    ann, bob = journal.rows()
    journal.mark_sending(ann.id)
    journal.mark_retry(ann.id, 451, "rcpt: 451 try later", time.time() + 60)
    journal.mark_sending(bob.id)
    journal.mark_failed(bob.id, 550, "rcpt: 550 no such user")
    assert journal.next_batch(0, 10) == []
    assert journal.next_retry_at() > time.time() + 50
    assert journal.counts() == {
        "pending": 1,
        "sending": 0,
        "sent": 0,
        "deferred": 0,
        "failed": 1,
        "held": 0,
    }
    (failed,) = journal.rows("failed")
    assert (failed.email, failed.last_code, failed.last_reply) == (
        "bob@example.com",
        550,
        "rcpt: 550 no such user",
    )


def test_a_state_outside_the_list_is_refused_by_the_file_itself(journal):
    journal.add(people("ann@example.com"), "example.org", "one")
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        journal.conn.execute("UPDATE recipients SET state='lost'")
    for state in STATES:  # and every state of the list is allowed
        journal.conn.execute("UPDATE recipients SET state=?", (state,))


def test_a_message_that_never_reached_the_relay_costs_no_attempt(journal):
    journal.add(people("ann@example.com"), "example.org", "one")
    (row,) = journal.rows()
    journal.mark_sending(row.id)
    journal.mark_not_attempted(row.id, "connection refused")
    (row,) = journal.rows()
    assert (row.state, row.attempts) == ("pending", 0)
    assert row.last_reply == "not attempted: connection refused"


def test_a_quota_counts_the_messages_sent_since_a_moment(journal):
    journal.add(people("ann@example.com", "bob@example.com"), "example.org", "one")
    ann, bob = journal.rows()
    before = time.time()
    journal.mark_sending(ann.id)
    journal.mark_sent(ann.id, 250, "OK")
    journal.mark_sending(bob.id)
    journal.mark_failed(bob.id, 550, "no")
    after = time.time()
    assert journal.sent_since(before - 1) == 1, "sent counts, failed does not"
    assert journal.sent_since(after) == 0


def test_next_batch_goes_in_id_order_after_a_given_id(journal):
    journal.add(people(*(f"r{i}@example.com" for i in range(10))), "example.org", "one")
    first = journal.next_batch(0, 4)
    assert [r.email for r in first] == [f"r{i}@example.com" for i in range(4)]
    assert [r.email for r in journal.next_batch(first[-1].id, 100)] == [
        f"r{i}@example.com" for i in range(4, 10)
    ]


def test_rows_left_in_flight_are_resent_or_held(tmp_path):
    path = tmp_path / "send.journal"
    with Journal.open(path) as j:
        j.bind("one", "h")
        j.add(
            people("ann@example.com", "bob@example.com", "carl@example.com"), "example.org", "one"
        )
        ann, bob, _ = j.rows()
        j.mark_sending(ann.id)
        j.mark_sending(bob.id)
        j.mark_sent(bob.id, 250, "OK")
        j.mark_sending(ann.id)
        # the process dies here: ann's message may or may not be at the server
    with Journal.open(path) as j:
        assert [r.email for r in j.in_flight()] == ["ann@example.com"]
        assert [r.email for r in j.recover(resend=False)] == ["ann@example.com"]
        assert j.counts()["held"] == 1 and j.uncertain_count() == 1
        assert j.release_held() == 1
        assert j.counts() == {
            "pending": 2,
            "sending": 0,
            "sent": 1,
            "deferred": 0,
            "failed": 0,
            "held": 0,
        }
        (row,) = [r for r in j.rows() if r.email == "ann@example.com"]
        assert row.message_id == ann.message_id and "in flight" in (row.last_reply or "")


def test_someone_suppressed_since_the_send_started_is_not_sent_to(journal):
    journal.add(
        people("ann@example.com", "bob@example.com", "carl@example.com"), "example.org", "one"
    )
    ann = next(journal.rows())
    journal.mark_sending(ann.id)
    journal.mark_sent(ann.id, 250, "OK")
    journal.add(
        [
            Exclusion("l.csv", 2, "ann@example.com", "suppressed: unsubscribed or bounced"),
            Exclusion("l.csv", 3, "bob@example.com", "suppressed: unsubscribed or bounced"),
            *people("carl@example.com"),
        ],
        "example.org",
        "one",
    )
    assert {r.email: r.state for r in journal.rows()} == {
        "ann@example.com": "sent",
        "carl@example.com": "pending",
    }


# ------------------------------------------------------------------ through the command line
def test_rows_move_from_pending_through_sending_to_sent(project, server):
    path = project.csv(recipients(6))
    seen_at_data: dict[str, str] = {}

    def look(address: str, attempt: int) -> None:
        # the server holds the message but has not answered: the journal must say 'sending'
        with sqlite3.connect(f"file:{project.journal}?mode=ro", uri=True) as conn:
            seen_at_data[address] = conn.execute(
                "SELECT state FROM recipients WHERE email=?", (address,)
            ).fetchone()[0]
        conn.close()

    plan_only = [a for a in send_args(project, server, path) if a != "--yes"]
    result = invoke(*plan_only)
    assert result.exit_code == 2  # the plan is in the journal; without a terminal it will not ask
    assert "add --yes" in result.stderr and server.handler.count() == 0
    assert set(states(project.journal).values()) == {"pending"}

    server.handler.fail("DATA", look)
    result = invoke(*send_args(project, server, path))
    assert result.exit_code == 0, result.output
    assert seen_at_data == {email: "sending" for email, _ in recipients(6)}
    assert set(states(project.journal).values()) == {"sent"}


def test_a_second_run_sends_nothing_and_new_rows_only_go_to_the_new(project, server):
    path = project.csv(recipients(5))
    assert invoke(*send_args(project, server, path)).exit_code == 0
    assert server.handler.count() == 5

    again = invoke(*send_args(project, server, path))
    assert again.exit_code == 0
    assert "nothing to send" in again.output
    assert server.handler.count() == 5

    project.csv(recipients(8))  # three more subscribed meanwhile
    more = invoke(*send_args(project, server, path))
    assert more.exit_code == 0, more.output
    assert "resuming:" in more.output and "5 already sent" in more.output
    assert server.handler.per_recipient() == {email: 1 for email, _ in recipients(8)}


def test_a_content_change_refuses_to_resume_without_force(project, server):
    path = project.csv(recipients(4))
    assert invoke(*send_args(project, server, path)).exit_code == 0
    project.csv(recipients(6))
    project.change_content("A corrected item.")

    refused = invoke(*send_args(project, server, path))
    assert refused.exit_code == 1
    assert "changed since this send started" in refused.stderr and "--force" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert server.handler.count() == 4

    forced = invoke(*send_args(project, server, path, "--force"))
    assert forced.exit_code == 0, forced.output
    assert server.handler.per_recipient() == {email: 1 for email, _ in recipients(6)}
    assert "A corrected item." in server.messages[-1].message.get_body(("plain",)).get_content()


@pytest.mark.parametrize("kind", ["foreign", "not sqlite", "damaged"])
def test_a_journal_that_is_not_ours_is_a_clear_one_line_error(project, server, kind):
    path = project.csv(recipients(3))
    if kind == "foreign":
        with sqlite3.connect(project.journal) as conn:
            conn.execute("CREATE TABLE t (x)")
        conn.close()
    elif kind == "not sqlite":
        project.journal.write_bytes(b"\x00garbage\xff" * 100)
    else:
        project.journal.write_bytes(b"SQLite format 3\x00" + b"\x10\x00\x01\x01" + b"\xff" * 5000)
    for args in (
        send_args(project, server, path),
        ["status", str(project.issue_dir), "--journal", str(project.journal)],
    ):
        result = invoke(*args)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error: ") and "journal" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.output
    assert server.handler.count() == 0


def test_status_reports_counts_and_writes_the_failures(project, server, tmp_path):
    path = project.csv(recipients(6))
    bad = {"r00001@example.com", "r00004@example.com"}
    server.handler.fail("RCPT", reply_always("550 5.1.1 no such user here", bad))
    result = invoke(*send_args(project, server, path))
    assert result.exit_code == 1

    out = tmp_path / "failed.csv"
    status = invoke(
        "status",
        str(project.issue_dir),
        "--journal",
        str(project.journal),
        "--failures-csv",
        str(out),
    )
    assert status.exit_code == 0, status.output
    assert "4/6 sent, 0 pending, 0 deferred, 2 failed" in status.output
    assert "failed: r00001@example.com: rcpt: 550 5.1.1 no such user here" in status.output
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["email"] for r in rows} == bad
    assert {r["code"] for r in rows} == {"550"}
    assert all("no such user" in r["reply"] for r in rows)

    as_json = invoke(
        "status", str(project.issue_dir), "--journal", str(project.journal), "--format", "json"
    )
    import json

    (entry,) = json.loads(as_json.stdout)
    assert entry["counts"]["sent"] == 4 and len(entry["failures"]) == 2


def test_status_finds_the_default_journal_and_lists_exclusions(project, server):
    (project.root / "lists" / "subscribers.csv").write_text(
        "email,name\nann@example.com,Ann\nbad,Bad\ngone@example.com,G\n"
    )
    (project.root / "lists" / "suppressed.csv").write_text("email\ngone@example.com\n")
    result = invoke(
        "send", str(project.issue_dir), "--list", "subscribers", "--yes", "-q", *server.cli_args()
    )
    assert result.exit_code == 0, result.output
    assert (project.root / "build" / "one" / "send-subscribers.journal").is_file()
    status = invoke("status", str(project.issue_dir), "--excluded")
    assert status.exit_code == 0
    assert "1/1 sent" in status.output
    assert "excluded:" in status.output and ":3: bad: invalid:" in status.output
    assert ":4: gone@example.com: suppressed" in status.output
    assert server.handler.per_recipient() == {"ann@example.com": 1}


def test_status_without_a_journal_is_a_usage_error(project):
    result = invoke("status", str(project.issue_dir))
    assert result.exit_code == 2 and "no send journal" in result.stderr


def test_failures_of_every_journal_go_into_one_csv(project, server, tmp_path):
    lists = project.root / "lists"
    (project.root / "dispatch.yaml").write_text(
        (project.root / "dispatch.yaml")
        .read_text()
        .replace("lists:\n", "lists:\n  partners:\n    csv: lists/partners.csv\n")
    )
    (lists / "subscribers.csv").write_text("email\nann@example.com\nbad1@example.com\n")
    (lists / "partners.csv").write_text("email\nbob@example.com\nbad2@example.com\n")
    server.handler.fail(
        "RCPT", reply_always("550 5.1.1 unknown", {"bad1@example.com", "bad2@example.com"})
    )
    for name in ("subscribers", "partners"):
        result = invoke(
            "send", str(project.issue_dir), "--list", name, "--yes", "-q", *server.cli_args()
        )
        assert result.exit_code == 1
    out = tmp_path / "failed.csv"
    status = invoke("status", str(project.issue_dir), "--failures-csv", str(out))
    assert status.exit_code == 0
    assert (
        "send-partners.journal: 1/2 sent" in status.output
        and "send-subscribers.journal: 1/2 sent" in status.output
    )
    with out.open(newline="") as handle:
        assert sorted(r["email"] for r in csv.DictReader(handle)) == [
            "bad1@example.com",
            "bad2@example.com",
        ]
