"""DKIM signatures for sent copies (RFC 6376), with the ``cryptography`` package's RSA.

Why our own signer rather than dkimpy's ``sign``: dkimpy does RSA in pure Python
(about 10 ms a signature for a 2048-bit key) and its relaxed body canonicalization
runs two regular expressions over the whole message (about 5 ms for 80 KB); that
is ~19 ms a message against ~0.3 ms for the rest of a send. Here the RSA is
OpenSSL's (~0.9 ms) and canonicalization is a few ``bytes.replace`` passes.
dkimpy stays the reference verifier of the tests, with Perl's Mail::DKIM.

- c= from settings, relaxed/relaxed by default: it survives relays that refold
  headers or strip trailing spaces.
- List-Unsubscribe and List-Unsubscribe-Post are always signed: RFC 8058 asks
  receivers to trust a one-click unsubscribe only when a signature covers both.
- Oversigning (RFC 6376 8.15): the fields in ``OVERSIGNED`` are listed in h= once
  more than they occur (once when absent), so a copy prepended in transit, or one
  added where there was none, breaks the signature.
- One DKIM-Signature per key: the main key and each rotation key, so a new
  selector can be published and used before the old one is withdrawn.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections import Counter
from typing import TYPE_CHECKING

from dispatch_mail.errors import UsageError
from dispatch_mail.mail.dkim_keys import (
    GOOD_RSA_BITS,
    MIN_RSA_BITS,
    SigningKey,
    alignment_warnings,
    load_key,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["GOOD_RSA_BITS", "MIN_RSA_BITS", "DkimSigner"]

_PROBE = b"From: check@example.org\r\nSubject: key check\r\n\r\nkey check\r\n"
_WSP = re.compile(rb"[ \t]+")
CANONICALIZATIONS = ("relaxed/relaxed", "relaxed/simple", "simple/simple", "simple/relaxed")


class DkimSigner:
    """Signs a message's bytes: ``sign`` returns the DKIM-Signature field(s) to prepend.

    ``warnings``: what is wrong but does not stop a send (a key under 2048 bits, a
    d= that does not align with the From domain), one line each, for the caller
    to show before sending.
    """

    # signed when present, in this order; the list is explicit on purpose
    HEADERS = (
        b"from",
        b"to",
        b"subject",
        b"date",
        b"message-id",
        b"reply-to",
        b"mime-version",
        b"content-type",
        b"list-id",
        b"list-archive",
        b"list-unsubscribe",
        b"list-unsubscribe-post",
        b"feedback-id",
        b"precedence",
    )
    OVERSIGNED = frozenset(
        {
            b"from",
            b"to",
            b"subject",
            b"date",
            b"message-id",
            b"list-unsubscribe",
            b"list-unsubscribe-post",
        }
    )
    # fields relays add or rewrite: signing them would only break the signature
    NEVER_SIGNED = frozenset(
        {b"return-path", b"received", b"dkim-signature", b"authentication-results", b"bcc"}
    )

    def __init__(
        self,
        domain: str,
        selector: str,
        private_key: bytes,
        *,
        canonicalization: str = "relaxed/relaxed",
        oversign: bool = True,
        rotation: Sequence[tuple[str, str, bytes]] = (),
        extra_headers: Iterable[str] = (),
        from_domain: str | None = None,
        envelope_domains: Sequence[str] = (),
    ):
        """``rotation``: (domain, selector, key bytes) of each further key, in settings order.

        ``from_domain`` turns on the alignment check; ``envelope_domains`` are the
        return path domains a send may use (SPF can align DMARC through them).
        """
        if canonicalization not in CANONICALIZATIONS:
            raise UsageError(
                f"dkim.canonicalization: {canonicalization!r} is not one of "
                f"{', '.join(CANONICALIZATIONS)}"
            )
        header_c, body_c = canonicalization.split("/")
        self._relaxed_header, self._relaxed_body = header_c == "relaxed", body_c == "relaxed"
        self._c = canonicalization.encode("ascii")
        self.oversign = oversign
        self.warnings: list[str] = []
        keys = [load_key(domain, selector, private_key, "dkim.key_file", self.warnings)]
        for i, (rot_domain, rot_selector, rot_key) in enumerate(rotation):
            field = f"dkim.rotation[{i}].key_file"
            keys.append(load_key(rot_domain, rot_selector, rot_key, field, self.warnings))
        self.keys: tuple[SigningKey, ...] = tuple(keys)
        extra = (name.strip().lower().encode("ascii") for name in extra_headers)
        self._headers = self.HEADERS + tuple(
            dict.fromkeys(n for n in extra if n not in self.HEADERS and n not in self.NEVER_SIGNED)
        )
        if from_domain is not None:
            self.warnings += alignment_warnings(self.keys, from_domain, envelope_domains)
        try:  # a key that cannot sign must stop the send before it starts, not in every worker
            self.sign(_PROBE)
        except Exception as exc:  # noqa: BLE001 (OpenSSL's errors vary; all mean a bad key)
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
            raise UsageError(
                f"the DKIM key cannot sign ({reason}); check key_file or DISPATCH_DKIM_KEY_FILE"
            ) from None

    @property
    def domain(self) -> bytes:
        """The main key's d= (kept for callers of the single-key signer)."""
        return self.keys[0].domain.encode("ascii")

    @property
    def selector(self) -> bytes:
        return self.keys[0].selector.encode("ascii")

    def signed_names(self, message: bytes) -> list[bytes]:
        """The h= list for ``message``: each field present as often as it occurs, plus one
        for the oversigned fields."""
        return self._names(_fields(message.partition(b"\r\n\r\n")[0]))

    def _names(self, fields: list[tuple[bytes, bytes]]) -> list[bytes]:
        counts = Counter(name for name, _ in fields)
        names: list[bytes] = []
        for name in self._headers:
            times = counts[name] + (1 if self.oversign and name in self.OVERSIGNED else 0)
            names += [name] * times
        return names

    def sign(self, message: bytes) -> bytes:
        """The DKIM-Signature field(s), CRLF-terminated, to put in front of ``message``.

        ``message`` has CRLF line endings (PersonalMessages.render's bytes).
        """
        head, _, body = message.partition(b"\r\n\r\n")
        fields = _fields(head)
        names = self._names(fields)
        if b"from" not in names:
            raise ValueError("a DKIM signature must cover From, and the message has none")
        canonical = relaxed_body(body) if self._relaxed_body else simple_body(body)
        body_hash = base64.b64encode(hashlib.sha256(canonical).digest())
        signed = self._signed_fields(fields, names)
        stamp = str(int(time.time())).encode("ascii")
        return b"".join(self._signature(key, signed, names, body_hash, stamp) for key in self.keys)

    def _signed_fields(self, fields: list[tuple[bytes, bytes]], names: list[bytes]) -> bytes:
        """The canonicalized fields h= selects, in h= order (each name from the bottom up)."""
        remaining: dict[bytes, list[bytes]] = {}
        for name, raw in fields:
            remaining.setdefault(name, []).append(raw)
        out = []
        for name in names:
            stack = remaining.get(name)
            if stack:  # an oversigned name past its last occurrence selects nothing
                out.append(self._canonical_field(stack.pop()))
        return b"".join(out)

    def _canonical_field(self, raw: bytes) -> bytes:
        if not self._relaxed_header:
            return raw + b"\r\n"
        name, _, value = raw.partition(b":")
        value = _WSP.sub(b" ", value.replace(b"\r\n", b"")).strip(b" ")
        return name.rstrip(b" \t").lower() + b":" + value + b"\r\n"

    def _signature(
        self, key: SigningKey, signed: bytes, names: list[bytes], body_hash: bytes, stamp: bytes
    ) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, utils

        tags = [
            b"v=1;",
            b"a=rsa-sha256;",
            b"c=" + self._c + b";",
            b"d=" + key.domain.encode("ascii") + b";",
            b"s=" + key.selector.encode("ascii") + b";",
            b"t=" + stamp + b";",
        ]
        h_pieces = [n + b":" for n in names]
        h_pieces[0] = b"h=" + h_pieces[0]
        h_pieces[-1] = h_pieces[-1][:-1] + b";"
        unsigned = _fold(b"DKIM-Signature:", tags, h_pieces, [b"bh=" + body_hash + b";"])
        unsigned += b"\r\n b="  # b= on a line of its own, so that its value folds freely
        digest = hashlib.sha256(signed + self._canonical_field(unsigned)[:-2]).digest()
        signature = key.rsa.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        b64 = base64.b64encode(signature)
        return unsigned + b"\r\n ".join(b64[i : i + 72] for i in range(0, len(b64), 72)) + b"\r\n"

    def __repr__(self) -> str:  # never show a key
        shown = ", ".join(f"d={k.domain} s={k.selector}" for k in self.keys)
        return f"DkimSigner({shown})"


def _fields(head: bytes) -> list[tuple[bytes, bytes]]:
    """(lower-case name, the raw field without its final CRLF) for each header field."""
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, raw = fields[-1]
            fields[-1] = (name, raw + b"\r\n" + line)
        elif b":" in line:
            fields.append((line.split(b":", 1)[0].strip(b" \t").lower(), line))
    return fields


def _fold(start: bytes, *groups: list[bytes]) -> bytes:
    """Tags packed into lines of at most 78 characters; within h= pieces fold without a space."""
    lines, line = [], start
    for group in groups:
        for i, piece in enumerate(group):
            glue = b"" if i and group[0].startswith(b"h=") else b" "
            if len(line) + len(glue) + len(piece) > 78:
                lines.append(line)
                line = b" " + piece
            else:
                line += glue + piece
    return b"\r\n".join([*lines, line])


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4 on CRLF text: runs of WSP become one SP, none at line ends, no
    empty lines at the end. ``bytes.replace`` passes, as fast as the bytes allow."""
    if b"\t" in body:
        body = body.replace(b"\t", b" ")
    while b"  " in body:
        body = body.replace(b"  ", b" ")
    if b" \r\n" in body:
        body = body.replace(b" \r\n", b"\r\n")
    body = _without_trailing_lines(body.rstrip(b" ") if body.endswith(b" ") else body)
    return body + b"\r\n" if body else b""


def simple_body(body: bytes) -> bytes:
    """RFC 6376 3.4.3: no empty lines at the end; an empty body is one CRLF."""
    return _without_trailing_lines(body) + b"\r\n"


def _without_trailing_lines(body: bytes) -> bytes:
    end = len(body)
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    return body[:end]
