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
from dataclasses import dataclass
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

__all__ = ["GOOD_RSA_BITS", "MIN_RSA_BITS", "DkimSigner", "PendingSignature"]

_PROBE = b"From: check@example.org\r\nSubject: key check\r\n\r\nkey check\r\n"
_WSP = re.compile(rb"[ \t]+")
CANONICALIZATIONS = ("relaxed/relaxed", "relaxed/simple", "simple/simple", "simple/relaxed")


@dataclass(frozen=True)
class PendingSignature:
    """One signature but its RSA: ``keys[key]`` signs ``digest`` (SHA-256, PKCS#1 v1.5)."""

    key: int  # the index in DkimSigner.keys
    unsigned: bytes  # the DKIM-Signature field up to its empty b=
    digest: bytes


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
        self._canonical_pieces: dict[bytes, bytes] = {}  # recurring body piece → canonical
        self._folded: dict[tuple[object, ...], bytes] = {}  # the signature's start, by key
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
        return self.sign_parts(head, (body,))

    def sign_parts(self, head: bytes, body: Sequence[bytes]) -> bytes:
        """``sign`` of a message given as its header block and its body in pieces."""
        pending = self.prepare(head, body)
        return self.finish(pending, [self.keys[p.key].sign_digest(p.digest) for p in pending])

    def prepare(self, head: bytes, body: Sequence[bytes]) -> list[PendingSignature]:
        """Everything of each signature but the RSA: the field without b=, and its digest.

        ``head`` is the header block (CRLF-terminated fields, no blank line); ``body``
        the body in pieces whose join is the body. A piece that recurs from message to
        message (the issue's own text) is canonicalized once: most of a message's
        cost after the RSA (docs/performance.md).
        """
        fields = _fields(head)
        names = self._names(fields)
        if b"from" not in names:
            raise ValueError("a DKIM signature must cover From, and the message has none")
        if self._relaxed_body:
            canonical = relaxed_pieces(body, self._canonical_pieces)
        else:
            canonical = simple_body(b"".join(body))
        body_hash = base64.b64encode(hashlib.sha256(canonical).digest())
        signed = self._signed_fields(fields, names)
        stamp = str(int(time.time())).encode("ascii")
        return [
            self._pending(i, key, signed, names, body_hash, stamp)
            for i, key in enumerate(self.keys)
        ]

    @staticmethod
    def finish(pending: Sequence[PendingSignature], signatures: Sequence[bytes]) -> bytes:
        """The DKIM-Signature field(s): each pending field with its RSA signature as b=."""
        out = []
        for field, signature in zip(pending, signatures, strict=True):
            b64 = base64.b64encode(signature)
            folded = b"\r\n ".join(b64[i : i + 72] for i in range(0, len(b64), 72))
            out.append(field.unsigned + folded + b"\r\n")
        return b"".join(out)

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
        if b"\r\n" in value:
            value = value.replace(b"\r\n", b"")
        if b"\t" in value or b"  " in value:  # a search is a tenth of a substitution
            value = _WSP.sub(b" ", value)
        value = value.strip(b" ")
        return name.rstrip(b" \t").lower() + b":" + value + b"\r\n"

    def _pending(
        self,
        index: int,
        key: SigningKey,
        signed: bytes,
        names: list[bytes],
        body_hash: bytes,
        stamp: bytes,
    ) -> PendingSignature:
        # the tags up to h= are the same for a second's messages: folded once
        start = self._folded.get((index, *names, stamp))
        if start is None:
            start = self._fold_start(self._c, key, names, stamp)
            if len(self._folded) >= 64:
                self._folded.clear()
            self._folded[(index, *names, stamp)] = start
        unsigned = _fold(start, [b"bh=" + body_hash + b";"])
        unsigned += b"\r\n b="  # b= on a line of its own, so that its value folds freely
        digest = hashlib.sha256(signed + self._canonical_field(unsigned)[:-2]).digest()
        return PendingSignature(index, unsigned, digest)

    @staticmethod
    def _fold_start(c: bytes, key: SigningKey, names: list[bytes], stamp: bytes) -> bytes:
        tags = [
            b"v=1;",
            b"a=rsa-sha256;",
            b"c=" + c + b";",
            b"d=" + key.domain.encode("ascii") + b";",
            b"s=" + key.selector.encode("ascii") + b";",
            b"t=" + stamp + b";",
        ]
        h_pieces = [n + b":" for n in names]
        h_pieces[0] = b"h=" + h_pieces[0]
        h_pieces[-1] = h_pieces[-1][:-1] + b";"
        return _fold(b"DKIM-Signature:", tags, h_pieces)

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
    """Tags packed into lines of at most 78 characters; within h= pieces fold without a space.

    ``start`` may be folded already: the pieces go on from its last line."""
    *lines, line = start.split(b"\r\n")
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
    return _relaxed_end(_relaxed_lines(body))


def relaxed_pieces(pieces: Iterable[bytes], known: dict[bytes, bytes]) -> bytes:
    """``relaxed_body(b"".join(pieces))``, each piece of ``known`` canonicalized only once.

    The rules act within a run of blanks and at a line's end, so the canonical form of
    a join is the join of the canonical pieces wherever a piece ends in neither a blank
    nor a CR; a piece that does is joined to the next one first. Only pieces of
    ``_RECURRING`` bytes or more are remembered: those are the issue's own text, while
    each recipient's values are short.
    """
    out: list[bytes] = []
    carry = b""
    for piece in pieces:
        joined = bool(carry)  # a new object: not worth remembering
        if joined:
            piece, carry = carry + piece, b""
        if piece[-1:] in _JOINS_NEXT:
            carry = piece
            continue
        canonical = None if joined else known.get(piece)
        if canonical is None:
            canonical = _relaxed_lines(piece)
            if not joined and len(piece) >= _RECURRING:
                if len(known) >= _KNOWN_MAX:
                    known.clear()
                known[piece] = canonical
        out.append(canonical)
    out.append(_relaxed_lines(carry))
    return _relaxed_end(b"".join(out))


_JOINS_NEXT = (b" ", b"\t", b"\r")
_RECURRING = 512
_KNOWN_MAX = 256


def _relaxed_lines(body: bytes) -> bytes:
    if b"\t" in body:
        body = body.replace(b"\t", b" ")
    while b"  " in body:
        body = body.replace(b"  ", b" ")
    if b" \r\n" in body:
        body = body.replace(b" \r\n", b"\r\n")
    return body


def _relaxed_end(body: bytes) -> bytes:
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
