"""DKIM signatures for sent copies (dkimpy, an optional extra).

List-Unsubscribe and List-Unsubscribe-Post are always signed: RFC 8058 asks
receivers to trust a one-click unsubscribe only when a signature covers both.
"""

from __future__ import annotations

from dispatch_mail.errors import UsageError


class DkimSigner:
    """Signs a message's bytes; the header list is fixed, filtered to the fields present."""

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
            raise UsageError(
                "DKIM signing needs dkimpy: pip install 'dispatch-mail[dkim]'"
            ) from None
        self.domain, self.selector, self._key = domain.encode(), selector.encode(), private_key
        try:  # a key that cannot sign must stop the send before it starts, not in every worker
            self.sign(b"From: check@example.org\r\nSubject: key check\r\n\r\nkey check\r\n")
        except Exception as exc:  # noqa: BLE001 (dkimpy raises several types; all mean a bad key)
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise UsageError(
                f"the DKIM key cannot sign ({reason}); check key_file or DISPATCH_DKIM_KEY_FILE"
            ) from None

    def sign(self, message: bytes) -> bytes:
        """The DKIM-Signature header line(s) to put in front of ``message``."""
        import dkim

        present = {
            line.split(b":", 1)[0].strip().lower()
            for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
            if b":" in line
        }
        include = [h for h in self.HEADERS if h in present]
        signature: bytes = dkim.sign(
            message, self.selector, self.domain, self._key, include_headers=include, linesep=b"\r\n"
        )
        return signature

    def __repr__(self) -> str:  # never show the key
        return f"DkimSigner(domain={self.domain!r}, selector={self.selector!r})"
