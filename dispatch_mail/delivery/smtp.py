"""SMTP through aiosmtplib: the relay's settings, a connection, a fast DATA, what replies mean.

The engine decides what to do with a recipient; this module only speaks SMTP.
aiosmtplib is imported when a connection is made, not when the module is, so a
dry run or ``dispatch status`` does not pay for it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from dispatch_mail.errors import UsageError

if TYPE_CHECKING:
    import aiosmtplib

TLS_MODES = ("starttls", "implicit", "none")
THROTTLE_WORDS = ("rate", "too many", "throttl", "slow down", "quota", "limit")


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to reach the relay; refuses settings that would leak mail or a password."""

    host: str
    port: int
    tls: str = "starttls"  # one of TLS_MODES
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    insecure: bool = False
    timeout: float = 30.0
    cafile: str | None = None  # a private CA (tests, internal relays)

    def __post_init__(self) -> None:
        if self.tls not in TLS_MODES:
            raise UsageError(f"the TLS mode must be implicit, starttls or none, not {self.tls!r}")
        if self.tls == "none" and not (self.insecure or is_loopback(self.host)):
            raise UsageError(
                f"refusing plaintext SMTP to {self.host}: it is not a loopback address; "
                "use starttls or implicit TLS",
                hint="insecure",
            )
        if self.username and self.tls == "none":
            raise UsageError("refusing to send a password over plaintext SMTP", hint="tls")

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.cafile)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def describe(self) -> str:
        security = {"implicit": "TLS", "starttls": "STARTTLS", "none": "plaintext"}[self.tls]
        return f"{self.host}:{self.port} ({security})"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def connect(settings: SmtpSettings) -> aiosmtplib.SMTP:
    """A connected client, logged in when there is a username; never a half-open one."""
    import aiosmtplib

    client = aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        use_tls=settings.tls == "implicit",
        start_tls=settings.tls == "starttls",
        tls_context=settings.tls_context() if settings.tls != "none" else None,
        timeout=settings.timeout,
        local_hostname=socket.getfqdn() or "localhost",
    )
    await client.connect()
    if settings.username:
        try:
            await client.login(settings.username, settings.password or "")
        except BaseException:
            client.close()  # the caller never sees this client: do not leave it open
            raise
    return client


class DataReply(NamedTuple):
    """The server's 250 to the end of DATA, and whether our fast path sent the message."""

    code: int
    message: str
    fast: bool  # False: aiosmtplib's own data() did it (an aiosmtplib without the internals)


async def send_data(client: aiosmtplib.SMTP, data: bytes, timeout: float | None) -> DataReply:
    """DATA, the message and the final ".", as aiosmtplib's ``data()`` without its two regex passes.

    aiosmtplib normalizes line endings and dot-stuffs with ``re.sub`` over the whole
    message: about 0.6 ms for an 80 KB newsletter, more than half of the client's CPU
    per message (docs/performance.md). PersonalMessages.render() returns CRLF-only
    bytes, so dot-stuffing is one ``bytes.replace``. Falls back to ``data()`` when the
    aiosmtplib in use does not have the internals this mirrors.
    """
    import aiosmtplib

    protocol = client.protocol
    lock = getattr(protocol, "_command_lock", None)
    if (
        protocol is None
        or not isinstance(lock, asyncio.Lock)
        or not hasattr(protocol, "_response_pending")
    ):
        response = await client.data(data, timeout=timeout)
        return DataReply(response.code, response.message, fast=False)
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    try:
        async with lock:
            protocol._response_pending = True
            protocol.write(b"DATA\r\n")
            start = await protocol.read_response(timeout=timeout)
            if start.code != 354:
                raise aiosmtplib.SMTPDataError(start.code, start.message)
            protocol._response_pending = True
            protocol.write(stuffed + b".\r\n")
            response = await protocol.read_response(timeout=timeout)
            if response.code != 250:
                raise aiosmtplib.SMTPDataError(response.code, response.message)
        return DataReply(response.code, response.message, fast=True)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        client.close()
        raise


async def reset_or_drop(client: aiosmtplib.SMTP | None, code: int | None) -> aiosmtplib.SMTP | None:
    """After a refusal: RSET the transaction, or drop the connection when the server closes it."""
    if code == 421 or client is None or not client.is_connected:
        if client is not None:
            client.close()
        return None
    try:
        await client.rset()
        return client
    except Exception:
        client.close()
        return None


def reply_of(exc: BaseException) -> tuple[int | None, str]:
    """(SMTP code or None, the reply on one line) of an aiosmtplib or socket error."""
    code = getattr(exc, "code", None)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return (code if isinstance(code, int) and code > 0 else None), " ".join(str(message).split())


def is_throttling(code: int, reply: str) -> bool:
    """A 4xx that asks us to slow down, rather than one about this recipient."""
    return code in (421, 454) or any(word in reply.lower() for word in THROTTLE_WORDS)


def is_tls_failure(exc: BaseException, reply: str) -> bool:
    """A certificate we do not trust, or no STARTTLS offered: trying again cannot help."""
    low = reply.lower()
    return isinstance(exc, ssl.SSLError) or any(
        w in low for w in ("certificate", "ssl", "starttls")
    )
