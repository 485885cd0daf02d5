"""The list as it is at each run is the truth: whoever left it since the send began is not sent.

A send can span days (a quota, a stop, a crash, a resume). Every run reads the
list CSV again; the real `dispatch send` runs against a real server, which
counts what arrived for whom.
"""

from __future__ import annotations

import signal
import sqlite3

from tests.helpers.project import Project
from tests.helpers.send import recipients, run, send_args, spawn
from tests.helpers.smtp_server import reply_always

PEOPLE = [*recipients(10), ("bob@example.com", "Bob")]


def states(project: Project) -> dict[str, str]:
    with sqlite3.connect(f"file:{project.journal}?mode=ro", uri=True) as conn:
        found = dict(conn.execute("SELECT email, state FROM recipients"))
    conn.close()
    return found


def without(rows: list[tuple[str, str]], *gone: str) -> list[tuple[str, str]]:
    return [row for row in rows if row[0] not in gone]


def test_someone_deleted_from_the_list_after_a_quota_stop_is_not_sent_on_resume(project, server):
    path = project.csv(PEOPLE)
    args = send_args(project, server, path)
    stopped = run([*args, "--max-per-hour", "3"], project.root)
    assert stopped.returncode == 0 and "quota" in stopped.stderr
    assert server.handler.count() == 3
    assert states(project)["bob@example.com"] == "pending"

    project.csv(without(PEOPLE, "bob@example.com", "r00007@example.com"))
    resumed = run(args, project.root)
    assert resumed.returncode == 0, resumed.stderr
    lines = resumed.stdout.splitlines()
    assert "  removed:      2 removed from the list since the send began; not sent" in lines
    assert "  to send now:  6" in lines and "  recipients:   9 in the journal send.journal" in lines
    assert "  resuming:     3 already sent (never sent again), 0 failed" in lines
    received = server.handler.per_recipient()
    assert "bob@example.com" not in received and "r00007@example.com" not in received
    assert received == {
        email: 1 for email, _ in without(PEOPLE, "bob@example.com", "r00007@example.com")
    }
    assert "bob@example.com" not in states(project)

    again = run(args, project.root)  # removed once: not counted again
    assert again.returncode == 0 and "removed:" not in again.stdout


def test_someone_sent_then_deleted_keeps_their_history_and_is_not_counted_as_removed(
    project, server
):
    path = project.csv(PEOPLE)
    args = send_args(project, server, path)
    assert run([*args, "--max-per-hour", "3"], project.root).returncode == 0
    sent = sorted(e for e, s in states(project).items() if s == "sent")
    project.csv(without(PEOPLE, sent[0]))
    resumed = run(args, project.root)
    assert resumed.returncode == 0 and "removed:" not in resumed.stdout
    assert states(project)[sent[0]] == "sent"
    assert server.handler.per_recipient() == {email: 1 for email, _ in PEOPLE}


def test_a_deferred_retry_of_someone_deleted_from_the_list_is_not_sent(project, server):
    server.handler.fail("RCPT", reply_always("451 4.2.0 mailbox busy", {"r00001@example.com"}))
    path = project.csv(PEOPLE)
    args = send_args(project, server, path)
    # the retry is due in about an hour; the quota stops the run before then
    stopped = run([*args, "--max-per-hour", "3", "--retry-base", "3600"], project.root)
    assert stopped.returncode == 0, stopped.stderr
    assert states(project)["r00001@example.com"] == "pending"

    project.csv(without(PEOPLE, "r00001@example.com"))
    resumed = run([*args, "--retry-base", "3600"], project.root)
    assert resumed.returncode == 0, resumed.stderr
    assert "  removed:      1 removed from the list since the send began; not sent" in (
        resumed.stdout.splitlines()
    )
    assert server.handler.tries["RCPT"]["r00001@example.com"] == 1, "never tried again"
    assert set(server.handler.per_recipient()) == {e for e, _ in PEOPLE} - {"r00001@example.com"}


def test_messages_in_flight_or_held_for_someone_deleted_from_the_list_are_not_sent_again(
    project, server
):
    people = recipients(300)
    server.handler.delay = 0.02  # every connection is in DATA most of the time
    args = send_args(project, server, project.csv(people), "--concurrency", "4")
    proc = spawn(args, project.root)
    try:
        assert server.handler.wait_for(40, timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    server.handler.delay = 0
    in_flight = sorted(e for e, s in states(project).items() if s == "sending")
    assert 1 <= len(in_flight) <= 4
    held = run([*args, "--uncertain", "hold", "--max-per-hour", "45"], project.root)
    assert held.returncode == 0, held.stderr
    assert sorted(e for e, s in states(project).items() if s == "held") == in_flight
    copies_before = server.handler.per_recipient()

    pending = sorted(e for e, s in states(project).items() if s == "pending")[:5]
    project.csv(without(people, *in_flight, *pending))
    resumed = run(args, project.root)  # --uncertain resend would send the held ones again
    assert resumed.returncode == 0, resumed.stderr
    removed = len(in_flight) + len(pending)
    assert f"  removed:      {removed} removed from the list since the send began; not sent" in (
        resumed.stdout.splitlines()
    )
    assert "held:" not in resumed.stdout
    copies = server.handler.per_recipient()
    for email in in_flight:
        assert copies.get(email, 0) == copies_before.get(email, 0), "not sent again"
    assert not set(pending) & set(copies)
    assert set(copies) >= {e for e, _ in people} - set(in_flight) - set(pending)


def test_a_name_corrected_in_the_list_reaches_those_not_sent_yet(project, server):
    path = project.csv(PEOPLE)
    args = send_args(project, server, path)
    assert run([*args, "--max-per-hour", "3"], project.root).returncode == 0
    project.csv([*recipients(10), ("Bob@example.com", "Robert")])  # name and spelling corrected
    resumed = run(args, project.root)
    assert resumed.returncode == 0, resumed.stderr
    assert "removed:" not in resumed.stdout
    (bob,) = [m for m in server.messages if m.recipient.casefold() == "bob@example.com"]
    assert bob.recipient == "Bob@example.com"
    assert "Hi Robert," in bob.message.get_body(("plain",)).get_content()


def test_someone_deleted_and_added_back_is_sent_once(project, server):
    path = project.csv(PEOPLE)
    args = send_args(project, server, path)
    assert run([*args, "--max-per-hour", "3"], project.root).returncode == 0
    project.csv(without(PEOPLE, "bob@example.com"))
    assert run([*args, "--max-per-hour", "5"], project.root).returncode == 0
    assert "bob@example.com" not in states(project)
    project.csv(PEOPLE)
    finished = run(args, project.root)
    assert finished.returncode == 0, finished.stderr
    assert server.handler.per_recipient() == {email: 1 for email, _ in PEOPLE}
