"""A rendered issue → a standards-conforming RFC 5322 / MIME message (pure: no I/O).

multipart/alternative with text/plain first and text/html last (clients show
the last part they understand), both UTF-8 quoted-printable so that no line
passes 76 octets; non-ASCII headers as RFC 2047 encoded-words, never the
address itself.
"""

from __future__ import annotations

import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from datetime import datetime, timezone

from .config import Project
from .errors import ContentError, Problem
from .model import Issue
from .render import Rendered
from .render.context import slugify, web_unsubscribe_url


def list_id(project: Project) -> str:
    """RFC 2919 List-Id: the newsletter's name and a stable id under the sender's domain."""
    domain = project.sender.address.rsplit("@", 1)[1]
    return f"{project.name} <{slugify(project.name)}.{domain}>"


def _address(name: str, address: str) -> Address:
    local, domain = address.rsplit("@", 1)
    return Address(display_name=name, username=local, domain=domain)


def check_header(name: str, value: str) -> None:
    """Refuse CR/LF in a header value: it would let content forge headers."""
    if re.search(r"[\r\n]", value):
        raise ContentError([Problem("(message)", 0, 0, name, "header values may not contain CR or LF")])


def build_message(
    project: Project,
    issue: Issue,
    rendered: Rendered,
    *,
    to: tuple[str, str] | None = None,
    subject_prefix: str = "",
    message_id: str | None = None,
    date: datetime | None = None,
    extra_headers: dict[str, str] | None = None,
) -> EmailMessage:
    """The whole message; ``to`` is (display name, address), the sender's own when omitted."""
    domain = project.sender.address.rsplit("@", 1)[1]
    subject = f"{subject_prefix} {issue.subject}".strip() if subject_prefix else issue.subject
    msg = EmailMessage(policy=SMTP)
    for name, value in (("Subject", subject), *(extra_headers or {}).items()):
        check_header(name, value)
    msg["From"] = _address(project.sender.name, project.sender.address)
    to_name, to_addr = to or (project.name, project.sender.address)
    msg["To"] = _address(to_name, to_addr)
    if project.sender.reply_to:
        msg["Reply-To"] = project.sender.reply_to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime.now(timezone.utc))
    msg["Message-ID"] = message_id or make_msgid(idstring=issue.slug, domain=domain)
    msg["List-Id"] = list_id(project)
    if project.archive_url:
        msg["List-Archive"] = f"<{project.archive_url}>"
    for name, value in (extra_headers or {}).items():
        msg[name] = value
    if "List-Unsubscribe" not in msg:
        msg["List-Unsubscribe"] = f"<{web_unsubscribe_url(project)}>"
    msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg


def message_bytes(msg: EmailMessage) -> bytes:
    return msg.as_bytes(policy=SMTP)
