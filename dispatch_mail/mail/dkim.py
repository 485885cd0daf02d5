"""DKIM signatures for sent copies (dkimpy, an optional extra).

List-Unsubscribe and List-Unsubscribe-Post are always signed: RFC 8058 asks
receivers to trust a one-click unsubscribe only when a signature covers both.

RFC 8301: RSA keys under 1024 bits are refused (receivers treat their
signatures as none, and such keys can be factored); under 2048 bits the
signer carries a warning for the caller to show.
"""

from __future__ import annotations

from dispatch_mail.errors import UsageError

MIN_RSA_BITS = 1024  # RFC 8301 3.2: signers MUST use at least this
GOOD_RSA_BITS = 2048  # ... and SHOULD use at least this
_PROBE = b"From: check@example.org\r\nSubject: key check\r\n\r\nkey check\r\n"


class DkimSigner:
    """Signs a message's bytes; the header list is fixed, filtered to the fields present.

    ``warnings``: what is wrong with the key but does not stop a send (one line
    each, for the caller to show before sending).
    """

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
        self.warnings: list[str] = []
        try:  # a key that cannot sign must stop the send before it starts, not in every worker
            bits = _rsa_bits(private_key)
            self.sign(_PROBE)
        except Exception as exc:  # noqa: BLE001 (dkimpy raises several types; all mean a bad key)
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise UsageError(
                f"the DKIM key cannot sign ({reason}); check key_file or DISPATCH_DKIM_KEY_FILE"
            ) from None
        if bits < MIN_RSA_BITS:
            raise UsageError(
                f"the DKIM key has {bits} bits: receivers ignore signatures of RSA keys under "
                f"{MIN_RSA_BITS} bits (RFC 8301); make a {GOOD_RSA_BITS}-bit key"
            )
        if bits < GOOD_RSA_BITS:
            self.warnings.append(
                f"the DKIM key has {bits} bits; RFC 8301 asks for {GOOD_RSA_BITS} or more"
            )

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


def _rsa_bits(private_key: bytes) -> int:
    """The modulus size of a PEM RSA key (PKCS#1 or PKCS#8), as dkimpy reads it to sign."""
    from dkim.crypto import parse_pem_private_key

    modulus: int = parse_pem_private_key(private_key)["modulus"]
    return modulus.bit_length()
