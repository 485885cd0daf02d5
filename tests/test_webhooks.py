"""The relays' webhooks: every sample parsed right, every tamper rejected, and end to end.

The keys are made here, per run: an RSA key and self-signed certificate stand in for
SNS's (put in the certificate cache, the one place the tests stand in for AWS: the
verify path runs as in production), a P-256 key for SendGrid's, an HMAC key for
Mailgun's, Basic credentials for Postmark's. SendGrid's verifier is also checked
against a request SendGrid itself signed.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import secrets as random
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from dispatch_mail.endpoint.webhooks import fetch, mailgun, postmark, sendgrid, ses, sns
from dispatch_mail.endpoint.webhooks.secrets import WebhookSecrets
from dispatch_mail.errors import WebhookRejected
from dispatch_mail.suppression.records import ALL_LISTS

CORPUS = Path(__file__).parent / "corpus" / "webhooks"
TOPIC = "arn:aws:sns:us-east-1:123456789012:dispatch-bounces"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000test.pem"
MAILGUN_KEY = "key-" + "7" * 32
NOW = time.time()


def sample(name: str) -> Any:
    return json.loads((CORPUS / name).read_text(encoding="utf-8"))


# ------------------------------------------------------------------ keys made for this run
def self_signed(key: rsa.RSAPrivateKey, *, days: float = 1) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    start = datetime.datetime.fromtimestamp(NOW, datetime.UTC) - datetime.timedelta(days=1)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1 + days))  # ``days`` left from now
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def sns_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def spki(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def cache_certificate(cache: Path, url: str, certificate: x509.Certificate) -> None:
    path = Path(fetch.certificate_path(str(cache), url))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    fetch.forget_certificates()


@pytest.fixture
def secrets(
    tmp_path: Path, sns_key: rsa.RSAPrivateKey, sendgrid_key: ec.EllipticCurvePrivateKey
) -> WebhookSecrets:
    cache = tmp_path / "cache"
    cache_certificate(cache, CERT_URL, self_signed(sns_key))
    return WebhookSecrets(
        ses_topic_arns=(TOPIC,),
        postmark_user="postmark",
        postmark_password="correct horse battery staple",
        mailgun_signing_key=MAILGUN_KEY,
        sendgrid_public_key=spki(sendgrid_key),
        cache_dir=str(cache),
    )


# ------------------------------------------------------------------ signing as the relays do
def sns_envelope(
    key: rsa.RSAPrivateKey,
    message: str,
    *,
    kind: str = "Notification",
    version: str = "2",
    cert_url: str = CERT_URL,
    topic: str = TOPIC,
    **extra: str,
) -> dict[str, str]:
    envelope = {
        "Type": kind,
        "MessageId": str(random.token_hex(16)),
        "TopicArn": topic,
        "Message": message,
        "Timestamp": "2026-01-27T14:59:39.000Z",
        "SignatureVersion": version,
        "SigningCertURL": cert_url,
        **extra,
    }
    if kind != "Notification":
        envelope.setdefault(
            "Token",
            "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736",
        )
        envelope.setdefault(
            "SubscribeURL",
            f"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}",
        )
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signed = sns.canonical_string(envelope)
    envelope["Signature"] = base64.b64encode(
        key.sign(signed, padding.PKCS1v15(), algorithm)
    ).decode()
    return envelope


def sns_body(key: rsa.RSAPrivateKey, name: str, **options: str) -> bytes:
    return json.dumps(sns_envelope(key, json.dumps(sample(name)), **options)).encode()


def mailgun_body(name: str, *, key: str = MAILGUN_KEY, at: float = NOW, token: str = "") -> bytes:
    payload = sample(name)
    token = token or random.token_hex(25)
    stamp = str(int(at))
    payload["signature"] = {
        "timestamp": stamp,
        "token": token,
        "signature": hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest(),
    }
    return json.dumps(payload).encode()


def sendgrid_headers(
    key: ec.EllipticCurvePrivateKey, body: bytes, stamp: str = "1769536100"
) -> dict[str, str]:
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


POSTMARK_AUTH = basic("postmark", "correct horse battery staple")


def rejected(reason: str, call: Any, *args: Any, **kwargs: Any) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as caught:
        call(*args, **kwargs)
    assert caught.value.reason == reason, str(caught.value)
    return caught.value


# ------------------------------------------------------------------ the environment
def test_secrets_come_from_the_environment_and_enable_only_configured_relays() -> None:
    found = WebhookSecrets.from_environ(
        {
            "DISPATCH_SES_TOPIC_ARNS": f" {TOPIC} , arn:aws:sns:eu-west-1:1:other,",
            "DISPATCH_MAILGUN_SIGNING_KEY": MAILGUN_KEY,
            "DISPATCH_POSTMARK_WEBHOOK_USER": "only-a-user",
            "DISPATCH_CACHE_DIR": "/tmp/somewhere",
        }
    )
    assert found.ses_topic_arns == (TOPIC, "arn:aws:sns:eu-west-1:1:other")
    assert [p for p in ("ses", "postmark", "mailgun", "sendgrid") if found.enabled(p)] == [
        "ses",
        "mailgun",
    ]
    assert MAILGUN_KEY not in repr(found)
    assert WebhookSecrets.from_environ({"DISPATCH_CACHE_DIR": "off"}).cache_dir is None


# ------------------------------------------------------------------ SES through SNS
@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_permanent_bounce_is_hard_for_each_recipient(
    secrets: WebhookSecrets, sns_key: rsa.RSAPrivateKey, version: str
) -> None:
    body = sns_body(sns_key, "ses-bounce-permanent.json", version=version)
    events = ses.parse({}, body, secrets, now=NOW)
    message_id = json.loads(body)["MessageId"]
    assert [(e.kind, e.email) for e in events] == [
        ("hard-bounce", "jane@example.com"),
        ("hard-bounce", "Richard@Example.com"),
    ]
    assert [e.evidence for e in events] == [
        f"ses:{message_id}:jane@example.com",
        f"ses:{message_id}:richard@example.com",
    ]
    assert all(
        e.source == "webhook:ses" and e.issue == "2026-q1" and e.list is None for e in events
    )
    assert (
        events[0].detail
        == "Permanent/General 5.1.1 smtp; 550 5.1.1 <jane@example.com>... User unknown"
    )
    assert (
        events[0].at == datetime.datetime(2026, 1, 27, 14, 59, 38, 237000, datetime.UTC).timestamp()
    )


@pytest.mark.parametrize(
    ("name", "kind", "email", "issue", "detail"),
    [
        (
            "ses-bounce-transient.json",
            "soft-bounce",
            "mary@example.com",
            None,
            "Transient/MailboxFull 4.2.2",
        ),
        (
            "ses-event-bounce-undetermined.json",
            "soft-bounce",
            "lee@example.com",
            "2026-q2",
            "Undetermined",
        ),
        ("ses-complaint.json", "complaint", "richard@example.com", "2026-q1", "complaint abuse"),
    ],
)
def test_ses_soft_bounces_and_complaints(
    secrets: WebhookSecrets,
    sns_key: rsa.RSAPrivateKey,
    name: str,
    kind: str,
    email: str,
    issue: str | None,
    detail: str,
) -> None:
    (event,) = ses.parse({}, sns_body(sns_key, name), secrets, now=NOW)
    assert (event.kind, event.email, event.issue) == (kind, email, issue)
    assert event.detail.startswith(detail)


def test_ses_delivery_and_confirmations_carry_no_event(
    secrets: WebhookSecrets, sns_key: rsa.RSAPrivateKey
) -> None:
    assert ses.parse({}, sns_body(sns_key, "ses-delivery.json"), secrets, now=NOW) == []
    body = json.dumps(
        sns_envelope(sns_key, "You have chosen to subscribe", kind="SubscriptionConfirmation")
    )
    message = sns.verify(
        {"x-amz-sns-message-type": "SubscriptionConfirmation"}, body.encode(), secrets, now=NOW
    )
    assert message.subscribe_url and message.subscribe_url.startswith(
        "https://sns.us-east-1.amazonaws.com/"
    )
    assert ses.events(message, now=NOW) == []


def flip_one_byte(body: bytes) -> bytes:
    envelope = json.loads(body)
    message = envelope["Message"]
    at = message.index("5.1.1")
    envelope["Message"] = message[:at] + "4" + message[at + 1 :]
    return json.dumps(envelope).encode()


def test_ses_tampering_is_rejected(
    secrets: WebhookSecrets, sns_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    good = sns_body(sns_key, "ses-bounce-permanent.json")
    rejected("signature", ses.parse, {}, flip_one_byte(good), secrets, now=NOW)
    rejected(
        "signature",
        ses.parse,
        {},
        sns_body(sns_key, "ses-bounce-permanent.json", topic=TOPIC + "x"),
        secrets,
        now=NOW,
    )
    unknown = rejected(
        "signature",
        ses.parse,
        {},
        sns_body(sns_key, "ses-bounce-permanent.json", version="3"),
        secrets,
        now=NOW,
    )
    assert "SignatureVersion" in str(unknown)
    # signed by another key: the certificate at the URL does not match
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rejected(
        "signature", ses.parse, {}, sns_body(other, "ses-bounce-permanent.json"), secrets, now=NOW
    )
    rejected(
        "malformed",
        ses.parse,
        {"x-amz-sns-message-type": "SubscriptionConfirmation"},
        good,
        secrets,
        now=NOW,
    )
    rejected("malformed", ses.parse, {}, b"{not json", secrets, now=NOW)


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000test.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem",
        "https://s3.amazonaws.com/cert.pem",
        "https://user@sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
    ],
)
def test_a_certificate_url_off_the_sns_hosts_is_rejected_before_any_fetch(
    secrets: WebhookSecrets, sns_key: rsa.RSAPrivateKey, url: str
) -> None:
    # the session refuses non-loopback connections: a fetch would fail as "unavailable"
    body = sns_body(sns_key, "ses-bounce-permanent.json", cert_url=url)
    error = rejected("signature", ses.parse, {}, body, secrets, now=NOW)
    assert "SigningCertURL" in str(error)


def test_a_subscribe_url_off_the_sns_hosts_is_rejected(
    secrets: WebhookSecrets, sns_key: rsa.RSAPrivateKey
) -> None:
    envelope = sns_envelope(
        sns_key,
        "subscribe",
        kind="SubscriptionConfirmation",
        SubscribeURL="https://evil.example/confirm",
    )
    rejected("signature", sns.verify, {}, json.dumps(envelope).encode(), secrets, now=NOW)


def test_an_expired_or_uncached_certificate_is_not_trusted(
    secrets: WebhookSecrets, sns_key: rsa.RSAPrivateKey
) -> None:
    assert secrets.cache_dir
    cache_certificate(Path(secrets.cache_dir), CERT_URL, self_signed(sns_key, days=-0.5))
    body = sns_body(sns_key, "ses-bounce-permanent.json")
    rejected("signature", ses.parse, {}, body, secrets, now=NOW)
    # not in the cache: the fetch is tried, and here (no network) it cannot succeed
    with pytest.raises(Exception) as caught:
        ses.parse(
            {},
            sns_body(sns_key, "ses-bounce-permanent.json", cert_url=CERT_URL + "?v=2"),
            secrets,
            now=NOW,
        )
    assert "network" in str(caught.value) or getattr(caught.value, "reason", "") == "unavailable"


def test_the_https_fetch_verifies_tls_and_caps_the_size(ca: Any, tmp_path: Path) -> None:
    import http.server
    import ssl
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            size = 100 if self.path == "/small" else fetch.MAX_CERTIFICATE + 10
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.write(b"x" * size)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        trusting = ssl.create_default_context()
        ca.configure_trust(trusting)
        assert (
            fetch.https_get(base + "/small", max_bytes=fetch.MAX_CERTIFICATE, context=trusting)
            == b"x" * 100
        )
        rejected(
            "signature",
            fetch.https_get,
            base + "/big",
            max_bytes=fetch.MAX_CERTIFICATE,
            context=trusting,
        )
        # the default context does not trust a private CA: verified TLS, not any TLS
        rejected("unavailable", fetch.https_get, base + "/small", max_bytes=fetch.MAX_CERTIFICATE)
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ Postmark
@pytest.mark.parametrize(
    ("name", "kind", "email", "evidence", "listed", "issue", "detail"),
    [
        (
            "postmark-bounce-hard.json",
            "hard-bounce",
            "john@example.com",
            "postmark:4323372036854775807",
            None,
            "2026-q1",
            "HardBounce 1 The server",
        ),
        (
            "postmark-bounce-soft.json",
            "soft-bounce",
            "mary@example.com",
            "postmark:4323372036854775808",
            None,
            None,
            "SoftBounce 4096",
        ),
        (
            "postmark-spam-complaint.json",
            "complaint",
            "richard@example.com",
            "postmark:42",
            None,
            None,
            "SpamComplaint 100001",
        ),
        (
            "postmark-subscription-change.json",
            "unsubscribe",
            "lee@example.com",
            "postmark:subscription:883953f4-6105-42a2-a16a-77a8eac79485:lee@example.com:2026-02-01T10:53:34.416071Z",
            "main",
            "2026-q1",
            "SubscriptionChange ManualSuppression Recipient",
        ),
    ],
)
def test_postmark_records(
    secrets: WebhookSecrets,
    name: str,
    kind: str,
    email: str,
    evidence: str,
    listed: str | None,
    issue: str | None,
    detail: str,
) -> None:
    (event,) = postmark.parse(POSTMARK_AUTH, (CORPUS / name).read_bytes(), secrets, now=NOW)
    assert (event.kind, event.email, event.evidence, event.list, event.issue) == (
        kind,
        email,
        evidence,
        listed,
        issue,
    )
    assert event.source == "webhook:postmark" and event.detail.startswith(detail)


def test_postmark_ignores_what_is_not_about_the_address(secrets: WebhookSecrets) -> None:
    auto_reply = sample("postmark-bounce-soft.json") | {"Type": "AutoResponder", "TypeCode": 64}
    reactivated = sample("postmark-subscription-change.json") | {"SuppressSending": False}
    delivery = {"RecordType": "Delivery", "Recipient": "ok@example.com", "MessageID": "x"}
    for record in (auto_reply, reactivated, delivery):
        assert postmark.parse(POSTMARK_AUTH, json.dumps(record).encode(), secrets, now=NOW) == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("postmark", "wrong"),
        basic("someone", "correct horse battery staple"),
        {"Authorization": "Basic !!!"},
        {"Authorization": "Bearer x"},
    ],
)
def test_postmark_needs_both_credentials(secrets: WebhookSecrets, headers: dict[str, str]) -> None:
    body = (CORPUS / "postmark-bounce-hard.json").read_bytes()
    rejected("auth", postmark.parse, headers, body, secrets, now=NOW)


# ------------------------------------------------------------------ Mailgun
@pytest.mark.parametrize(
    ("name", "kind", "email", "evidence", "listed", "issue", "detail"),
    [
        (
            "mailgun-failed-permanent.json",
            "hard-bounce",
            "alice@example.com",
            "mailgun:G9Bn5sl1TC6nu79C8C0bwg",
            None,
            "2026-q1",
            "failed/permanent 550 bounce 5.1.1",
        ),
        (
            "mailgun-failed-temporary.json",
            "soft-bounce",
            "mary@example.com",
            "mailgun:Fs7-5t81S2ucpo2HThe8wg",
            None,
            "2026-q1",
            "failed/temporary 452 generic 4.2.2",
        ),
        (
            "mailgun-complained.json",
            "complaint",
            "richard@example.com",
            "mailgun:-Agny091SquKnsrW2NEKUA",
            None,
            "2026-q1",
            "complained",
        ),
        (
            "mailgun-unsubscribed.json",
            "unsubscribe",
            "lee@example.com",
            "mailgun:Ase7i2zsRYeDXztHGENqRA",
            "main",
            "2026-q1",
            "unsubscribed",
        ),
    ],
)
def test_mailgun_events(
    secrets: WebhookSecrets,
    name: str,
    kind: str,
    email: str,
    evidence: str,
    listed: str | None,
    issue: str | None,
    detail: str,
) -> None:
    (event,) = mailgun.parse({}, mailgun_body(name), secrets, now=NOW, tokens=mailgun.TokenMemory())
    assert (event.kind, event.email, event.evidence, event.list, event.issue) == (
        kind,
        email,
        evidence,
        listed,
        issue,
    )
    assert event.source == "webhook:mailgun" and event.detail.startswith(detail)


def test_mailgun_delivered_is_ignored(secrets: WebhookSecrets) -> None:
    body = mailgun_body("mailgun-delivered.json")
    assert mailgun.parse({}, body, secrets, now=NOW, tokens=mailgun.TokenMemory()) == []


def test_mailgun_tampering_staleness_and_replay_are_rejected(secrets: WebhookSecrets) -> None:
    tokens = mailgun.TokenMemory()
    name = "mailgun-failed-permanent.json"
    wrong_key = mailgun_body(name, key="key-" + "8" * 32)
    rejected("signature", mailgun.parse, {}, wrong_key, secrets, now=NOW, tokens=tokens)
    envelope = json.loads(mailgun_body(name))
    signature = envelope["signature"]["signature"]
    envelope["signature"]["signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]
    rejected(
        "signature",
        mailgun.parse,
        {},
        json.dumps(envelope).encode(),
        secrets,
        now=NOW,
        tokens=tokens,
    )
    for stale in (NOW - 16 * 60, NOW + 16 * 60):
        rejected(
            "signature",
            mailgun.parse,
            {},
            mailgun_body(name, at=stale),
            secrets,
            now=NOW,
            tokens=tokens,
        )
    assert mailgun.parse({}, mailgun_body(name, at=NOW - 14 * 60), secrets, now=NOW, tokens=tokens)
    once = mailgun_body(name)
    assert mailgun.parse({}, once, secrets, now=NOW, tokens=tokens)
    replayed = rejected("signature", mailgun.parse, {}, once, secrets, now=NOW + 5, tokens=tokens)
    assert "used before" in str(replayed)
    mailgun.release(once, tokens)  # accepted but not applied: Mailgun's retry goes through
    assert mailgun.parse({}, once, secrets, now=NOW + 5, tokens=tokens)


# ------------------------------------------------------------------ SendGrid
def test_sendgrid_verifies_a_request_sendgrid_signed() -> None:
    vector = sample("sendgrid-signed-vector.json")
    secrets = WebhookSecrets(sendgrid_public_key=vector["public_key"])
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": vector["signature"],
        "X-Twilio-Email-Event-Webhook-Timestamp": vector["timestamp"],
    }
    body = vector["body"].encode()
    (event,) = sendgrid.parse(headers, body, secrets, now=NOW)
    assert (event.kind, event.email, event.evidence) == (
        "hard-bounce",
        "hello@world.com",
        "sendgrid:ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
    )
    assert event.detail == "dropped Bounced Address" and event.at == 1600112492
    rejected("signature", sendgrid.parse, headers, body.rstrip(b"\r\n"), secrets, now=NOW)


def test_sendgrid_batch_kinds(
    secrets: WebhookSecrets, sendgrid_key: ec.EllipticCurvePrivateKey
) -> None:
    body = (CORPUS / "sendgrid-events.json").read_bytes()
    events = sendgrid.parse(sendgrid_headers(sendgrid_key, body), body, secrets, now=NOW)
    assert [(e.kind, e.email, e.list, e.issue) for e in events] == [
        ("hard-bounce", "alice@example.com", None, "2026-q1"),
        ("soft-bounce", "mary@example.com", None, "2026-q1"),
        ("hard-bounce", "bob@example.com", None, None),
        ("complaint", "richard@example.com", None, None),
        ("unsubscribe", "lee@example.com", "main", None),
        ("unsubscribe", "kim@example.com", None, None),
    ]
    assert events[0].evidence == "sendgrid:6g4ZI7SA-xmRDv57GoPIPw=="
    assert events[0].detail.startswith("bounce/bounce 5.1.1 550 5.1.1")
    assert events[1].detail.startswith("bounce/blocked 4.0.0")


def test_sendgrid_tampering_is_rejected(
    secrets: WebhookSecrets, sendgrid_key: ec.EllipticCurvePrivateKey
) -> None:
    body = (CORPUS / "sendgrid-events.json").read_bytes()
    headers = sendgrid_headers(sendgrid_key, body)
    at = body.index(b"5.1.1")
    rejected(
        "signature", sendgrid.parse, headers, body[:at] + b"4" + body[at + 1 :], secrets, now=NOW
    )
    other = ec.generate_private_key(ec.SECP256R1())
    rejected("signature", sendgrid.parse, sendgrid_headers(other, body), body, secrets, now=NOW)
    moved = headers | {"X-Twilio-Email-Event-Webhook-Timestamp": "1769536101"}
    rejected("signature", sendgrid.parse, moved, body, secrets, now=NOW)
    rejected("signature", sendgrid.parse, {}, body, secrets, now=NOW)
    garbled = headers | {"X-Twilio-Email-Event-Webhook-Signature": "not base64!"}
    rejected("signature", sendgrid.parse, garbled, body, secrets, now=NOW)
    not_a_list = b'{"event": "bounce"}'
    rejected(
        "malformed",
        sendgrid.parse,
        sendgrid_headers(sendgrid_key, not_a_list),
        not_a_list,
        secrets,
        now=NOW,
    )
    bad_address = json.dumps(
        [sample("sendgrid-events.json")[0] | {"email": "a@b\r\nBcc: x@y"}]
    ).encode()
    rejected(
        "malformed",
        sendgrid.parse,
        sendgrid_headers(sendgrid_key, bad_address),
        bad_address,
        secrets,
        now=NOW,
    )


# ------------------------------------------------------------------ end to end: `dispatch serve`
class Served:
    def __init__(self, process: subprocess.Popen[str], base: str, root: Path):
        self.process, self.base, self.root = process, base, root

    def post(self, provider: str, body: bytes, headers: dict[str, str] | None = None) -> int:
        request = urllib.request.Request(
            f"{self.base}/webhooks/{provider}", data=body, headers=headers or {}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def declared_too_large(self, provider: str) -> int:
        """A request announcing more than 1 MB: answered before its body is sent."""
        import http.client
        from urllib.parse import urlsplit

        where = urlsplit(self.base)
        connection = http.client.HTTPConnection(where.hostname or "", where.port, timeout=10)
        try:
            connection.putrequest("POST", f"/webhooks/{provider}")
            connection.putheader("Content-Length", str(2 * 1024 * 1024))
            connection.endheaders()
            return connection.getresponse().status
        finally:
            connection.close()

    def suppressed(self) -> dict[str, str]:
        """dedupe key → reason, on the send project's list (its own and every-list entries)."""
        from dispatch_mail.project.loader import load_project
        from dispatch_mail.suppression import open_store

        with open_store(load_project(self.root)) as store:
            return {k: s.reason for k, s in store.suppressed("subscribers").items()}

    def entries(self) -> list[tuple[str, str, str]]:
        from dispatch_mail.project.loader import load_project
        from dispatch_mail.suppression import open_store

        with open_store(load_project(self.root)) as store:
            return [(s.email, s.list, s.reason) for s in store.entries()]


def start_serve(root: Path, environ: dict[str, str]) -> Served:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    env.update(
        environ, DISPATCH_PROJECT=str(root), DISPATCH_UNSUBSCRIBE_SECRET=random.token_hex(32)
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "dispatch_mail", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("serving http://"):
        process.kill()
        pytest.fail(f"dispatch serve did not start: {line!r} {process.communicate()[1]!r}")
    base = line.split()[1].split("/unsubscribe")[0]
    return Served(process, base, root)


def stop(served: Served) -> None:
    served.process.terminate()
    served.process.communicate(timeout=15)


@pytest.fixture
def served(project: Any, secrets: WebhookSecrets, tmp_path: Path) -> Iterator[Served]:
    assert secrets.cache_dir and secrets.sendgrid_public_key
    running = start_serve(
        project.root,
        {
            "DISPATCH_SES_TOPIC_ARNS": TOPIC,
            "DISPATCH_POSTMARK_WEBHOOK_USER": "postmark",
            "DISPATCH_POSTMARK_WEBHOOK_PASSWORD": "correct horse battery staple",
            "DISPATCH_MAILGUN_SIGNING_KEY": MAILGUN_KEY,
            "DISPATCH_SENDGRID_WEBHOOK_PUBLIC_KEY": secrets.sendgrid_public_key,
            "DISPATCH_CACHE_DIR": secrets.cache_dir,
        },
    )
    try:
        yield running
    finally:
        stop(running)


def test_end_to_end_through_dispatch_serve(
    served: Served, sns_key: rsa.RSAPrivateKey, sendgrid_key: ec.EllipticCurvePrivateKey
) -> None:
    # a forged SES notification changes nothing
    hard = sns_body(sns_key, "ses-bounce-permanent.json")
    assert served.post("ses", flip_one_byte(hard)) == 403
    assert served.entries() == []
    # a hard bounce suppresses on every list; SNS retrying it changes nothing
    assert served.post("ses", hard) == 200
    after_first = served.entries()
    assert ("jane@example.com", ALL_LISTS, "hard-bounce") in after_first
    assert served.suppressed()["richard@example.com"] == "hard-bounce"
    assert served.post("ses", hard) == 200
    assert served.entries() == after_first
    # soft bounces count: the third within the window suppresses
    blocked = sample("sendgrid-events.json")[1]
    for n in range(3):
        assert "mary@example.com" not in served.suppressed()
        body = json.dumps(
            [blocked | {"sg_event_id": f"blocked-{n}", "timestamp": int(NOW) - 60 + n}]
        ).encode()
        assert served.post("sendgrid", body, sendgrid_headers(sendgrid_key, body)) == 200
    assert served.suppressed()["mary@example.com"] == "soft-bounce"
    # a complaint, through Postmark, suppresses; wrong credentials change nothing
    complaint = (CORPUS / "postmark-spam-complaint.json").read_bytes()
    before = served.entries()
    assert (
        served.post("postmark", complaint.replace(b"richard", b"rita"), basic("postmark", "guess"))
        == 401
    )
    assert served.entries() == before
    assert served.post("postmark", complaint.replace(b"richard", b"rita"), POSTMARK_AUTH) == 200
    assert served.suppressed()["rita@example.com"] == "complaint"
    # Mailgun: an unsubscribe is for its list; a replayed request is refused
    unsubscribe = mailgun_body("mailgun-unsubscribed.json")
    assert served.post("mailgun", unsubscribe) == 200
    assert ("lee@example.com", "main", "unsubscribed") in served.entries()
    assert served.post("mailgun", unsubscribe) == 403
    # malformed, too large
    assert served.post("sendgrid", b"[", sendgrid_headers(sendgrid_key, b"[")) == 400
    assert served.declared_too_large("sendgrid") == 413


def test_an_unconfigured_relay_is_not_an_open_door(project: Any) -> None:
    running = start_serve(project.root, {})
    try:
        for provider in ("ses", "postmark", "mailgun", "sendgrid"):
            assert running.post(provider, b"[]") == 404
        assert running.entries() == []
    finally:
        stop(running)
