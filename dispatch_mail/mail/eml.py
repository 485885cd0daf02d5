"""A rendered issue → the built email.eml, an RFC 5322 / MIME message (pure: no I/O).

multipart/alternative with text/plain first and text/html last (clients show
the last part they understand), both UTF-8 quoted-printable so that no line
passes 76 octets; the header fields come from ``headers`` like every sent
copy's, and the stdlib encodes them (RFC 2047 words, never the address itself).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from dispatch_mail.mail.headers import (
    HeaderValue,
    ListId,
    Mailbox,
    UriList,
    issue_fields,
    make_message_id,
    recipient_fields,
)
from dispatch_mail.project.issue import Issue
from dispatch_mail.project.settings import Project
from dispatch_mail.render import Rendered
from dispatch_mail.render.context import web_unsubscribe_url


def build_message(project: Project, issue: Issue, rendered: Rendered) -> EmailMessage:
    """The whole message, addressed to the sender's own mailbox, with the web unsubscribe link."""
    to = Mailbox(project.name, project.sender.address)
    fields = recipient_fields(
        project,
        to,
        date=format_datetime(datetime.now(UTC)),
        message_id=make_message_id(issue.slug, "build", 0, project.sender.domain),
        unsubscribe_url=web_unsubscribe_url(project),
    )
    msg = EmailMessage(policy=SMTP)
    for name, value in (*fields, *issue_fields(project, issue)):
        msg[name] = _stdlib_value(value)
    msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg


def message_bytes(msg: EmailMessage) -> bytes:
    return msg.as_bytes(policy=SMTP)


def _stdlib_value(value: HeaderValue) -> str | Address:
    """What EmailMessage takes for a field value; its policy does the encoding."""
    if isinstance(value, Mailbox):
        local, domain = value.address.rsplit("@", 1)
        return Address(display_name=value.name, username=local, domain=domain)
    if isinstance(value, UriList):
        return ", ".join(f"<{uri}>" for uri in value.uris)
    if isinstance(value, ListId):
        return str(value)
    return value
