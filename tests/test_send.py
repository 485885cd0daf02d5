"""The send engine against a real server that fails on purpose: retries, refusals, throttling."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from dispatch_mail.delivery import campaign
from dispatch_mail.delivery.engine import SendEngine, SendOptions, SendSummary
from dispatch_mail.delivery.journal import Row
from dispatch_mail.delivery.smtp import SmtpSettings, is_loopback
from dispatch_mail.errors import DeliveryError, UsageError
from tests.helpers.clock import VirtualClock
from tests.helpers.project import Project
from tests.helpers.send import recipients
from tests.helpers.smtp_server import DROP, SmtpServer, reply_always, reply_first, selected


@dataclass
class Outcome:
    summary: SendSummary
    rows: dict[str, Row]
    counts: dict[str, int]
    error: Exception | None = None
    rate_after: float | None = None  # the limiter's rate at the end (None: unlimited)


def send(
    project: Project,
    server: SmtpServer | None,
    n: int = 20,
    *,
    port: int | None = None,
    clock: VirtualClock | None = None,
    **options,
) -> Outcome:
    """The real send path: prepare, open the journal, run the engine to the end.

    With ``clock``, the rate limiter waits on that virtual clock: what it waited is exact.
    """
    prepared = campaign.prepare(project.issue_dir)
    journal, _plan = campaign.open_send(
        prepared, str(project.csv(recipients(n))), journal_path=project.journal
    )
    settings = SmtpSettings(
        "127.0.0.1", port or (server.port if server else 9), tls="none", timeout=5
    )
    opts = SendOptions(**{"concurrency": 4, "retry_base": 0.02, "throttle_pause": 0.1, **options})
    sender = SendEngine(journal, prepared.messages, settings, opts)
    if clock is not None:
        sender.limiter = clock.limiter(opts.rate, burst=opts.concurrency)
    error = None
    with journal:
        try:
            asyncio.run(sender.run())
        except DeliveryError as exc:
            error = exc
        rows = {r.email: r for r in journal.rows()}
        counts = journal.counts()
    return Outcome(sender.summary, rows, counts, error, sender.limiter.rate)


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


def test_transient_failures_that_outlast_max_attempts_are_deferred_not_failed(project, server):
    server.handler.fail("RCPT", reply_always("450 4.2.1 mailbox busy", {"r00003@example.com"}))
    outcome = send(project, server, 6, max_attempts=3)
    row = outcome.rows["r00003@example.com"]
    assert row.state == "deferred" and row.attempts == 3
    assert row.last_reply.startswith("3 attempts this run: rcpt: 450 4.2.1 mailbox busy")
    assert outcome.summary.deferred == 1 and outcome.summary.failed == 0
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
    clock = VirtualClock()
    outcome = send(project, server, 60, throttle_pause=0.3, clock=clock)
    assert outcome.error is None
    assert server.handler.per_recipient() == {e: 1 for e in everyone(60)}
    assert outcome.summary.throttled == 3
    assert {e for e, r in outcome.rows.items() if r.attempts == 2} == throttled
    assert clock.slept >= 0.3, "the whole send paused"
    assert outcome.rate_after is not None, "and went on at a limited rate"
    # at least 7 were accepted, all at one virtual instant, before the first 454: a pace of
    # 700/s or more, halved once per episode (three at most): far above the 0.2/s floor
    assert outcome.rate_after >= 50, "but did not crawl: the new rate is half the pace it kept"


def test_the_rate_limit_is_kept(project, server):
    clock = VirtualClock()
    outcome = send(project, server, 24, rate=40.0, concurrency=4, clock=clock)
    assert outcome.counts["sent"] == 24
    # a burst of one per connection, then one every 1/40 s for the other 20
    assert clock.slept == pytest.approx((24 - 4) / 40)


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
    # the message, not its recipients: all stay pending for the run after the fix
    assert outcome.counts["failed"] == 0 and outcome.counts["pending"] == 30
    assert server.handler.count() == 0


def test_an_hourly_quota_stops_the_send_for_later(project, server):
    outcome = send(project, server, 12, max_per_hour=5, concurrency=1)
    assert outcome.counts["sent"] == 5 and outcome.counts["pending"] == 7
    assert "hourly quota of 5" in (outcome.summary.stopped_reason or "")


# ------------------------------------------------------------------ the pieces
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
    with pytest.raises(UsageError, match="refusing plaintext SMTP to 192.0.2.1") as plaintext:
        SmtpSettings("192.0.2.1", 25, tls="none")
    assert plaintext.value.hint == "insecure" and "--" not in str(plaintext.value)
    assert SmtpSettings("192.0.2.1", 25, tls="none", insecure=True).tls == "none"
    with pytest.raises(UsageError, match="password over plaintext") as password:
        SmtpSettings("127.0.0.1", 25, tls="none", username="u", password="p")
    assert password.value.hint == "tls" and "--" not in str(password.value)
    with pytest.raises(UsageError, match="password over plaintext"):
        SmtpSettings("192.0.2.1", 25, tls="none", username="u", password="p", insecure=True)
    with pytest.raises(UsageError, match="the TLS mode must be implicit, starttls or none"):
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
    assert outcome.counts == {
        "pending": 30,
        "sending": 0,
        "sent": 0,
        "deferred": 0,
        "failed": 0,
        "held": 0,
    }
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
            SendEngine(
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
