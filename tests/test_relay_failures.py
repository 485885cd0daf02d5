"""A relay that does not answer, refuses our TLS or login, or refuses our mail: real sockets.

An unreachable relay is a listening socket whose backlog is full (the kernel drops
the connection attempts, as a blackholed address does) or a server that accepts and
never greets. Every test asserts what was printed, the exit code and the journal,
never how long it took.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import AnyStr

import pytest
from aiosmtpd.smtp import SMTP

from tests.helpers.send import (
    interrupt,
    invoke,
    recipients,
    run,
    send_args,
    server_context,
    spawn,
    wait_until,
)
from tests.helpers.smtp_server import Recorder, SmtpServer, reply_always

PASSWORD = "relay-Pa55word-for-tests"
RETRY_LINE = re.compile(
    r"^relay 127\.0\.0\.1:(\d+) not answering \((.+); attempt (\d) of 3\), retrying in [\d.]+ s$"
)


def journal_rows(journal: Path) -> list[tuple[str, int]]:
    """(state, attempts) of every row."""
    with sqlite3.connect(journal) as conn:
        found = list(conn.execute("SELECT state, attempts FROM recipients ORDER BY id"))
    conn.close()
    return found


def counts(journal: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for state, _ in journal_rows(journal):
        found[state] = found.get(state, 0) + 1
    return found


def relay_args(port: int, *extra: str) -> list[str]:
    return ["--smtp-host", "127.0.0.1", "--smtp-port", str(port), "--tls", "none", *extra]


# ------------------------------------------------------------------ relays that do not answer
@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port whose listen backlog is full: connection attempts get no answer at all."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(8):  # more than the backlog holds; never accepted
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    probe = socket.socket()
    probe.settimeout(0.5)
    try:
        with pytest.raises(TimeoutError):  # the premise: this port does not answer
            probe.connect(("127.0.0.1", port))
    finally:
        probe.close()
    yield port
    for s in (*fillers, listener):
        s.close()


class SilentRelay:
    """Accepts connections and never says a word (no SMTP greeting); counts them."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port: int = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()
        self.listener.close()
        self._thread.join(5)


@pytest.fixture
def silent() -> Iterator[SilentRelay]:
    relay = SilentRelay()
    yield relay
    relay.close()


def test_an_unreachable_relay_says_so_at_each_retry_then_stops_with_one_line(project, blackhole):
    path = project.csv(recipients(6))
    args = send_args(project, None, path, *relay_args(blackhole, "--connect-timeout", "1"))
    result = run(args, project.root)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    retries = [RETRY_LINE.match(line) for line in lines if line.startswith("relay ")]
    assert [m and (int(m[1]), m[2], m[3]) for m in retries] == [
        (blackhole, "no connection within 1 s", "1"),
        (blackhole, "no connection within 1 s", "2"),
    ], result.stderr
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == [
        f"error: cannot reach 127.0.0.1:{blackhole} (plaintext): no connection within 1 s "
        "(3 attempts); nothing is lost: run the same command again later"
    ], result.stderr
    assert lines[-1].startswith("resume with: dispatch send ") and "--connect-timeout" in lines[-1]
    assert journal_rows(project.journal) == [("pending", 0)] * 6, "nothing sent, nothing spent"


def test_a_relay_that_accepts_but_never_greets_is_not_answering(project, silent):
    path = project.csv(recipients(4))
    args = send_args(project, None, path, *relay_args(silent.port, "--connect-timeout", "1"))
    result = run(args, project.root)
    assert result.returncode == 1, result.stderr
    retries = [m for m in map(RETRY_LINE.match, result.stderr.splitlines()) if m]
    assert [(m[2], m[3]) for m in retries] == [
        ("connected, but no greeting within 1 s", "1"),
        ("connected, but no greeting within 1 s", "2"),
    ], result.stderr
    assert "error: cannot reach" in result.stderr
    assert len(silent.accepted) == 3, "one probe at a time, not one per connection"
    assert counts(project.journal) == {"pending": 4}


def test_a_test_copy_to_an_unreachable_relay_reports_the_same_way(project, blackhole):
    args = [
        "send",
        str(project.issue_dir),
        "--to",
        "me@example.com",
        "--retry-base",
        "0.02",
        *relay_args(blackhole, "--connect-timeout", "1"),
    ]
    result = run(args, project.root)
    assert result.returncode == 1, result.stderr
    assert sum(1 for line in result.stderr.splitlines() if RETRY_LINE.match(line)) == 2
    assert result.stderr.splitlines()[-1].startswith(f"error: cannot reach 127.0.0.1:{blackhole}")


def test_ctrl_c_while_the_relay_is_silent_stops_at_once(project, silent):
    path = project.csv(recipients(5))
    # a connect timeout of ten minutes: only stopping the pending connection ends this run
    args = send_args(project, None, path, *relay_args(silent.port, "--connect-timeout", "600"))
    proc = spawn(args, project.root)
    assert wait_until(lambda: len(silent.accepted) >= 1 or proc.poll() is not None, timeout=30)
    assert proc.poll() is None, proc.communicate()
    out, err = interrupt(proc, signal.SIGINT)
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in err and "resume with: dispatch send" in err
    assert journal_rows(project.journal) == [("pending", 0)] * 5


# ------------------------------------------------------------------ TLS and login: exit 3
@pytest.fixture
def auth_server(ca) -> Iterator[SmtpServer]:
    recorder = Recorder()
    recorder.auth = {"newsletter": PASSWORD}
    with SmtpServer(recorder, starttls=server_context(ca)) as running:
        yield running


def test_a_wrong_password_exits_3_after_one_login_and_sends_nothing(project, auth_server, cafile):
    path = project.csv(recipients(12))
    result = invoke(
        *send_args(project, auth_server, path, "--cafile", str(cafile)),
        env={"DISPATCH_SMTP_USER": "newsletter", "DISPATCH_SMTP_PASSWORD": "wrong"},
    )
    assert result.exit_code == 3, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: 127.0.0.1:{auth_server.port} (STARTTLS) refused our login: "
        "5.7.8 Authentication credentials invalid"
    ]
    assert auth_server.handler.connections == 1, (
        "one wrong login, not one per connection (relays lock accounts out)"
    )
    assert {login for login in auth_server.handler.logins} == {("newsletter", "wrong")}
    assert auth_server.handler.count() == 0
    assert journal_rows(project.journal) == [("pending", 0)] * 12


def test_a_test_copy_with_a_wrong_password_exits_3(project, auth_server, cafile):
    result = invoke(
        "send",
        str(project.issue_dir),
        "--to",
        "me@example.com",
        *auth_server.cli_args(),
        "--cafile",
        str(cafile),
        env={"DISPATCH_SMTP_USER": "newsletter", "DISPATCH_SMTP_PASSWORD": "wrong"},
    )
    assert result.exit_code == 3, result.output
    assert "refused our login" in result.stderr and auth_server.handler.count() == 0


class NoLoginServer(SmtpServer):
    """A STARTTLS server that offers no AUTH mechanism at all."""

    def _factory(self) -> SMTP:
        return SMTP(
            self.handler,
            hostname="smtp.test",
            tls_context=self.starttls,
            require_starttls=True,
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
            loop=self._loop,
        )


def test_a_relay_that_offers_no_way_to_log_in_exits_3(project, cafile, ca):
    with NoLoginServer(Recorder(), starttls=server_context(ca)) as server:
        result = invoke(
            *send_args(project, server, project.csv(recipients(3)), "--cafile", str(cafile)),
            env={"DISPATCH_SMTP_USER": "newsletter", "DISPATCH_SMTP_PASSWORD": PASSWORD},
        )
        assert result.exit_code == 3, result.output
        assert (
            f"error: 127.0.0.1:{server.port} (STARTTLS) refused our login: "
            "No suitable authentication method found"
        ) in result.stderr
        assert server.handler.count() == 0 and server.handler.connections == 1


@pytest.mark.parametrize("kind", ["starttls", "implicit"])
def test_a_certificate_from_an_untrusted_ca_exits_3(project, kind):
    trustme = pytest.importorskip("trustme")
    context = server_context(trustme.CA())  # a CA nobody gave us
    server = (
        SmtpServer(starttls=context) if kind == "starttls" else SmtpServer(implicit_tls=context)
    )
    with server:
        result = run(send_args(project, server, project.csv(recipients(5))), project.root)
        assert result.returncode == 3, result.stderr
        first = result.stderr.splitlines()[0]
        assert first.startswith(f"error: TLS with 127.0.0.1:{server.port} (")
        assert "certificate verify failed" in first
        assert server.handler.count() == 0
        assert server.handler.connections == 1, "trying again cannot help: one try"
    assert journal_rows(project.journal) == [("pending", 0)] * 5


def test_exit_3_is_documented_where_exit_codes_are():
    from tests.helpers.project import REPO

    for doc in ("sending.md", "cli.md"):
        text = " ".join((REPO / "docs" / doc).read_text(encoding="utf-8").split())
        assert "3 the relay refused our TLS or login" in text, doc


# ------------------------------------------------------------------ the relay refuses our mail
def test_a_relay_that_will_not_relay_for_us_stops_the_send_instead_of_failing_everyone(
    project, server
):
    server.handler.fail(
        "RCPT", lambda address, attempt: f"554 5.7.1 <{address}>: Relay access denied"
    )
    result = invoke(*send_args(project, server, project.csv(recipients(30)), "--concurrency", "1"))
    assert result.exit_code == 1, result.output
    assert f"127.0.0.1:{server.port} (plaintext) will not take our mail: 5 recipients" in (
        result.stderr
    )
    # refused for our sake, not theirs: nobody failed, so the run after the fix reaches all
    assert counts(project.journal) == {"pending": 30}
    server.handler.rules["RCPT"].clear()
    again = invoke(*send_args(project, server, project.csv(recipients(30)), "--concurrency", "1"))
    assert again.exit_code == 0, again.output
    assert counts(project.journal) == {"sent": 30}


def test_unknown_addresses_in_a_row_are_failed_one_by_one_without_stopping(project, server):
    dead = {email for email, _ in recipients(8, start=2)}
    server.handler.fail(
        "RCPT", reply_always("550 5.1.1 user unknown in relay recipient table", dead)
    )
    result = invoke(*send_args(project, server, project.csv(recipients(20)), "--concurrency", "1"))
    assert result.exit_code == 1, result.output
    assert "error:" not in result.stderr
    assert counts(project.journal) == {"sent": 12, "failed": 8}


# ------------------------------------------------------------------ a relay with a connection limit
class _OneAtATime(SMTP):
    """aiosmtpd's SMTP that greets a second connection with 421 while one is open."""

    open_sessions = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        type(self).open_sessions += 1
        self.over_limit = type(self).open_sessions > 1

    def connection_lost(self, error: Exception | None) -> None:
        type(self).open_sessions -= 1
        super().connection_lost(error)

    async def push(self, status: AnyStr) -> None:
        text = status.decode() if isinstance(status, bytes) else status
        if self.over_limit and text.startswith("220 "):
            await super().push("421 4.7.0 too many connections from your host")
            if self.transport is not None:
                self.transport.close()
            return
        await super().push(status)


class OneConnectionServer(SmtpServer):
    def _factory(self) -> SMTP:
        return _OneAtATime(self.handler, hostname="smtp.test", loop=self._loop)


def test_a_relay_that_takes_one_connection_at_a_time_still_reaches_everyone(project):
    with OneConnectionServer() as server:
        result = invoke(*send_args(project, server, project.csv(recipients(40))))
        assert result.exit_code == 0, result.output
        assert "not answering" not in result.stderr, "the relay answers: it is no outage"
        assert sorted(server.handler.per_recipient().values()) == [1] * 40
    assert counts(project.journal) == {"sent": 40}


# ------------------------------------------------------------------ stopping a pending connection
def _stubborn_stop(port: int, *, connected_first: bool = False):
    """Stop a connection attempt that swallows its first cancel, as Python 3.11's wait_for
    does when the cancel lands as the TCP connect completes; what the connector returns,
    and the connections the work opened."""
    from dispatch_mail.delivery.connections import RelayConnector
    from dispatch_mail.delivery.smtp import SmtpSettings, connect

    async def scenario():
        stop = asyncio.Event()
        settings = SmtpSettings("127.0.0.1", port, tls="none", connect_timeout=600)
        connector = RelayConnector(settings, stop)
        opened = []

        async def stubborn():
            if connected_first:  # the connection is up as the send stops
                opened.append(await connect(settings))
                stop.set()
            try:
                await asyncio.sleep(600)
            except asyncio.CancelledError:
                pass  # the first cancel is lost
            if not connected_first:
                opened.append(await connect(settings))
            return opened[-1]

        if not connected_first:
            asyncio.get_running_loop().call_later(0.05, stop.set)
        # a guard against a hang, not a measure: without the fix this waits ten minutes
        result = await asyncio.wait_for(connector._until_stopped(stubborn()), 30)
        return result, opened

    return asyncio.run(scenario())


def test_a_lost_cancel_does_not_leave_the_send_waiting_for_a_greeting(silent):
    result, opened = _stubborn_stop(silent.port)
    assert result is None and opened == [], "the second cancel ended the wait for a greeting"
    assert len(silent.accepted) == 1


def test_a_connection_that_opens_as_the_send_stops_is_closed_not_used():
    with SmtpServer(Recorder()) as server:
        result, opened = _stubborn_stop(server.port, connected_first=True)
    assert result is None
    assert len(opened) == 1 and not opened[0].is_connected
