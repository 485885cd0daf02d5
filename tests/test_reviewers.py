"""Test copies greet each reviewer by name; `--as-recipient` previews one list member's own copy."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from dispatch_mail.mail.tokens import TokenKeys
from dispatch_mail.project.loader import load_project
from dispatch_mail.project.settings import Reviewer
from tests.helpers.project import Project
from tests.helpers.send import SECRET, invoke
from tests.helpers.smtp_server import Received, SmtpServer

REVIEWERS = """\
reviewers:
  - editors@example.org
  - {email: bea@example.org, name: Bea Reviewer}
  - email: cy@example.org
"""


def with_reviewers(project: Project, block: str = REVIEWERS) -> None:
    config = project.root / "dispatch.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("reviewers:\n  - editors@example.org\n", block))


def greeting(received: Received) -> str:
    text = received.message.get_body(("plain",)).get_content()
    return next(line for line in text.splitlines() if line.startswith("Hi "))


def by_recipient(server: SmtpServer) -> dict[str, Received]:
    return {m.recipient: m for m in server.messages}


def test_reviewers_are_addresses_or_email_and_name(project: Project):
    with_reviewers(project)
    loaded = load_project(project.root)
    assert loaded.reviewers == [
        Reviewer(email="editors@example.org"),
        Reviewer(email="bea@example.org", name="Bea Reviewer"),
        Reviewer(email="cy@example.org"),
    ]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("reviewers:\n  - {name: Nobody}\n", "reviewers[0].email: missing (required email"),
        ("reviewers:\n  - {email: a@example.org, nmae: A}\n", "reviewers[0].nmae: unknown key"),
        ("reviewers:\n  - not-an-address\n", "reviewers[0]: 'not-an-address' is not a valid email"),
        ("reviewers:\n  - {email: a@example.org, name: [A]}\n", "reviewers[0].name: expected text"),
    ],
)
def test_a_wrong_reviewer_is_located(project: Project, block, message):
    with_reviewers(project, block)
    result = invoke("build", str(project.issue_dir))
    assert result.exit_code == 1
    assert "dispatch.yaml:" in result.stderr and message in result.stderr, result.stderr


def test_test_copies_greet_each_reviewer_by_name(project: Project, server: SmtpServer):
    with_reviewers(project)
    result = invoke(
        "send", str(project.issue_dir), "--test", "--to", "Ada Lovelace <ada@example.com>",
        *server.cli_args(),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    received = by_recipient(server)
    assert {r: greeting(m) for r, m in received.items()} == {
        "editors@example.org": "Hi there,",  # a plain address: the fallback
        "bea@example.org": "Hi Bea Reviewer,",
        "cy@example.org": "Hi there,",
        "ada@example.com": "Hi Ada Lovelace,",
    }
    assert received["bea@example.org"].message["To"] == "Bea Reviewer <bea@example.org>"
    assert all(m.message["X-Dispatch-Test"] == "yes" for m in received.values())
    assert "sent to editors@example.org, bea@example.org, cy@example.org, ada@example.com" in (
        result.output
    )


@pytest.mark.parametrize("to", ["Ada <not-an-address>", "Ada\r\nBcc: x@example.com <a@b.org>"])
def test_a_wrong_test_address_is_refused_before_connecting(project: Project, server, to):
    result = invoke("send", str(project.issue_dir), "--to", to, *server.cli_args())
    assert result.exit_code == 2
    assert result.stderr.startswith("error: test address"), result.stderr
    assert server.handler.connections == 0


def test_as_recipient_sends_the_members_copy_to_the_test_addresses_only(
    project: Project, server: SmtpServer
):
    project.csv([("ann@example.com", "Ann"), ("mia@example.com", "Mia Member")],
                name="lists/subscribers.csv")  # fmt: skip
    result = invoke(
        "send", str(project.issue_dir), "--to", "me@example.org", "--as-recipient",
        "MIA@example.com", *server.cli_args(),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "as MIA@example.com's copy" in result.output
    (received,) = server.messages
    assert received.recipient == "me@example.org"  # never the member
    assert greeting(received) == "Hi Mia Member,"
    msg = received.message
    assert msg["X-Dispatch-Test"] == "yes" and msg["Subject"].startswith("[TEST] ")
    # what the reviewer could click names the reviewer on the "test" list, not the member
    url = next(u for u in str(msg["List-Unsubscribe"]).strip("<>").split(">, <") if "://" in u)
    (token,) = parse_qs(urlparse(url).query)["t"]
    claims = TokenKeys.from_secrets(SECRET.encode()).open(token, lifetime_days=400)
    assert claims is not None
    assert (claims.email, claims.list_name) == ("me@example.org", "test")
    assert b"mia@example.com" not in received.data.lower()


def test_as_recipient_with_the_reviewers(project: Project, server: SmtpServer):
    with_reviewers(project)
    project.csv([("mia@example.com", "Mia Member")], name="lists/subscribers.csv")
    result = invoke(
        "send", str(project.issue_dir), "--test", "--as-recipient", "mia@example.com",
        *server.cli_args(),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {greeting(m) for m in server.messages} == {"Hi Mia Member,"}
    assert len(server.messages) == 3


def test_as_recipient_of_someone_in_no_list_is_a_clear_error(project: Project, server):
    project.csv([("ann@example.com", "Ann")], name="lists/subscribers.csv")
    result = invoke(
        "send", str(project.issue_dir), "--to", "me@example.org", "--as-recipient",
        "zed@example.com", *server.cli_args(),
    )  # fmt: skip
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: zed@example.com is in none of the lists of dispatch.yaml ")
    assert line.endswith("(subscribers (" + str(project.root / "lists/subscribers.csv") + "))")
    assert server.handler.connections == 0


def test_as_recipient_needs_a_test_send(project: Project, server):
    project.csv([("ann@example.com", "Ann")], name="lists/subscribers.csv")
    for extra in ([], ["--list", "subscribers"]):
        result = invoke(
            "send", str(project.issue_dir), "--as-recipient", "ann@example.com", *extra,
            "--yes", *server.cli_args(),
        )  # fmt: skip
        assert result.exit_code == 2, result.output
        assert "add --test or --to" in result.stderr
    assert server.handler.connections == 0


def test_as_recipient_in_a_dry_run_writes_the_members_copy(project: Project, tmp_path):
    project.csv([("mia@example.com", "Mia Member")], name="lists/subscribers.csv")
    out = tmp_path / "out"
    result = invoke(
        "send", str(project.issue_dir), "--to", "me@example.org", "--as-recipient",
        "mia@example.com", "--dry-run", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (eml,) = out.iterdir()
    assert "Hi Mia Member," in eml.read_bytes().decode("ascii", "replace").replace("=\r\n", "")
