"""Crash and resume: a real `dispatch send` process is SIGKILLed mid-send, again and again.

The server runs in a thread of the test process, so it outlives the sender and
counts what really arrived: everyone must be reached, and the duplicates (the
messages in flight when the process died) must be at most one per connection
per crash.
"""

from __future__ import annotations

import signal
import sqlite3

import pytest

from tests.helpers.project import Project
from tests.helpers.send import recipients, run, send_args, spawn
from tests.helpers.smtp_server import SmtpServer

CONCURRENCY = 4
N = 600


def kill_after(project: Project, server: SmtpServer, args: list[str], received: int) -> None:
    """Start a send, SIGKILL it once the server holds ``received`` messages in all."""
    proc = spawn(args, project.root)
    try:
        reached = server.handler.wait_for(received, timeout=30)
        assert proc.poll() is None, f"the send ended before the kill: {proc.communicate()}"
        assert reached, "the server never got that far"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def journal_counts(project: Project) -> dict[str, int]:
    with sqlite3.connect(project.journal) as conn:
        found = dict(conn.execute("SELECT state, COUNT(*) FROM recipients GROUP BY state"))
    conn.close()
    return found


def test_sigkill_mid_send_then_resume_reaches_everyone_with_few_duplicates(project, server, capsys):
    server.handler.delay = 0.004  # about 1,000 messages/s at most over 4 connections: time to kill
    args = send_args(project, server, project.csv(recipients(N)), "--concurrency", str(CONCURRENCY))
    crashes = 0
    for target in (120, 330):
        kill_after(project, server, args, target)
        crashes += 1
        assert 0 < server.handler.count() < N
        in_flight = journal_counts(project).get("sending", 0)
        assert in_flight <= CONCURRENCY, "at most one recipient in flight per connection"

    finished = run(args, project.root)
    assert finished.returncode == 0, finished.stderr
    assert "resuming:" in finished.stdout
    if in_flight:  # what the last kill left in flight is sent again, and the plan says so
        assert f"in flight:    {in_flight} were in flight" in finished.stdout
    else:
        assert "in flight:" not in finished.stdout

    copies = server.handler.per_recipient()
    assert set(copies) == {email for email, _ in recipients(N)}, "every recipient reached"
    duplicates = {email: n for email, n in copies.items() if n > 1}
    assert all(n == 2 for n in duplicates.values())
    assert len(duplicates) <= CONCURRENCY * crashes
    assert journal_counts(project) == {"sent": N}
    with capsys.disabled():
        print(
            f"\n[crash/resume] {crashes} SIGKILLs over {N} recipients: "
            f"{len(duplicates)} duplicate(s) "
            f"(bound {CONCURRENCY * crashes}): {sorted(duplicates)}"
        )

    # a message sent twice carried the same Message-ID both times, so receivers can drop the copy
    for email in duplicates:
        ids = {m.message["Message-ID"] for m in server.messages if m.recipient == email}
        assert len(ids) == 1


def test_uncertain_hold_sets_the_messages_in_flight_aside_and_status_shows_them(project, server):
    server.handler.delay = 0.03  # every connection is in DATA most of the time
    args = send_args(
        project, server, project.csv(recipients(300)), "--concurrency", str(CONCURRENCY)
    )
    kill_after(project, server, args, 40)
    in_flight = journal_counts(project).get("sending", 0)
    assert 1 <= in_flight <= CONCURRENCY
    server.handler.delay = 0

    held = run([*args, "--uncertain", "hold"], project.root)
    assert held.returncode == 0, held.stderr
    assert f"in flight:    {in_flight} were in flight when the last run stopped" in held.stdout
    assert "are held for review" in held.stdout
    assert journal_counts(project) == {"sent": 300 - in_flight, "held": in_flight}
    copies = server.handler.per_recipient()
    assert len(copies) in range(300 - in_flight, 301) and max(copies.values()) == 1

    status = run(
        ["status", str(project.issue_dir), "--journal", str(project.journal)], project.root
    )
    assert status.returncode == 0
    assert (
        f"{300 - in_flight}/300 sent, 0 pending, 0 deferred, 0 failed, {in_flight} held, "
        "0 in flight"
        in status.stdout
    )
    assert f"{in_flight} interrupted in flight at some point (possible duplicates)" in status.stdout

    again = run([*args, "--uncertain", "hold"], project.root)  # holding stays holding
    assert again.returncode == 0 and "nothing to send" in again.stdout
    assert f"held:         {in_flight} interrupted in flight" in again.stdout

    resent = run(args, project.root)  # the default, --uncertain resend, sends them after all
    assert resent.returncode == 0, resent.stderr
    assert journal_counts(project) == {"sent": 300}
    assert set(server.handler.per_recipient()) == {email for email, _ in recipients(300)}


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_a_plain_kill_leaves_a_journal_that_resumes(project, server, sig):
    server.handler.delay = 0.01
    args = send_args(project, server, project.csv(recipients(200)), "--concurrency", "2")
    proc = spawn(args, project.root)
    assert server.handler.wait_for(20, timeout=30)
    proc.send_signal(sig)
    proc.communicate(timeout=30)
    assert proc.returncode != 0
    server.handler.delay = 0
    finished = run(args, project.root)
    assert finished.returncode == 0, finished.stderr
    copies = server.handler.per_recipient()
    assert set(copies) == {email for email, _ in recipients(200)}
    assert sum(n - 1 for n in copies.values()) <= 2
