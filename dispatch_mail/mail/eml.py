"""A rendered issue → the built email.eml, an RFC 5322 / MIME message (pure: no I/O).

multipart/alternative with text/plain first and text/html last (clients show
the last part they understand), both UTF-8 quoted-printable so that no line
passes 76 octets; the header fields come from ``headers`` and are encoded
there, as every sent copy's are: the stdlib's own encoder would decode a
name such as "=?utf-8?b?U3VwcG9ydA==?=" into "Support", and mangle a long
run of quotes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from dispatch_mail.mail.headers import (
    Mailbox,
    encode_values,
    issue_fields,
    make_message_id,
    recipient_fields,
)
from dispatch_mail.project.issue import Issue
from dispatch_mail.project.settings import Project
from dispatch_mail.render import Rendered
from dispatch_mail.render.context import web_unsubscribe_url

# the header lines are already folded (mail/headers.py): the stdlib writes them as they are
POLICY = SMTP.clone(refold_source="none")


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
    msg = EmailMessage(policy=POLICY)
    for name, value in encode_values((*fields, *issue_fields(project, issue))):
        msg.set_raw(name, value)
    msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg


def message_bytes(msg: EmailMessage) -> bytes:
    return msg.as_bytes(policy=POLICY)
