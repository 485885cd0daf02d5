"""The header fields of an issue's messages: one source for the built .eml and every sent copy.

The fields are values, and ``encode_fields`` alone turns them into header
lines, for the .eml and for each recipient's copy, so the two cannot drift
apart. Every value passes ``check_header``; text from outside (a subscriber's
name) passes ``header_text`` first. Whatever a name holds, every line stays
within RFC 5322's 998 octets, and within 78 but where an address or a URL,
which cannot be folded, is longer by itself.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.charset import Charset
from functools import lru_cache

from dispatch_mail.errors import ContentError, Problem
from dispatch_mail.project.issue import Issue
from dispatch_mail.project.relay_checks import header_problems
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
PRECEDENCE_BULK: Field = ("Precedence", "bulk")
_FEEDBACK_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


DISPLAY_NAME_MAX = 200  # characters of a recipient's display name; the rest is cut off
LINE_MAX = 998  # RFC 5322 2.1.1: octets in a line, CRLF excluded (relays answer "Line too long")
FOLD_AT = 78  # RFC 5322 2.1.1: the width a line should keep to

# C0 and C1 controls and DEL (ESC and BEL reach terminals and some clients as such), the line
# and paragraph separators, the bidi embeddings, overrides and isolates (they reorder what a
# client shows: "moc.lapyap" shown as "paypal.com") and lone surrogates (bytes that were not UTF-8)
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # but tab; CR and LF are caught first
# RFC 5322 specials: a phrase that holds one is a quoted-string (email.utils.formataddr's set)
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
_AFTER_SPACE = re.compile("(?<= )")
_UTF8 = Charset("utf-8")  # its header encoding is the shorter of base64 and Q for each word
# so that a word fits a line after "List-Id: ": 39 bytes are 52 base64 characters, 64 encoded
ENCODED_BYTES = 39
WORD_MAX = 64


def header_text(text: str, limit: int | None = None) -> str:
    """Text from outside made fit for a header: one line, single spaces, none of ``_UNSAFE``.

    Runs of whitespace (a CSV field may hold line breaks or tabs) become one
    space; at most ``limit`` characters are kept.
    """
    clean = " ".join(text.split())
    if not clean.isprintable():  # printable text holds none of _UNSAFE (the common case: fast)
        clean = " ".join(_UNSAFE.sub("", clean).split())
    if limit is not None and len(clean) > limit:
        clean = clean[:limit].rstrip()
    return clean


def check_header(name: str, value: str) -> None:
    """Refuse CR, LF and other control characters in a header value: they could forge headers."""
    if "\r" in value or "\n" in value:
        raise ContentError(
            [Problem("(message)", 0, 0, name, "header values may not contain CR or LF")]
        )
    if _CONTROL.search(value):
        raise ContentError(
            [Problem("(message)", 0, 0, name, "header values may not contain control characters")]
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
    list_name: str | None = None,
    profile_headers: Mapping[str, str] | None = None,
) -> list[Field]:
    """The fields every copy of the issue shares, in order.

    ``one_click``: the List-Unsubscribe URL carries each recipient's token, so
    RFC 8058's POST can work; the built .eml's web link names nobody.
    ``list_name``: the list the copy goes to, for Feedback-ID ('test' for test
    sends; None for the built .eml, whose Feedback-ID then has no list part).
    ``profile_headers``: the SMTP profile's extra fields, known only at send time.
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
    if project.feedback_id is not None:
        fields.append(_field("Feedback-ID", feedback_id(project, issue, list_name)))
    if project.precedence_bulk:
        fields.append(PRECEDENCE_BULK)
    return fields + extra_fields(project.headers, profile_headers or {})


def feedback_id(project: Project, issue: Issue, list_name: str | None) -> str:
    """Gmail's ``campaign:list:kind:sender_id``; a part left out is dropped, not left empty.

    Each part is made safe: ASCII letters, digits, '.', '_' and '-' ('été 2026' →
    'ete-2026'), so no part holds the ':' that separates them.
    """
    settings = project.feedback_id
    assert settings is not None
    parts = [
        issue.slug if settings.campaign else None,
        list_name if settings.list else None,
        settings.kind,
        settings.sender_id,
    ]
    return ":".join(p for p in (_feedback_part(part) for part in parts if part) if p)


def _feedback_part(text: str) -> str:
    ascii_ = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _FEEDBACK_UNSAFE.sub("-", ascii_).strip("-")


def extra_fields(
    project_headers: Mapping[str, str], profile_headers: Mapping[str, str]
) -> list[Field]:
    """The owner's own fields: the project's, then the profile's (the same name: the profile's).

    Names are compared without case, as mail readers do. A name dispatch writes
    itself (From, List-*, …) or a value with CR/LF is refused: the loader has
    said where already; this is for a Project built in Python.
    """
    problems = [
        Problem("(settings)", 0, 0, f"{where}.{name}", message)
        for where, headers in (("headers", project_headers), ("smtp.headers", profile_headers))
        for name, _, message in header_problems(headers)
    ]
    if problems:
        raise ContentError(problems)
    merged: dict[str, tuple[str, str]] = {}
    for headers in (project_headers, profile_headers):
        for name, value in headers.items():
            merged[name.casefold()] = (name, value)
    return [_field(name, value) for name, value in merged.values()]


def recipient_fields(
    project: Project,
    to: Mailbox,
    *,
    date: str,
    message_id: str,
    unsubscribe_url: str,
    unsubscribe_token: str = "",
) -> list[Field]:
    """The fields of one copy: who it is for, when, its id and its unsubscribe links, in order.

    The display name is the recipient's own text, so it passes ``header_text``
    and is cut at DISPLAY_NAME_MAX characters: longer is no name a client shows.
    """
    uris = [unsubscribe_url]
    if project.footer.unsubscribe_mailto:
        # the same opaque token as the URL: `dispatch bounces` tells whom and which list it is
        subject = f"unsubscribe%20{unsubscribe_token}" if unsubscribe_token else "unsubscribe"
        uris.append(f"mailto:{project.footer.unsubscribe_mailto}?subject={subject}")
    return [
        _field("To", Mailbox(header_text(to.name, DISPLAY_NAME_MAX), to.address)),
        _field("Date", date),
        _field("Message-ID", message_id),
        _field("List-Unsubscribe", UriList(tuple(uris))),
    ]


# ------------------------------------------------------------------ the wire form
def encode_fields(fields: Iterable[Field]) -> bytes:
    """Header lines, CRLF-terminated and ASCII: RFC 2047 words where needed, folded at 78."""
    return "".join(f"{name}: {value}\r\n" for name, value in encode_values(fields)).encode("ascii")


def encode_values(fields: Iterable[Field]) -> list[tuple[str, str]]:
    """(name, the value as it goes after "name: ", folded with CRLF) for each field.

    A field that would still have a line past LINE_MAX (a URL is never folded)
    is refused with a ContentError naming it, rather than handed to a relay
    that answers "Line too long".
    """
    encoded = []
    for name, value in fields:
        text = _encode(name, value)
        longest = len(name) + 2 + len(text)
        if longest > LINE_MAX:
            longest = max(len(line) for line in f"{name}: {text}".split("\r\n"))
        if longest > LINE_MAX:
            problem = f"would be a header line of {longest:,} octets; mail allows {LINE_MAX}"
            raise ContentError([Problem("(message)", 0, 0, name, problem)])
        encoded.append((name, text))
    return encoded


def _encode(name: str, value: HeaderValue) -> str:
    if isinstance(value, Mailbox):
        return _encode_named(name, value.name, value.address) if value.name else value.address
    if isinstance(value, ListId):
        return _encode_named(name, value.name, value.ident)
    if isinstance(value, UriList):
        return ",\r\n ".join(f"<{uri}>" for uri in value.uris)
    return _encode_text(name, value)


def _encode_named(name: str, phrase: str, inner: str) -> str:
    """A phrase, then the literal ``<inner>`` (an address, a list id): never inside a word.

    A plain ASCII phrase that fits is written as RFC 5322 has it, quoted if
    need be; any other is folded word by word (``_words``).
    """
    bracketed = f"<{inner}>"
    if phrase.isascii() and "=?" not in phrase:
        quoted = _quoted(phrase)
        if len(name) + 2 + len(quoted) + 1 + len(bracketed) <= FOLD_AT:
            return f"{quoted} {bracketed}"
        if len(name) + 2 + len(quoted) <= FOLD_AT:
            return f"{quoted}\r\n {bracketed}"
    return _fold(len(name) + 2, [*_words(phrase, quote=True), bracketed])


def _encode_text(name: str, value: str) -> str:
    """Unstructured text (Subject): its words, folded at 78."""
    if value.isascii() and "=?" not in value:
        fits = len(name) + 2 + len(value) <= FOLD_AT
        return value if fits else _fold(len(name) + 2, value.split(" "))
    return _fold(len(name) + 2, _words(value, quote=False))


def _quoted(phrase: str) -> str:
    """An ASCII phrase as an atom sequence, or as a quoted-string when it holds a special."""
    if not _SPECIALS.search(phrase):
        return phrase
    return '"' + phrase.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _words(text: str, *, quote: bool) -> list[str]:
    """``text`` as the words of a header, each short enough for a line of its own.

    An ASCII word stays as it is (quoted in a phrase, if it holds a special);
    a run of any other words becomes RFC 2047 encoded-words, spaces and all, so
    that no space is lost between two of them (RFC 2047 6.2). Encoded too: a
    word holding "=?" (clients, and the stdlib, decode what looks like an
    encoded-word even in quotes: "=?utf-8?b?U3VwcG9ydA==?=" would show as
    "Support"; encoded, it shows as typed), and one that quoting would make
    too long to fold (a run of quotes doubles under escaping).
    """
    words: list[str] = []
    run: list[str] = []
    for word in text.split(" "):
        plain = _quoted(word) if quote else word
        as_is = word.isascii() and "=?" not in word and len(plain) <= WORD_MAX
        if not as_is or (run and not word):  # two spaces in a run stay in it
            run.append(word)
        else:
            words += _encoded_words(" ".join(run)) if run else []
            words.append(plain)
            run = []
    return words + (_encoded_words(" ".join(run)) if run else [])


def _encoded_words(text: str) -> list[str]:
    """UTF-8 encoded-words of at most ENCODED_BYTES each, cut after a space where there is one."""
    chunks = [""]
    for piece in _AFTER_SPACE.split(text):
        if len((chunks[-1] + piece).encode()) > ENCODED_BYTES:
            chunks.append("")
            for char in piece:
                if len((chunks[-1] + char).encode()) > ENCODED_BYTES:
                    chunks.append("")
                chunks[-1] += char
        else:
            chunks[-1] += piece
    return [_UTF8.header_encode(chunk) for chunk in chunks if chunk]


def _fold(width: int, words: list[str]) -> str:
    """The words joined by spaces, folded before one that would pass FOLD_AT.

    ``width``: what the first line already holds (``Name: ``). A word longer
    than a line (an address, a URL) keeps a line of its own; an empty word
    (two spaces in a row) is never where a fold goes.
    """
    out, line = words[0], width + len(words[0])
    for word in words[1:]:
        if word and line + 1 + len(word) > FOLD_AT:
            out, line = f"{out}\r\n {word}", 1 + len(word)
        else:
            out, line = f"{out} {word}", line + 1 + len(word)
    return out
