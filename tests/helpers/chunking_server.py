"""An aiosmtpd server that offers PIPELINING and CHUNKING, and writes down what it saw.

aiosmtpd reads pipelined commands one line at a time already but does not say
so in its EHLO, and has no BDAT. This server adds both (RFC 2920, RFC 3030) on
top of the fault server of smtp_server.py, so its rules (a reply, DROP) work
for every phase; a BDAT is judged by the DATA rules. It also keeps a log of
every command and reply: each reply notes whether the client's next bytes had
already arrived when it was sent, which is what pipelining does and a client
that waits for each reply never does.

More faults: a rule may return :data:`HANG` (the connection stays open and
answers nothing from then on); ``data_command`` is a rule for the DATA or BDAT command itself,
before any body (the DATA rules judge the message after it); and
``data_without_rcpt`` makes DATA answer 354 even when no recipient was
accepted, as some servers do (RFC 2920 3.1 warns of it).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import AnyStr

from aiosmtpd.smtp import SMTP

from tests.helpers.smtp_server import Rule, SmtpServer, _FaultySMTP

HANG = "HANG"


@dataclass(frozen=True)
class Event:
    """One command or reply on one connection."""

    connection: int
    kind: str  # "command", "reply" or "body" (the octets of a DATA body or BDAT chunk)
    text: str
    buffered: bool = False  # a reply: the client's next bytes were already here


@dataclass
class Wire:
    """Everything every connection said, in order."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    events: list[Event] = field(default_factory=list)
    data_tries: Counter[str] = field(default_factory=Counter)  # DATA/BDAT commands, by recipient

    def add(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)

    def of(self, kind: str) -> list[Event]:
        with self.lock:
            return [e for e in self.events if e.kind == kind]

    def commands(self) -> list[str]:
        return [e.text.split()[0].upper() for e in self.of("command")]


class _ChunkingSMTP(_FaultySMTP):
    extensions: tuple[str, ...] = ()
    data_without_rcpt = False
    data_command: Rule | None = None
    wire: Wire
    number = 0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._in_ehlo = False
        self._hung = False  # a HANG was given: this connection answers nothing more
        self._chunks = bytearray()

    async def push(self, status: AnyStr) -> None:
        text = status.decode() if isinstance(status, bytes) else status
        if text == HANG or self._hung:
            self._hung = True
            return
        if self._in_ehlo and text == "250 HELP":
            for extension in self.extensions:
                await super().push(f"250-{extension}")
        buffered = bool(getattr(self._reader, "_buffer", b""))
        self.wire.add(Event(self.number, "reply", text[:200], buffered))
        await super().push(status)

    async def smtp_EHLO(self, hostname: str) -> None:
        self._in_ehlo = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._in_ehlo = False

    def _seen(self, command: str, arg: str | None) -> None:
        self.wire.add(Event(self.number, "command", f"{command} {arg or ''}".strip()))

    async def smtp_MAIL(self, arg: str) -> None:
        self._seen("MAIL", arg)
        await super().smtp_MAIL(arg)
        last = self.wire.of("reply")[-1].text if self.wire.events else ""
        if self.envelope is not None and not last.startswith("250"):
            # the Recorder notes the sender before judging it; a refused MAIL starts nothing,
            # so RCPT and DATA get 503 as from a real server
            self.envelope.mail_from = None

    async def smtp_RCPT(self, arg: str) -> None:
        self._seen("RCPT", arg)
        await super().smtp_RCPT(arg)

    async def smtp_RSET(self, arg: str) -> None:
        self._seen("RSET", arg)
        self._chunks = bytearray()
        await super().smtp_RSET(arg)

    def _data_fault(self) -> str | None:
        assert self.envelope is not None
        if self.data_command is None or not self.envelope.rcpt_tos:
            return None
        address = self.envelope.rcpt_tos[0]
        with self.wire.lock:
            self.wire.data_tries[address] += 1
            attempt = self.wire.data_tries[address]
        return self.data_command(address, attempt)

    async def smtp_DATA(self, arg: str) -> None:
        self._seen("DATA", arg)
        assert self.envelope is not None
        fault = self._data_fault()
        if fault is not None:
            await self.push(fault)
            return
        if not (self.data_without_rcpt and not self.envelope.rcpt_tos):
            await super().smtp_DATA(arg)
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        body = 0
        while (line := await self._reader.readuntil(b"\r\n")) != b".\r\n":
            body += len(line)
        self.wire.add(Event(self.number, "body", str(body)))
        await self.push("554 5.5.1 Error: no valid recipients")

    async def smtp_BDAT(self, arg: str) -> None:
        self._seen("BDAT", arg)
        words = (arg or "").split()
        if not (1 <= len(words) <= 2 and words[0].isdigit()) or words[1:] not in ([], ["LAST"]):
            await self.push("501 5.5.4 Syntax: BDAT chunk-size [LAST]")
            return
        chunk = await self._reader.readexactly(int(words[0]))  # read even when refused
        self.wire.add(Event(self.number, "body", str(len(chunk))))
        assert self.envelope is not None
        fault = "503 5.5.1 Error: need RCPT command" if not self.envelope.rcpt_tos else None
        fault = fault or self._data_fault()
        if fault is not None:
            self._chunks = bytearray()
            await self.push(fault)
            return
        self._chunks += chunk
        if len(words) == 1:
            await self.push(f"250 2.0.0 {len(chunk)} octets received")
            return
        self.envelope.content = self.envelope.original_content = bytes(self._chunks)
        self._chunks = bytearray()
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)


@dataclass
class ChunkingServer(SmtpServer):
    """The fault server, offering ``extensions`` (by default PIPELINING and CHUNKING)."""

    extensions: tuple[str, ...] = ("PIPELINING", "CHUNKING")
    data_without_rcpt: bool = False
    data_command: Rule | None = None
    wire: Wire = field(default_factory=Wire)

    def _factory(self) -> SMTP:
        recorder = self.handler
        server = _ChunkingSMTP(
            recorder,
            hostname="smtp.test",
            ident="dispatch test server",
            tls_context=self.starttls,
            require_starttls=self.starttls is not None,
            authenticator=recorder.authenticate if recorder.auth else None,
            auth_require_tls=self.auth_require_tls,
            loop=self._loop,
        )
        server.extensions = self.extensions
        server.data_without_rcpt = self.data_without_rcpt
        server.data_command = self.data_command
        server.wire = self.wire
        with recorder.lock:
            server.number = recorder.connections
        return server
