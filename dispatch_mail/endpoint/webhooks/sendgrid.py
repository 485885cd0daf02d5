"""SendGrid's Signed Event Webhook: bounces, drops, spam reports and unsubscribes.

SendGrid signs ``X-Twilio-Email-Event-Webhook-Timestamp`` followed by the raw body with
ECDSA P-256 / SHA-256; the public key is the base64 SPKI DER its settings page shows.
The body is a JSON array of events, each with its own ``sg_event_id``. A "bounce" of
type "blocked", or with a 4.x.x status, is soft; any other bounce is hard. A drop counts
only for the reasons that speak about the address; "deferred" is ignored (dispatch's own
journal follows deferrals).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from dispatch_mail.endpoint.webhooks.payload import (
    MAX_EVENTS,
    address,
    decode,
    detail,
    issue_of,
    malformed,
    mapping,
    moment,
    text,
)
from dispatch_mail.endpoint.webhooks.secrets import WebhookSecrets
from dispatch_mail.errors import WebhookRejected
from dispatch_mail.suppression.records import WEBHOOK_SOURCE, EventKind, ReturnEvent

PROVIDER = "sendgrid"
SOURCE = WEBHOOK_SOURCE + PROVIDER
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
DROP_KINDS: dict[str, EventKind] = {
    "Bounced Address": "hard-bounce",
    "Spam Reporting Address": "complaint",
    "Unsubscribed Address": "unsubscribe",
}
_CUSTOM_ARGUMENT_LIMIT = 200


@lru_cache(maxsize=4)
def public_key(encoded: str) -> ec.EllipticCurvePublicKey:
    """The configured key; a key that is not P-256 SPKI DER in base64 verifies nothing."""
    try:
        key = load_der_public_key(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError, UnsupportedAlgorithm):
        raise WebhookRejected(
            "the configured SendGrid public key is unreadable", provider=PROVIDER
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise WebhookRejected("the configured SendGrid public key is not P-256", provider=PROVIDER)
    return key


def verify(headers: Mapping[str, str], body: bytes, secrets: WebhookSecrets) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}
    signature, timestamp = lowered.get(SIGNATURE_HEADER), lowered.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise WebhookRejected("the SendGrid signature headers are missing", provider=PROVIDER)
    key = public_key(secrets.sendgrid_public_key or "")
    try:
        key.verify(
            base64.b64decode(signature.strip(), validate=True),
            timestamp.strip().encode("utf-8") + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (binascii.Error, ValueError, InvalidSignature):
        raise WebhookRejected("the SendGrid signature does not verify", provider=PROVIDER) from None


def parse(
    headers: Mapping[str, str], body: bytes, secrets: WebhookSecrets, *, now: float
) -> list[ReturnEvent]:
    """The events in one SendGrid batch, verified over the exact bytes received."""
    verify(headers, body, secrets)
    batch = decode(body, PROVIDER)
    if not isinstance(batch, list) or len(batch) > MAX_EVENTS:
        raise malformed(PROVIDER, f"the body is not a list of at most {MAX_EVENTS} events")
    found = []
    for item in batch:
        event = _event(mapping(item, PROVIDER, "an event"), now)
        if event is not None:
            found.append(event)
    return found


def _kind(event: dict[str, Any]) -> EventKind | None:
    name = event.get("event")
    if name == "bounce":
        status = str(event.get("status") or "")
        soft = event.get("type") == "blocked" or status.startswith("4")
        return "soft-bounce" if soft else "hard-bounce"
    if name == "dropped":
        return DROP_KINDS.get(str(event.get("reason") or ""))
    if name == "spamreport":
        return "complaint"
    if name in ("unsubscribe", "group_unsubscribe"):
        return "unsubscribe"
    return None  # processed, deferred, delivered, open, click, …


def _event(event: dict[str, Any], now: float) -> ReturnEvent | None:
    kind = _kind(event)
    if kind is None:
        return None
    name = str(event["event"])
    label = f"{name}/{event['type']}" if isinstance(event.get("type"), str) else name
    return ReturnEvent(
        kind=kind,
        email=address(event.get("email"), PROVIDER, "email"),
        source=SOURCE,
        evidence=f"sendgrid:{text(event.get('sg_event_id'), PROVIDER, 'sg_event_id')}",
        at=moment(event.get("timestamp"), now),
        list=_argument(event, "list") if kind == "unsubscribe" else None,
        issue=_argument(event, "issue") or issue_of(_text_or_none(event.get("smtp-id"))),
        detail=detail(
            label,
            text(event.get("status"), PROVIDER, "status", required=False),
            text(event.get("reason"), PROVIDER, "reason", required=False),
        ),
    )


def _argument(event: dict[str, Any], name: str) -> str | None:
    """A custom argument: SendGrid puts them at the top level of each event."""
    value = event.get(name)
    return value[:_CUSTOM_ARGUMENT_LIMIT] if isinstance(value, str) and value else None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
