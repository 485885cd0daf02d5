"""A send through a real Postfix as an operator runs one: STARTTLS, SMTP AUTH, and our DKIM.

The relay is a private Postfix on loopback (tests/helpers/postfix.py) set up like
Debian's submission service: STARTTLS required, with a certificate of the test's
own CA (our send trusts it through --cafile), then AUTH against a Cyrus sasldb,
and only authenticated clients may relay. It passes each message on to an
aiosmtpd sink. dispatch signs with the DKIM key of dispatch.yaml, and a verifier
other than our dkimpy-based tests checks what arrived: Perl's Mail::DKIM, with
the public key answered locally instead of by DNS.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dispatch_mail.delivery.journal import Journal
from tests.helpers import mail_dkim, postfix
from tests.helpers.project import Project
from tests.helpers.send import recipients, run, send_args, wait_until
from tests.helpers.smtp_server import Received, SmtpServer

if TYPE_CHECKING:
    import trustme

LOGIN = "sender@example.net"
PASSWORD = "correct horse battery staple"
DOMAIN, SELECTOR = "example.org", "relay2026"  # the From domain (weekly@example.org): aligned
READERS = recipients(12, domain="example.com")
ONE_CLICK = {"list-unsubscribe", "list-unsubscribe-post"}

@pytest.fixture(scope="module", autouse=True)
def tools_installed() -> None:
    """Before any server starts: skip without Postfix, SASL or Mail::DKIM; fail under CI=true."""
    postfix.require_submission()
    reason = mail_dkim.missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, so the relay tests must run, not skip: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def next_hop() -> Iterator[SmtpServer]:
    """The readers' mail server (example.com), where the relay delivers."""
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="module")
def relay(ca: trustme.CA, next_hop: SmtpServer) -> Iterator[postfix.Postfix]:
    cert = ca.issue_cert(postfix.HOSTNAME, "127.0.0.1", "localhost")
    chain = cert.private_key_pem.bytes() + b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    submission = postfix.Submission(chain_pem=chain, users={LOGIN: PASSWORD})
    with postfix.Postfix({"example.com": next_hop.port}, submission=submission) as running:
        yield running


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 2048-bit RSA key file and its DNS record (v=DKIM1; k=rsa; p=…)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"


@pytest.fixture
def signing_project(tmp_path: Path, dkim_key: tuple[Path, str]) -> Project:
    key_file, _ = dkim_key
    shutil.copyfile(key_file, tmp_path / "dkim.pem")
    project = Project(tmp_path)
    project.extra = f"dkim:\n  domain: {DOMAIN}\n  selector: {SELECTOR}\n  key_file: dkim.pem\n"
    project.write()
    return project


def verify_with_mail_dkim(messages: list[Received], record: str, folder: Path) -> list[Any]:
    """Perl's Mail::DKIM on each message as delivered (CRLF line ends, as on the wire)."""
    folder.mkdir(exist_ok=True)
    files = []
    for i, message in enumerate(messages):
        path = folder / f"delivered-{i}.eml"
        path.write_bytes(re.sub(rb"\r?\n", b"\r\n", message.data))
        files.append(path)
    return mail_dkim.verify(files, {f"{SELECTOR}._domainkey.{DOMAIN}": record})


def journal_states(path: Path) -> dict[str, str]:
    with Journal.read(path) as journal:
        return {row.email: row.state for row in journal.rows()}


def delivered_to(server: SmtpServer, addresses: set[str]) -> list[Received]:
    return [m for m in server.messages if m.recipient in addresses]


def test_a_send_without_credentials_is_refused_by_the_relay(
    signing_project: Project, relay: postfix.Postfix, next_hop: SmtpServer, cafile: Path
) -> None:
    readers = recipients(3, start=900, domain="example.com")
    csv = signing_project.csv(readers)  # type: ignore[arg-type]
    args = send_args(signing_project, None, csv, *relay.cli_args(), "--max-attempts", "1")
    sent = run([*args, "--cafile", str(cafile)], cwd=signing_project.root)
    shown = sent.stdout + sent.stderr
    assert sent.returncode != 0, shown
    assert "sent 0, failed 3" in shown, shown + relay.log()
    # Postfix's own refusal of an unauthenticated client, as the relay logged it
    assert "554 5.7.1 <r00900@example.com>: Recipient address rejected: Access denied" in (
        relay.log(tail=200_000)
    )
    with Journal.read(signing_project.journal) as journal:
        rows = {row.email: (row.state, row.last_code) for row in journal.rows()}
    assert rows == {email: ("failed", 554) for email, _ in readers}  # the relay's reply, kept
    assert delivered_to(next_hop, {email for email, _ in readers}) == []


def test_starttls_auth_and_dkim_through_postfix(
    signing_project: Project,
    relay: postfix.Postfix,
    next_hop: SmtpServer,
    dkim_key: tuple[Path, str],
    cafile: Path,
    tmp_path: Path,
) -> None:
    csv = signing_project.csv(READERS)  # type: ignore[arg-type]
    args = send_args(signing_project, None, csv, *relay.cli_args())
    sent = run(
        [*args, "--cafile", str(cafile)],
        cwd=signing_project.root,
        timeout=180,
        DISPATCH_SMTP_USER=LOGIN,
        DISPATCH_SMTP_PASSWORD=PASSWORD,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr + relay.log()
    emails = {email for email, _ in READERS}
    assert journal_states(signing_project.journal) == dict.fromkeys(emails, "sent")

    # every one was handed on by Postfix (the queue runs on its own schedule: a bounded wait)
    arrived = wait_until(lambda: len(delivered_to(next_hop, emails)) >= len(emails), timeout=30)
    delivered = delivered_to(next_hop, emails)
    assert arrived, f"{len(delivered)} of {len(emails)} delivered\n{relay.log()}"
    assert sorted(m.recipient for m in delivered) == sorted(emails)
    log = relay.log(tail=200_000)
    assert f"sasl_method=PLAIN, sasl_username={LOGIN}" in log or (
        f"sasl_method=LOGIN, sasl_username={LOGIN}" in log
    ), log
    assert "TLS connection established from" in log, log
    for message in delivered:
        received = message.message.get_all("Received") or []
        assert any("ESMTPSA" in line for line in received), received  # TLS and AUTH, by Postfix

    _, record = dkim_key
    verdicts = verify_with_mail_dkim(delivered, record, tmp_path)
    assert len(verdicts) == len(delivered)
    for verdict in verdicts:
        assert verdict["result"] == "pass", verdict
        ours = [s for s in verdict["signatures"] if s["d"] == DOMAIN and s["s"] == SELECTOR]
        assert ours and all(s["result"] == "pass" for s in ours), verdict
        for signature in ours:
            signed = {name.strip().lower() for name in signature["h"].split(":")}
            assert ONE_CLICK <= signed, signature
            assert "from" in signed, signature

    # the verifier is not lenient: a Subject changed in transit fails
    first = delivered[0]
    subject = first.message["Subject"].encode()
    forged = dataclasses.replace(first, data=first.data.replace(subject, b"Act now: " + subject, 1))
    (verdict,) = verify_with_mail_dkim([forged], record, tmp_path / "forged")
    assert verdict["result"] == "fail", verdict
