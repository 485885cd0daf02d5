"""The header fields of an issue's messages: one source for the built .eml and every sent copy.

The fields are values, not bytes: the .eml hands them to the stdlib's
EmailMessage, and the per-recipient path encodes them itself (fast, see
``encode_fields``), so the two cannot drift apart in what they say.
Every value passes ``check_header`` here, and nowhere else need it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr
from functools import lru_cache

from dispatch_mail.errors import ContentError, Problem
from dispatch_mail.project.issue import Issue
from dispatch_mail.project.settings import Project
from dispatch_mail.render.context import slugify


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A display name and an address: the name may need RFC 2047 words, the address never."""

    name: str
    address: str


@dataclass(frozen=True, slots=True)
class UriList:
    """An RFC 2369 list header's URIs, each in angle brackets, comma-separated."""

    uris: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ListId:
    """RFC 2919: the list's name (a phrase, RFC 2047 words if need be) and its literal id."""

    name: str
    ident: str

    def __str__(self) -> str:
        return f"{self.name} <{self.ident}>"


HeaderValue = str | Mailbox | UriList | ListId
Field = tuple[str, HeaderValue]

# RFC 8058 one-click: only where List-Unsubscribe names the recipient (a personal token)
ONE_CLICK: Field = ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
TEST_MARK: Field = ("X-Dispatch-Test", "yes")


def check_header(name: str, value: str) -> None:
    """Refuse CR/LF in a header value: it would let content forge headers."""
    if "\r" in value or "\n" in value:
        raise ContentError(
            [Problem("(message)", 0, 0, name, "header values may not contain CR or LF")]
        )


def _field(name: str, value: HeaderValue) -> Field:
    if isinstance(value, Mailbox):
        check_header(name, f"{value.name} <{value.address}>")
    elif isinstance(value, UriList):
        check_header(name, " ".join(value.uris))
    elif isinstance(value, ListId):
        check_header(name, str(value))
    else:
        check_header(name, value)
    return name, value


# ------------------------------------------------------------------ derived identities
def list_id(project: Project) -> str:
    """RFC 2919 List-Id: the newsletter's name and a stable id under the sender's domain.

    The unsubscribe tokens carry this text, so the endpoint knows which list.
    """
    return str(_list_id(project))


def _list_id(project: Project) -> ListId:
    return ListId(project.name, f"{slugify(project.name)}.{project.sender.domain}")


@lru_cache(maxsize=32)
def message_id_part(slug: str) -> str:
    """The slug as Message-ID text: ASCII letters, digits, '-', '_' (a slug may be 'été 2026')."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", slug).strip("-") or "issue"


def make_message_id(slug: str, kind: str, n: int, domain: str) -> str:
    """``<slug.kind.n.random@domain>``: which issue and which run, unique without a clock."""
    return f"<{message_id_part(slug)}.{kind}.{n}.{secrets.token_hex(6)}@{domain}>"


# ------------------------------------------------------------------ the fields
def issue_fields(
    project: Project,
    issue: Issue,
    *,
    subject_prefix: str = "",
    test: bool = False,
    one_click: bool = False,
) -> list[Field]:
    """The fields every copy of the issue shares, in order.

    ``one_click``: the List-Unsubscribe URL carries each recipient's token, so
    RFC 8058's POST can work; the built .eml's web link names nobody.
    """
    subject = f"{subject_prefix} {issue.subject}".strip() if subject_prefix else issue.subject
    fields = [
        _field("From", Mailbox(project.sender.name, project.sender.address)),
        _field("Subject", subject),
        _field("MIME-Version", "1.0"),
        _field("List-Id", _list_id(project)),
    ]
    if one_click:
        fields.append(ONE_CLICK)
    if project.sender.reply_to:
        fields.append(_field("Reply-To", project.sender.reply_to))
    if project.archive_url:
        fields.append(_field("List-Archive", f"<{project.archive_url}>"))
    if test:
        fields.append(TEST_MARK)
    return fields


def recipient_fields(
    project: Project, to: Mailbox, *, date: str, message_id: str, unsubscribe_url: str
) -> list[Field]:
    """The fields of one copy: who it is for, when, its id and its unsubscribe links, in order.

    The display name becomes one line (a CSV field may hold line breaks).
    """
    uris = [unsubscribe_url]
    if project.footer.unsubscribe_mailto:
        uris.append(f"mailto:{project.footer.unsubscribe_mailto}?subject=unsubscribe")
    return [
        _field("To", Mailbox(" ".join(to.name.split()), to.address)),
        _field("Date", date),
        _field("Message-ID", message_id),
        _field("List-Unsubscribe", UriList(tuple(uris))),
    ]


# ------------------------------------------------------------------ the wire form
def encode_fields(fields: Iterable[Field]) -> bytes:
    """Header lines, CRLF-terminated and ASCII: RFC 2047 words where needed, folded at 78."""
    return "".join(f"{name}: {_encode(name, value)}\r\n" for name, value in fields).encode("ascii")


def _encode(name: str, value: HeaderValue) -> str:
    if isinstance(value, Mailbox):
        return _encode_mailbox(name, value)
    if isinstance(value, UriList):
        return ",\r\n ".join(f"<{uri}>" for uri in value.uris)
    if isinstance(value, ListId):
        if value.name.isascii():
            return str(value)
        return _encode_named(name, value.name, f"<{value.ident}>")
    return _encode_text(value)


def _encode_mailbox(name: str, mailbox: Mailbox) -> str:
    """An ASCII display name quoted as needed, any other as RFC 2047 words folded at 78 columns.

    formataddr makes one encoded-word of any length, so a long non-ASCII name
    (500 characters are allowed) would give a line past RFC 5322's 998.
    """
    display, address = mailbox.name, mailbox.address
    if not display:
        return address
    if display.isascii():
        return formataddr((display, address))
    return _encode_named(name, display, f"<{address}>")


def _encode_named(name: str, phrase: str, bracketed: str) -> str:
    """A non-ASCII phrase as RFC 2047 words, then the literal ``<...>``: never inside a word."""
    words = Header(phrase, "utf-8", maxlinelen=76, header_name=name).encode(linesep="\r\n")
    last = words.rsplit("\r\n", 1)[-1]
    room = 78 - (len(name) + 2 if "\r\n" not in words else 0)
    fold = "\r\n " if len(last) + len(bracketed) + 1 > room else " "
    return f"{words}{fold}{bracketed}"


def _encode_text(value: str) -> str:
    """RFC 2047 for non-ASCII (folded at 76 columns), the value itself otherwise."""
    if value.isascii():
        return value
    return Header(value, "utf-8", maxlinelen=76).encode(linesep="\r\n")
