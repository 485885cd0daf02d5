"""Render once, substitute per recipient: the bytes of one message per recipient, fast.

The issue is rendered with merge tokens (letters and digits only), the header
fields that never change are encoded once, and each recipient costs a few
string replacements and a C-level quoted-printable encoding. A stdlib
EmailMessage per recipient would cap a send at a few hundred messages a
second (docs/performance.md).

What one recipient's own data makes unsendable (an address that is none, a
List-Unsubscribe line too long to send) raises RecipientDataError from
``render``, so that recipient alone fails; what every message would share
raises ContentError when the issue is prepared, before anyone is sent to.
"""

from __future__ import annotations

import binascii
import re
import secrets
from html import escape

from dispatch_mail.errors import ContentError, RecipientDataError
from dispatch_mail.mail.dkim import DkimSigner, PendingSignature
from dispatch_mail.mail.headers import (
    Mailbox,
    encode_fields,
    header_text,
    issue_fields,
    list_id,
    recipient_fields,
)
from dispatch_mail.mail.tokens import TokenKeys
from dispatch_mail.mail.verp import envelope_sender
from dispatch_mail.project.issue import Issue
from dispatch_mail.project.schema import validate_email
from dispatch_mail.project.settings import Project, SmtpProfile
from dispatch_mail.render import Rendered
from dispatch_mail.render.context import MERGE_FIELDS, greeting_for

PREAMBLE = b"This is a multipart message in MIME format.\r\n\r\n"
PROBE_DATE = "Thu, 01 Jan 1970 00:00:00 +0000"


class PersonalMessages:
    """One issue, rendered with merge tokens, → each recipient's complete message (CRLF bytes)."""

    def __init__(
        self,
        project: Project,
        issue: Issue,
        rendered: Rendered,
        *,
        keys: TokenKeys,
        list_name: str = "test",
        test: bool = False,
        subject_prefix: str = "",
        dkim_signer: DkimSigner | None = None,
        profile: SmtpProfile | None = None,
    ):
        self.project, self.issue = project, issue
        self.keys = keys
        self.profile = profile  # the relay's: its headers and its return path
        self.sender = project.sender.address
        self.return_path = (profile.return_path if profile else None) or project.return_path
        self.list_id = list_id(project)
        self.dkim = dkim_signer
        self.boundary = f"=_dispatch_{secrets.token_hex(12)}"
        b = self.boundary.encode("ascii")
        qp = b'; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        self._text_start = PREAMBLE + b"--" + b + b"\r\nContent-Type: text/plain" + qp
        self._html_start = b"\r\n--" + b + b"\r\nContent-Type: text/html" + qp
        self._end = b"\r\n--" + b + b"--\r\n"
        self.tokens = dict(rendered.merge_tokens)  # this render's own placeholders
        if tuple(self.tokens) != MERGE_FIELDS:
            raise ValueError("PersonalMessages needs a personal render, with merge tokens")
        self.text = _Segments(rendered.text, self.tokens, html=False)
        self.html = _Segments(rendered.html, self.tokens, html=True)
        self._subject_prefix, self._test = subject_prefix, test
        self.list_name = list_name  # encodes the shared fields
        # the shortest recipient: if even their fields cannot be sent, the project is at fault
        probe = "x@example.org"
        token = self.unsubscribe_token(probe)
        self._recipient_head(probe, "", "<x@example.org>", PROBE_DATE, token)

    @property
    def list_name(self) -> str:
        """The list the tokens, the VERP addresses and Feedback-ID name ('test' for test sends)."""
        return self._list_name

    @list_name.setter
    def list_name(self, name: str) -> None:
        self._list_name = name
        shared = issue_fields(
            self.project,
            self.issue,
            subject_prefix=self._subject_prefix,
            test=self._test,
            one_click=True,
            list_name=name,
            profile_headers=self.profile.headers if self.profile else None,
        )
        content_type = f'Content-Type: multipart/alternative;\r\n boundary="{self.boundary}"\r\n'
        self._head = encode_fields(shared) + content_type.encode("ascii")  # folded: 78 columns

    def unsubscribe_token(self, email: str) -> str:
        """The opaque token that names this recipient, the list and the issue (mail/tokens.py)."""
        return self.keys.seal(self.list_name, self.issue.slug, email)

    def unsubscribe_url(self, email: str, token: str | None = None) -> str:
        token = token if token is not None else self.unsubscribe_token(email)
        return self.project.footer.unsubscribe_url.replace("{token}", token)

    def envelope_sender(self, row: int) -> str:
        """MAIL FROM of the journal's row ``row``: the return path, VERP when it has '{token}'.

        The profile's return path, when it has one, else the project's, else From.
        """
        return envelope_sender(
            self.return_path,
            self.sender,
            self.keys.secret,
            self.issue.slug,
            self.list_name,
            row,
        )

    def merge_values(
        self, email: str, fields: dict[str, str], token: str | None = None
    ) -> dict[str, str]:
        """One recipient's value of every name in MERGE_FIELDS."""
        return {
            "unsubscribe_url": self.unsubscribe_url(email, token),
            "greeting": greeting_for(self.issue, header_text(fields.get("name", ""))),
            "email": email,
        }

    def render(self, email: str, fields: dict[str, str], message_id: str, date: str) -> bytes:
        """The complete message for one recipient, CRLF line endings, ready for DATA.

        Raises RecipientDataError, with the reason, when this recipient's data
        cannot make a message that a relay would take.
        """
        head, body = self._parts(email, fields, message_id, date)
        message = b"".join((head, b"\r\n", *body))
        if self.dkim is not None:
            message = self.dkim.sign_parts(head, body) + message
        return message

    def render_unsigned(
        self, email: str, fields: dict[str, str], message_id: str, date: str
    ) -> tuple[bytes, list[PendingSignature]]:
        """``render`` but for the RSA: the message, and the signatures still to be made.

        The send engine has the RSA done in a process of its own (delivery/signing.py)
        and puts ``dkim.finish(pending, signatures)`` in front of the message.
        """
        head, body = self._parts(email, fields, message_id, date)
        pending = self.dkim.prepare(head, body) if self.dkim is not None else []
        return b"".join((head, b"\r\n", *body)), pending

    def _parts(
        self, email: str, fields: dict[str, str], message_id: str, date: str
    ) -> tuple[bytes, list[bytes]]:
        """The header block and the body in pieces: the issue's pieces are the same objects
        in every message, which lets the signer canonicalize them once."""
        problem = validate_email(email)
        if problem is not None:
            raise RecipientDataError(f"not a usable address: {problem}", recipient=email)
        token = self.unsubscribe_token(email)
        values = self.merge_values(email, fields, token)
        name = fields.get("name", "")
        try:
            head = self._recipient_head(email, name, message_id, date, token)
        except ContentError as exc:
            reason = "; ".join(f"{p.key}: {p.message}" for p in exc.problems)
            raise RecipientDataError(reason, recipient=email) from None
        return head + self._head, [
            self._text_start,
            *self.text.parts(values),
            self._html_start,
            *self.html.parts(values),
            self._end,
        ]

    def _recipient_head(
        self, email: str, name: str, message_id: str, date: str, token: str
    ) -> bytes:
        """The header lines that name the recipient; ContentError when one cannot be sent."""
        personal = recipient_fields(
            self.project,
            Mailbox(name, email),
            date=date,
            message_id=message_id,
            unsubscribe_url=self.unsubscribe_url(email, token),
            unsubscribe_token=token,
        )
        return encode_fields(personal)


def _qp(text: str) -> bytes:
    # b2a_qp soft-wraps at 76 and escapes '=', trailing blanks and non-ASCII; then CRLF for SMTP
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


def _qp_piece(text: str) -> bytes:
    """Encode a piece that is followed by more: end it with a soft line break."""
    if not text:
        return b""
    return _qp(text) + b"=\r\n"


class _Segments:
    """A body split at its merge tokens, each static piece quoted-printable encoded once.

    Every piece ends with a soft line break ("=" CRLF), so the next piece starts
    at column 0 whatever the substituted value's length: the decoded body is
    exactly the substituted text and no encoded line passes 76 octets.
    """

    def __init__(self, text: str, tokens: dict[str, str], *, html: bool):
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

    def parts(self, values: dict[str, str]) -> list[bytes]:
        """The encoded body in pieces: the static ones are the same objects every time."""
        out: list[bytes] = []
        for piece, name in zip(self.pieces, self.names, strict=True):
            value = values[name]
            out.append(piece)
            out.append(_qp_piece(escape(value) if self.html else value))
        out.append(self.tail)
        return out
