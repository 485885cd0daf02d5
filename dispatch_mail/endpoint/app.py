"""The ASGI app of `dispatch serve`, importable by any ASGI server.

``create_app(endpoint)`` builds it from an ``Endpoint``; ``from_environment`` is a
factory for servers that start it themselves::

    uvicorn --factory dispatch_mail.endpoint.app:from_environment --no-access-log

It serves the unsubscribe URL's path (whatever Host it is reached by, as behind a
reverse proxy), the relays' webhooks, and ``/healthz``. Its own log line per
request replaces the token by a label: a token is a credential to unsubscribe
someone, so an access log that shows it would be a list of them.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatch_mail.endpoint import pages
from dispatch_mail.endpoint.context import Endpoint
from dispatch_mail.endpoint.incoming import TokenPlace
from dispatch_mail.endpoint.unsubscribe import unsubscribe_route
from dispatch_mail.errors import DispatchError, StoreError

log = logging.getLogger("dispatch_mail.endpoint")
HEALTH_PATH = "/healthz"


def create_app(endpoint: Endpoint) -> Starlette:
    """The app: unsubscribe, webhooks, health; the store is closed when the app shuts down."""
    from dispatch_mail.endpoint.webhooks import webhook_routes

    place = TokenPlace.of(endpoint.project.footer.unsubscribe_url)

    async def health(request: Request) -> Response:
        try:
            await run_in_threadpool(endpoint.store.seen, "healthz")
        except StoreError as exc:
            log.error("health check: the suppression store did not answer: %s", exc)
            return pages.text("store unavailable", status=503)
        return pages.text("ok")

    async def refused(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
        reason = {404: "not found", 405: "method not allowed"}.get(code, "error")
        return pages.text(reason, status=code, headers=headers)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            endpoint.store.close()

    routes: list[BaseRoute] = [
        unsubscribe_route(endpoint, place),
        Route(HEALTH_PATH, health, methods=["GET"]),
        *webhook_routes(endpoint),
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={404: refused, 405: refused}
    )
    app.add_middleware(RequestLog, place=place)
    return app


class RequestLog:
    """One log line per request, with no token in it (and no query string but a label)."""

    def __init__(self, app: ASGIApp, place: TokenPlace) -> None:
        self.app, self.place = app, place

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.monotonic(), 0

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            log.info(
                "%s %s %s %.0f ms",
                scope.get("method", "?"),
                self.place.shown(scope),
                status or 500,
                (time.monotonic() - started) * 1000,
            )


def from_environment() -> Starlette:
    """The app for ``uvicorn --factory``: the project from DISPATCH_PROJECT or the working folder.

    The secrets, the store and the webhooks' settings come from the environment,
    as for `dispatch serve`. An error stops the server with one line, no traceback.
    """
    from dispatch_mail.endpoint.startup import open_endpoint, project_from_environment

    try:
        return create_app(open_endpoint(project_from_environment()))
    except DispatchError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(exc.exit_code) from None
