"""`dispatch send` end to end: TLS, AUTH, early refusals, Ctrl-C, exit codes and dry runs."""

from __future__ import annotations

import mailbox
import shlex
import signal
import sqlite3
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tests.helpers.send import (
    interrupt,
    invoke,
    recipients,
    run,
    send_args,
    server_context,
    spawn,
)
from tests.helpers.smtp_server import DROP, Recorder, SmtpServer, reply_always, reply_first

PASSWORD = "s3cret-Pa55word-never-shown"
T = TypeVar("T")


def counts(journal: Path) -> dict[str, int]:
    with sqlite3.connect(journal) as conn:
        found = dict(conn.execute("SELECT state, COUNT(*) FROM recipients GROUP BY state"))
    conn.close()
    return found


def paused_at(journal: Path, email: str, code: int) -> dict[str, int] | None:
    """The journal's counts once ``email`` is back in pending after ``code``, else None.

    Read-only, in one snapshot, while a send is writing the journal; None before it exists.
    """
    try:
        conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return None
    try:
        conn.execute("BEGIN")  # one snapshot for both queries
        row = conn.execute(
            "SELECT state, last_code FROM recipients WHERE email=?", (email,)
        ).fetchone()
        if row != ("pending", code):
            return None
        return dict(conn.execute("SELECT state, COUNT(*) FROM recipients GROUP BY state"))
    except sqlite3.OperationalError:  # no table yet, or the file is being created
        return None
    finally:
        conn.close()


def poll(read: Callable[[], T | None], timeout: float) -> T | None:
    """The first value ``read`` gives that is not None; None if there is none in ``timeout`` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = read()
        if value is not None:
            return value
        time.sleep(0.01)
    return read()


def everyone(n: int) -> dict[str, int]:
    return {email: 1 for email, _ in recipients(n)}


# ------------------------------------------------------------------ TLS
@pytest.fixture
def starttls_server(ca):
    with SmtpServer(starttls=server_context(ca)) as running:
        yield running


@pytest.fixture
def implicit_server(ca):
    with SmtpServer(implicit_tls=server_context(ca)) as running:
        yield running


@pytest.mark.parametrize("kind", ["starttls", "implicit"])
def test_tls_with_a_certificate_we_trust(project, cafile, ca, kind):
    context = server_context(ca)
    server = (
        SmtpServer(starttls=context) if kind == "starttls" else SmtpServer(implicit_tls=context)
    )
    with server:
        result = invoke(
            *send_args(project, server, project.csv(recipients(8)), "--cafile", str(cafile))
        )
        assert result.exit_code == 0, result.output
        assert (
            f"127.0.0.1:{server.port} ({'STARTTLS' if kind == 'starttls' else 'TLS'})"
            in result.output
        )
        assert server.handler.per_recipient() == everyone(8)
        if kind == "starttls":  # aiosmtpd records the TLS session of a STARTTLS connection
            assert all(m.tls for m in server.messages)


@pytest.mark.parametrize("kind", ["starttls", "implicit"])
def test_a_certificate_we_do_not_trust_is_refused_and_nothing_is_marked_sent(project, ca, kind):
    trustme = pytest.importorskip("trustme")
    stranger = trustme.CA()  # the server's certificate comes from a CA nobody gave us
    context = server_context(stranger)
    server = (
        SmtpServer(starttls=context) if kind == "starttls" else SmtpServer(implicit_tls=context)
    )
    with server:
        result = invoke(*send_args(project, server, project.csv(recipients(8))))
        assert result.exit_code == 3, result.output
        assert (
            result.stderr.startswith("error: TLS with ")
            and "certificate verify failed" in result.stderr
        )
        assert result.stderr.splitlines()[-1].startswith("resume with: dispatch ")
        assert "Traceback" not in result.output
        assert server.handler.count() == 0
    assert counts(project.journal) == {"pending": 8}


def test_a_relay_without_starttls_is_refused_at_once(project, server):
    result = invoke(
        *send_args(project, server, project.csv(recipients(3)))[:-2], "--tls", "starttls"
    )
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith(f"error: TLS with 127.0.0.1:{server.port} (STARTTLS) failed: ")
    assert "STARTTLS extension not supported" in result.stderr
    assert server.handler.connections <= 4, "one try per connection: no point in trying again"
    assert counts(project.journal) == {"pending": 3}


def test_plaintext_to_a_host_beyond_loopback_is_refused_before_connecting(project):
    path = project.csv(recipients(3))
    result = invoke(
        *send_args(
            project, None, path, "--smtp-host", "192.0.2.1", "--smtp-port", "25", "--tls", "none"
        )
    )
    assert result.exit_code == 2
    assert "refusing plaintext SMTP to 192.0.2.1" in result.stderr
    assert not project.journal.exists(), "refused before anything was prepared or sent"


def test_a_password_over_plaintext_is_refused(project, server):
    result = invoke(
        *send_args(project, server, project.csv(recipients(3))),
        env={"DISPATCH_SMTP_USER": "newsletter", "DISPATCH_SMTP_PASSWORD": PASSWORD},
    )
    assert result.exit_code == 2
    assert "password over plaintext" in result.stderr
    assert server.handler.connections == 0
    assert PASSWORD not in result.output


@pytest.fixture
def auth_server(ca):
    recorder = Recorder()
    recorder.auth = {"newsletter": PASSWORD}
    with SmtpServer(recorder, starttls=server_context(ca)) as running:
        yield running


def test_auth_over_starttls_works_and_the_password_is_never_shown_or_stored(
    project, auth_server, cafile
):
    result = invoke(
        *send_args(project, auth_server, project.csv(recipients(6)), "--cafile", str(cafile)),
        env={"DISPATCH_SMTP_USER": "newsletter", "DISPATCH_SMTP_PASSWORD": PASSWORD},
    )
    assert result.exit_code == 0, result.output
    assert auth_server.handler.per_recipient() == everyone(6)
    assert {m.user for m in auth_server.messages} == {"newsletter"}
    assert PASSWORD not in result.output
    for path in project.root.iterdir():
        if path.name.startswith(project.journal.name):  # the journal, its -wal and -shm
            assert PASSWORD.encode() not in path.read_bytes()


def test_a_wrong_password_stops_the_send_without_costing_attempts(project, auth_server, cafile):
    result = invoke(
        *send_args(project, auth_server, project.csv(recipients(6)), "--cafile", str(cafile)),
        env={"DISPATCH_SMTP_USER": "newsletter", "DISPATCH_SMTP_PASSWORD": "wrong-" + PASSWORD},
    )
    assert result.exit_code == 3
    assert "refused our login" in result.stderr and "resume with: dispatch" in result.stderr
    assert PASSWORD not in result.output
    assert auth_server.handler.count() == 0
    with sqlite3.connect(project.journal) as conn:
        assert conn.execute(
            "SELECT SUM(attempts), COUNT(*) FROM recipients WHERE state='pending'"
        ).fetchone() == (0, 6)
    conn.close()


# ------------------------------------------------------------------ exit codes
def test_exit_0_when_everyone_was_reached(project, server):
    result = invoke(*send_args(project, server, project.csv(recipients(5))))
    assert result.exit_code == 0
    assert (
        "sent 5, failed 0, still pending 0" in result.output
        and "5 of 5 reached in all" in result.output
    )


def test_exit_1_when_some_failed_for_good(project, server):
    server.handler.fail("RCPT", reply_always("550 5.1.1 unknown user", {"r00002@example.com"}))
    result = invoke(*send_args(project, server, project.csv(recipients(5))))
    assert result.exit_code == 1
    assert "sent 4, failed 1" in result.output
    again = invoke(*send_args(project, server, project.csv(recipients(5))))
    assert again.exit_code == 1 and "nothing to send" in again.output  # still a failure to look at
    assert server.handler.tries["RCPT"]["r00002@example.com"] == 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["--to", "me@example.com", "--list", "x.csv"], "choose one"),
        ([], "say who gets it"),
        (["--to", "not an address"], "not a valid email address"),
        (["--list", "nowhere.csv"], "neither a list in dispatch.yaml"),
        (["--list", "subscribers", "--smtp", "nope"], "no SMTP profile 'nope'"),
    ],
)
def test_exit_2_for_usage_errors(project, args, message):
    (project.root / "lists" / "subscribers.csv").write_text("email\nann@example.com\n")
    relay = [] if "--smtp" in args else ["--smtp-host", "127.0.0.1", "--tls", "none"]
    result = invoke("send", str(project.issue_dir), *args, *relay, "--yes")
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.startswith("error: ")


def test_exit_2_without_the_unsubscribe_secret(project, server, monkeypatch):
    monkeypatch.delenv("DISPATCH_UNSUBSCRIBE_SECRET")
    result = invoke(*send_args(project, server, project.csv(recipients(2))))
    assert result.exit_code == 2 and "DISPATCH_UNSUBSCRIBE_SECRET" in result.stderr
    assert server.handler.connections == 0


def test_without_yes_and_without_a_terminal_it_refuses(project, server):
    args = [a for a in send_args(project, server, project.csv(recipients(4))) if a != "--yes"]
    result = invoke(*args)
    assert result.exit_code == 2
    assert "Send plan for" in result.output and "to send now:  4" in result.output
    assert "not a terminal: add --yes" in result.stderr
    assert server.handler.connections == 0


def test_the_plan_says_what_will_happen(project, server):
    path = project.csv([*recipients(3), ("bad", "x"), ("r00001@EXAMPLE.com", "dup")])
    result = invoke(*send_args(project, server, path))
    assert result.exit_code == 0
    assert "to send now:  3" in result.output
    assert "excluded:     2 (1 duplicate, 1 invalid)" in result.output
    assert f"relay:        127.0.0.1:{server.port} (plaintext), 4 connections" in result.output


def test_ctrl_c_stops_after_the_messages_in_flight_and_says_how_to_resume(project, server):
    server.handler.delay = 0.01
    path = project.csv(recipients(400))
    args = [a for a in send_args(project, server, path) if a != "-q"] + ["--concurrency", "2"]
    proc = spawn(args, project.root)
    assert server.handler.wait_for(20, timeout=30), (
        proc.stderr.read() if proc.poll() is not None else "no mail"
    )
    out, err = interrupt(proc, signal.SIGINT)
    assert proc.returncode == 130, (out, err)
    assert "interrupted: the messages in flight were finished" in err
    resume = [line for line in err.splitlines() if line.startswith("resume with: ")]
    assert resume, err
    command = shlex.split(resume[-1].removeprefix("resume with: "))
    assert command[:2] == ["dispatch", "send"] and "--yes" in command and str(path) in command
    state = counts(project.journal)
    assert "sending" not in state, "the messages in flight were finished, not abandoned"
    assert state["sent"] == server.handler.count() and state.get("pending", 0) > 0

    server.handler.delay = 0
    finished = run(command[1:], project.root)
    assert finished.returncode == 0, finished.stderr
    assert server.handler.per_recipient() == everyone(400), "nothing lost, nothing twice"


# ------------------------------------------------------------------ dry runs
def test_a_dry_run_to_a_folder_writes_each_message_and_connects_to_nothing(
    project, server, tmp_path
):
    out = tmp_path / "dry"
    path = project.csv([*recipients(5), ("bad", "x")])
    result = invoke(*send_args(project, server, path, "--dry-run", str(out)))
    assert result.exit_code == 0, result.output
    assert "dry run: 5 messages written" in result.output and "nothing was sent" in result.output
    assert "excluded:" in result.stderr and ":7: bad: invalid" in result.stderr
    files = sorted(out.glob("*.eml"))
    assert len(files) == 5
    import email
    import email.policy

    for file, (address, _) in zip(files, recipients(5), strict=True):
        msg = email.message_from_bytes(file.read_bytes(), policy=email.policy.default)
        assert msg["To"].addresses[0].addr_spec == address
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert b"XDISPATCHMERGE" not in file.read_bytes()
    assert server.handler.connections == 0
    assert not project.journal.exists()


def test_a_dry_run_to_an_mbox(project, server, tmp_path):
    out = tmp_path / "out.mbox"
    result = invoke(*send_args(project, server, project.csv(recipients(4)), "--dry-run", str(out)))
    assert result.exit_code == 0, result.output
    box = mailbox.mbox(str(out))
    assert sorted(m["To"] for m in box) == sorted(
        f"{name} <{email}>" for email, name in recipients(4)
    )
    assert len({m["Message-ID"] for m in box}) == 4
    box.close()
    assert server.handler.connections == 0


def test_a_dry_run_of_test_copies_needs_no_secret(project, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPATCH_UNSUBSCRIBE_SECRET")
    out = tmp_path / "t.mbox"
    result = invoke("send", str(project.issue_dir), "--test", "--dry-run", str(out))
    assert result.exit_code == 0, result.output
    assert "throwaway secret" in result.stderr
    (msg,) = list(mailbox.mbox(str(out)))
    assert msg["X-Dispatch-Test"] == "yes" and msg["Subject"].startswith("[TEST] ")


def test_test_copies_that_are_refused_exit_1(project, server):
    server.handler.fail("RCPT", reply_always("550 5.1.1 no", {"me@example.com"}))
    result = invoke(
        "send",
        str(project.issue_dir),
        "--to",
        "me@example.com",
        "--to",
        "you@example.com",
        "--retry-base",
        "0.02",
        *server.cli_args(),
    )
    assert result.exit_code == 1
    assert "not delivered: me@example.com: rcpt: 550 5.1.1 no" in result.stderr
    assert server.handler.per_recipient() == {"you@example.com": 1}


def test_the_tls_context_trusts_the_given_ca(ca, cafile):
    from dispatch_mail.delivery.smtp import SmtpSettings

    context = SmtpSettings("127.0.0.1", 465, tls="implicit", cafile=str(cafile)).tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_a_second_ctrl_c_stops_at_once_and_the_journal_still_resumes(project, server):
    server.handler.delay = (
        0.3  # the first Ctrl-C waits for the messages in flight: long enough for a second
    )
    path = project.csv(recipients(200))
    args = send_args(project, server, path, "--concurrency", "4")
    proc = spawn(args, project.root)
    assert server.handler.wait_for(4, timeout=30)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    out, err = interrupt(proc, signal.SIGINT, timeout=10)
    assert proc.returncode == 130, (out, err)
    assert "interrupted at once" in err and err.splitlines()[-1].startswith(
        "resume with: dispatch send "
    )
    assert "Traceback" not in err
    assert counts(project.journal).get("sending", 0) <= 4

    server.handler.delay = 0
    finished = run(args, project.root)
    assert finished.returncode == 0, finished.stderr
    copies = server.handler.per_recipient()
    assert set(copies) == set(everyone(200))
    assert sum(n - 1 for n in copies.values()) <= 4


def test_a_drop_after_the_data_is_retried_and_reported_as_a_possible_duplicate(project, server):
    server.handler.fail("DATA", reply_first(DROP, addresses={"r00001@example.com"}))
    result = invoke(*send_args(project, server, project.csv(recipients(4))))
    assert result.exit_code == 0, result.output
    assert "1 message was retried after the connection dropped during DATA" in result.stderr
    assert "RFC 1047" in result.stderr
    assert server.handler.per_recipient()["r00001@example.com"] == 2


def test_a_list_send_without_a_token_in_the_unsubscribe_url_is_refused(project, server):
    yaml = project.root / "dispatch.yaml"
    yaml.write_text(yaml.read_text().replace("unsubscribe?t={token}", "unsubscribe"))
    result = invoke(*send_args(project, server, project.csv(recipients(3))))
    assert result.exit_code == 1
    assert "footer.unsubscribe_url: has no {token}" in result.stderr
    assert server.handler.connections == 0
    test_copy = invoke("send", str(project.issue_dir), "--to", "me@example.com", *server.cli_args())
    assert test_copy.exit_code == 0, (
        test_copy.output
    )  # a test copy may go: it shows the problem to a reviewer


def test_ctrl_c_during_a_throttle_pause_stops_at_once(project, server):
    server.handler.fail(
        "RCPT",
        reply_first("454 4.7.0 Maximum sending rate exceeded", addresses={"r00005@example.com"}),
    )
    args = [
        *send_args(project, server, project.csv(recipients(50)), "--concurrency", "2"),
        "--throttle-pause",
        "3600",  # a send that waited for this pause would not end while the test lasts
    ]
    proc = spawn(args, project.root)
    # the engine pauses the send, then records the 454: once it is in the journal, the pause is on
    paused = poll(lambda: paused_at(project.journal, "r00005@example.com", 454), timeout=60)
    assert paused is not None, "the 454 never reached the journal"
    out, err = interrupt(proc, signal.SIGINT, timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in err
    state = counts(project.journal)
    assert "sending" not in state
    # the message the other connection had in flight was finished; no new one started
    assert state["sent"] == paused.get("sent", 0) + paused.get("sending", 0)
    assert state["sent"] == server.handler.count()
    assert state["pending"] == 50 - state["sent"]
