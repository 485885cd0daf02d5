"""A rendered issue → a standards-conforming RFC 5322 / MIME message (pure: no I/O).

multipart/alternative with text/plain first and text/html last (clients show
the last part they understand), both UTF-8 quoted-printable so that no line
passes 76 octets; non-ASCII headers as RFC 2047 encoded-words, never the
address itself.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from dispatch_mail.errors import ContentError, Problem
from dispatch_mail.project.issue import Issue
from dispatch_mail.project.settings import Project
from dispatch_mail.render import Rendered
from dispatch_mail.render.context import slugify, web_unsubscribe_url


def list_id(project: Project) -> str:
    """RFC 2919 List-Id: the newsletter's name and a stable id under the sender's domain."""
    domain = project.sender.domain
    return f"{project.name} <{slugify(project.name)}.{domain}>"


def _address(name: str, address: str) -> Address:
    local, domain = address.rsplit("@", 1)
    return Address(display_name=name, username=local, domain=domain)


def check_header(name: str, value: str) -> None:
    """Refuse CR/LF in a header value: it would let content forge headers."""
    if re.search(r"[\r\n]", value):
        raise ContentError(
            [Problem("(message)", 0, 0, name, "header values may not contain CR or LF")]
        )


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
    domain = project.sender.domain
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
    msg["Date"] = format_datetime(date or datetime.now(UTC))
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


# --------------------------------------------------------------------------- per recipient
class PersonalMessages:
    """Render once, substitute per recipient: the bytes of one message per recipient, fast.

    The issue is rendered with merge tokens (letters and digits only), the
    headers that never change are encoded once, and each recipient costs three
    string replacements and a C-level quoted-printable encoding. A stdlib
    EmailMessage per recipient would cap a send at a few hundred messages a
    second (docs/performance.md).
    """

    def __init__(
        self,
        project: Project,
        issue: Issue,
        rendered: Rendered,
        *,
        secret: bytes,
        test: bool = False,
        subject_prefix: str = "",
        dkim_signer: DkimSigner | None = None,
    ):
        from email.header import Header
        from email.utils import formataddr

        from dispatch_mail.render.context import merge_token

        self.project, self.issue = project, issue
        self.secret = secret
        self.list_id = list_id(project)
        self.dkim = dkim_signer
        self.boundary = f"=_dispatch_{secrets_hex(12)}"
        self.tokens = {name: merge_token(name) for name in ("unsubscribe_url", "greeting", "email")}
        self.text = _Segments(rendered.text, self.tokens, html=False)
        self.html = _Segments(rendered.html, self.tokens, html=True)
        subject = f"{subject_prefix} {issue.subject}".strip() if subject_prefix else issue.subject
        check_header("Subject", subject)
        self.sender = project.sender.address
        head = [
            ("From", formataddr((project.sender.name, project.sender.address), charset="utf-8")),
            ("Subject", _encode_header(subject)),
            ("MIME-Version", "1.0"),
            ("List-Id", _encode_header(self.list_id)),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ]
        if project.sender.reply_to:
            head.append(("Reply-To", project.sender.reply_to))
        if project.archive_url:
            head.append(("List-Archive", f"<{project.archive_url}>"))
        if test:
            head.append(("X-Dispatch-Test", "yes"))
        head.append(
            ("Content-Type", f'multipart/alternative;\r\n boundary="{self.boundary}"')
        )  # folded: 78 columns
        self._head = "".join(f"{k}: {v}\r\n" for k, v in head).encode("ascii")
        self._formataddr = formataddr
        self._Header = Header

    def unsubscribe_url(self, email: str) -> str:
        from dispatch_mail.mail.tokens import make_token

        token = make_token(self.secret, self.list_id, email)
        return self.project.footer.unsubscribe_url.replace("{token}", token)

    def render(self, email: str, fields: dict[str, str], message_id: str, date: str) -> bytes:
        """The complete message for one recipient, CRLF line endings, ready for DATA."""
        from dispatch_mail.render.context import greeting_for

        values = {
            "unsubscribe_url": self.unsubscribe_url(email),
            "greeting": greeting_for(self.issue, fields.get("name", "")),
            "email": email,
        }
        name = " ".join(fields.get("name", "").split())
        check_header("To", f"{name} <{email}>")
        to = _to_header(name, email)  # may be folded: CRLF + space, on purpose
        unsub = f"<{values['unsubscribe_url']}>"
        if self.project.footer.unsubscribe_mailto:
            unsub += f",\r\n <mailto:{self.project.footer.unsubscribe_mailto}?subject=unsubscribe>"
        personal = f"To: {to}\r\nDate: {date}\r\nMessage-ID: {message_id}\r\nList-Unsubscribe: {unsub}\r\n".encode(
            "ascii"
        )
        b = self.boundary
        body = b"".join(
            (
                b"This is a multipart message in MIME format.\r\n\r\n",
                f'--{b}\r\nContent-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'.encode(),
                self.text.encode(values),
                f'\r\n--{b}\r\nContent-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'.encode(),
                self.html.encode(values),
                f"\r\n--{b}--\r\n".encode(),
            )
        )
        message = personal + self._head + b"\r\n" + body
        if self.dkim is not None:
            message = self.dkim.sign(message) + message
        return message


def secrets_hex(n: int) -> str:
    import secrets

    return secrets.token_hex(n)


def _to_header(name: str, email: str) -> str:
    """The To value: an ASCII name quoted as needed, any other as RFC 2047 words folded at 78 columns.

    formataddr makes one encoded-word of any length, so a long non-ASCII name
    (500 characters are allowed) would give a To line past RFC 5322's 998.
    """
    from email.header import Header
    from email.utils import formataddr

    if not name:
        return email
    if name.isascii():
        return formataddr((name, email))
    words = Header(name, "utf-8", maxlinelen=76, header_name="To").encode(linesep="\r\n")
    last = words.rsplit("\r\n", 1)[-1]
    fold = (
        "\r\n "
        if len(last) + len(email) + 3 > 78 - (len("To: ") if "\r\n" not in words else 0)
        else " "
    )
    return f"{words}{fold}<{email}>"


def _encode_header(value: str) -> str:
    """RFC 2047 for non-ASCII (folded at 76 columns), the value itself otherwise."""
    if value.isascii():
        return value
    from email.header import Header

    return Header(value, "utf-8", maxlinelen=76).encode(linesep="\r\n")


def _qp(text: str) -> bytes:
    import binascii

    # b2a_qp soft-wraps at 76 and escapes '=', trailing blanks and non-ASCII; then CRLF for SMTP
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


class _Segments:
    """A body split at its merge tokens, each static piece quoted-printable encoded once.

    Every piece ends with a soft line break ("=" CRLF), so the next piece starts
    at column 0 whatever the substituted value's length: the decoded body is
    exactly the substituted text and no encoded line passes 76 octets.
    """

    def __init__(self, text: str, tokens: dict[str, str], *, html: bool):
        import re

        self.html = html
        by_token = {token: name for name, token in tokens.items()}
        pattern = re.compile("|".join(re.escape(t) for t in by_token))
        self.pieces: list[bytes] = []
        self.names: list[str] = []
        pos = 0
        text = text.replace("\r\n", "\n")
        for match in pattern.finditer(text):
            self.pieces.append(_qp_piece(text[pos : match.start()]))
            self.names.append(by_token[match.group(0)])
            pos = match.end()
        self.tail = _qp(text[pos:])

    def encode(self, values: dict[str, str]) -> bytes:
        from html import escape

        out: list[bytes] = []
        for piece, name in zip(self.pieces, self.names, strict=True):
            value = values[name]
            out.append(piece)
            out.append(_qp_piece(escape(value) if self.html else value))
        out.append(self.tail)
        return b"".join(out)


def _qp_piece(text: str) -> bytes:
    """Encode a piece that is followed by more: end it with a soft line break."""
    if not text:
        return b""
    return _qp(text) + b"=\r\n"


class DkimSigner:
    """DKIM with dkimpy; List-Unsubscribe and List-Unsubscribe-Post are always signed (RFC 8058)."""

    HEADERS = (
        b"from",
        b"to",
        b"subject",
        b"date",
        b"message-id",
        b"mime-version",
        b"content-type",
        b"list-id",
        b"list-unsubscribe",
        b"list-unsubscribe-post",
        b"reply-to",
    )

    def __init__(self, domain: str, selector: str, private_key: bytes):
        try:
            import dkim  # noqa: F401
        except ImportError:
            from dispatch_mail.errors import UsageError

            raise UsageError(
                "DKIM signing needs dkimpy: pip install 'dispatch-mail[dkim]'"
            ) from None
        self.domain, self.selector, self._key = domain.encode(), selector.encode(), private_key
        try:  # a key that cannot sign must stop the send before it starts, not in every worker
            self.sign(b"From: check@example.org\r\nSubject: key check\r\n\r\nkey check\r\n")
        except Exception as exc:  # noqa: BLE001 (dkimpy raises several types; all mean a bad key)
            from dispatch_mail.errors import UsageError

            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise UsageError(
                f"the DKIM key cannot sign ({reason}); check key_file or DISPATCH_DKIM_KEY_FILE"
            ) from None

    def sign(self, message: bytes) -> bytes:
        import dkim

        present = {
            line.split(b":", 1)[0].strip().lower()
            for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
            if b":" in line
        }
        include = [h for h in self.HEADERS if h in present]
        return dkim.sign(
            message, self.selector, self.domain, self._key, include_headers=include, linesep=b"\r\n"
        )

    def __repr__(self) -> str:  # never show the key
        return f"DkimSigner(domain={self.domain!r}, selector={self.selector!r})"
