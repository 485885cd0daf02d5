"""DKIM done right: relaxed/relaxed, oversigning, the List-* fields, rotation keys, alignment.

Our signer does its own canonicalization and OpenSSL's RSA (dispatch_mail/mail/dkim.py);
two independent verifiers judge it: dkimpy, with the public key answered through its
``dnsfunc``, and Perl's Mail::DKIM (skipped without it, failed under CI=true).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dispatch_mail.errors import UsageError
from dispatch_mail.mail.dkim import DkimSigner
from tests.helpers import mail_dkim
from tests.helpers.project import Project
from tests.helpers.send import invoke, send_args
from tests.helpers.smtp_server import SmtpServer

dkim = pytest.importorskip("dkim")

MESSAGE = (
    b"From: Example Weekly <weekly@news.example.org>\r\n"
    b"To: Ann <ann@example.com>\r\n"
    b"Subject: Issue 1:\r\n  the news\r\n"
    b"Date: Thu, 26 Mar 2026 09:00:00 +0000\r\n"
    b"Message-ID: <1.weekly@news.example.org>\r\n"
    b"List-Id: Example Weekly <example-weekly.news.example.org>\r\n"
    b"List-Archive: <https://news.example.org/archive/>\r\n"
    b"List-Unsubscribe: <https://news.example.org/u?t=abc>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"Feedback-ID: q1:weekly:news:sender1\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello Ann,\r\n"
    b"two  spaces and a tab\there.\r\n"
    b"\r\n"
    b"Bye.\r\n"
)


def make_key(bits: int = 2048) -> tuple[bytes, bytes]:
    """(PEM private key, DNS TXT record) of a fresh RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[bytes, bytes]]:
    return {name: make_key() for name in ("main", "next")}


def resolver(records: dict[str, bytes]):
    """dkimpy's dnsfunc: the test's key records, and nothing else."""

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name.decode().rstrip("."))

    return dns


def tags_of(signature: bytes) -> dict[str, str]:
    text = "".join(signature.decode().split(":", 1)[1].split())
    return dict(t.split("=", 1) for t in text.split(";") if t)


def signer(keys, **options) -> DkimSigner:
    return DkimSigner("news.example.org", "s1", keys["main"][0], **options)


def main_dns(keys):
    return resolver({"s1._domainkey.news.example.org": keys["main"][1]})


# ------------------------------------------------------------------ canonicalization
def test_relaxed_relaxed_verifies_and_survives_what_relays_change(keys):
    signed_by = signer(keys)
    signature = signed_by.sign(MESSAGE)
    assert tags_of(signature)["c"] == "relaxed/relaxed"
    assert dkim.verify(signature + MESSAGE, dnsfunc=main_dns(keys))
    # a relay refolds a header and pads lines with trailing spaces: relaxed still verifies
    changed = MESSAGE.replace(b"Subject: Issue 1:\r\n  the news", b"Subject: Issue 1:  the news")
    changed = changed.replace(b"Hello Ann,\r\n", b"Hello Ann,   \r\n").replace(b"Bye.", b"Bye. \t")
    assert changed != MESSAGE
    assert dkim.verify(signature + changed, dnsfunc=main_dns(keys))
    # a change of the words is not tolerated
    assert not dkim.verify(signature + MESSAGE.replace(b"Bye.", b"Buy."), dnsfunc=main_dns(keys))


@pytest.mark.parametrize("c", ["simple/simple", "relaxed/simple", "simple/relaxed"])
def test_every_canonicalization_setting_verifies(keys, c: str):
    signature = signer(keys, canonicalization=c).sign(MESSAGE)
    assert tags_of(signature)["c"] == c
    assert dkim.verify(signature + MESSAGE, dnsfunc=main_dns(keys))


def test_simple_body_breaks_on_trailing_spaces_as_expected(keys):
    signature = signer(keys, canonicalization="relaxed/simple").sign(MESSAGE)
    padded = MESSAGE.replace(b"Hello Ann,\r\n", b"Hello Ann, \r\n")
    assert not dkim.verify(signature + padded, dnsfunc=main_dns(keys))


# ------------------------------------------------------------------ which fields
def test_the_list_fields_and_feedback_id_are_in_h(keys):
    names = tags_of(signer(keys).sign(MESSAGE))["h"].split(":")
    for name in ("list-id", "list-archive", "list-unsubscribe", "list-unsubscribe-post"):
        assert name in names
    assert "feedback-id" in names and "from" in names


@pytest.mark.parametrize(
    "prepended",
    [b"Subject: You won\r\n", b"List-Unsubscribe: <https://evil.example/u>\r\n"],
)
def test_oversigning_defeats_a_prepended_copy_of_a_field(keys, prepended: bytes):
    dns = main_dns(keys)
    oversigned = signer(keys).sign(MESSAGE)
    assert dkim.verify(oversigned + MESSAGE, dnsfunc=dns)
    assert not dkim.verify(prepended + oversigned + MESSAGE, dnsfunc=dns)
    # without oversigning the same forgery passes: the reason for the setting
    plain = signer(keys, oversign=False).sign(MESSAGE)
    assert dkim.verify(prepended + plain + MESSAGE, dnsfunc=dns)


def test_each_oversigned_field_is_listed_once_more_than_it_occurs(keys):
    names = tags_of(signer(keys).sign(MESSAGE))["h"].split(":")
    for name in ("from", "to", "subject", "date", "message-id", "list-unsubscribe"):
        assert names.count(name) == 2, name
    assert names.count("list-id") == 1  # signed, not oversigned
    assert names.count("reply-to") == 0  # absent and not oversigned: not listed


def test_an_oversigned_field_that_is_absent_cannot_be_added(keys):
    bare = MESSAGE.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b"")
    signature = signer(keys).sign(bare)
    assert tags_of(signature)["h"].split(":").count("list-unsubscribe-post") == 1
    dns = main_dns(keys)
    assert dkim.verify(signature + bare, dnsfunc=dns)
    added = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    assert not dkim.verify(added + signature + bare, dnsfunc=dns)


def test_profile_headers_are_signed_when_named(keys):
    message = b"X-Config-Set: weekly\r\n" + MESSAGE
    names = tags_of(signer(keys, extra_headers=["X-Config-Set"]).sign(message))["h"].split(":")
    assert "x-config-set" in names
    assert "x-config-set" not in tags_of(signer(keys).sign(message))["h"].split(":")


# ------------------------------------------------------------------ rotation
def test_two_keys_make_two_signatures_that_both_verify(keys):
    both = signer(keys, rotation=[("example.org", "s2", keys["next"][0])])
    signatures = both.sign(MESSAGE)
    assert signatures.count(b"DKIM-Signature:") == 2
    records = {
        "s1._domainkey.news.example.org": keys["main"][1],
        "s2._domainkey.example.org": keys["next"][1],
    }
    signed = signatures + MESSAGE
    dns = resolver(records)
    assert dkim.verify(signed, dnsfunc=dns)  # the first (outermost) signature
    checker = dkim.DKIM(signed)
    assert [checker.verify(idx=i, dnsfunc=dns) for i in range(2)] == [True, True]
    found = {
        (tags_of(b"DKIM-Signature:" + s)["d"], tags_of(b"DKIM-Signature:" + s)["s"])
        for s in signatures.split(b"DKIM-Signature:")[1:]
    }
    assert found == {("news.example.org", "s1"), ("example.org", "s2")}


def test_a_weak_rotation_key_is_named_by_its_field_and_never_shown(keys):
    weak = rsa_pem(512)
    with pytest.raises(UsageError) as caught:
        signer(keys, rotation=[("example.org", "s2", keys["next"][0]), ("example.org", "s3", weak)])
    message = str(caught.value)
    assert message.startswith("dkim.rotation[1].key_file: the DKIM key has 512 bits")
    assert "PRIVATE" not in message and weak.decode().splitlines()[1][:20] not in message
    with pytest.raises(UsageError, match=r"^dkim.rotation\[0\].key_file: the DKIM key cannot"):
        signer(keys, rotation=[("example.org", "s2", b"-----BEGIN RSA PRIVATE KEY-----\nno\n")])


def test_key_sizes_are_checked_for_every_key(keys):
    with pytest.raises(UsageError, match="has 1016 bits"):
        DkimSigner("example.org", "s1", rsa_pem(1016))
    warned = signer(keys, rotation=[("example.org", "s2", rsa_pem(1024))])
    assert warned.warnings == [
        "dkim.rotation[0].key_file: the DKIM key has 1024 bits; RFC 8301 asks for 2048 or more"
    ]


def rsa_pem(bits: int) -> bytes:
    return make_key(bits)[0] if bits >= 1024 else _small(bits)


def _small(bits: int) -> bytes:
    """cryptography refuses to make keys under 1024 bits; openssl still does."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs openssl for a key under 1024 bits")
    done = subprocess.run(
        [openssl, "genrsa", "-traditional", str(bits)], capture_output=True, check=True
    )
    return done.stdout


# ------------------------------------------------------------------ alignment
def test_a_key_that_does_not_align_is_warned_about(keys):
    esp = DkimSigner(
        "esp.example.net",
        "s1",
        keys["main"][0],
        from_domain="news.example.org",
        envelope_domains=["example.org"],
    )
    assert esp.warnings[0].startswith(
        "dkim.key_file: the DKIM domain d=esp.example.net (s=s1) does not align with the From "
        "domain news.example.org"
    )
    assert "only through SPF for the return path domain example.org" in esp.warnings[1]
    alone = DkimSigner(
        "esp.example.net",
        "s1",
        keys["main"][0],
        from_domain="news.example.org",
        envelope_domains=["bounces.esp.example.net"],
    )
    assert alone.warnings[-1].endswith("DMARC will fail")


def test_an_aligned_parent_domain_and_an_esp_key_beside_it(keys):
    parent = DkimSigner("example.org", "s1", keys["main"][0], from_domain="news.example.org")
    assert parent.warnings == []
    beside = DkimSigner(
        "example.org",
        "s1",
        keys["main"][0],
        rotation=[("esp.example.net", "s2", keys["next"][0])],
        from_domain="news.example.org",
    )
    assert len(beside.warnings) == 1 and "d=esp.example.net" in beside.warnings[0]


def test_organizational_domains_follow_the_public_suffix_list():
    pytest.importorskip("publicsuffixlist")
    from dispatch_mail.mail.dkim_keys import aligned

    assert aligned("a.example.co.uk", "b.example.co.uk")
    assert not aligned("example.co.uk", "other.co.uk")
    assert aligned("mail.example.org", "news.example.org")  # siblings share example.org


# ------------------------------------------------------------------ Perl's Mail::DKIM
def perl_verify(tmp_path: Path, message: bytes, records: dict[str, bytes]) -> list[str]:
    reason = mail_dkim.missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, so this must run, not skip: {reason}", pytrace=False)
        pytest.skip(reason)
    path = tmp_path / "signed.eml"
    path.write_bytes(message)
    (verdict,) = mail_dkim.verify([path], {k: v.decode() for k, v in records.items()})
    return [signature["result"] for signature in verdict["signatures"]]


@pytest.mark.parametrize("c", ["relaxed/relaxed", "simple/simple"])
def test_mail_dkim_accepts_both_signatures(keys, tmp_path: Path, c: str):
    both = signer(keys, canonicalization=c, rotation=[("example.org", "s2", keys["next"][0])])
    records = {
        "s1._domainkey.news.example.org": keys["main"][1],
        "s2._domainkey.example.org": keys["next"][1],
    }
    signed = both.sign(MESSAGE) + MESSAGE
    assert perl_verify(tmp_path, signed, records) == ["pass", "pass"]
    forged = b"Subject: You won\r\n" + signed
    assert perl_verify(tmp_path, forged, records) == ["fail", "fail"]


# ------------------------------------------------------------------ a real send
def test_a_send_through_smtp_arrives_signed_by_every_key(
    project: Project, server: SmtpServer, keys, tmp_path: Path
):
    main_file, next_file = tmp_path / "main.pem", tmp_path / "keys" / "next.pem"
    next_file.parent.mkdir()
    main_file.write_bytes(keys["main"][0])
    next_file.write_bytes(keys["next"][0])
    relative = os.path.relpath(next_file, project.root)
    project.extra = (
        f"dkim:\n  domain: example.org\n  selector: s1\n  key_file: {main_file}\n"
        f"  rotation:\n    - selector: s2\n      key_file: {relative}\n"
    )
    project.write()
    people = [("ann@example.com", "Ann"), ("bob@example.com", "Bob")]
    result = invoke(*send_args(project, server, project.csv(people)))
    assert result.exit_code == 0, result.output + result.stderr
    assert "warning" not in result.stderr  # example.org signs for weekly@example.org: aligned
    records = {
        "s1._domainkey.example.org": keys["main"][1],
        "s2._domainkey.example.org": keys["next"][1],
    }
    dns = resolver(records)
    assert len(server.messages) == 2
    for received in server.messages:
        checker = dkim.DKIM(received.data)
        assert [checker.verify(idx=i, dnsfunc=dns) for i in range(2)] == [True, True]
        for field in received.message.get_all("DKIM-Signature"):
            names = tags_of(b"DKIM-Signature:" + str(field).encode())["h"].split(":")
            assert {"list-id", "list-unsubscribe", "list-unsubscribe-post"} <= set(names)
            assert names.count("subject") == 2
            assert ("list-archive" in names) == ("List-Archive" in received.message)


def test_a_missing_rotation_key_file_names_its_field(
    project: Project, server: SmtpServer, keys, tmp_path: Path
):
    main_file = tmp_path / "main.pem"
    main_file.write_bytes(keys["main"][0])
    project.extra = (
        f"dkim:\n  domain: example.org\n  selector: s1\n  key_file: {main_file}\n"
        "  rotation:\n    - selector: s2\n      key_file: nowhere.pem\n"
    )
    project.write()
    result = invoke(*send_args(project, server, project.csv([("ann@example.com", "Ann")])))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: dkim.rotation[0].key_file: cannot read the DKIM key")
    assert server.handler.count() == 0


def test_a_body_in_pieces_canonicalizes_as_the_whole_body():
    """relaxed_pieces must equal relaxed_body of the join for any cut, including cuts
    inside a run of blanks, between a blank and a line end, and between CR and LF;
    the pieces it remembers must give the same answer when they come back."""
    import random

    from dispatch_mail.mail.dkim import relaxed_body, relaxed_pieces

    rng = random.Random(6376)
    alphabet = [b"a", b"b", b" ", b"\t", b"\r", b"\n", b"\r\n", b"=\r\n", b"  \r\n"]

    def text(n: int) -> bytes:
        return b"".join(rng.choice(alphabet) for _ in range(n))

    recurring = [text(600) for _ in range(4)]  # the issue's own pieces: remembered
    known: dict[bytes, bytes] = {}
    for _ in range(400):
        pieces = []
        for _ in range(rng.randint(0, 7)):
            pieces.append(rng.choice(recurring) if rng.random() < 0.4 else text(rng.randint(0, 9)))
        assert relaxed_pieces(pieces, known) == relaxed_body(b"".join(pieces)), pieces
    assert set(known) <= set(recurring) and known, "only the long pieces are remembered"
