"""A real aiosmtpd server for the send tests: a free loopback port, a thread, faults on purpose.

The server runs its own event loop in a daemon thread, so it serves the
library (``asyncio.run`` in the test), click's CliRunner and a ``dispatch``
subprocess alike, and it survives a sender that is SIGKILLed.

Faults are rules per SMTP phase (MAIL, RCPT, DATA). A rule sees the
recipient's address and how many times this phase was reached for it, and
returns a reply line ("451 4.3.0 try later"), :data:`DROP` (close the
connection without a reply) or None (carry on). A 421 reply closes the
connection after it is sent, as a real server does. A DROP at DATA keeps the
message first: the server holds it, the client never hears so (RFC 1047).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import AnyStr, Self

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

DROP = "DROP"
HOST = "127.0.0.1"

Rule = Callable[[str, int], "str | None"]


@dataclass
class Received:
    """One message as the server accepted it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    user: str | None

    @property
    def recipient(self) -> str:
        assert len(self.rcpt_tos) == 1, self.rcpt_tos
        return self.rcpt_tos[0]

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)


def selected(address: str, share: float) -> bool:
    """A stable pseudo-random choice of ``share`` of all addresses (the same in every run)."""
    return zlib.crc32(address.encode()) % 1000 < share * 1000


def reply_first(
    reply: str, times: int = 1, share: float = 1.0, addresses: set[str] | None = None
) -> Rule:
    """``reply`` to the first ``times`` tries of a chosen share (or set) of the recipients."""

    def rule(address: str, attempt: int) -> str | None:
        chosen = address in addresses if addresses is not None else selected(address, share)
        return reply if chosen and attempt <= times else None

    return rule


def reply_always(reply: str, addresses: set[str]) -> Rule:
    """``reply`` to every try of the given recipients."""
    return lambda address, attempt: reply if address in addresses else None


class Recorder:
    """The aiosmtpd handler: records what arrives and applies the fault rules."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.rules: dict[str, list[Rule]] = {"MAIL": [], "RCPT": [], "DATA": []}
        self.tries: dict[str, Counter[str]] = {phase: Counter() for phase in self.rules}
        self.replies: Counter[str] = Counter()  # fault replies given, by their first word
        self.connections = 0
        self.delay = 0.0  # seconds the server takes for each DATA (to catch a sender mid-send)
        self.auth: dict[str, str] = {}  # user -> password accepted by AUTH
        self.logins: list[tuple[str, str]] = []  # (not auth_*: aiosmtpd takes those for mechanisms)

    # ------------------------------------------------------------------ setting faults
    def fail(self, phase: str, rule: Rule) -> None:
        self.rules[phase.upper()].append(rule)

    # ------------------------------------------------------------------ reading
    @property
    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def per_recipient(self) -> Counter[str]:
        return Counter(m.recipient for m in self.messages)

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.count() >= n:
                return True
            time.sleep(0.005)
        return False

    # ------------------------------------------------------------------ aiosmtpd hooks
    def _fault(self, phase: str, address: str) -> str | None:
        with self.lock:
            self.tries[phase][address] += 1
            attempt = self.tries[phase][address]
        for rule in self.rules[phase]:
            reply = rule(address, attempt)
            if reply is not None:
                with self.lock:
                    self.replies[reply.split()[0]] += 1
                return reply
        return None

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return self._fault("MAIL", address) or "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self._fault("RCPT", address)
        if reply is None:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
            return "250 OK"
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        address = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        reply = self._fault("DATA", address)
        if reply is None or reply == DROP:
            user = (
                session.auth_data.login.decode()
                if isinstance(session.auth_data, LoginPassword)
                else None
            )
            with self.lock:
                self.received.append(
                    Received(
                        envelope.mail_from or "",
                        list(envelope.rcpt_tos),
                        bytes(envelope.original_content or b""),
                        session.ssl is not None,
                        user,
                    )
                )
        return reply or "250 2.0.0 OK queued"

    def authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: object,
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        with self.lock:
            self.logins.append((user, password))
        # handled=False: aiosmtpd itself answers 235 or 535
        return AuthResult(
            success=self.auth.get(user) == password, handled=False, auth_data=auth_data
        )


class _FaultySMTP(SMTP):
    """aiosmtpd's SMTP that closes after a 421 and can hang up instead of replying."""

    async def push(self, status: AnyStr) -> None:
        text = status.decode() if isinstance(status, bytes) else status
        if text == DROP:
            if isinstance(self.transport, asyncio.Transport):
                self.transport.abort()
            return
        await super().push(status)
        if text.startswith("421") and self.transport is not None:
            self.transport.close()


@dataclass
class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 and a free port, in a thread of its own.

    ``implicit_tls``: a server SSLContext for TLS from the first byte (port 465 style);
    ``starttls``: a server SSLContext offered through STARTTLS (and required).
    """

    handler: Recorder = field(default_factory=Recorder)
    implicit_tls: ssl.SSLContext | None = None
    starttls: ssl.SSLContext | None = None
    auth_require_tls: bool = True
    port: int = 0
    host: str = HOST

    def __post_init__(self) -> None:
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ life
    def start(self) -> Self:
        self._thread = threading.Thread(target=self._serve, name=f"smtpd-{id(self)}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test SMTP server did not start")
        if self._error:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _factory(self) -> SMTP:
        recorder = self.handler
        return _FaultySMTP(
            recorder,
            hostname="smtp.test",
            ident="dispatch test server",
            tls_context=self.starttls,
            require_starttls=self.starttls is not None,
            authenticator=recorder.authenticate if recorder.auth else None,
            auth_require_tls=self.auth_require_tls,
            loop=self._loop,
        )

    def _serve(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        server = None
        try:
            server = loop.run_until_complete(
                loop.create_server(self._connection, self.host, self.port, ssl=self.implicit_tls)
            )
            self.port = server.sockets[0].getsockname()[1]
        except Exception as exc:  # noqa: BLE001 (reported by start())
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _connection(self) -> SMTP:
        with self.handler.lock:
            self.handler.connections += 1
        return self._factory()

    # ------------------------------------------------------------------ for the tests
    @property
    def tls_mode(self) -> str:
        return "implicit" if self.implicit_tls else "starttls" if self.starttls else "none"

    def cli_args(self) -> list[str]:
        return ["--smtp-host", self.host, "--smtp-port", str(self.port), "--tls", self.tls_mode]

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages


# ------------------------------------------------------------------ AUTH, watched
class _AuthWatchSMTP(_FaultySMTP):
    """Records each AUTH command and whether TLS was on, before aiosmtpd judges it."""

    refuse_starttls = False

    async def smtp_AUTH(self, arg: str) -> None:
        recorder = self.event_handler
        mechanism = (arg or "").split(" ", 1)[0].upper()
        with recorder.lock:
            recorder.auth_attempts.append(
                (self.session is not None and self.session.ssl is not None, mechanism)
            )
        await super().smtp_AUTH(arg)

    async def smtp_STARTTLS(self, arg: str) -> None:
        if self.refuse_starttls:  # offered, then refused: what a downgrading middlebox does
            await self.push("454 4.7.0 TLS not available due to temporary reason")
            return
        await super().smtp_STARTTLS(arg)


@dataclass
class AuthWatchServer(SmtpServer):
    """The server whose handler lists AUTH attempts: ``handler.auth_attempts`` = [(tls, mechanism)].

    ``refuse_starttls``: STARTTLS is advertised but refused, and AUTH is offered in
    plaintext (``auth_require_tls=False``): a client that falls back would log in in clear.
    """

    refuse_starttls: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.handler.auth_attempts = []  # type: ignore[attr-defined]

    def _factory(self) -> SMTP:
        recorder = self.handler
        server = _AuthWatchSMTP(
            recorder,
            hostname="smtp.test",
            ident="dispatch test server",
            tls_context=self.starttls,
            require_starttls=self.starttls is not None and not self.refuse_starttls,
            authenticator=recorder.authenticate if recorder.auth else None,
            auth_require_tls=self.auth_require_tls,
            loop=self._loop,
        )
        server.refuse_starttls = self.refuse_starttls
        return server
