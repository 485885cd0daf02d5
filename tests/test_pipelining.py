"""PIPELINING (RFC 2920) and CHUNKING (RFC 3030): fewer round trips, the same outcomes.

The server is aiosmtpd with both extensions added (tests/helpers/chunking_server.py);
it logs each command and reply, and whether the client's next bytes had already
arrived when a reply was sent: what tells a pipelining client from one that waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiosmtplib
import pytest

from dispatch_mail.delivery import campaign
from dispatch_mail.delivery.engine import SendEngine, SendOptions, SendSummary
from dispatch_mail.delivery.journal import Row
from dispatch_mail.delivery.smtp import SmtpSettings
from dispatch_mail.delivery.transaction import Attempt, transact
from dispatch_mail.errors import DeliveryError
from tests.helpers.chunking_server import HANG, ChunkingServer
from tests.helpers.project import Project
from tests.helpers.send import invoke, recipients, send_args
from tests.helpers.smtp_server import DROP, reply_always, reply_first, selected

PIPELINING = ("PIPELINING",)
BOTH = ("PIPELINING", "CHUNKING")
MESSAGES = [
    b"Subject: plain\r\n\r\nbody\r\n",
    b"Subject: dots\r\n\r\n.starts with a dot\r\n..two dots\r\nmiddle . dot\r\n.\r\nlast line\r\n",
    b".X-Header-first: odd but legal as bytes\r\n\r\nbody without final newline",
    b"Subject: long\r\n\r\n" + b"=\r\n".join(b"." + b"x" * 70 for _ in range(2000)) + b"\r\n",
]


@pytest.fixture
def serve() -> Iterator[Callable[..., ChunkingServer]]:
    """Start a ChunkingServer with these settings; all stopped at the end."""
    started: list[ChunkingServer] = []

    def start(**settings: Any) -> ChunkingServer:
        started.append(ChunkingServer(**settings).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


# ------------------------------------------------------------------ one transaction, on the wire
async def _transact_all(port: int, messages: list[bytes], to: str = "to@example.org") -> list[int]:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, use_tls=False, start_tls=False)
    await client.connect(timeout=10)
    codes = []
    for data in messages:
        codes.append((await transact(client, "from@example.org", to, data, 10, Attempt())).code)
    await client.quit()
    return codes


@pytest.mark.parametrize("extensions", [PIPELINING, ()], ids=["pipelining", "one-by-one"])
def test_pipelining_sends_mail_rcpt_and_data_together_and_only_when_offered(serve, extensions):
    server = serve(extensions=extensions)
    assert asyncio.run(_transact_all(server.port, MESSAGES[:2])) == [250, 250]
    assert server.wire.commands() == ["MAIL", "RCPT", "DATA"] * 2
    if extensions:
        # the replies to MAIL and RCPT went out with the next commands already here
        buffered = [e.buffered for e in server.wire.of("reply") if e.text.startswith("250 OK")]
        assert buffered == [True, True] * 2
    else:
        waited = [e.buffered for e in server.wire.of("reply")]
        assert not any(waited), "without PIPELINING a command waits for the previous reply"
    assert [m.data for m in server.messages] == MESSAGES[:2]


@pytest.mark.parametrize("extensions", [BOTH, ("CHUNKING",)], ids=["pipelined", "one-by-one"])
@pytest.mark.parametrize("data", MESSAGES, ids=["plain", "dots", "dot-first", "long"])
def test_bdat_delivers_exactly_what_data_delivers_unstuffed(serve, extensions, data):
    by_data = serve(extensions=PIPELINING)
    by_bdat = serve(extensions=extensions)
    assert asyncio.run(_transact_all(by_data.port, [data])) == [250]
    assert asyncio.run(_transact_all(by_bdat.port, [data])) == [250]
    assert by_bdat.wire.commands() == ["MAIL", "RCPT", "BDAT"]
    (chunk,) = by_bdat.wire.of("body")
    received = by_bdat.messages[0].data
    assert received == by_data.messages[0].data  # dots at line starts intact, none added
    assert int(chunk.text) == len(received) == len(data.rstrip(b"\r\n")) + 2
    mail_reply = next(e for e in by_bdat.wire.of("reply") if e.text.startswith("250 OK"))
    assert mail_reply.buffered == (extensions == BOTH)


async def _transact_stepwise(port: int, data: bytes) -> int:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, use_tls=False, start_tls=False)
    await client.connect(timeout=10)
    reply = await transact(client, "from@example.org", "to@example.org", data, 10, Attempt(),
                           pipelining=False)
    await client.quit()
    return reply.code


def test_a_profile_may_turn_pipelining_off_even_when_the_relay_offers_it(serve):
    server = serve(extensions=BOTH)
    assert asyncio.run(_transact_stepwise(server.port, MESSAGES[1])) == 250
    assert server.wire.commands() == ["MAIL", "RCPT", "DATA"]  # no BDAT either
    assert not any(e.buffered for e in server.wire.of("reply"))
    assert server.messages[0].data == MESSAGES[1]


def test_a_354_after_a_refused_rcpt_gets_a_lone_dot_and_no_body(serve):
    server = serve(extensions=PIPELINING, data_without_rcpt=True)
    server.handler.fail("RCPT", reply_always("550 5.1.1 no such user", {"gone@example.org"}))

    async def scenario(port: int) -> tuple[str, int, int]:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, use_tls=False, start_tls=False)
        await client.connect(timeout=10)
        attempt = Attempt()
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await transact(client, "from@example.org", "gone@example.org", MESSAGES[1], 10, attempt)
        await client.rset()  # the connection goes on
        ok = await transact(
            client, "from@example.org", "ok@example.org", MESSAGES[0], 10, Attempt()
        )
        await client.quit()
        return attempt.phase, refused.value.code, ok.code

    assert asyncio.run(scenario(server.port)) == ("rcpt", 550, 250)
    assert [e.text for e in server.wire.of("body")] == ["0"]  # the lone "." and nothing else
    assert [m.recipient for m in server.messages] == ["ok@example.org"]
    assert not [e for e in server.wire.of("reply") if e.text.startswith("500")]


# ------------------------------------------------------------------ the engine's outcomes
@dataclass
class Outcome:
    summary: SendSummary
    rows: dict[str, Row]
    error: Exception | None


def send(project: Project, server: ChunkingServer, n: int = 20, timeout: float = 5, **options):
    prepared = campaign.prepare(project.issue_dir)
    journal, _ = campaign.open_send(
        prepared, str(project.csv(recipients(n))), journal_path=project.journal
    )
    settings = SmtpSettings("127.0.0.1", server.port, tls="none", timeout=timeout)
    opts = SendOptions(**{"concurrency": 4, "retry_base": 0.02, "throttle_pause": 0.1, **options})
    engine = SendEngine(journal, prepared.messages, settings, opts)
    error = None
    with journal:
        try:
            asyncio.run(engine.run())
        except DeliveryError as exc:
            error = exc
        rows = {r.email: r for r in journal.rows()}
    return Outcome(engine.summary, rows, error)


def everyone(n: int) -> set[str]:
    return {email for email, _ in recipients(n)}


def chosen(n: int, share: float) -> set[str]:
    picked = {e for e in everyone(n) if selected(e, share)}
    assert 0 < len(picked) < n
    return picked


def no_stray_lines(server: ChunkingServer) -> bool:
    """No body went where a command was expected (aiosmtpd answers each such line 500)."""
    return not [e for e in server.wire.of("reply") if e.text.startswith("500")]


MODES = pytest.mark.parametrize("extensions", [PIPELINING, BOTH], ids=["data", "bdat"])


@MODES
def test_a_rcpt_refused_in_a_pipeline_fails_that_recipient_with_its_reply(
    project, serve, extensions
):
    server = serve(extensions=extensions)
    refused = chosen(20, 0.25)
    server.handler.fail("RCPT", reply_always("550 5.1.1 <user> mailbox unavailable", refused))
    outcome = send(project, server, 20)
    assert outcome.error is None
    assert server.handler.per_recipient() == {e: 1 for e in everyone(20) - refused}
    for email in refused:
        row = outcome.rows[email]
        assert (row.state, row.last_code, row.attempts) == ("failed", 550, 1)
        assert row.last_reply == "rcpt: 550 5.1.1 <user> mailbox unavailable"
    assert outcome.summary.failed == len(refused) and outcome.summary.retried == 0
    assert server.handler.connections <= 4, "a refusal does not cost the connection"
    assert no_stray_lines(server)  # no body after DATA's 503 (BDAT's chunk is discarded)


@MODES
@pytest.mark.parametrize("reply", ["554 5.7.1 not from you", "503 5.5.1 bad sequence"])
def test_data_refused_sends_no_body_and_is_recorded(project, serve, extensions, reply):
    server = serve(extensions=extensions)
    refused = {"r00004@example.com", "r00011@example.com"}
    server.data_command = reply_always(reply, refused)
    outcome = send(project, server, 16)
    assert outcome.error is None
    assert server.handler.per_recipient() == {e: 1 for e in everyone(16) - refused}
    for email in refused:
        row = outcome.rows[email]
        assert (row.state, row.last_code) == ("failed", int(reply[:3]))
        assert row.last_reply == f"data: {reply}"
    assert no_stray_lines(server)
    assert outcome.summary.possibly_duplicated == 0


def test_a_drop_between_the_pipelined_commands_and_the_body_is_a_plain_retry(project, serve):
    server = serve(extensions=PIPELINING)
    dropped = chosen(24, 0.3)
    server.data_command = reply_first(DROP, addresses=dropped)
    outcome = send(project, server, 24)
    assert outcome.error is None
    assert server.handler.per_recipient() == {e: 1 for e in everyone(24)}
    assert outcome.summary.possibly_duplicated == 0
    assert outcome.summary.retried == len(dropped)
    assert all(outcome.rows[e].attempts == 2 for e in dropped)


@MODES
def test_a_drop_after_the_body_is_retried_as_a_possible_duplicate(project, serve, extensions):
    server = serve(extensions=extensions)
    dropped = chosen(24, 0.3)
    server.handler.fail("DATA", reply_first(DROP, addresses=dropped))
    outcome = send(project, server, 24)
    assert outcome.error is None
    copies = server.handler.per_recipient()
    assert {e for e, n in copies.items() if n == 2} == dropped and set(copies) == everyone(24)
    assert outcome.summary.possibly_duplicated == len(dropped)
    assert all(r.state == "sent" for r in outcome.rows.values())


@MODES
def test_a_refused_sender_in_a_pipeline_stops_the_send_and_fails_nobody(
    project, serve, extensions
):
    server = serve(extensions=extensions)
    server.handler.fail("MAIL", lambda sender, attempt: "553 5.7.1 sender not allowed")
    outcome = send(project, server, 10)
    assert isinstance(outcome.error, DeliveryError)
    assert "refuses our sender" in str(outcome.error)
    assert not server.messages
    assert not [r for r in outcome.rows.values() if r.state == "failed"]
    assert no_stray_lines(server)


@MODES
def test_a_451_to_mail_in_a_pipeline_is_retried(project, serve, extensions):
    server = serve(extensions=extensions)
    server.handler.fail("MAIL", lambda sender, attempt: "451 4.3.0 later" if attempt <= 3 else None)
    outcome = send(project, server, 8)
    assert outcome.error is None
    assert server.handler.per_recipient() == {e: 1 for e in everyone(8)}
    assert outcome.summary.retried == 3 and outcome.summary.possibly_duplicated == 0


# ------------------------------------------------------------------ replies read with bounds
@MODES
def test_a_server_that_never_answers_stalls_only_its_own_connection(project, serve, extensions):
    server = serve(extensions=extensions)
    stalled = "r00005@example.com"
    server.handler.fail("RCPT", reply_first(HANG, addresses={stalled}))
    outcome = send(project, server, 12, timeout=1, concurrency=2)
    assert outcome.error is None
    assert server.handler.per_recipient() == {e: 1 for e in everyone(12)}
    row = outcome.rows[stalled]
    assert row.attempts == 2 and row.state == "sent"
    # with BDAT the body had left with the commands: whether it arrived is unknown
    assert outcome.summary.possibly_duplicated == (1 if extensions == BOTH else 0)


@MODES
@pytest.mark.parametrize(
    "reply",
    ["250 " + "x" * 40_000, "250-" + "\r\n250-".join(["y" * 900] * 60) + "\r\n250 ok"],
    ids=["one-long-line", "endless-continuation"],
)
def test_an_overlong_reply_is_a_clean_retry_on_a_new_connection(project, serve, extensions, reply):
    server = serve(extensions=extensions)
    victim = "r00003@example.com"
    server.handler.fail("RCPT", reply_first(reply, addresses={victim}))
    outcome = send(project, server, 10, concurrency=2)
    assert outcome.error is None
    assert server.handler.per_recipient() == {e: 1 for e in everyone(10)}
    assert outcome.rows[victim].attempts == 2
    assert server.handler.connections >= 3  # that connection was given up


# ------------------------------------------------------------------ the whole command
@pytest.mark.parametrize("extensions", [PIPELINING, BOTH], ids=["pipelining", "chunking"])
def test_dispatch_send_with_pipelining_reaches_everyone_exactly_once(project, serve, extensions):
    server = serve(extensions=extensions)
    result = invoke(*send_args(project, server, project.csv(recipients(60)), "--concurrency", "4"))
    assert result.exit_code == 0, result.output
    assert server.handler.per_recipient() == {e: 1 for e in everyone(60)}
    commands = server.wire.commands()
    assert commands.count("DATA" if extensions == PIPELINING else "BDAT") == 60
    buffered = [e.buffered for e in server.wire.of("reply") if e.text.startswith("250 OK")]
    assert buffered.count(True) >= 60  # each MAIL's reply had its RCPT waiting behind it
