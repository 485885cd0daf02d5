"""Amazon SNS's HTTP delivery: the signed envelope every SES notification arrives in.

An envelope is trusted only when its TopicArn is one we subscribed to, its
SigningCertURL is https on an SNS host, and its signature (SignatureVersion 1:
SHA1withRSA, 2: SHA256withRSA) verifies over the canonical string SNS documents for
its type, with the certificate found at that URL. Checks that cost nothing run first,
so a forged request never makes us fetch anything.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from dispatch_mail.endpoint.webhooks import fetch
from dispatch_mail.endpoint.webhooks.payload import decode, malformed, mapping
from dispatch_mail.endpoint.webhooks.secrets import WebhookSecrets
from dispatch_mail.errors import WebhookRejected

PROVIDER = "ses"
_CONFIRMATION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _CONFIRMATION,
    "UnsubscribeConfirmation": _CONFIRMATION,
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


@dataclass(frozen=True)
class SnsMessage:
    """A verified envelope: what SNS says, and that it was SNS that said it."""

    type: str  # Notification, SubscriptionConfirmation or UnsubscribeConfirmation
    message_id: str
    topic_arn: str
    message: str  # for SES, the notification's JSON
    subscribe_url: str | None = None


def _field(envelope: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    """A signed field exactly as sent: the canonical string needs its bytes, not a cleaned copy."""
    value = envelope.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise malformed(PROVIDER, f"{name} is missing or not a string")
    return value


def canonical_string(envelope: Mapping[str, Any]) -> bytes:
    """``Name\\nvalue\\n`` for each signed field of the envelope's type, in SNS's order."""
    kind = _field(envelope, "Type")
    if kind not in SIGNED_FIELDS:
        raise malformed(PROVIDER, f"unknown SNS message Type {kind!r}")
    lines = []
    for name in SIGNED_FIELDS[kind]:
        value = _field(envelope, name, required=name != "Subject")
        if value is not None:
            lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode("utf-8")


def verify(
    headers: Mapping[str, str], body: bytes, secrets: WebhookSecrets, *, now: float
) -> SnsMessage:
    """The envelope in ``body``, verified; anything else is a WebhookRejected."""
    envelope = mapping(decode(body, PROVIDER), PROVIDER, "the SNS message")
    signed = canonical_string(envelope)  # checks Type and every signed field first
    kind = str(envelope["Type"])
    announced = _header(headers, "x-amz-sns-message-type")
    if announced is not None and announced != kind:
        raise malformed(PROVIDER, "x-amz-sns-message-type does not match the message Type")
    topic = str(envelope["TopicArn"])
    if topic not in secrets.ses_topic_arns:
        raise WebhookRejected("TopicArn is not one of the allowed topics", provider=PROVIDER)
    algorithm = _HASHES.get(str(envelope.get("SignatureVersion")))
    if algorithm is None:
        raise WebhookRejected("unknown SignatureVersion", provider=PROVIDER)
    cert_url = fetch.check_sns_url(_field(envelope, "SigningCertURL") or "", "SigningCertURL")
    subscribe_url = None
    if kind != "Notification":
        subscribe_url = fetch.check_sns_url(str(envelope["SubscribeURL"]), "SubscribeURL")
    try:
        signature = base64.b64decode(_field(envelope, "Signature") or "", validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected("Signature is not base64", provider=PROVIDER) from None
    certificate = fetch.signing_certificate(cert_url, secrets.cache_dir)
    moment = datetime.fromtimestamp(now, UTC)
    if not certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc:
        raise WebhookRejected("the signing certificate is not valid now", provider=PROVIDER)
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise WebhookRejected("the signing certificate's key is not RSA", provider=PROVIDER)
    try:
        key.verify(signature, signed, padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise WebhookRejected("the SNS signature does not verify", provider=PROVIDER) from None
    return SnsMessage(
        type=kind,
        message_id=str(envelope["MessageId"]),
        topic_arn=topic,
        message=str(envelope["Message"]),
        subscribe_url=subscribe_url,
    )


def confirm_subscription(message: SnsMessage) -> None:
    """Visit the SubscribeURL of a verified SubscriptionConfirmation, as SNS asks."""
    if message.type != "SubscriptionConfirmation" or not message.subscribe_url:
        return
    fetch.https_get(
        fetch.check_sns_url(message.subscribe_url, "SubscribeURL"),
        max_bytes=fetch.MAX_CONFIRMATION,
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value.strip()
    return None
