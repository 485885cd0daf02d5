"""Secrets and transport: the SMTP password, the unsubscribe-token secret and the DKIM private
key never leave the process except where they must (the AUTH exchange, inside TLS), and TLS is
checked by default.

One scenario runs the real ``dispatch`` process through everything that handles
the secrets (test sends, list sends with AUTH over STARTTLS, dry runs, builds and
exports, a SIGKILL mid-send, every kind of failure, ``status`` in each format);
the tests then search every byte it printed or wrote, and every message the
server received, for each secret in every form it could leak in.
"""

from __future__ import annotations

import base64
import datetime
import signal
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest

from dispatch_mail.cli.sendview import describe_plan
from dispatch_mail.errors import DispatchError
from tests.helpers.project import Project
from tests.helpers.send import recipients, run, send_args, server_context, spawn
from tests.helpers.smtp_server import AuthWatchServer, Recorder, SmtpServer, reply_always

trustme = pytest.importorskip("trustme")
dkim = pytest.importorskip("dkim")

USER = "newsletter"
PASSWORD = "pw-Tq8xZ3vLk2Rm9Wn4-never-shown"
UNSUBSCRIBE_SECRET = "unsub-Hx7Kd2Mp9Qw4Zr6B-never-shown"
SELECTOR = "s2026"
DKIM_YAML = f"dkim:\n  domain: example.org\n  selector: {SELECTOR}\n"


# ---------------------------------------------------- the secrets, in every form they could leak in
@dataclass
class Secrets:
    key_pem: bytes
    public_der_b64: bytes
    needles: dict[str, bytes] = field(default_factory=dict)

    def found_in(self, data: bytes | str) -> list[str]:
        raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
        return [name for name, needle in self.needles.items() if needle in raw]


@pytest.fixture(scope="module")
def secrets_(tmp_path_factory) -> Secrets:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    body_lines = [line for line in pem.splitlines() if line and not line.startswith(b"-----")]
    needles = {
        "SMTP password": PASSWORD.encode(),
        "SMTP password (AUTH PLAIN)": base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()),
        "SMTP password (AUTH LOGIN)": base64.b64encode(PASSWORD.encode()),
        "unsubscribe secret": UNSUBSCRIBE_SECRET.encode(),
        "DKIM key (base64 body)": b"".join(body_lines),
        "DKIM key (DER)": der[40:200],
    }
    # any one line of the key's base64 is 64 characters of it: as good as a leak
    needles.update({f"DKIM key (line {n})": line for n, line in enumerate(body_lines[1:-1], 2)})
    return Secrets(pem, base64.b64encode(public), needles)


def _cert_files(folder: Path, names: list[str]) -> tuple[Path, Path]:
    """A self-signed certificate (no CA behind it) for ``names``: (cert.pem, key.pem)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt = [
        x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n)
        for n in names
    ]
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "self-signed.pem", folder / "self-signed.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory) -> tuple[Path, ssl.SSLContext]:
    cert, key = _cert_files(tmp_path_factory.mktemp("self-signed"), ["127.0.0.1", "localhost"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context


# ------------------------------------------------------------------ the scenario
@dataclass
class Scenario:
    project: Project
    key_file: Path
    outputs: list[tuple[str, int, str, str]] = field(
        default_factory=list
    )  # (what, status, stdout, stderr)
    snapshots: dict[str, bytes] = field(
        default_factory=dict
    )  # files caught mid-send (journal -wal, -shm)
    received: list[bytes] = field(default_factory=list)  # every message a server accepted
    auth_attempts: list[tuple[bool, str]] = field(default_factory=list)

    def env(self, password: str = PASSWORD) -> dict[str, str]:
        return {
            "DISPATCH_UNSUBSCRIBE_SECRET": UNSUBSCRIBE_SECRET,
            "DISPATCH_SMTP_USER": USER,
            "DISPATCH_SMTP_PASSWORD": password,
            "DISPATCH_DKIM_KEY_FILE": str(self.key_file),
        }

    def run(
        self, what: str, args: list[str], expect: int, password: str = PASSWORD
    ) -> tuple[str, str]:
        done = run(args, self.project.root, **self.env(password))
        self.outputs.append((what, done.returncode, done.stdout, done.stderr))
        assert done.returncode == expect, (
            f"{what}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done.stdout, done.stderr


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, secrets_, ca, cafile, self_signed) -> Scenario:
    tmp = tmp_path_factory.mktemp("secrets")
    key_file = tmp / "keys" / "dkim.pem"  # outside the project, as it should be
    key_file.parent.mkdir()
    key_file.write_bytes(secrets_.key_pem)
    root = tmp / "news"
    root.mkdir()
    project = Project(root, extra=DKIM_YAML)
    (root / "lists" / "subscribers.csv").write_text(
        "email,name\n" + "".join(f"{e},{n}\n" for e, n in recipients(20)) + "not-an-address,Bad\n",
        encoding="utf-8",
    )
    (root / "lists" / "suppressed.csv").write_text("email\nr00019@example.com\n", encoding="utf-8")
    s = Scenario(project, key_file)
    issue = str(project.issue_dir)
    tls = ["--cafile", str(cafile), "--retry-base", "0.02", "--throttle-pause", "0.1"]

    recorder = Recorder()
    recorder.auth = {USER: PASSWORD}
    with AuthWatchServer(recorder, starttls=server_context(ca)) as good:
        relay = good.cli_args()
        recorder.fail("RCPT", reply_always("550 5.1.1 no such user", {"r00003@example.com"}))
        recorder.fail("DATA", reply_always("554 5.6.0 message refused", {"r00005@example.com"}))
        s.run("test send --to", ["send", issue, "--to", "me@example.com", *relay, *tls], 0)
        s.run("test send --test", ["send", issue, "--test", *relay, *tls], 0)
        s.run("list send", ["send", issue, "--list", "subscribers", "--yes", *relay, *tls], 1)
        s.run("list send again", ["send", issue, "--list", "subscribers", "--yes", *relay, *tls], 1)
        journal = root / "build" / "one" / "send-subscribers.journal"
        s.run("status", ["status", issue], 0)
        s.run("status json", ["status", issue, "--format", "json", "--excluded"], 0)
        s.run(
            "status csv",
            ["status", issue, "--failures-csv", str(root / "build" / "failures.csv")],
            0,
        )
        s.run("status --journal", ["status", issue, "--journal", str(journal), "--excluded"], 0)
        s.run(
            "bad password",
            [
                "send",
                issue,
                "--list",
                "subscribers",
                "--yes",
                "--journal",
                str(root / "build" / "other.journal"),
                *relay,
                *tls,
            ],
            3,
            password="wrong-" + PASSWORD,
        )

        # a SIGKILL mid-send: the journal's -wal and -shm are caught as a crash leaves them
        good.handler.delay = 0.02
        big = project.csv(recipients(200, start=100), name="lists/big.csv")
        args = [
            "send",
            issue,
            "--list",
            str(big),
            "--yes",
            "--journal",
            str(root / "build" / "big.journal"),
            *relay,
            *tls,
            "-q",
        ]
        proc = spawn(args, root, **s.env())
        assert good.handler.wait_for(len(good.messages) + 30, timeout=60)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        for path in (root / "build").glob("big.journal*"):
            s.snapshots[path.name] = path.read_bytes()
        assert any(name.endswith("-wal") for name in s.snapshots), s.snapshots.keys()
        good.handler.delay = 0
        s.run("resume after SIGKILL", args, 0)
        s.received += [m.data for m in good.messages]
        s.auth_attempts += good.handler.auth_attempts

    out = tmp / "out"
    s.run(
        "dry run mbox",
        ["send", issue, "--list", "subscribers", "--dry-run", str(root / "build" / "dry.mbox")],
        0,
    )
    s.run(
        "dry run folder",
        ["send", issue, "--list", "subscribers", "--dry-run", str(root / "build" / "dry")],
        0,
    )
    s.run("dry run tests", ["send", issue, "--test", "--dry-run", str(out / "test.mbox")], 0)
    s.run("build", ["build", issue], 0)
    for fmt in ("eml", "mbox", "zip", "html"):
        s.run(f"export {fmt}", ["export", issue, "--format", fmt], 0)

    _, context = (
        self_signed  # verification is on by default: a certificate nobody vouches for is refused
    )
    with SmtpServer(Recorder(), starttls=context) as stranger:
        s.run("self-signed", ["send", issue, "--to", "me@example.com", *stranger.cli_args()], 3)
    with SmtpServer(Recorder(), implicit_tls=context) as stranger:
        s.run(
            "self-signed, implicit TLS",
            ["send", issue, "--to", "me@example.com", *stranger.cli_args()],
            3,
        )
    return s


# ------------------------------------------------------------------ the tests
def test_nothing_printed_shows_a_secret(scenario, secrets_):
    assert len(scenario.outputs) >= 20
    assert secrets_.found_in(f"x{PASSWORD}x") == ["SMTP password"]  # the search itself works
    for what, _, stdout, stderr in scenario.outputs:
        assert secrets_.found_in(stdout) == [], f"{what}: stdout"
        assert secrets_.found_in(stderr) == [], f"{what}: stderr"


def test_no_file_written_holds_a_secret(scenario, secrets_):
    root = scenario.project.root
    files = [p for p in root.rglob("*") if p.is_file()] + [
        p for p in (root.parent / "out").rglob("*") if p.is_file()
    ]
    names = {p.name for p in files}
    assert {
        "send-subscribers.journal",
        "failures.csv",
        "dry.mbox",
        "email.eml",
        "export.zip",
    } <= names, names
    assert len(list((root / "build" / "dry").glob("*.eml"))) == 19
    for path in files:
        assert secrets_.found_in(path.read_bytes()) == [], path
    for (
        name,
        data,
    ) in scenario.snapshots.items():  # the journal, its -wal and -shm as a SIGKILL left them
        assert secrets_.found_in(data) == [], name
    import zipfile

    with zipfile.ZipFile(
        root / "build" / "one" / "export.zip"
    ) as archive:  # compressed: look inside too
        for member in archive.namelist():
            assert secrets_.found_in(archive.read(member)) == [], member


def test_messages_sent_are_signed_with_the_key_but_carry_none_of_the_secrets(scenario, secrets_):
    assert len(scenario.received) >= 2 + 17 + 200
    dns = {
        f"{SELECTOR}._domainkey.example.org.".encode(): b"v=DKIM1; k=rsa; p="
        + secrets_.public_der_b64
    }
    for data in scenario.received:
        assert secrets_.found_in(data) == []
        assert data.startswith(b"DKIM-Signature:")
    assert dkim.verify(scenario.received[0], dnsfunc=lambda name, timeout=5: dns.get(name))


def test_auth_happened_only_inside_tls(scenario):
    assert scenario.auth_attempts, "the sends logged in"
    assert all(tls for tls, _ in scenario.auth_attempts), scenario.auth_attempts


def test_failures_say_what_happened_without_the_secrets(scenario):
    by_name = {what: (status, out, err) for what, status, out, err in scenario.outputs}
    _, _, err = by_name["bad password"]
    assert "refused our login" in err and "resume with: dispatch send" in err
    _, out, _ = by_name["list send"]
    assert "sent 17, failed 2" in out
    _, out, _ = by_name["status"]
    assert "failed: r00003@example.com: rcpt: 550 5.1.1 no such user" in out
    assert "failed: r00005@example.com: data: 554 5.6.0 message refused" in out


def test_library_errors_and_reprs_hold_no_secret(scenario, secrets_, ca, cafile, monkeypatch):
    """What a Python caller sees: the exception raised, and the reprs of the objects it holds."""
    import asyncio

    from dispatch_mail.delivery import campaign
    from dispatch_mail.delivery.engine import SendOptions

    for name, value in scenario.env(password="wrong-" + PASSWORD).items():
        monkeypatch.setenv(name, value)
    recorder = Recorder()
    recorder.auth = {USER: PASSWORD}
    with SmtpServer(recorder, starttls=server_context(ca)) as server:
        prepared = campaign.prepare(scenario.project.issue_dir)
        settings, _ = campaign.smtp_settings(
            prepared.project, None, server.host, server.port, "starttls", cafile=str(cafile)
        )
        journal, plan = campaign.open_send(
            prepared, "subscribers", journal_path=scenario.project.root / "lib.journal"
        )
        with journal, pytest.raises(DispatchError) as caught:
            asyncio.run(
                campaign.run_send(journal, prepared, settings, SendOptions(retry_base=0.01))
            )
    texts = [
        str(caught.value),
        repr(caught.value),
        repr(settings),
        str(settings),
        repr(prepared),
        repr(prepared.messages.dkim),
        describe_plan(plan),
        repr(plan),
    ]
    assert "refused our login" in texts[0]
    for text in texts:
        assert secrets_.found_in(text) == [], text
    assert secrets_.found_in(repr(settings).replace("wrong-", "")) == []


# ---------------------------------------------------- certificates: verified by default
def test_a_self_signed_certificate_is_refused_with_a_clear_message(scenario):
    for what in ("self-signed", "self-signed, implicit TLS"):
        err = next(e for w, _, _, e in scenario.outputs if w == what)
        first = err.splitlines()[0]
        assert (
            first.startswith("error: TLS with 127.0.0.1:")
            and "certificate verify failed: self-signed certificate" in first
        )


def test_the_same_certificate_is_accepted_when_the_user_trusts_it(project, self_signed):
    cert, context = self_signed
    with SmtpServer(Recorder(), starttls=context) as server:
        result = run(
            send_args(project, server, project.csv(recipients(3)), "--cafile", str(cert)),
            project.root,
        )
        assert result.returncode == 0, result.stderr
        assert len(server.messages) == 3 and all(m.tls for m in server.messages)


def test_a_certificate_for_another_name_is_refused_even_from_a_trusted_ca(project, ca, cafile):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mail.example.net").configure_cert(context)
    with SmtpServer(Recorder(), starttls=context) as server:
        result = run(
            send_args(project, server, project.csv(recipients(3)), "--cafile", str(cafile)),
            project.root,
        )
    assert result.returncode == 3
    assert (
        result.stderr.startswith("error: TLS with 127.0.0.1:")
        and "mismatch" in result.stderr.splitlines()[0]
    )
    assert server.messages == []


# ------------------------------------------------------------------ AUTH never in clear
@pytest.fixture
def plaintext_auth_server():
    """A server that would take AUTH in plaintext (no TLS at all, AUTH offered)."""
    recorder = Recorder()
    recorder.auth = {USER: PASSWORD}
    with AuthWatchServer(recorder, auth_require_tls=False) as server:
        yield server


@pytest.mark.parametrize("extra", [[], ["--insecure"]])
def test_no_password_over_plaintext_even_when_asked_and_offered(
    project, plaintext_auth_server, extra
):
    server = plaintext_auth_server
    result = run(
        send_args(project, server, project.csv(recipients(3)), *extra),
        project.root,
        DISPATCH_SMTP_USER=USER,
        DISPATCH_SMTP_PASSWORD=PASSWORD,
    )
    assert result.returncode == 2 and "refusing to send a password over plaintext" in result.stderr
    assert server.handler.connections == 0 and server.handler.auth_attempts == []
    assert PASSWORD not in result.stdout + result.stderr


def test_no_fallback_to_plaintext_when_the_server_has_no_starttls(project, plaintext_auth_server):
    server = plaintext_auth_server
    args = send_args(project, server, project.csv(recipients(3)))[:-2] + ["--tls", "starttls"]
    result = run(args, project.root, DISPATCH_SMTP_USER=USER, DISPATCH_SMTP_PASSWORD=PASSWORD)
    assert result.returncode == 3 and "STARTTLS extension not supported" in result.stderr
    assert server.handler.auth_attempts == [] and server.messages == []


def test_no_fallback_to_plaintext_when_starttls_is_refused(project, ca, cafile):
    """STARTTLS offered, then refused (a downgrading middlebox): the send stops.

    It never logs in in clear.
    """
    recorder = Recorder()
    recorder.auth = {USER: PASSWORD}
    with AuthWatchServer(
        recorder, starttls=server_context(ca), auth_require_tls=False, refuse_starttls=True
    ) as server:
        args = send_args(
            project,
            server,
            project.csv(recipients(3)),
            "--cafile",
            str(cafile),
            "--concurrency",
            "1",
        )
        result = run(args, project.root, DISPATCH_SMTP_USER=USER, DISPATCH_SMTP_PASSWORD=PASSWORD)
        assert result.returncode == 3, result.stderr
        assert result.stderr.startswith("error: ") and "454" in result.stderr
        assert server.handler.connections >= 1
        assert server.handler.auth_attempts == [] and server.messages == []


def test_an_untrusted_certificate_stops_before_any_login(project, self_signed):
    _, context = self_signed
    recorder = Recorder()
    recorder.auth = {USER: PASSWORD}
    with AuthWatchServer(recorder, starttls=context) as server:
        result = run(
            send_args(project, server, project.csv(recipients(3))),
            project.root,
            DISPATCH_SMTP_USER=USER,
            DISPATCH_SMTP_PASSWORD=PASSWORD,
        )
        assert result.returncode == 3 and "certificate verify failed" in result.stderr
        assert server.handler.auth_attempts == [] and server.messages == []


# ------------------------------------------------------------------ the preview
def test_the_preview_listens_on_loopback_only(project):
    from dispatch_mail.browser.server import PreviewServer
    from dispatch_mail.cli import main
    from dispatch_mail.errors import UsageError

    with PreviewServer(project.issue_dir, 0) as preview:
        host, port = preview.address
        assert host == "127.0.0.1" and port == preview.port > 0
    for host in ("0.0.0.0", "::", "192.0.2.7", "localhost"):
        with pytest.raises(UsageError, match="127.0.0.1 only"):
            PreviewServer(project.issue_dir, 0, host=host)
    preview = main.get_command(click.Context(main), "preview")
    assert preview is not None
    assert not any(p.name in ("host", "bind") for p in preview.params)
