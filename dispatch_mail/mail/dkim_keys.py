"""DKIM keys: loading and strength (RFC 8301), and d= alignment with From (DMARC, RFC 7489).

RFC 8301: RSA keys under 1024 bits are refused (receivers treat their signatures
as none, and such keys can be factored); under 2048 bits the signer carries a
warning for the caller to show.

Alignment is DMARC's relaxed mode: d= and the From domain must share their
organizational domain, found with the Public Suffix List of the
``publicsuffixlist`` package (it ships the list; imported only when two domains
differ). Without that package the rule is approximated: aligned only when one
domain is the other or a subdomain of it, so sibling subdomains (a.example.org
and b.example.org) are reported as not aligned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dispatch_mail.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    from dispatch_mail.project.settings import Project

DKIM_KEY_ENV = "DISPATCH_DKIM_KEY_FILE"  # the main key's file, over dkim.key_file
MIN_RSA_BITS = 1024  # RFC 8301 3.2: signers MUST use at least this
GOOD_RSA_BITS = 2048  # ... and SHOULD use at least this


@dataclass(frozen=True)
class KeyFile:
    """One configured DKIM key: its dispatch.yaml field, d=, s= and file; not yet read."""

    field: str  # "dkim" or "dkim.rotation[0]"
    domain: str
    selector: str
    key_path: Path | None  # None: neither key_file nor DISPATCH_DKIM_KEY_FILE

    @property
    def record_name(self) -> str:
        """Where its public half is published: the TXT record s._domainkey.d."""
        return f"{self.selector}._domainkey.{self.domain}"


def key_files(project: Project) -> list[KeyFile]:
    """The main DKIM key, then each rotation key, as `dispatch send` and `check --dns` find
    them: DISPATCH_DKIM_KEY_FILE over dkim.key_file, paths relative to dispatch.yaml."""
    if project.dkim is None:
        return []
    settings = project.dkim

    def under(path: str | None) -> Path | None:
        if not path:
            return None
        return Path(path) if Path(path).is_absolute() else project.root / path

    main = os.environ.get(DKIM_KEY_ENV) or settings.key_file
    keys = [KeyFile("dkim", settings.domain, settings.selector, under(main))]
    for i, extra in enumerate(settings.rotation):
        domain = extra.domain or settings.domain
        keys.append(KeyFile(f"dkim.rotation[{i}]", domain, extra.selector, under(extra.key_file)))
    return keys


@dataclass(frozen=True)
class SigningKey:
    """One key that signs every message: its d=, s=, and the loaded RSA key."""

    domain: str
    selector: str
    rsa: RSAPrivateKey
    field: str  # where it was configured, for messages: "dkim.key_file", "dkim.rotation[1]…"

    @property
    def bits(self) -> int:
        return int(self.rsa.key_size)

    def sign_digest(self, digest: bytes) -> bytes:
        return sign_digest(self.rsa, digest)

    def __repr__(self) -> str:  # never show the key
        return f"SigningKey(domain={self.domain!r}, selector={self.selector!r})"


def sign_digest(key: RSAPrivateKey, digest: bytes) -> bytes:
    """DKIM's a=rsa-sha256: RSA (PKCS#1 v1.5) over a SHA-256 digest, OpenSSL's, which lets
    the GIL go. The send's signing process (mail/signing_worker.py) signs with it too."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, utils

    return bytes(key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())))


def load_key(
    domain: str, selector: str, private_key: bytes, field: str, warnings: list[str]
) -> SigningKey:
    """The key, checked; a key that cannot sign stops the send before it starts.

    The messages name the field (never the key's bytes); the main key's keep
    their wording without a prefix.
    """
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    prefix = "" if field == "dkim.key_file" else f"{field}: "
    try:
        key: Any = load_pem_private_key(private_key, password=None)
    except (ValueError, TypeError) as exc:  # not PEM, encrypted, or not a key at all
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
        raise UsageError(
            f"{prefix}the DKIM key cannot sign ({reason}); check key_file or DISPATCH_DKIM_KEY_FILE"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UsageError(f"{prefix}the DKIM key is not an RSA key; make a {GOOD_RSA_BITS}-bit one")
    bits = key.key_size
    if bits < MIN_RSA_BITS:
        raise UsageError(
            f"{prefix}the DKIM key has {bits} bits: receivers ignore signatures of RSA keys "
            f"under {MIN_RSA_BITS} bits (RFC 8301); make a {GOOD_RSA_BITS}-bit key"
        )
    if bits < GOOD_RSA_BITS:
        warnings.append(
            f"{prefix}the DKIM key has {bits} bits; RFC 8301 asks for {GOOD_RSA_BITS} or more"
        )
    return SigningKey(domain.lower().rstrip("."), selector, key, field)


# ------------------------------------------------------------------ alignment
@lru_cache(maxsize=1)
def _public_suffixes() -> Any:
    """The Public Suffix List, or None when the package is missing (building it takes ~80 ms)."""
    try:
        from publicsuffixlist import PublicSuffixList
    except ImportError:
        return None
    return PublicSuffixList()


def organizational_domain(domain: str) -> str | None:
    """The registrable domain (example.org for news.example.org), None without the list."""
    psl = _public_suffixes()
    if psl is None:
        return None
    found: str | None = psl.privatesuffix(domain.lower().rstrip("."))
    return found


def aligned(signing_domain: str, from_domain: str) -> bool:
    """DMARC relaxed alignment: the two domains share their organizational domain."""
    a, b = signing_domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    if a == b:
        return True
    if _public_suffixes() is None:
        return a.endswith("." + b) or b.endswith("." + a)  # the approximation, see above
    org = organizational_domain(a)
    return org is not None and org == organizational_domain(b)


def alignment_warnings(
    keys: Sequence[SigningKey], from_domain: str, envelope_domains: Sequence[str]
) -> list[str]:
    """One line per key whose d= does not align, and whether DMARC can still pass.

    A key of an ESP's own domain is fine beside an aligned one, and SPF aligns
    instead when the envelope sender's domain aligns; with neither, DMARC fails.
    """
    lines = [
        f"{key.field}: the DKIM domain d={key.domain} (s={key.selector}) does not align with "
        f"the From domain {from_domain} (DMARC asks for the same organizational domain)"
        for key in keys
        if not aligned(key.domain, from_domain)
    ]
    if len(lines) < len(keys):
        return lines
    spf = [d for d in envelope_domains if aligned(d, from_domain)]
    if spf:
        lines.append(
            f"no DKIM key aligns with {from_domain}: DMARC passes only through SPF for the "
            f"return path domain {spf[0]}"
        )
    else:
        shown = ", ".join(sorted(set(envelope_domains))) or "none"
        lines.append(
            f"no DKIM key aligns with {from_domain} and neither does the return path domain "
            f"({shown}): DMARC will fail"
        )
    return lines
