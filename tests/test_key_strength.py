"""Weak secrets and keys are refused before anything is sent; binary secret files work.

The attacks: the unsubscribe secret ``aaaaaaaaaaaaaaaa`` was accepted (anyone
could forge a stranger's unsubscribe link); a 512-bit DKIM key signed without a
word (receivers ignore such signatures, and the key can be factored); a secret
file from /dev/urandom failed with "internal error: UnicodeDecodeError". Run
through ``dispatch send`` as a real process against a real SMTP server; keys are
made with the ``cryptography`` package.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from dispatch_mail.errors import UsageError
from dispatch_mail.mail.tokens import SECRET_ENV, TokenKeys, load_secret
from tests.helpers.project import Project
from tests.helpers.send import run, send_args
from tests.helpers.smtp_server import SmtpServer


# ------------------------------------------------------------------ the unsubscribe secret
def send_with_secret_file(project: Project, server: SmtpServer, secret_file: Path):
    args = send_args(project, server, project.csv([("ann@example.com", "Ann")]))
    return run([*args, "--secret-file", str(secret_file)], project.root)


def token_of(server: SmtpServer) -> str:
    (received,) = server.messages
    url = str(received.message["List-Unsubscribe"]).split("<", 1)[1].split(">", 1)[0]
    (token,) = parse_qs(urlparse(url).query)["t"]
    return token


def binary_secret(size: int = 32) -> bytes:
    """Random bytes that are certainly not text (0xFF is never UTF-8), ending in a newline byte."""
    return b"\xff" + secrets.token_bytes(size - 2) + b"\n"


def test_a_binary_secret_file_signs_the_links_byte_for_byte(project: Project, server: SmtpServer):
    raw = binary_secret()
    path = project.root / "secret.bin"
    path.write_bytes(raw)
    done = send_with_secret_file(project, server, path)
    assert done.returncode == 0, done.stderr
    assert "internal error" not in done.stderr
    token = token_of(server)
    claims = TokenKeys.from_secrets(raw).open(token, lifetime_days=400)
    assert claims is not None and claims.email == "ann@example.com"
    # the final newline byte counts
    assert TokenKeys.from_secrets(raw.rstrip(b"\n")).open(token, lifetime_days=400) is None


def test_a_text_secret_file_loses_only_its_surrounding_whitespace(tmp_path: Path):
    path = tmp_path / "secret"
    path.write_bytes(b"  \t" + b"k" * 20 + b" inner space " + b"0123456789" + b"\r\n\n")
    assert load_secret(path) == b"k" * 20 + b" inner space 0123456789"
    text = "Zoë Ångström ☕ Łukasiewicz 2026"  # UTF-8 text, 36 bytes
    path.write_bytes(text.encode() + b"\n")
    assert load_secret(path) == text.encode()


def test_a_secret_from_the_environment_is_its_bytes_even_when_not_utf8(monkeypatch):
    raw = binary_secret(40).rstrip(b"\n").replace(b"\0", b"\1")  # an environment can't hold NUL
    monkeypatch.setenv(SECRET_ENV, os.fsdecode(raw))  # what the process gets from its parent
    assert load_secret() == raw


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("aaaaaaaaaaaaaaaa", "too short (16 bytes; use at least 32"),
        ("x" * 31, "too short (31 bytes"),
        ("a" * 64, "too predictable"),
        ("ab" * 32, "too predictable"),
    ],
)
def test_weak_secrets_are_refused(monkeypatch, tmp_path: Path, value: str, reason: str):
    monkeypatch.setenv(SECRET_ENV, value)
    with pytest.raises(UsageError, match=reason.replace("(", r"\(")):
        load_secret()
    path = tmp_path / "secret"
    path.write_text(value + "\n")
    with pytest.raises(UsageError, match="too"):
        load_secret(path)


def test_a_32_byte_secret_is_enough(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "0123456789abcdefghijklmnopqrstuv")
    assert load_secret() == b"0123456789abcdefghijklmnopqrstuv"


def test_the_weak_secret_of_the_report_stops_the_send(project: Project, server: SmtpServer):
    args = send_args(project, server, project.csv([("ann@example.com", "Ann")]))
    done = run(args, project.root, DISPATCH_UNSUBSCRIBE_SECRET="aaaaaaaaaaaaaaaa")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: the unsubscribe secret is too short")
    assert server.messages == []


def test_a_device_or_huge_file_is_not_read_whole(tmp_path: Path):
    """/dev/urandom named as the secret file itself: refused, not read until memory runs out.

    In a process of its own with 1 GiB of address space, so that a regression
    fails this test with a MemoryError instead of exhausting the machine.
    """
    code = (
        "import resource, sys; from pathlib import Path\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from dispatch_mail.errors import UsageError\n"
        "from dispatch_mail.mail.tokens import load_secret\n"
        "try:\n    load_secret(Path(sys.argv[1]))\n"
        "except UsageError as exc:\n    print(exc)\n"
    )
    big = tmp_path / "big"
    big.write_bytes(b"k" * 5000)
    for path in ("/dev/urandom", str(big)):
        done = subprocess.run(
            [sys.executable, "-c", code, path], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert f"the secret file {path} holds more than 4096 bytes" in done.stdout


# ------------------------------------------------------------------ DKIM keys
def _prime(bits: int) -> int:
    """A random prime of ``bits`` bits (Miller-Rabin, 40 rounds), p - 1 prime to 65537."""
    while True:
        n = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        if n % 65537 != 1 and all(n % p for p in (3, 5, 7, 11, 13, 17, 19, 23, 29, 31)):
            d, s = n - 1, 0
            while d % 2 == 0:
                d, s = d // 2, s + 1
            for _ in range(40):
                x = pow(secrets.randbelow(n - 3) + 2, d, n)
                if x in (1, n - 1):
                    continue
                for _ in range(s - 1):
                    x = pow(x, 2, n)
                    if x == n - 1:
                        break
                else:
                    break
            else:
                return n


def rsa_pem(bits: int, *, pkcs8: bool = False) -> bytes:
    """An RSA private key in PEM; under 1024 bits from our own primes (cryptography makes none)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if bits >= 1024:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    else:
        p, q = _prime(bits // 2), _prime(bits // 2)
        d = pow(65537, -1, (p - 1) * (q - 1))
        numbers = rsa.RSAPrivateNumbers(
            p,
            q,
            d,
            rsa.rsa_crt_dmp1(d, p),
            rsa.rsa_crt_dmq1(d, q),
            rsa.rsa_crt_iqmp(p, q),
            rsa.RSAPublicNumbers(65537, p * q),
        )
        key = numbers.private_key(unsafe_skip_rsa_key_validation=True)
    assert key.key_size == bits
    fmt = (
        serialization.PrivateFormat.PKCS8
        if pkcs8
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


@pytest.fixture(scope="module")
def keys() -> dict[int, bytes]:
    pytest.importorskip("dkim")
    return {bits: rsa_pem(bits) for bits in (512, 1016, 1024, 1536, 2048)}


def signer(key: bytes):
    from dispatch_mail.mail.dkim import DkimSigner

    return DkimSigner("example.org", "s2026", key)


def test_a_512_bit_key_stops_the_send_before_anything_is_sent(
    project: Project, server: SmtpServer, keys: dict[int, bytes]
):
    key_file = project.root.parent / "dkim-512.pem"
    key_file.write_bytes(keys[512])
    project.extra = "dkim:\n  domain: example.org\n  selector: s2026\n"
    project.write()
    args = send_args(project, server, project.csv([("ann@example.com", "Ann")]))
    done = run(args, project.root, DISPATCH_DKIM_KEY_FILE=str(key_file))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: the DKIM key has 512 bits")
    assert "1024" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert server.messages == []


def test_a_1536_bit_key_sends_and_the_cli_warns(
    project: Project, server: SmtpServer, keys: dict[int, bytes]
):
    key_file = project.root.parent / "dkim-1536.pem"
    key_file.write_bytes(keys[1536])
    project.extra = "dkim:\n  domain: example.org\n  selector: s2026\n"
    project.write()
    args = send_args(project, server, project.csv([("ann@example.com", "Ann")]))
    done = run(args, project.root, DISPATCH_DKIM_KEY_FILE=str(key_file))
    assert done.returncode == 0, done.stderr
    assert "warning: the DKIM key has 1536 bits; RFC 8301 asks for 2048 or more" in done.stderr
    assert len(server.messages) == 1


@pytest.mark.parametrize("bits", [512, 1016])
def test_keys_under_1024_bits_are_refused(keys: dict[int, bytes], bits: int):
    with pytest.raises(UsageError, match=f"has {bits} bits"):
        signer(keys[bits])


@pytest.mark.parametrize("bits", [1024, 1536])
def test_keys_under_2048_bits_sign_with_a_warning(keys: dict[int, bytes], bits: int):
    dkim_signer = signer(keys[bits])
    assert dkim_signer.warnings == [f"the DKIM key has {bits} bits; RFC 8301 asks for 2048 or more"]
    assert dkim_signer.sign(b"From: a@example.org\r\nTo: b@example.org\r\n\r\nhi\r\n").startswith(
        b"DKIM-Signature:"
    )


def test_a_2048_bit_key_signs_without_a_warning(keys: dict[int, bytes]):
    assert signer(keys[2048]).warnings == []


def test_the_size_is_read_from_pkcs8_keys_too():
    pytest.importorskip("dkim")
    with pytest.raises(UsageError, match="has 512 bits"):
        signer(rsa_pem(512, pkcs8=True))
    assert signer(rsa_pem(1024, pkcs8=True)).warnings != []


def test_our_primes_make_a_key_that_really_signs(keys: dict[int, bytes]):
    """The 512-bit key is refused for its size, not because it is broken: dkimpy signs with it."""
    import dkim

    signature = dkim.sign(b"From: a@example.org\r\n\r\nhi\r\n", b"s", b"example.org", keys[512])
    assert signature.startswith(b"DKIM-Signature:")
