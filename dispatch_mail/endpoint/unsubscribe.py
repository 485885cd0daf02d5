"""The unsubscribe URL: RFC 8058's one-click POST, the confirmation page and its undo.

- ``POST`` with exactly ``List-Unsubscribe=One-Click`` → unsubscribed, 200 text/plain;
- ``GET`` → a page that asks and changes nothing (link scanners GET every URL);
- the page's own ``POST action=unsubscribe`` → unsubscribed, then a page offering
  ``action=resubscribe``, which lifts that list's unsubscribe again.

A token that is not genuine, or expired, changes nothing (400). Each change is one
``ReturnEvent`` applied by the store in one transaction, off the event loop; a
store that does not answer is a 503 and nothing half-done.
"""

from __future__ import annotations

import logging
import secrets
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatch_mail.endpoint import pages
from dispatch_mail.endpoint.context import Endpoint
from dispatch_mail.endpoint.incoming import BodyTooLarge, TokenPlace, form_fields, read_body
from dispatch_mail.errors import StoreError
from dispatch_mail.mail.tokens import TokenClaims
from dispatch_mail.suppression.records import EventKind, ReturnEvent

log = logging.getLogger("dispatch_mail.endpoint")

ONE_CLICK = [("List-Unsubscribe", "One-Click")]
PAGE_ACTIONS: dict[str, EventKind] = {"unsubscribe": "unsubscribe", "resubscribe": "resubscribe"}
NEVER_EXPIRES = 1 << 17  # days: past any date a token can hold, to tell "expired" from "forged"


def unsubscribe_route(endpoint: Endpoint, place: TokenPlace) -> Route:
    """The route at the path of ``footer.unsubscribe_url``, whatever Host it is reached by."""

    async def answer(request: Request) -> Response:
        project = endpoint.project
        token = place.token(request)
        claims = endpoint.keys.open(token, lifetime_days=project.unsubscribe.token_days)
        if claims is None:
            expired = endpoint.keys.open(token, lifetime_days=NEVER_EXPIRES) is not None
            return pages.expired_link(project) if expired else pages.invalid_link(project)
        if request.method != "POST":
            return pages.confirm(project, claims.list_name, claims.email)
        try:
            fields = form_fields(request.headers.get("content-type", ""), await read_body(request))
        except BodyTooLarge:
            return pages.text("request body too large", status=413)
        if fields == ONE_CLICK:
            return await _record(endpoint, claims, "unsubscribe", "one-click", one_click=True)
        if fields is not None and len(fields) == 1 and fields[0][0] == "action":
            kind = PAGE_ACTIONS.get(fields[0][1])
            if kind is not None:
                return await _record(endpoint, claims, kind, "confirmation-page", one_click=False)
        return pages.bad_request(project)

    # other methods: Starlette's 405, with Allow, answered by the app's handler
    return Route(place.path, answer, methods=["GET", "POST"], name="unsubscribe")


async def _record(
    endpoint: Endpoint, claims: TokenClaims, kind: EventKind, source: str, *, one_click: bool
) -> Response:
    project = endpoint.project
    event = ReturnEvent(
        kind=kind,
        email=claims.email,
        source=source,
        evidence=f"{source}:{secrets.token_hex(16)}",  # every request counts: each is its own
        at=time.time(),
        list=claims.list_name,
        issue=claims.issue,
    )
    try:
        await run_in_threadpool(endpoint.store.apply, event, endpoint.policy)
    except StoreError as exc:
        log.error("the suppression store did not answer: %s", exc)
        return (
            pages.text("try again later", status=503) if one_click else pages.unavailable(project)
        )
    if one_click:
        return pages.text("unsubscribed")
    if kind == "resubscribe":
        return pages.resubscribed(project, claims.list_name, claims.email)
    return pages.unsubscribed(project, claims.list_name, claims.email)
