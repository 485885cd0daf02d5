"""A real Postfix's own bounce of a message it accepted, sent with VERP, maps back to its recipient.

dispatch sends through a private Postfix, which says 250 to every message; the
next hop (an aiosmtpd sink) then refuses some recipients at RCPT with 550 5.1.1,
so Postfix writes its own bounces (bounce(8), not a corpus copy) to each
message's VERP envelope sender. Those reach a second sink, the return mailbox;
`dispatch bounces` reads them from an mbox as a real process.
"""

from __future__ import annotations

import json
import mailbox
from collections.abc import Iterator
from email.utils import parseaddr
from pathlib import Path

import pytest

from dispatch_mail.delivery.journal import Row
from dispatch_mail.project.loader import load_project
from dispatch_mail.suppression import open_store
from tests.helpers import postfix
from tests.helpers.project import Project
from tests.helpers.returnmail import (
    ISSUE,
    LIST,
    RETURN_PATH_SETTING,
    read_journal,
    verp_of,
    write_mbox,
)
from tests.helpers.send import run, wait_until
from tests.helpers.smtp_server import Received, SmtpServer

UNKNOWN = {"alice@example.com", "bob@example.com", "carol@example.com"}  # the next hop says 550
KNOWN = {"zoe@example.com"}  # delivered: it must not be suppressed
SUBSCRIBERS = sorted(UNKNOWN | KNOWN)


def _user_unknown(address: str, attempt: int) -> str | None:
    """The next hop's reply at RCPT: Postfix's own wording for an unknown virtual user."""
    if address in UNKNOWN:
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
    return None


@pytest.fixture(autouse=True)
def postfix_installed() -> None:
    """Before any server starts: skip without Postfix, or fail under CI=true."""
    postfix.require()


@pytest.fixture
def next_hop() -> Iterator[SmtpServer]:
    """The recipients' mail server (example.com): refuses UNKNOWN, takes the others."""
    with SmtpServer() as server:
        server.handler.fail("RCPT", _user_unknown)
        yield server


@pytest.fixture
def return_mailbox() -> Iterator[SmtpServer]:
    """The server of the return path's domain (example.org): where Postfix's bounces arrive."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def relay(next_hop: SmtpServer, return_mailbox: SmtpServer) -> Iterator[postfix.Postfix]:
    routes = {"example.com": next_hop.port, "example.org": return_mailbox.port}
    with postfix.Postfix(routes, relay_domains=["example.com"]) as running:
        yield running


def _bounces(inbox: SmtpServer, relay: postfix.Postfix) -> list[Received]:
    """Every bounce Postfix sent, once all of UNKNOWN have one (bounded wait)."""
    arrived = wait_until(lambda: inbox.handler.count() >= len(UNKNOWN), timeout=15, step=0.05)
    assert arrived, f"Postfix sent {inbox.handler.count()} bounces\n{relay.log()}"
    return inbox.messages


def test_postfix_bounces_of_accepted_mail_suppress_exactly_their_recipients(
    project: Project,
    relay: postfix.Postfix,
    next_hop: SmtpServer,
    return_mailbox: SmtpServer,
    tmp_path: Path,
) -> None:
    project.extra = RETURN_PATH_SETTING
    project.write()
    (project.root / "lists" / "subscribers.csv").write_text(
        "email,name\n" + "".join(f"{e},Reader\n" for e in SUBSCRIBERS), encoding="utf-8"
    )

    issue = str(project.root / "issues" / ISSUE)
    sent = run(["send", issue, "--list", LIST, "--yes", "-q", *relay.cli_args()], cwd=project.root)
    assert sent.returncode == 0, sent.stdout + sent.stderr + relay.log()
    rows = read_journal(project.root / "build" / ISSUE / f"send-{LIST}.journal")
    assert {email: (row.state, row.last_code) for email, row in rows.items()} == {
        email: ("sent", 250) for email in SUBSCRIBERS
    }  # Postfix accepted every one: the failures come later, from the next hop

    bounces = _bounces(return_mailbox, relay)
    assert len(bounces) == len(UNKNOWN)
    assert wait_until(lambda: next_hop.handler.count() == len(KNOWN), timeout=5)
    assert {m.recipient for m in next_hop.messages} == KNOWN
    verp: dict[str, Row] = {verp_of(rows[email]): rows[email] for email in UNKNOWN}
    for bounce in bounces:
        assert bounce.mail_from.strip("<>") == ""  # a real bounce: null sender, to the VERP address
        assert bounce.recipient in verp, bounce.recipient
        assert bounce.message["Subject"] == "Undelivered Mail Returned to Sender"
        assert bounce.message.get_content_type() == "multipart/report"
    assert {verp[b.recipient].email for b in bounces} == UNKNOWN

    box = write_mbox(tmp_path / "bounces.mbox", [bounce.data for bounce in bounces])
    read = run(["bounces", "--mbox", str(box)], cwd=project.root)
    assert read.returncode == 0, read.stdout + read.stderr
    lines = read.stdout.splitlines()
    assert len(lines) == len(UNKNOWN) + 1, read.stdout  # one per bounce, then the summary
    for email in UNKNOWN:
        shown = f"hard-bounce 5.1.1 {email} ({ISSUE}, list {LIST})"
        assert sum(shown in line for line in lines) == 1, (shown, read.stdout)
    assert f"{len(UNKNOWN)} hard-bounce" in lines[-1] and "unmatched" not in read.stdout
    # each was found by its VERP envelope sender (the dry run records nothing)
    shown = run(["bounces", "--mbox", str(box), "--dry-run", "--format", "json"], cwd=project.root)
    report = json.loads(shown.stdout)
    vias = [f["via"] for m in report["messages"] for f in m["findings"]]
    assert vias == ["verp"] * len(UNKNOWN), shown.stdout

    with open_store(load_project(project.root)) as store:
        assert set(store.suppressed(LIST)) == UNKNOWN

    # the list's next plan leaves them out, each with its reason
    plan = tmp_path / "plan.mbox"
    again = run(["send", issue, "--list", LIST, "--dry-run", str(plan)], cwd=project.root)
    assert again.returncode == 0, again.stdout + again.stderr
    planned = [parseaddr(message["To"])[1] for message in mailbox.mbox(plan)]
    assert sorted(planned) == sorted(KNOWN)
    excluded = [line for line in again.stderr.splitlines() if line.startswith("excluded:")]
    assert len(excluded) == len(UNKNOWN), again.stderr
    for email in UNKNOWN:
        reason = f"{email}: suppressed (hard-bounce"
        assert any(reason in line for line in excluded), (reason, again.stderr)
