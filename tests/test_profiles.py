"""SMTP profiles carry everything about the relay, and the command line overrides field by field.

Each test sends to a real aiosmtpd on 127.0.0.1 (TLS from a trustme CA, AUTH
where the relay needs it) and reads what the server saw: the port, the login,
the EHLO name, MAIL FROM and the received header fields.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from dispatch_mail.delivery import campaign
from dispatch_mail.errors import ContentError, UsageError
from dispatch_mail.mail.headers import extra_fields
from dispatch_mail.mail.tokens import TokenKeys
from dispatch_mail.mail.verp import read_verp
from dispatch_mail.project.loader import load
from dispatch_mail.publish.build import build_issue
from tests.helpers.project import Project
from tests.helpers.send import SECRET, invoke, recipients, send_args, server_context
from tests.helpers.smtp_server import Recorder, SmtpServer

PASSWORD = "relay-Pa55word-never-shown"
READERS = recipients(3)


class EhloRecorder(Recorder):
    """Records the name each EHLO gave, besides what the base records."""

    def __init__(self) -> None:
        super().__init__()
        self.ehlo_names: list[str] = []

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.ehlo_names.append(hostname)
        return responses


def with_profile(project: Project, profile: str, top: str = "") -> Project:
    """The send tests' project with ``profile`` as smtp.default (indented under it)."""
    body = "".join(f"    {line}\n" for line in profile.strip().splitlines())
    project.extra = f"{top}smtp:\n  default:\n{body}"
    project.write()
    return project


def send(project: Project, *extra: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """`dispatch send` of the project to the configured list 'subscribers' (no relay options)."""
    csv_path = project.csv(READERS, name="lists/subscribers.csv")
    return invoke(*send_args(project, None, csv_path, *extra), env=env)


@pytest.fixture
def auth_server(ca):  # type: ignore[no-untyped-def]
    """STARTTLS required, then AUTH required, as a submission relay does."""
    recorder = EhloRecorder()
    recorder.auth = {"newsletter": PASSWORD}
    with SmtpServer(recorder, starttls=server_context(ca)) as running:
        yield running


@pytest.fixture
def plain_server():  # type: ignore[no-untyped-def]
    with SmtpServer(EhloRecorder()) as running:
        yield running


def profile_ca(project: Project, cafile: Path) -> str:
    """The CA bundle copied into the project, named as dispatch.yaml would: relative."""
    (project.root / "certs").mkdir(exist_ok=True)
    shutil.copyfile(cafile, project.root / "certs" / "relay-ca.pem")
    return "certs/relay-ca.pem"


# ------------------------------------------------------------------ where and how
def test_smtp_host_alone_keeps_the_profiles_port_and_tls(project, plain_server):
    # the profile names another host; --smtp-host replaces the host only: the port stays
    with_profile(project, f"host: relay.example.net\nport: {plain_server.port}\ntls: none")
    result = send(project, "--smtp-host", "127.0.0.1")
    assert result.exit_code == 0, result.output
    assert plain_server.handler.per_recipient().keys() == {a for a, _ in READERS}
    assert f"127.0.0.1:{plain_server.port} (plaintext)" in result.output


def test_the_profile_alone_says_where_the_relay_is(project, plain_server):
    with_profile(project, f"host: 127.0.0.1\nport: {plain_server.port}\ntls: none")
    result = send(project)
    assert result.exit_code == 0, result.output
    assert plain_server.handler.count() == len(READERS)


def test_credentials_come_from_the_variables_the_profile_names(project, auth_server, cafile):
    ca = profile_ca(project, cafile)
    with_profile(
        project,
        f"host: 127.0.0.1\nport: {auth_server.port}\ntls: starttls\ncafile: {ca}\n"
        "username_env: RELAY_USER\npassword_env: RELAY_PASSWORD",
    )
    env = {"RELAY_USER": "newsletter", "RELAY_PASSWORD": PASSWORD}
    result = send(project, env=env)  # no --cafile: the profile's CA is trusted
    assert result.exit_code == 0, result.output
    assert {m.user for m in auth_server.messages} == {"newsletter"}
    assert all(m.tls for m in auth_server.messages)
    assert PASSWORD not in result.output


def test_the_default_variables_are_not_read_when_the_profile_names_others(
    project, auth_server, cafile
):
    ca = profile_ca(project, cafile)
    with_profile(
        project,
        f"host: 127.0.0.1\nport: {auth_server.port}\ncafile: {ca}\nusername_env: RELAY_USER",
    )
    env = {"DISPATCH_SMTP_USER": "newsletter", "DISPATCH_SMTP_PASSWORD": PASSWORD}
    result = send(project, env=env)
    # no RELAY_USER: no login at all (this test relay lets that pass)
    assert result.exit_code == 0, result.output
    assert auth_server.handler.logins == []
    assert {m.user for m in auth_server.messages} == {None}


def test_the_password_comes_from_the_profiles_file(project, auth_server, cafile):
    ca = profile_ca(project, cafile)
    (project.root / "secrets").mkdir()
    (project.root / "secrets" / "relay.password").write_text(f"{PASSWORD}\nnot this line\n")
    with_profile(
        project,
        f"host: 127.0.0.1\nport: {auth_server.port}\ncafile: {ca}\n"
        "password_file: secrets/relay.password",
    )
    result = send(project, env={"DISPATCH_SMTP_USER": "newsletter"})
    assert result.exit_code == 0, result.output
    assert set(auth_server.handler.logins) == {("newsletter", PASSWORD)}
    assert {m.user for m in auth_server.messages} == {"newsletter"}


@pytest.mark.parametrize("content", [None, b"\n", b"\xff\xfe not text"])
def test_an_unusable_password_file_is_one_clear_line_naming_the_field(
    project, auth_server, cafile, content
):
    ca = profile_ca(project, cafile)
    path = project.root / "relay.password"
    if content is not None:
        path.write_bytes(content)
    with_profile(
        project,
        f"host: 127.0.0.1\nport: {auth_server.port}\ncafile: {ca}\npassword_file: relay.password",
    )
    result = send(project, env={"DISPATCH_SMTP_USER": "newsletter"})
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: smtp.default.password_file: "), line
    assert "relay.password" in line and "\xff" not in line
    assert auth_server.handler.connections == 0


def test_a_missing_profile_cafile_names_the_field(project, auth_server):
    with_profile(project, f"host: 127.0.0.1\nport: {auth_server.port}\ncafile: nowhere/ca.pem")
    result = send(project)
    assert result.exit_code == 2
    assert re.fullmatch(
        r"error: smtp\.default\.cafile: \S*nowhere/ca\.pem is not a file\n", result.stderr
    )
    assert auth_server.handler.connections == 0


def test_the_ehlo_name_is_the_profiles(project, plain_server):
    with_profile(
        project,
        f"host: 127.0.0.1\nport: {plain_server.port}\ntls: none\nehlo_name: mta.example.org",
    )
    result = send(project)
    assert result.exit_code == 0, result.output
    assert set(plain_server.handler.ehlo_names) == {"mta.example.org"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("localhost", "is not a fully qualified host name"),
        ('"mta.example.org junk"', "must be one host name: no spaces, CR or LF"),
        ("mta_1.example.org", "is not a fully qualified host name"),
    ],
)
def test_an_implausible_ehlo_name_is_refused_where_it_is_written(
    project, plain_server, value, message
):
    with_profile(project, f"host: 127.0.0.1\nport: {plain_server.port}\nehlo_name: {value}")
    result = send(project)
    assert result.exit_code == 1
    assert re.search(
        rf"\S*dispatch\.yaml:\d+:\d+: smtp\.default\.ehlo_name: .*{message}", result.stderr
    )
    assert plain_server.handler.connections == 0


def test_timeouts_and_pace_fall_back_to_the_profile(project):
    with_profile(
        project,
        "host: relay.example.net\nport: 2525\ntimeout: 7\nconnect_timeout: 3\n"
        "concurrency: 9\nrate: 12.5",
    )
    loaded, _ = load(project.issue_dir)
    settings, defaults = campaign.smtp_settings(loaded, None, "127.0.0.1")
    assert (settings.host, settings.port, settings.tls) == ("127.0.0.1", 2525, "starttls")
    assert (settings.timeout, settings.connect_timeout) == (7, 3)
    assert (defaults.concurrency, defaults.rate) == (9, 12.5)
    settings, _ = campaign.smtp_settings(loaded, None, timeout=40, connect_timeout=20)
    assert (settings.host, settings.timeout, settings.connect_timeout) == (
        "relay.example.net",
        40,
        20,
    )


def test_the_plan_shows_the_profiles_concurrency(project, plain_server):
    with_profile(project, f"host: 127.0.0.1\nport: {plain_server.port}\ntls: none\nconcurrency: 3")
    result = send(project)
    assert result.exit_code == 0, result.output
    assert re.search(r"\b3 connections\b", result.output), result.output


def test_a_named_profile_that_does_not_exist_is_refused(project):
    with_profile(project, "host: relay.example.net")
    result = send(project, "--smtp", "ses")
    assert result.exit_code == 2
    assert "no SMTP profile 'ses' in dispatch.yaml (profiles: default)" in result.stderr


# ------------------------------------------------------------------ the envelope sender
def test_the_profiles_return_path_is_the_mail_from(project, plain_server):
    with_profile(
        project,
        f"host: 127.0.0.1\nport: {plain_server.port}\ntls: none\n"
        "return_path: relay-bounces@example.org",
        top="return_path: project-bounces@example.org\n",
    )
    result = send(project)
    assert result.exit_code == 0, result.output
    assert {m.mail_from for m in plain_server.messages} == {"relay-bounces@example.org"}


def test_the_profiles_verp_return_path_names_each_recipient(project, plain_server):
    template = "bounces+{token}@example.org"
    with_profile(
        project, f"host: 127.0.0.1\nport: {plain_server.port}\ntls: none\nreturn_path: {template}"
    )
    result = send(project)
    assert result.exit_code == 0, result.output
    keys = TokenKeys.from_secrets(SECRET.encode())
    senders = {m.mail_from for m in plain_server.messages}
    assert len(senders) == len(READERS)
    for address in senders:
        verp = read_verp(keys.secret, template, address)
        assert verp is not None and verp.matches("one", "subscribers"), address


def test_a_bad_profile_return_path_is_refused_where_it_is_written(project, plain_server):
    with_profile(project, f"host: 127.0.0.1\nport: {plain_server.port}\nreturn_path: bounces")
    result = send(project)
    assert result.exit_code == 1
    assert re.search(
        r"\S*dispatch\.yaml:\d+:\d+: smtp\.default\.return_path: must be an address", result.stderr
    )
    assert plain_server.handler.connections == 0


# ------------------------------------------------------------------ the header fields
HEADERS_TOP = """\
feedback_id:
  sender_id: examplecorp
  kind: "news:letter"
precedence_bulk: true
headers:
  X-Campaign: spring
  X-Tag: from-the-project
"""


def test_feedback_id_precedence_and_custom_headers_reach_the_relay(project, plain_server):
    with_profile(
        project,
        f"host: 127.0.0.1\nport: {plain_server.port}\ntls: none\nheaders:\n"
        "  X-SES-CONFIGURATION-SET: newsletter\n  x-tag: from-the-profile",
        top=HEADERS_TOP,
    )
    result = send(project)
    assert result.exit_code == 0, result.output
    for received in plain_server.messages:
        message = received.message
        # the issue's slug, the list, the kind (its ':' made safe) and the sender id
        assert message.get_all("Feedback-ID") == ["one:subscribers:news-letter:examplecorp"]
        assert message.get_all("Precedence") == ["bulk"]
        assert message["X-Campaign"] == "spring"
        assert message["X-SES-CONFIGURATION-SET"] == "newsletter"
        assert message.get_all("X-Tag") == ["from-the-profile"]  # the profile's wins, once


def test_test_copies_say_test_for_the_list_and_the_built_eml_has_no_list_part(
    project, plain_server
):
    with_profile(
        project,
        f"host: 127.0.0.1\nport: {plain_server.port}\ntls: none\nheaders:\n  X-Relay-Only: yes",
        top=HEADERS_TOP,
    )
    result = invoke("send", str(project.issue_dir), "--to", "me@example.com")
    assert result.exit_code == 0, result.output
    (copy,) = [m.message for m in plain_server.messages]
    assert copy["Feedback-ID"] == "one:test:news-letter:examplecorp"
    assert copy["X-Relay-Only"] == "yes"
    eml = build_issue(project.issue_dir, write=False).eml
    head = eml.split(b"\r\n\r\n", 1)[0].decode()
    assert "Feedback-ID: one:news-letter:examplecorp\r\n" in head
    assert "Precedence: bulk\r\n" in head and "X-Campaign: spring\r\n" in head
    assert "X-Relay-Only" not in head  # the profile is known only when sending


def test_our_own_headers_cannot_be_set_and_every_one_is_reported(project, plain_server):
    top = "headers:\n  From: someone@example.net\n  List-Unsubscribe: <https://evil.example>\n"
    with_profile(
        project,
        f"host: 127.0.0.1\nport: {plain_server.port}\ntls: none\nheaders:\n"
        "  X-Dispatch-Test: no\n  Content-Type: text/plain\n  feedback-id: mine\n"
        "  X-Fine: yes",
        top=top,
    )
    result = send(project)
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    found = [re.match(r"error: \S*dispatch\.yaml:(\d+):\d+: (\S+): ", line) for line in lines]
    assert sorted(m.group(2) for m in found if m) == [
        "headers.From",
        "headers.List-Unsubscribe",
        "smtp.default.headers.Content-Type",
        "smtp.default.headers.X-Dispatch-Test",
        "smtp.default.headers.feedback-id",
    ], result.stderr
    assert all("is a header dispatch writes itself" in line for line in lines)
    assert "5 problems found" in result.stderr
    assert plain_server.handler.connections == 0
    # each is placed on the line that names it
    text = (project.root / "dispatch.yaml").read_text().splitlines()
    for match in found:
        assert match is not None
        name = match.group(2).rsplit(".", 1)[-1]
        assert text[int(match.group(1)) - 1].strip().startswith(f"{name}:")


def test_a_line_break_in_a_header_value_is_refused(project, plain_server):
    with_profile(
        project,
        f"host: 127.0.0.1\nport: {plain_server.port}\ntls: none\nheaders:\n"
        '  X-Tag: "a\\r\\nBcc: everyone@example.net"',
    )
    result = send(project)
    assert result.exit_code == 1
    assert re.search(
        r"\S*dispatch\.yaml:\d+:\d+: smtp\.default\.headers\.X-Tag: .*CR and LF", result.stderr
    )
    assert plain_server.handler.connections == 0


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"X-Tag": "a\r\nBcc: x@example.net"}, "CR and LF"),
        ({"X-Tag": "bell\x07"}, "control characters"),
        ({"X Tag": "spaces"}, "is not a header field name"),
        ({"X-" + "a" * 80: "long"}, "is not a header field name"),
        ({"Message-Id": "<x@example.net>"}, "dispatch writes itself"),
        ({"X-Tag": "one", "x-tag": "two"}, "is set twice"),
    ],
)
def test_extra_fields_built_in_python_are_checked_too(headers, problem):
    with pytest.raises(ContentError) as caught:
        extra_fields(headers, {})
    assert problem in str(caught.value)


def test_an_ehlo_name_given_in_python_is_checked(project):
    from dispatch_mail.delivery.smtp import SmtpSettings

    with pytest.raises(UsageError, match="no spaces, CR or LF"):
        SmtpSettings("127.0.0.1", 25, tls="none", ehlo_name="a.example.org\r\nRCPT TO:<x@y>")
