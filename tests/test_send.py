"""The SMTP engine against a real server that fails on purpose: retries, refusals, drops, throttling."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from smtpd import DROP, SmtpServer, reply_always, reply_first, selected

import pytest
from conftest_send import *  # the fixtures: project, server, recorder, ca, cafile
from conftest_send import Project, recipients

from dispatch_mail.delivery import campaign
from dispatch_mail.delivery.engine import (
    DeliveryError,
    RateLimiter,
    Sender,
    SendOptions,
    SendSummary,
    SmtpSettings,
    is_loopback,
)
from dispatch_mail.delivery.journal import Row
from dispatch_mail.errors import UsageError


@dataclass
class Outcome:
    summary: SendSummary
    rows: dict[str, Row]
    counts: dict[str, int]
    seconds: float
    error: Exception | None = None
    rate_after: float | None = None  # the limiter's rate at the end (None: unlimited)


def send(
    project: Project, server: SmtpServer | None, n: int = 20, *, port: int | None = None, **options
) -> Outcome:
    """The real send path: prepare, open the journal, run the Sender to the end."""
    prepared = campaign.prepare(project.issue_dir)
    journal, _plan = campaign.open_send(
        prepared, str(project.csv(recipients(n))), journal_path=project.journal
    )
    settings = SmtpSettings(
        "127.0.0.1", port or (server.port if server else 9), tls="none", timeout=5
    )
    opts = SendOptions(**{"concurrency": 4, "retry_base": 0.02, "throttle_pause": 0.1, **options})
    sender = Sender(journal, prepared.messages, settings, opts)
    start = time.monotonic()
    error = None
    with journal:
        try:
            asyncio.run(sender.run())
        except DeliveryError as exc:
            error = exc
        rows = {r.email: r for r in journal.rows()}
        counts = journal.counts()
    return Outcome(
        sender.summary, rows, counts, time.monotonic() - start, error, sender.limiter.rate
    )


def everyone(n: int) -> set[str]:
    return {email for email, _ in recipients(n)}


def chosen(n: int, share: float) -> set[str]:
    picked = {e for e in everyone(n) if selected(e, share)}
    assert 0 < len(picked) < n, "pick a share that selects some but not all"
    return picked


def test_every_recipient_gets_one_message_over_reused_connections(project, server):
    outcome = send(project, server, 40)
    assert outcome.error is None
    assert server.handler.per_recipient() == {e: 1 for e in everyone(40)}
    assert outcome.counts["sent"] == 40 and outcome.summary.sent == 40
    assert server.handler.connections <= 4 and outcome.summary.connections <= 4
    assert all(r.attempts == 1 and r.last_code == 250 for r in outcome.rows.values())


def test_a_451_to_mail_from_is_retried(project, server):
    server.handler.fail(
        "MAIL", lambda sender, attempt: "451 4.3.0 try again later" if attempt <= 5 else None
    )
    outcome = send(project, server, 12)
    assert outcome.error is None
    assert server.handler.per_recipient() == {e: 1 for e in everyone(12)}
    assert server.handler.tries["MAIL"]["weekly@example.org"] == 12 + 5
    assert outcome.summary.retried == 5


@pytest.mark.parametrize("phase", ["RCPT", "DATA"])
def test_a_451_is_retried_until_it_goes_through(project, server, phase):
    faulted = chosen(30, 0.4)
    server.handler.fail(phase, reply_first("451 4.3.0 try again later", times=2, addresses=faulted))
    outcome = send(project, server, 30)
    assert outcome.error is None
    assert server.handler.per_recipient() == {e: 1 for e in everyone(30)}
    assert outcome.summary.retried == 2 * len(faulted)
    assert {e for e, r in outcome.rows.items() if r.attempts == 3} == faulted
    assert outcome.summary.possibly_duplicated == 0


@pytest.mark.parametrize("phase", ["RCPT", "DATA"])
def test_a_421_closes_the_connection_and_the_send_reconnects(project, server, phase):
    # a 421 also slows the whole send down (halving its rate), so a few of them, not a share
    faulted = {"r00002@example.com", "r00013@example.com", "r00024@example.com"}
    server.handler.fail(phase, reply_first("421 4.7.0 closing, too busy", addresses=faulted))
    outcome = send(project, server, 30)
    assert outcome.error is None
    assert server.handler.per_recipient() == {e: 1 for e in everyone(30)}
    assert server.handler.connections > 4  # each 421 cost a connection
    assert outcome.summary.throttled == len(faulted)


def test_a_550_fails_that_recipient_with_the_reply_and_is_never_retried(project, server):
    refused = chosen(20, 0.25)
    server.handler.fail("RCPT", reply_always("550 5.1.1 <user> mailbox unavailable", refused))
    outcome = send(project, server, 20)
    assert outcome.error is None
    assert set(server.handler.per_recipient()) == everyone(20) - refused
    for email in refused:
        row = outcome.rows[email]
        assert (row.state, row.last_code, row.attempts) == ("failed", 550, 1)
        assert row.last_reply == "rcpt: 550 5.1.1 <user> mailbox unavailable"
        assert server.handler.tries["RCPT"][email] == 1
    assert outcome.summary.failed == len(refused) and outcome.summary.retried == 0


def test_transient_failures_give_up_after_max_attempts(project, server):
    server.handler.fail("RCPT", reply_always("450 4.2.1 mailbox busy", {"r00003@example.com"}))
    outcome = send(project, server, 6, max_attempts=3)
    row = outcome.rows["r00003@example.com"]
    assert row.state == "failed" and row.attempts == 3
    assert row.last_reply.startswith("gave up after 3 attempts: rcpt: 450 4.2.1 mailbox busy")
    assert server.handler.tries["RCPT"]["r00003@example.com"] == 3
    assert outcome.counts["sent"] == 5


def test_a_connection_dropped_after_the_data_is_retried_and_counted_as_a_possible_duplicate(
    project, server
):
    dropped = chosen(30, 0.3)
    server.handler.fail("DATA", reply_first(DROP, addresses=dropped))
    outcome = send(project, server, 30)
    assert outcome.error is None
    copies = server.handler.per_recipient()
    assert set(copies) == everyone(30)
    # RFC 1047: the server kept the first copy, the sender could not know; so it sent again
    assert {e for e, n in copies.items() if n == 2} == dropped
    assert outcome.summary.possibly_duplicated == len(dropped)
    for email in dropped:
        ids = {m.message["Message-ID"] for m in server.messages if m.recipient == email}
        assert ids == {outcome.rows[email].message_id}, "a retry reuses the Message-ID"
    assert all(r.state == "sent" for r in outcome.rows.values())


def test_a_connection_dropped_before_the_data_ends_is_retried_without_duplicates(project, server):
    dropped = chosen(30, 0.3)
    server.handler.fail("RCPT", reply_first(DROP, addresses=dropped))
    outcome = send(project, server, 30)
    assert server.handler.per_recipient() == {e: 1 for e in everyone(30)}
    assert outcome.summary.possibly_duplicated == 0
    assert outcome.summary.retried == len(dropped)


def test_throttling_pauses_and_slows_the_send_but_reaches_everyone(project, server):
    throttled = {f"r{i:05d}@example.com" for i in (10, 11, 12)}
    server.handler.fail(
        "RCPT",
        reply_first(
            "454 4.7.0 Throttling failure: Maximum sending rate exceeded", addresses=throttled
        ),
    )
    outcome = send(project, server, 60, throttle_pause=0.3)
    assert outcome.error is None
    assert server.handler.per_recipient() == {e: 1 for e in everyone(60)}
    assert outcome.summary.throttled == 3
    assert outcome.seconds >= 0.3, "the whole send paused"
    assert outcome.rate_after is not None, "and went on at a limited rate"
    assert outcome.seconds < 10, "but did not crawl: the new rate is half the rate it was going at"


def test_the_rate_limit_is_kept(project, server):
    outcome = send(project, server, 24, rate=40.0, concurrency=4)
    assert outcome.counts["sent"] == 24
    assert outcome.seconds >= (24 - 4) / 40 * 0.9  # a burst of one per connection, then 40/s


def test_an_unreachable_relay_stops_the_send_with_nothing_lost(project):
    import socket

    with socket.socket() as probe:  # a port where nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = send(project, None, 5, port=port)
    assert isinstance(outcome.error, DeliveryError) and "cannot reach" in str(outcome.error)
    assert outcome.counts["pending"] == 5
    assert all(r.attempts == 0 for r in outcome.rows.values()), (
        "a relay that is down costs no attempt"
    )


def test_the_message_itself_rejected_again_and_again_stops_the_send(project, server):
    server.handler.fail("DATA", lambda address, attempt: "554 5.6.0 message content rejected")
    outcome = send(project, server, 30, concurrency=1, abort_after_data_rejects=5)
    assert isinstance(
        outcome.error, DeliveryError
    ) and "rejected the message itself 5 times" in str(outcome.error)
    assert outcome.counts["failed"] == 5 and outcome.counts["pending"] == 25
    assert server.handler.count() == 0


def test_an_hourly_quota_stops_the_send_for_later(project, server):
    outcome = send(project, server, 12, max_per_hour=5, concurrency=1)
    assert outcome.counts["sent"] == 5 and outcome.counts["pending"] == 7
    assert "hourly quota of 5" in (outcome.summary.stopped_reason or "")


# ------------------------------------------------------------------ the pieces
def test_the_limiter_halves_the_rate_it_was_really_going_at():
    async def scenario() -> RateLimiter:
        limiter = RateLimiter(None, burst=4)
        for _ in range(100):  # 100 messages in a few milliseconds: a fast relay
            await limiter.acquire()
            limiter.record_success()
        limiter.throttle(0.05)
        return limiter

    limiter = asyncio.run(scenario())
    assert limiter.rate is not None and limiter.rate >= 50, (
        f"halved to {limiter.rate}/s from about 100+/s"
    )
    assert limiter.paused_until > time.monotonic() - 1


def test_the_limiter_pauses_everyone():
    async def scenario() -> float:
        limiter = RateLimiter(None, burst=4)
        limiter.throttle(0.2)
        start = time.monotonic()
        await asyncio.gather(*(limiter.acquire() for _ in range(3)))
        return time.monotonic() - start

    assert asyncio.run(scenario()) >= 0.19


def test_the_limiter_keeps_a_configured_rate():
    async def scenario() -> float:
        limiter = RateLimiter(100.0, burst=1)
        start = time.monotonic()
        for _ in range(21):
            await limiter.acquire()
        return time.monotonic() - start

    assert asyncio.run(scenario()) >= 0.19


@pytest.mark.parametrize(
    "host,loopback",
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("192.0.2.1", False),
        ("10.0.0.1", False),
        ("smtp.example.org", False),
        ("localhost.example.org", False),
    ],
)
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_plaintext_beyond_loopback_and_passwords_in_plaintext_are_refused():
    with pytest.raises(UsageError, match="refusing plaintext SMTP to 192.0.2.1"):
        SmtpSettings("192.0.2.1", 25, tls="none")
    assert SmtpSettings("192.0.2.1", 25, tls="none", insecure=True).tls == "none"
    with pytest.raises(UsageError, match="password over plaintext"):
        SmtpSettings("127.0.0.1", 25, tls="none", username="u", password="p")
    with pytest.raises(UsageError, match="password over plaintext"):
        SmtpSettings("192.0.2.1", 25, tls="none", username="u", password="p", insecure=True)
    with pytest.raises(UsageError, match="--tls"):
        SmtpSettings("127.0.0.1", 25, tls="ssl")


def test_the_password_is_not_in_the_settings_repr():
    settings = SmtpSettings("127.0.0.1", 587, username="user", password="hunter2-secret")
    assert "hunter2-secret" not in repr(settings)


def test_a_refused_sender_stops_the_send_and_fails_nobody(project, server):
    server.handler.fail(
        "MAIL", lambda sender, attempt: "553 5.7.1 sender address not owned by user"
    )
    outcome = send(project, server, 30)
    assert isinstance(outcome.error, DeliveryError)
    assert "refuses our sender weekly@example.org: 553 5.7.1" in str(outcome.error)
    assert outcome.counts == {"pending": 30, "sending": 0, "sent": 0, "failed": 0, "held": 0}
    assert all(r.attempts == 0 for r in outcome.rows.values())


def test_an_issue_folder_with_spaces_and_accents_still_makes_valid_message_ids(project, server):
    target = project.root / "issues" / "été 2026"
    project.issue_dir.rename(target)
    prepared = campaign.prepare(target)
    journal, _ = campaign.open_send(
        prepared, str(project.csv(recipients(3))), journal_path=project.journal
    )
    with journal:
        asyncio.run(
            Sender(
                journal,
                prepared.messages,
                SmtpSettings("127.0.0.1", server.port, tls="none"),
                SendOptions(retry_base=0.02),
            ).run()
        )
        assert journal.counts()["sent"] == 3
    for received in server.messages:
        assert received.message["Message-ID"].startswith("<t-2026.")
        assert received.data.split(b"\r\n\r\n")[0].isascii()
