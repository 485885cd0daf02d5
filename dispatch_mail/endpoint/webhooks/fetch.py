"""The two requests the webhooks make themselves: SNS's signing certificate and its SubscribeURL.

Both go only to an SNS host (``sns.<region>.amazonaws.com`` or ``.amazonaws.com.cn``)
over https, checked before anything is fetched, with a verified TLS context, a short
timeout, no redirects and a size cap. Certificates are kept on disk under the cache
folder, one file per URL, so a restart does not refetch them.
"""

from __future__ import annotations

import hashlib
import os
import re
import ssl
import tempfile
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from cryptography import x509

from dispatch_mail.errors import WebhookRejected

PROVIDER = "ses"
TIMEOUT = 5.0
MAX_CERTIFICATE = 16 * 1024  # a PEM certificate is 2 KB; anything bigger is not one
MAX_CONFIRMATION = 64 * 1024
_SNS_HOST = re.compile(r"^sns\.[a-z]{2}(-[a-z]+)+-\d\.amazonaws\.com(\.cn)?$")


def check_sns_url(url: str, what: str) -> str:
    """``url`` if it is https on an SNS host, else a rejection before any fetch."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookRejected(f"{what} is not a URL", provider=PROVIDER) from None
    if parts.scheme != "https":
        raise WebhookRejected(f"{what} is not https", provider=PROVIDER)
    host = (parts.hostname or "").lower()
    if not _SNS_HOST.match(host) or port not in (None, 443) or parts.username or parts.password:
        raise WebhookRejected(f"{what} is not on an Amazon SNS host", provider=PROVIDER)
    return url


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could leave the SNS host we checked: refuse it."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def https_get(
    url: str, *, max_bytes: int, timeout: float = TIMEOUT, context: ssl.SSLContext | None = None
) -> bytes:
    """GET ``url`` (already checked) with TLS verified; at most ``max_bytes`` or a rejection."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context or ssl.create_default_context()),
        _NoRedirect(),
    )
    request = urllib.request.Request(url, headers={"User-Agent": "dispatch-webhooks"})
    try:
        with opener.open(request, timeout=timeout) as response:
            if response.status != 200:
                raise WebhookRejected(
                    f"{urlsplit(url).hostname} answered {response.status}",
                    provider=PROVIDER,
                    reason="unavailable",
                )
            data: bytes = response.read(max_bytes + 1)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or type(error).__name__
        raise WebhookRejected(
            f"cannot fetch from {urlsplit(url).hostname}: {reason}",
            provider=PROVIDER,
            reason="unavailable",
        ) from None
    if len(data) > max_bytes:
        raise WebhookRejected(
            f"{urlsplit(url).hostname} sent more than {max_bytes} bytes", provider=PROVIDER
        )
    return data


def certificate_path(cache_dir: str, url: str) -> str:
    """Where the certificate fetched from ``url`` is kept: named by the URL's digest."""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
    return os.path.join(cache_dir, "sns-certificates", f"{digest}.pem")


_memory: dict[str, x509.Certificate] = {}


def signing_certificate(url: str, cache_dir: str | None) -> x509.Certificate:
    """The certificate at ``url``: from memory, the disk cache, or (once) fetched and cached."""
    check_sns_url(url, "SigningCertURL")
    if url in _memory:
        return _memory[url]
    path = certificate_path(cache_dir, url) if cache_dir else None
    certificate = _read_cached(path) if path else None
    if certificate is None:
        pem = https_get(url, max_bytes=MAX_CERTIFICATE)
        certificate = _parse(pem)
        if certificate is None:
            raise WebhookRejected("SigningCertURL did not hold a certificate", provider=PROVIDER)
        if path:
            _store(path, pem)
    if len(_memory) > 64:  # SNS rotates certificates rarely; a flood of URLs is not SNS
        _memory.clear()
    _memory[url] = certificate
    return certificate


def _parse(pem: bytes) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None


def _read_cached(path: str) -> x509.Certificate | None:
    try:
        with open(path, "rb") as cached:
            pem = cached.read(MAX_CERTIFICATE + 1)
    except OSError:
        return None
    return _parse(pem) if len(pem) <= MAX_CERTIFICATE else None


def _store(path: str, data: bytes) -> None:
    """Write to a temp file then rename; a cache that cannot be written is only slower."""
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    except OSError:
        pass


def forget_certificates() -> None:
    """Drop the in-memory copies (tests change the disk cache between requests)."""
    _memory.clear()
