"""SMTP through aiosmtplib: the relay's settings, a connection, a fast DATA, what replies mean.

The engine decides what to do with a recipient; this module only speaks SMTP.
aiosmtplib is imported when a connection is made, not when the module is, so a
dry run or ``dispatch status`` does not pay for it.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from dispatch_mail.errors import DeliveryError, RelayAuthError, RelayTlsError, UsageError
from dispatch_mail.project.relay_checks import ehlo_name_problem

if TYPE_CHECKING:
    import aiosmtplib

TLS_MODES = ("starttls", "implicit", "none")
THROTTLE_WORDS = ("rate", "too many", "throttl", "slow down", "quota", "limit")
# an enhanced status code (RFC 3463): "5.7.x" is security or policy, "5.1.x" a bad address
_ENHANCED_STATUS = re.compile(r"^[245]\.(\d{1,3})\.\d{1,3}\b")
RELAY_DENIED_WORDS = (
    "relay access denied",
    "relaying denied",
    "relay not permitted",
    "not permitted to relay",
    "relaying not allowed",
    "authentication required",
)


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to reach the relay; refuses settings that would leak mail or a password."""

    host: str
    port: int
    tls: str = "starttls"  # one of TLS_MODES
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    insecure: bool = False
    timeout: float = 30.0  # each SMTP command
    cafile: str | None = None  # a private CA (tests, internal relays)
    # reaching the relay and hearing its greeting: a blackholed address fails in seconds,
    # while a slow DATA still has ``timeout``
    connect_timeout: float = 15.0
    # our name in EHLO; None: this machine's FQDN (which may be 'localhost', and refused)
    ehlo_name: str | None = None
    pipelining: bool = True  # use PIPELINING and CHUNKING where the relay offers them

    def __post_init__(self) -> None:
        if not (self.timeout > 0 and self.connect_timeout > 0):
            raise UsageError("SMTP timeouts must be more than 0 seconds")
        problem = ehlo_name_problem(self.ehlo_name) if self.ehlo_name is not None else None
        if problem:
            raise UsageError(f"the EHLO name {problem}")
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

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def connect(settings: SmtpSettings) -> aiosmtplib.SMTP:
    """A connected client, logged in when there is a username; never a half-open one.

    What trying again cannot mend is raised as our own error: RelayTlsError (TLS failed),
    RelayAuthError (login refused), DeliveryError (a 5xx greeting, an unknown host).
    A relay that does not answer raises aiosmtplib's or the socket's error, for the
    caller to try again: :func:`unreachable_reason` words it.
    """
    import aiosmtplib

    client = aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        use_tls=settings.tls == "implicit",
        start_tls=False,  # done below, so that its failure is told apart from the greeting's
        tls_context=settings.tls_context() if settings.tls != "none" else None,
        timeout=settings.timeout,
        local_hostname=settings.ehlo_name or await asyncio.to_thread(_local_hostname),
    )
    where = settings.describe()
    try:
        await client.connect(timeout=settings.connect_timeout)
    except aiosmtplib.SMTPConnectResponseError as exc:
        code, text = reply_of(exc)
        if code is not None and code >= 500:
            raise DeliveryError(
                f"{where} refused the connection: {code} {text}", smtp_code=code
            ) from None
        raise
    except OSError as exc:  # aiosmtplib's SMTPConnectError is one, with the socket's as cause
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        if isinstance(cause, ssl.SSLError):
            raise RelayTlsError(f"TLS with {where} failed: {reply_of(cause)[1]}") from None
        if isinstance(cause, socket.gaierror) and cause.errno == socket.EAI_NONAME:
            raise DeliveryError(
                f"cannot find the relay {settings.host}: {cause.strerror or cause}"
            ) from None
        raise
    try:
        if settings.tls == "starttls":
            await _start_tls(client, where)
        if settings.username:
            await _login(client, settings.username, settings.password or "", where)
    except BaseException:
        client.close()  # the caller never sees this client: do not leave it open
        raise
    return client


async def _start_tls(client: aiosmtplib.SMTP, where: str) -> None:
    import aiosmtplib

    try:
        await client.starttls()
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        raise  # no answer: worth another try
    except (ssl.SSLError, aiosmtplib.SMTPException) as exc:
        # an untrusted certificate, no STARTTLS offered, or STARTTLS refused: never plaintext
        raise RelayTlsError(f"TLS with {where} failed: {reply_text(exc)}") from None


async def _login(client: aiosmtplib.SMTP, username: str, password: str, where: str) -> None:
    import aiosmtplib

    try:
        await client.login(username, password)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        raise
    except aiosmtplib.SMTPException as exc:  # refused, or no AUTH offered at all
        code, text = reply_of(exc)
        raise RelayAuthError(f"{where} refused our login: {text}", smtp_code=code) from None


@functools.cache
@functools.cache
def _local_hostname() -> str:
    """Our name for EHLO, looked up once: a slow resolver must not stall every reconnection."""
    return socket.getfqdn() or "localhost"


def unreachable_reason(exc: BaseException, settings: SmtpSettings) -> str:
    """Why a connection got no usable answer, in a few words, for a retry notice."""
    import aiosmtplib

    if isinstance(exc, aiosmtplib.SMTPConnectTimeoutError):
        if isinstance(exc.__cause__, aiosmtplib.SMTPTimeoutError):
            return f"connected, but no greeting within {settings.connect_timeout:g} s"
        return f"no connection within {settings.connect_timeout:g} s"
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return f"no reply within {settings.timeout:g} s"
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return reply_text(exc)
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return "the connection was closed"
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return reply_text(exc)


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
    stuffed = dot_stuffed(data)
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


def dot_stuffed(data: bytes) -> bytes:
    """The message as DATA carries it (RFC 5321 4.5.2), for CRLF-only bytes; the "." not added."""
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed if stuffed.endswith(b"\r\n") else stuffed + b"\r\n"


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


def reply_text(exc: BaseException) -> str:
    """The reply on one line, with its code when there is one."""
    code, text = reply_of(exc)
    return f"{code} {text}" if code is not None else text


def is_throttling(code: int, reply: str) -> bool:
    """A 4xx that asks us to slow down, rather than one about this recipient."""
    return code in (421, 454) or any(word in reply.lower() for word in THROTTLE_WORDS)


def blames_us(reply: str) -> bool:
    """A 5xx at RCPT that is about us, not the recipient: relaying denied, a policy block.

    One recipient may be refused so; the whole list refused so means the relay will not
    take our mail, and failing everyone one by one would spend the list.
    """
    status = _ENHANCED_STATUS.match(reply.strip())
    if status:
        return status.group(1) == "7"
    low = reply.lower()
    return any(words in low for words in RELAY_DENIED_WORDS)
