"""The HTTP side of the webhooks: one POST route per relay, answering as relays expect.

An unconfigured relay answers 404 (no open door); a body over 1 MB, 413; bad
credentials, 401; a signature that does not verify, 403; a payload that is not the
relay's, 400; a store or a fetch that fails, 503 (the relay retries). Only a verified
request reaches the store, and its events are applied in a worker thread, each once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from dispatch_mail.endpoint.webhooks import mailgun, postmark, sendgrid, ses, sns
from dispatch_mail.endpoint.webhooks.payload import MAX_BODY
from dispatch_mail.endpoint.webhooks.secrets import PROVIDERS
from dispatch_mail.errors import StoreError, WebhookRejected
from dispatch_mail.project.wording import plural
from dispatch_mail.suppression.records import ReturnEvent

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from dispatch_mail.endpoint.context import Endpoint

log = logging.getLogger("dispatch.webhooks")
STATUS = {"auth": 401, "signature": 403, "malformed": 400, "unavailable": 503}
Work = Callable[[Mapping[str, str], bytes, float], list[ReturnEvent]]


def build_routes(endpoint: Endpoint) -> list[BaseRoute]:
    from starlette.routing import Route

    base = "/" + endpoint.project.unsubscribe.webhook_path.strip("/")
    tokens = mailgun.TokenMemory()
    secrets = endpoint.webhooks

    def receive_ses(headers: Mapping[str, str], body: bytes, now: float) -> list[ReturnEvent]:
        message = sns.verify(headers, body, secrets, now=now)
        if message.type == "SubscriptionConfirmation":
            sns.confirm_subscription(message)
            log.warning("confirmed the SNS subscription to %s", message.topic_arn)
        elif message.type == "UnsubscribeConfirmation":
            log.warning("SNS reports the subscription to %s was removed", message.topic_arn)
        return ses.events(message, now=now)

    def receive_mailgun(headers: Mapping[str, str], body: bytes, now: float) -> list[ReturnEvent]:
        return mailgun.parse(headers, body, secrets, now=now, tokens=tokens)

    def receive_postmark(headers: Mapping[str, str], body: bytes, now: float) -> list[ReturnEvent]:
        return postmark.parse(headers, body, secrets, now=now)

    def receive_sendgrid(headers: Mapping[str, str], body: bytes, now: float) -> list[ReturnEvent]:
        return sendgrid.parse(headers, body, secrets, now=now)

    work: dict[str, Work] = {
        "ses": receive_ses,
        "postmark": receive_postmark,
        "mailgun": receive_mailgun,
        "sendgrid": receive_sendgrid,
    }
    routes: list[BaseRoute] = []
    for provider in PROVIDERS:
        handler = _handler(endpoint, provider, work[provider], tokens)
        routes.append(
            Route(f"{base}/{provider}", handler, methods=["POST"], name=f"webhook-{provider}")
        )
    return routes


def _handler(
    endpoint: Endpoint, provider: str, work: Work, tokens: mailgun.TokenMemory
) -> Callable[[Request], object]:
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import PlainTextResponse

    def apply(headers: Mapping[str, str], body: bytes) -> int:
        events = work(headers, body, time.time())
        try:
            for event in events:
                endpoint.store.apply(event, endpoint.policy)
        except StoreError:
            if provider == "mailgun":
                mailgun.release(body, tokens)  # Mailgun's retry must not look like a replay
            raise
        return len(events)

    async def handle(request: Request) -> Response:
        if not endpoint.webhooks.enabled(provider):
            return PlainTextResponse("not found\n", status_code=404)
        body = await _read_body(request)
        if body is None:
            return PlainTextResponse("too large\n", status_code=413)
        try:
            count = await run_in_threadpool(apply, dict(request.headers), body)
        except WebhookRejected as rejected:
            log.warning("webhook %s rejected: %s", provider, rejected)
            headers = (
                {"WWW-Authenticate": 'Basic realm="dispatch"'}
                if rejected.reason == "auth"
                else None
            )
            status = STATUS.get(rejected.reason, 400)
            return PlainTextResponse(f"rejected: {rejected}\n", status_code=status, headers=headers)
        except StoreError as error:
            log.error("webhook %s not applied: %s", provider, error)
            return PlainTextResponse("the store is unavailable\n", status_code=503)
        return PlainTextResponse(f"ok: {plural(count, 'event')}\n")

    return handle


async def _read_body(request: Request) -> bytes | None:
    """The body, or None once it passes MAX_BODY (checked as it arrives, not after)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
