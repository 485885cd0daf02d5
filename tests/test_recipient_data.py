"""One recipient's data, or one recipient's refusal, never stops the send to everyone else.

Real `dispatch send` and `dispatch status` processes against aiosmtpd. A single
connection (``--concurrency 1``) puts the awkward rows one after another, the
case that a count of "refusals in a row" could mistake for the message itself.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.helpers.project import Project
from tests.helpers.send import recipients, run, send_args
from tests.helpers.smtp_server import SmtpServer, reply_always

AWKWARD = range(5, 11)  # six rows in a row


def counts(journal: Path) -> dict[str, int]:
    with sqlite3.connect(journal) as conn:
        found = dict(conn.execute("SELECT state, COUNT(*) FROM recipients GROUP BY state"))
    conn.close()
    return found


def status_failures(project: Project) -> dict[str, str]:
    """What `dispatch status` says about each failed recipient: address → reason."""
    result = run(
        ["status", str(project.issue_dir), "--journal", str(project.journal)], project.root
    )
    assert result.returncode == 0, result.stderr
    failures = {}
    for line in result.stdout.splitlines():
        if line.strip().startswith("failed: "):
            address, reason = line.strip().removeprefix("failed: ").split(": ", 1)
            failures[address] = reason
    return failures


def long_address(i: int) -> str:
    """A valid address of 250 characters (local part 64, labels 57)."""
    return f"r{i:05d}" + "x" * 58 + "@" + ".".join(c * 57 for c in "abc") + ".example.com"


def test_six_names_too_long_for_a_header_do_not_stop_the_send(project):
    rows = [(e, '"' * 500 if i in AWKWARD else n) for i, (e, n) in enumerate(recipients(40))]
    with SmtpServer() as server:
        result = run(
            send_args(project, server, project.csv(rows), "--concurrency", "1"), project.root
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "error:" not in result.stderr
        assert sorted(server.handler.per_recipient().values()) == [1] * 40
    assert counts(project.journal) == {"sent": 40}


def test_recipients_whose_data_cannot_make_a_message_fail_alone_with_the_reason(project):
    # an unsubscribe URL this long leaves no room in List-Unsubscribe for a 250-character
    # address's token: those recipients' copies cannot be sent, everyone else's can
    config = project.root / "dispatch.yaml"
    text = config.read_text(encoding="utf-8")
    assert "unsubscribe?t={token}" in text
    config.write_text(
        text.replace("unsubscribe?t={token}", "unsubscribe?c=" + "x" * 650 + "&t={token}"),
        encoding="utf-8",
    )
    rows = [(long_address(i) if i in AWKWARD else e, n) for i, (e, n) in enumerate(recipients(40))]
    unsendable = {long_address(i) for i in AWKWARD}
    with SmtpServer() as server:
        result = run(
            send_args(project, server, project.csv(rows), "--concurrency", "1"), project.root
        )
        assert result.returncode == 1, result.stdout + result.stderr  # some failed for good
        assert "error:" not in result.stderr, "the send was not stopped"
        assert "sent 34, failed 6, still pending 0" in result.stdout
        reached = server.handler.per_recipient()
        assert set(reached) == {e for e, _ in rows} - unsendable
        assert all(server.handler.tries["RCPT"][a] == 0 for a in unsendable), (
            "their copies never reached the relay"
        )
    failures = status_failures(project)
    assert set(failures) == unsendable
    assert all(
        reason.startswith("not sent: ") and "List-Unsubscribe" in reason
        for reason in failures.values()
    ), failures
    with sqlite3.connect(project.journal) as conn:
        codes = {
            c for (c,) in conn.execute("SELECT last_code FROM recipients WHERE state='failed'")
        }
    conn.close()
    assert codes == {None}, "no SMTP code: no relay said this"


def test_different_refusals_after_data_one_after_another_are_not_one_cause(project):
    """Six copies refused in a row, each for a reason of its own: not the message itself."""
    refused = [email for email, _ in recipients(40)][5:11]
    replies = ["552 5.2.2 mailbox full", "554 5.7.1 rejected for policy reasons"]
    with SmtpServer() as server:
        for n, address in enumerate(refused):
            server.handler.fail("DATA", reply_always(replies[n % 2], {address}))
        result = run(
            send_args(project, server, project.csv(recipients(40)), "--concurrency", "1"),
            project.root,
        )
        assert result.returncode == 1, result.stdout + result.stderr
        assert "rejected the message itself" not in result.stderr
        assert len(server.handler.per_recipient()) == 34
    failures = status_failures(project)
    assert {a: r.split(" ", 2)[1] for a, r in failures.items()} == {
        a: replies[n % 2].split(" ", 1)[0] for n, a in enumerate(refused)
    }
    assert counts(project.journal) == {"sent": 34, "failed": 6}


def test_the_same_refusal_for_copy_after_copy_still_stops_the_send(project):
    refused = {email for email, _ in recipients(40)[5:11]}
    with SmtpServer() as server:
        server.handler.fail("DATA", reply_always("554 5.6.0 message content rejected", refused))
        result = run(
            send_args(project, server, project.csv(recipients(40)), "--concurrency", "1"),
            project.root,
        )
        assert result.returncode == 1
        assert "error: the relay rejected the message itself 5 times in a row" in result.stderr
    # the streak is the message's fault, not its recipients': they wait for the fixed run
    assert counts(project.journal) == {"sent": 5, "pending": 35}
