"""The one-click unsubscribe loop end to end: a send, its link, `dispatch serve`, the next send.

Every part is the real one, each in its own process: `dispatch send` mails a list
through an aiosmtpd sink; the List-Unsubscribe URL is taken from a received
message's header (never rebuilt); a reverse proxy's only job, pointing the public
https URL at the server, is done by rewriting its scheme and host; `dispatch serve`
answers the GET (a page, nothing changed) and the RFC 8058 POST (the reader
unsubscribed); the next send of another issue to the same list leaves the reader
out and says why, in its plan and in `dispatch status --excluded`. The store is
the project's SQLite file, or a real PostgreSQL shared by separate processes. An
unsubscribe that lands while a long send runs is honoured before that reader's batch.
"""

from __future__ import annotations

import datetime
import re
import socket
import subprocess
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

import pytest

from dispatch_mail.mail.tokens import TokenKeys
from dispatch_mail.project.loader import load_project
from dispatch_mail.suppression import Suppression, open_store
from tests.helpers.project import SEND_ISSUE_YAML, Project
from tests.helpers.send import SECRET, recipients, run, spawn, wait_until
from tests.helpers.serve import Served, start_serve
from tests.helpers.smtp_server import Received, SmtpServer

ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
READERS = 5
LEAVER = "r00002@example.com"  # the reader whose link is followed
SECOND_ISSUE = "two"
LONG_LIST = 300
LONG_RATE = "40"  # messages/s: the long send takes about 7.5 seconds
LATE_LEAVER = "r00290@example.com"  # in the long list's second batch of 200, screened later


# ------------------------------------------------------------------ the loop's steps
@pytest.fixture
def news(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The send project with a list of READERS; the store is its SQLite file unless told."""
    monkeypatch.delenv("DISPATCH_DATABASE_URL", raising=False)
    project.csv(recipients(READERS), name="lists/subscribers.csv")
    issue = project.root / "issues" / SECOND_ISSUE / "issue.yaml"
    issue.parent.mkdir(parents=True)
    issue.write_text(
        SEND_ISSUE_YAML.format(subject="Example Weekly, issue 2", item="Issue two's news."),
        encoding="utf-8",
    )
    return project


def send(
    project: Project, server: SmtpServer, issue: str, *extra: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """`dispatch send ISSUE --list subscribers` as its own process, to the end."""
    args = ["send", str(project.root / "issues" / issue), "--list", "subscribers", "--yes", "-q"]
    return run([*args, *server.cli_args(), *extra], project.root, **env)


def sent_ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def unsubscribe_url(message: Received) -> str:
    """The https URL of the message's one List-Unsubscribe header, as a mail client reads it."""
    parsed = message.message
    assert len(parsed.get_all("List-Unsubscribe", [])) == 1
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    targets = re.findall(r"<([^<>]*)>", str(parsed["List-Unsubscribe"]))
    https = [target for target in targets if target.startswith("https://")]
    assert len(https) == 1, targets
    return str(https[0])


def behind_proxy(url: str, served: Served) -> str:
    """The public URL as a reverse proxy passes it on: our address; its path and query kept."""
    public = urlsplit(url)
    return urlunsplit(("http", f"127.0.0.1:{served.port}", public.path, public.query, ""))


def target(url: str) -> str:
    """A URL's path and query: what an HTTP request line carries."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def message_to(server: SmtpServer, email: str) -> Received:
    (message,) = [m for m in server.handler.messages if m.recipient == email]
    return message


def stored(project: Project, url: str | None = None) -> list[Suppression]:
    with open_store(load_project(project.root), url=url) as store:
        return list(store.entries())


def received_since(server: SmtpServer, count: int) -> Counter[str]:
    return Counter(m.recipient for m in server.handler.messages[count:])


def everyone(n: int = READERS) -> Counter[str]:
    """Each of the first ``n`` readers once."""
    return Counter(address for address, _ in recipients(n))


def everyone_but(email: str, n: int = READERS) -> Counter[str]:
    return everyone(n) - Counter({email: 1})


def assert_excluded(project: Project, email: str, source: str, plan: str, **env: str) -> None:
    """Issue two's plan counts the unsubscribe; `dispatch status --excluded` names its source."""
    assert f"excluded:     1 (1 suppressed (unsubscribed, {source}))" in plan, plan
    status = run(
        ["status", str(project.root / "issues" / SECOND_ISSUE), "--excluded"], project.root, **env
    )
    assert status.returncode == 0, status.stderr
    assert f"{email}: suppressed (unsubscribed, {source}): on " in status.stdout, status.stdout
    assert status.stdout.count("suppressed") == 1  # nobody else


# ------------------------------------------------------------------ 1. SQLite, one-click
def test_one_click_from_a_received_message_keeps_the_next_issue_from_the_reader(
    news: Project, server: SmtpServer
) -> None:
    sent_ok(send(news, server, "one"))
    assert server.handler.per_recipient() == everyone()
    url = unsubscribe_url(message_to(server, LEAVER))
    assert urlsplit(url).netloc == "news.example.org"

    served = start_serve(news.root)
    try:
        local = behind_proxy(url, served)
        before = stored(news)
        page = served.request("GET", target(local))
        assert page.status == 200 and page.headers["content-type"].startswith("text/html")
        assert stored(news) == before == []  # a link scanner's GET changes nothing

        done = served.request("POST", target(local), ONE_CLICK, FORM)
        assert done.status == 200, done.text
        assert "location" not in done.headers and "set-cookie" not in done.headers
    finally:
        assert served.stop() == 0, served.output
    (entry,) = stored(news)
    assert (entry.email, entry.reason, entry.source, entry.list, entry.issue) == (
        LEAVER,
        "unsubscribed",
        "one-click",
        "subscribers",
        "one",
    )

    first = server.handler.count()
    plan = sent_ok(send(news, server, SECOND_ISSUE))
    assert received_since(server, first) == everyone_but(LEAVER)
    assert_excluded(news, LEAVER, "one-click", plan)


# ------------------------------------------------------------------ 2. the page, in Chromium
from tests.helpers.browser import chromium as chromium  # noqa: E402,F401 (fixture)


def test_the_confirmation_page_in_a_browser_keeps_the_next_issue_from_the_reader(
    chromium: object, news: Project, server: SmtpServer
) -> None:
    sent_ok(send(news, server, "one"))
    url = unsubscribe_url(message_to(server, LEAVER))

    served = start_serve(news.root)
    try:
        page = chromium.new_page()  # type: ignore[attr-defined]
        page.goto(behind_proxy(url, served))
        assert (
            page.get_by_role("heading", level=1).inner_text() == "Unsubscribe from Example Weekly?"
        )
        assert stored(news) == []  # opening the page changed nothing
        page.get_by_role("button", name="Unsubscribe").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", level=1).inner_text() == "You are unsubscribed"
    finally:
        assert served.stop() == 0, served.output
    assert [(s.email, s.reason, s.source) for s in stored(news)] == [
        (LEAVER, "unsubscribed", "confirmation-page")
    ]

    first = server.handler.count()
    plan = sent_ok(send(news, server, SECOND_ISSUE))
    assert received_since(server, first) == everyone_but(LEAVER)
    assert_excluded(news, LEAVER, "confirmation-page", plan)


# ------------------------------------------------------------------ 3. a shared PostgreSQL store
def test_the_endpoint_and_the_sends_share_a_postgresql_store(
    news: Project, server: SmtpServer, fresh_postgres_url: str
) -> None:
    """`dispatch serve` and both sends are separate processes; only the database joins them."""
    shared = {"DISPATCH_DATABASE_URL": fresh_postgres_url}
    sent_ok(send(news, server, "one", **shared))
    url = unsubscribe_url(message_to(server, LEAVER))

    served = start_serve(news.root, **shared)
    try:
        done = served.request("POST", target(behind_proxy(url, served)), ONE_CLICK, FORM)
        assert done.status == 200, done.text
    finally:
        assert served.stop() == 0, served.output
    assert [(s.email, s.source) for s in stored(news, fresh_postgres_url)] == [
        (LEAVER, "one-click")
    ]

    first = server.handler.count()
    plan = sent_ok(send(news, server, SECOND_ISSUE, **shared))
    assert received_since(server, first) == everyone_but(LEAVER)
    assert_excluded(news, LEAVER, "one-click", plan, **shared)
    sqlite_file = news.root / load_project(news.root).suppressions
    assert not sqlite_file.exists()  # the project's own file was never the store


def test_a_store_that_cannot_be_reached_stops_the_send_before_it_starts(
    news: Project, server: SmtpServer
) -> None:
    password = "unreachable-pw-93c1"
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://dispatch:{password}@127.0.0.1:{port}/dispatch"
    done = send(news, server, "one", DISPATCH_DATABASE_URL=url)
    assert done.returncode != 0
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ") and "suppression store" in line
    assert f"127.0.0.1:{port}" in line and password not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert server.handler.count() == 0


# ------------------------------------------------------------------ 4. while a long send runs
def test_an_unsubscribe_during_a_long_send_is_honoured_before_the_readers_turn(
    news: Project, server: SmtpServer
) -> None:
    news.csv(recipients(LONG_LIST), name="lists/subscribers.csv")
    served = start_serve(news.root)
    try:
        args = ["send", str(news.issue_dir), "--list", "subscribers", "--yes", "-q"]
        sending = spawn([*args, *server.cli_args(), "--rate", LONG_RATE], news.root)
        try:
            assert wait_until(lambda: server.handler.count() >= 10, timeout=30)
            # the reader's own message is not sent yet, so their link is sealed as the send
            # seals it: same secret, list, issue and address
            token = TokenKeys.from_secrets(SECRET.encode()).seal(
                "subscribers", "one", LATE_LEAVER, issued=datetime.date.today()
            )
            reply = served.request("POST", f"/unsubscribe?t={token}", ONE_CLICK, FORM)
            assert reply.status == 200, reply.text
            assert server.handler.per_recipient()[LATE_LEAVER] == 0
            out, err = sending.communicate(timeout=60)
        finally:
            if sending.poll() is None:
                sending.kill()
                sending.communicate()
    finally:
        assert served.stop() == 0, served.output
    assert sending.returncode == 0, out + err
    assert "1 unsubscribed or bounced while the send ran: not sent" in err, err
    assert server.handler.per_recipient() == everyone_but(LATE_LEAVER, LONG_LIST)
