"""The relays' event webhooks: SES (via SNS), Postmark, Mailgun and SendGrid.

Each provider module verifies a request and parses it into ``ReturnEvent``s (a pure
function, ``parse``); ``routes`` answers the HTTP side and applies the events to the
suppression store. A request that fails verification changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from dispatch_mail.endpoint.context import Endpoint


def webhook_routes(endpoint: Endpoint) -> list[BaseRoute]:
    """``POST <webhook_path>/<provider>`` for ses, postmark, mailgun and sendgrid."""
    from dispatch_mail.endpoint.webhooks.routes import build_routes

    return build_routes(endpoint)
