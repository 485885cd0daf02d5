"""`dispatch serve` as a real process on loopback, over real HTTP, its real SQLite store read.

What is proven: a GET changes nothing (link scanners fetch every URL); RFC 8058's
one-click POST unsubscribes from the token's list and issue; only genuine, unexpired
tokens under a key the server holds change anything; the confirmation page and its
undo; the limits (405, 413, 400); any Host; the token in a query parameter; a store
that stops answering (503); no token in the server's output; SIGTERM exits 0.
"""

from __future__ import annotations

import datetime
import signal
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from dispatch_mail.mail.tokens import TokenKeys
from dispatch_mail.project.loader import load_project
from dispatch_mail.suppression import Suppression, open_store
from tests.helpers.postgres import PASSWORD, Cluster
from tests.helpers.project import PROJECT_YAML, create_project
from tests.helpers.send import SECRET, run
from tests.helpers.serve import Served, start_serve

OLD_SECRET = "a rotated-out secret of 2025, still honoured"
FOREIGN_SECRET = "somebody else's secret, never given to us"
TODAY = datetime.date.today()
KEYS = TokenKeys.from_secrets(SECRET.encode())
OLD_KEYS = TokenKeys.from_secrets(OLD_SECRET.encode())
PATH_URL = "https://news.example.org/unsubscribe/{token}"
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
LIST_YAML = """\
  unsubscribe_mailto: leave@example.org
lists:
  subscribers:
    csv: lists/subscribers.csv
    description: Tips & <tricks> for "readers"
"""


def write_project(root: Path, url: str = PATH_URL) -> Path:
    old = "  unsubscribe_url: https://example.org/unsubscribe?t={token}\n"
    assert old in PROJECT_YAML
    return create_project(
        root, config=PROJECT_YAML.replace(old, f"  unsubscribe_url: {url}\n" + LIST_YAML)
    )


def seal(
    email: str, *, keys: TokenKeys = KEYS, days_ago: int = 0, list_name: str = "subscribers"
) -> str:
    return keys.seal(list_name, "2026-q1", email, issued=TODAY - datetime.timedelta(days=days_ago))


def suppressions(root: Path, email: str) -> list[Suppression]:
    with open_store(load_project(root)) as store:
        return [s for s in store.entries() if s.email == email]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = write_project(tmp_path_factory.mktemp("serve") / "news")
    previous = root.parent / "previous-secrets"
    previous.write_text(OLD_SECRET + "\n")
    running = start_serve(root, "--previous-secret-file", str(previous))
    yield running
    assert running.stop() == 0, running.output


# ------------------------------------------------------------------ the confirmation page
def test_a_get_shows_an_escaped_page_and_changes_nothing(served: Served):
    email = "ann@example.com"
    for _ in range(2):
        reply = served.request("GET", f"/unsubscribe/{seal(email)}")
        assert reply.status == 200 and reply.headers["content-type"].startswith("text/html")
        assert suppressions(served.root, email) == []
    page = reply.text
    assert '<html lang="en">' in page and "<h1>" in page and "Test News" in page
    assert "Tips &amp; &lt;tricks&gt; for &quot;readers&quot;" in page and "<tricks>" not in page
    assert "a***@example.com" in page and email not in page
    assert '<form method="post">' in page and '<button type="submit">Unsubscribe</button>' in page
    assert "http" not in page.split("<body>", 1)[0]  # nothing is loaded from anywhere
    headers = reply.headers
    assert headers["content-security-policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    )
    assert headers["referrer-policy"] == "no-referrer" and headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store" and "set-cookie" not in headers
    assert served.request("HEAD", f"/unsubscribe/{seal(email)}").status == 200
    assert suppressions(served.root, email) == []


def test_the_page_unsubscribes_and_offers_an_undo(served: Served):
    email = "page@example.com"
    path = f"/unsubscribe/{seal(email)}"
    done = served.request("POST", path, b"action=unsubscribe", FORM)
    assert done.status == 200 and "You are unsubscribed" in done.text
    assert 'value="resubscribe"' in done.text and ">Resubscribe</button>" in done.text
    (entry,) = suppressions(served.root, email)
    assert (entry.reason, entry.source, entry.list, entry.issue) == (
        "unsubscribed",
        "confirmation-page",
        "subscribers",
        "2026-q1",
    )
    undone = served.request("POST", path, b"action=resubscribe", FORM)
    assert undone.status == 200 and "subscribed again" in undone.text
    assert suppressions(served.root, email) == []


# ------------------------------------------------------------------ RFC 8058 one-click
def test_one_click_unsubscribes_from_the_tokens_list_and_issue(served: Served):
    email = "bob@example.com"
    for _ in range(2):  # a mail client may POST twice: still one suppression, still 200
        reply = served.request("POST", f"/unsubscribe/{seal(email)}", ONE_CLICK, FORM)
        assert reply.status == 200, reply.text
        assert reply.headers["content-type"].startswith("text/plain")
        assert "location" not in reply.headers and "set-cookie" not in reply.headers
    (entry,) = suppressions(served.root, email)
    assert (entry.reason, entry.source, entry.list, entry.issue) == (
        "unsubscribed",
        "one-click",
        "subscribers",
        "2026-q1",
    )
    assert entry.evidence


def test_one_click_as_multipart_form_data_works_too(served: Served):
    email = "multi@example.com"
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    ).encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    assert served.request("POST", f"/unsubscribe/{seal(email)}", body, headers).status == 200
    assert [s.source for s in suppressions(served.root, email)] == ["one-click"]


def test_any_host_name_is_served(served: Served):
    """Behind a reverse proxy the Host is the public name, or anything a client sends."""
    email = "host@example.com"
    for host in ("news.example.org", "evil.example", "127.0.0.1"):
        reply = served.request(
            "POST", f"/unsubscribe/{seal(email)}", ONE_CLICK, {**FORM, "Host": host}
        )
        assert reply.status == 200, host
    assert len(suppressions(served.root, email)) == 1


def test_a_token_under_a_previous_secret_works_within_token_days(served: Served):
    fresh, stale = "rotated@example.com", "rotated-stale@example.com"
    assert (
        served.request(
            "POST", f"/unsubscribe/{seal(fresh, keys=OLD_KEYS, days_ago=400)}", ONE_CLICK, FORM
        ).status
        == 200
    )
    assert [s.source for s in suppressions(served.root, fresh)] == ["one-click"]
    reply = served.request(
        "POST", f"/unsubscribe/{seal(stale, keys=OLD_KEYS, days_ago=401)}", ONE_CLICK, FORM
    )
    assert reply.status == 400 and "expired" in reply.text
    assert suppressions(served.root, stale) == []


@pytest.mark.parametrize(
    "kind", ["tampered", "expired", "foreign key", "truncated", "padded", "empty", "not base64"]
)
def test_tokens_that_are_not_genuine_change_nothing(served: Served, kind: str):
    email = f"{kind.replace(' ', '-')}@example.com"
    good = seal(email)
    token = {
        "tampered": good[:20] + ("A" if good[20] != "A" else "B") + good[21:],
        "expired": seal(email, days_ago=401),
        "foreign key": seal(email, keys=TokenKeys.from_secrets(FOREIGN_SECRET.encode())),
        "truncated": good[:-3],
        "padded": good + "==",
        "empty": "",
        "not base64": quote("!!" + good + "~"),
    }[kind]
    for method, body in (("GET", None), ("POST", ONE_CLICK), ("POST", b"action=unsubscribe")):
        reply = served.request(method, f"/unsubscribe/{token}", body, FORM)
        if kind == "empty":
            assert reply.status == 404
            continue
        assert reply.status == 400, (kind, method, reply.status)
        assert reply.headers["content-type"].startswith("text/html") and "<h1>" in reply.text
        assert "Nothing was changed" in reply.text
        if kind == "expired":
            assert "expired" in reply.text and "leave@example.org" in reply.text
    assert suppressions(served.root, email) == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"List-Unsubscribe=One-Click&x=1",
        b"List-Unsubscribe=Yes",
        b"list-unsubscribe=one-click",
        b"List-Unsubscribe=One-Click&List-Unsubscribe=One-Click",
        b"action=delete-everything",
        b'{"List-Unsubscribe": "One-Click"}',
        b"\xff\xfe",
    ],
)
def test_a_wrong_body_is_refused_and_changes_nothing(served: Served, body: bytes):
    email = "body@example.com"
    assert served.request("POST", f"/unsubscribe/{seal(email)}", body, FORM).status == 400
    json = {"Content-Type": "application/json"}
    assert served.request("POST", f"/unsubscribe/{seal(email)}", ONE_CLICK, json).status == 400
    assert suppressions(served.root, email) == []


def test_other_methods_and_large_bodies_are_refused(served: Served):
    email = "limits@example.com"
    path = f"/unsubscribe/{seal(email)}"
    for method in ("PUT", "DELETE", "PATCH"):
        reply = served.request(method, path, ONE_CLICK, FORM)
        assert reply.status == 405 and "POST" in reply.headers["allow"]
    big = ONE_CLICK + b"&pad=" + b"x" * 10_000
    assert served.request("POST", path, big, FORM).status == 413
    chunked = {**FORM, "Transfer-Encoding": "chunked"}
    chunks = b"".join(b"%x\r\n%s\r\n" % (1000, b"y" * 1000) for _ in range(10)) + b"0\r\n\r\n"
    assert served.request("POST", path, chunks, chunked).status == 413
    assert suppressions(served.root, email) == []


def test_the_health_check_and_unknown_paths(served: Served):
    reply = served.request("GET", "/healthz")
    assert (reply.status, reply.text) == (200, "ok\n")
    assert served.request("GET", "/unsubscribe").status == 404
    assert served.request("GET", "/elsewhere/" + seal("x@example.com")).status == 404


# ------------------------------------------------------------------ its own processes
def test_a_query_parameter_token_no_token_in_the_output_and_sigterm(tmp_path: Path):
    root = write_project(tmp_path / "news", "https://news.example.org/u?list=weekly&t={token}")
    running = start_serve(root)
    try:
        assert "/u?t={token}" in running.lines[0]
        email = "query@example.com"
        token = seal(email)
        assert running.request("GET", f"/u?t={token}").status == 200
        assert running.request("GET", f"/u?t={token}&t={token}").status == 400  # one value only
        assert running.request("GET", f"/u/{token}").status == 404
        assert running.request("POST", f"/u?list=weekly&t={token}", ONE_CLICK, FORM).status == 200
        assert [s.source for s in suppressions(root, email)] == ["one-click"]
        assert running.request("POST", f"/u?t={token}A", ONE_CLICK, FORM).status == 400
    finally:
        code = running.stop(signal.SIGTERM)
    assert code == 0, running.output
    assert "Traceback" not in running.output and "stopped" in running.output
    assert token not in running.output and token[:16] not in running.output
    assert email not in running.output
    assert f"<token {KEYS.key_id}:" in running.output  # the log names the key, never the token


def test_sigint_stops_it_cleanly_too(tmp_path: Path):
    running = start_serve(write_project(tmp_path / "news"))
    assert running.request("GET", "/healthz").status == 200
    assert running.stop(signal.SIGINT) == 0, running.output


def test_without_the_secret_it_does_not_start(tmp_path: Path):
    root = write_project(tmp_path / "news")
    done = run(["serve", "--port", "0"], root, DISPATCH_UNSUBSCRIBE_SECRET="")
    assert done.returncode == 2
    assert done.stderr.startswith("error: set DISPATCH_UNSUBSCRIBE_SECRET")
    assert "(or give --secret-file)" in done.stderr and "serving" not in done.stdout


def test_a_store_that_stops_answering_is_a_503_and_changes_nothing(
    tmp_path: Path, fresh_postgres_url: str, postgres_cluster: Cluster
):
    """The shared PostgreSQL store goes away under a running server: 503, one line, no secret."""
    url, cluster = fresh_postgres_url, postgres_cluster
    running = start_serve(write_project(tmp_path / "news"), "--database", url)
    try:
        email = "db@example.com"
        assert running.request("POST", f"/unsubscribe/{seal(email)}", ONE_CLICK, FORM).status == 200
        cluster.admin(f"DROP DATABASE {url.rsplit('/', 1)[1]} WITH (FORCE)")
        assert running.request("POST", f"/unsubscribe/{seal(email)}", ONE_CLICK, FORM).status == 503
        page = running.request("POST", f"/unsubscribe/{seal(email)}", b"action=unsubscribe", FORM)
        assert page.status == 503 and "nothing was changed" in page.text
        assert running.request("GET", "/healthz").status == 503
    finally:
        assert running.stop() == 0, running.output
    assert PASSWORD not in running.output and "Traceback" not in running.output
    assert running.output.count("the suppression store did not answer") == 3  # one line each


def test_an_unsubscribe_url_without_a_token_is_refused_in_one_line(tmp_path: Path):
    root = write_project(tmp_path / "news", "https://news.example.org/unsubscribe")
    done = run(["serve", "--port", "0"], root)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: footer.unsubscribe_url") and "{token}" in done.stderr
    assert "Traceback" not in done.stderr and "serving" not in done.stdout
