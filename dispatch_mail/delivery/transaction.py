"""One SMTP transaction for one recipient, in as few round trips as the relay allows.

A relay 50 ms away costs 50 ms per round trip, and one command per round trip
is four per message (MAIL, RCPT, DATA, the final "."). What the relay's EHLO
offers decides how many we pay:

- PIPELINING (RFC 2920): MAIL, RCPT and DATA go in one write and their three
  replies are read in order, then the body: two round trips.
- CHUNKING (RFC 3030) as well: MAIL, RCPT and ``BDAT <n> LAST`` with the body,
  unstuffed, in one write: one round trip.
- Neither: one command at a time, as before (CHUNKING alone saves DATA's 354).

Every reply is read and checked in order (RFC 2920 3.1), and the refusal the
recipient is recorded with is the first one, from the phase that gave it. After
a refused MAIL or RCPT the body is never sent: DATA's 503/554 ends it there. A
server that answers 354 anyway, with no recipient accepted, gets a lone "."
(RFC 2920 3.1: "the client SMTP should send a single dot"): an empty message to
nobody, which it refuses. One that accepted the RCPT after refusing MAIL would
deliver that empty message, so there the connection is closed instead: a
transaction cut before its "." is never delivered (RFC 5321 4.1.1.4). With
BDAT the server reads and discards the chunk (RFC 3030 3.2).

:class:`Attempt` tells the engine where a failure happened: ``phase`` is the
step whose reply was awaited or refused, ``body_sent`` whether the message had
left us (then a lost connection may hide an accepted message: RFC 1047). With
BDAT the body leaves with the commands, so any drop after that write is unsure.

Replies are read by our own bounded reader, each within the command timeout:
aiosmtplib's reader parses one reply per arrival of data and drops what comes
while a parsed reply waits to be picked up, so pipelined replies arriving close
together could be lost. MAIL is sent without BODY= or SMTPUTF8, as before: the
messages are 7-bit (quoted-printable) and the addresses ASCII.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dispatch_mail.delivery.smtp import DataReply, dot_stuffed, send_data

if TYPE_CHECKING:
    import aiosmtplib
    from aiosmtplib.protocol import SMTPProtocol
    from aiosmtplib.response import SMTPResponse

REPLY_MAX = 32 * 1024  # octets of one reply, continuation lines included
LINE_MAX = 8 * 1024  # octets of one reply line (RFC 5321 asks servers for at most 512)
_INTERNALS = ("_command_lock", "_response_waiter", "_buffer", "write")


@dataclass
class Attempt:
    """How far one transaction got, for the engine to name the phase of a failure."""

    phase: str = "mail"  # "mail", "rcpt" or "data": the reply awaited, or the one that refused
    body_sent: bool = False  # the message has left us: a drop now leaves its fate unknown


async def transact(
    client: aiosmtplib.SMTP,
    sender: str,
    recipient: str,
    data: bytes,
    timeout: float,
    attempt: Attempt,
    *,
    pipelining: bool = True,
) -> DataReply:
    """Send ``data`` (CRLF-only bytes) from ``sender`` to ``recipient``; the final 250.

    ``pipelining``: use PIPELINING and CHUNKING when the server offers them.

    Raises aiosmtplib's SMTPSenderRefused, SMTPRecipientRefused or SMTPDataError for
    a refusal (``attempt.phase`` names it), SMTPResponseException with code -1 for a
    reply that cannot be read, and SMTPServerDisconnected or SMTPTimeoutError when no
    reply came; after those the client is closed.
    """
    import aiosmtplib

    if client.is_ehlo_or_helo_needed:  # what aiosmtplib's mail() would do first
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            if not client.is_connected:
                raise
            await client.helo()
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    lock = getattr(protocol, "_command_lock", None)
    if not isinstance(lock, asyncio.Lock) or not all(hasattr(protocol, n) for n in _INTERNALS):
        return await _one_by_one(client, sender, recipient, data, timeout, attempt)
    envelope = _Envelope(sender, recipient)
    chunking = pipelining and client.supports_extension("chunking")
    pipelining = pipelining and client.supports_extension("pipelining")
    async with lock:
        reader = _ReplyReader(protocol, timeout)
        try:
            if pipelining:
                return await _pipelined(reader, envelope, data, chunking, attempt)
            return await _stepwise(reader, envelope, data, chunking, attempt)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
            client.close()
            raise
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code < 0:  # an unreadable reply: nothing after it can be trusted
                client.close()
            raise
        finally:
            reader.detach()


async def _pipelined(
    reader: _ReplyReader, envelope: _Envelope, data: bytes, chunking: bool, attempt: Attempt
) -> DataReply:
    import aiosmtplib

    if chunking:
        body = data if data.endswith(b"\r\n") else data + b"\r\n"
        reader.write(envelope.commands + b"BDAT %d LAST\r\n" % len(body) + body)
        attempt.body_sent = True
    else:
        reader.write(envelope.commands + b"DATA\r\n")
    refusal: aiosmtplib.SMTPResponseException | None = None
    replies: dict[str, SMTPResponse] = {}
    for phase in ("mail", "rcpt", "data"):  # every reply is read, even after a refusal
        if refusal is None:
            attempt.phase = phase  # the reply awaited; after a refusal, the refusing one
        try:
            replies[phase] = reply = await reader.next()
        except aiosmtplib.SMTPException:
            if refusal is None:
                raise
            reader.drop()  # the server answered, then went: its answer stands
            break
        if refusal is None:
            refusal = envelope.refusal(phase, reply, chunking)
    if refusal is not None:
        start = replies.get("data")
        if not chunking and attempt.phase != "data" and start is not None and start.code == 354:
            if envelope.refusal("rcpt", replies["rcpt"], False) is not None:
                await _end_empty(reader)
            else:
                reader.drop()  # a "." would deliver an empty message to that recipient
        raise refusal
    if chunking:
        return DataReply(replies["data"].code, replies["data"].message, fast=True)
    return await _body(reader, data, attempt)


async def _stepwise(
    reader: _ReplyReader, envelope: _Envelope, data: bytes, chunking: bool, attempt: Attempt
) -> DataReply:
    """One command at a time: the relay does not offer PIPELINING."""
    for phase, command in (("mail", envelope.mail), ("rcpt", envelope.rcpt)):
        attempt.phase = phase
        reader.write(command)
        refusal = envelope.refusal(phase, await reader.next(), False)
        if refusal is not None:
            raise refusal
    attempt.phase = "data"
    if chunking:
        body = data if data.endswith(b"\r\n") else data + b"\r\n"
        reader.write(b"BDAT %d LAST\r\n" % len(body) + body)
        attempt.body_sent = True
        reply = await reader.next()
        refusal = envelope.refusal("data", reply, True)
        if refusal is not None:
            raise refusal
        return DataReply(reply.code, reply.message, fast=True)
    reader.write(b"DATA\r\n")
    refusal = envelope.refusal("data", await reader.next(), False)
    if refusal is not None:
        raise refusal
    return await _body(reader, data, attempt)


async def _body(reader: _ReplyReader, data: bytes, attempt: Attempt) -> DataReply:
    """After DATA's 354: the message, dot-stuffed, and the final "."; its 250."""
    import aiosmtplib

    attempt.phase = "data"
    reader.write(dot_stuffed(data) + b".\r\n")
    attempt.body_sent = True
    reply = await reader.next()
    if reply.code != 250:
        raise aiosmtplib.SMTPDataError(reply.code, reply.message)
    return DataReply(reply.code, reply.message, fast=True)


async def _end_empty(reader: _ReplyReader) -> None:
    """A 354 after a refused MAIL or RCPT: end the empty message with a lone "." (RFC 2920)."""
    import aiosmtplib

    try:
        reader.write(b".\r\n")
        await reader.next()  # a refusal, as there is no recipient; nothing to record
    except aiosmtplib.SMTPException:
        reader.drop()


class _Envelope:
    """MAIL FROM and RCPT TO as aiosmtplib's mail() and rcpt() send them, and their refusals."""

    def __init__(self, sender: str, recipient: str) -> None:
        self.sender, self.recipient = sender, recipient
        self.mail = b"MAIL FROM:" + _address(sender) + b"\r\n"
        self.rcpt = b"RCPT TO:" + _address(recipient) + b"\r\n"
        self.commands = self.mail + self.rcpt

    def refusal(
        self, phase: str, reply: SMTPResponse, chunking: bool
    ) -> aiosmtplib.SMTPResponseException | None:
        """The error for a reply that is not its phase's success, as aiosmtplib raises it."""
        import aiosmtplib

        if phase == "mail":
            if reply.code == 250:
                return None
            return aiosmtplib.SMTPSenderRefused(reply.code, reply.message, self.sender)
        if phase == "rcpt":
            if reply.code in (250, 251):
                return None
            return aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, self.recipient)
        if reply.code == (250 if chunking else 354):
            return None
        return aiosmtplib.SMTPDataError(reply.code, reply.message)


def _address(address: str) -> bytes:
    """``<address>``, as aiosmtplib quotes it; control characters refused, as it refuses them."""
    from aiosmtplib.email import quote_address

    quoted = quote_address(address).encode("ascii")
    if any(byte < 0x20 or byte == 0x7F for byte in quoted):
        raise ValueError("an address contains a prohibited control character")
    return quoted


async def _one_by_one(
    client: aiosmtplib.SMTP,
    sender: str,
    recipient: str,
    data: bytes,
    timeout: float,
    attempt: Attempt,
) -> DataReply:
    """aiosmtplib's own commands, when its internals are not the ones we know."""
    attempt.phase = "mail"
    await client.mail(sender, timeout=timeout)
    attempt.phase = "rcpt"
    await client.rcpt(recipient, timeout=timeout)
    attempt.phase = "data"
    attempt.body_sent = True  # send_data does not say when its body left: assume it did
    return await send_data(client, data, timeout)


class _ReplyReader:
    """The replies of one connection, in order, while it holds the command lock.

    Takes the connection's incoming bytes from aiosmtplib's reader for the time of
    one transaction. What arrives is kept until asked for, however replies are cut
    into packets; one reply may hold at most REPLY_MAX octets, so a server that
    streams garbage costs a clean error, not memory. The loss of the connection is
    seen through aiosmtplib's own response future, which it fails on EOF or loss.
    """

    def __init__(self, protocol: SMTPProtocol, timeout: float) -> None:
        self.protocol = protocol
        self.timeout = timeout
        self.buffer = bytearray(protocol._buffer)  # anything aiosmtplib kept, first
        del protocol._buffer[:]
        self.replies: deque[SMTPResponse] = deque()
        self.failure: Exception | None = None
        self.wake: asyncio.Future[None] | None = None
        setattr(protocol, "data_received", self.feed)  # noqa: B010 (the instance's, for now)

    def detach(self) -> None:
        """Give the connection's bytes back to aiosmtplib."""
        if "data_received" in vars(self.protocol):
            delattr(self.protocol, "data_received")

    def write(self, data: bytes) -> None:
        self.protocol.write(data)

    def drop(self) -> None:
        """The stream can no longer be trusted: close it."""
        transport = self.protocol.transport
        if transport is not None:
            transport.close()

    def feed(self, data: bytes) -> None:
        if self.failure is not None:
            return
        self.buffer += data
        try:
            self._parse()
        except Exception as exc:  # noqa: BLE001 (kept for next(), which raises it)
            self.failure = exc
            del self.buffer[:]
        if self.wake is not None and not self.wake.done() and (self.replies or self.failure):
            self.wake.set_result(None)

    def _parse(self) -> None:
        from aiosmtplib import SMTPResponseException
        from aiosmtplib.response import SMTPResponse

        while True:
            offset, complete, code = 0, False, b""
            lines: list[bytes] = []
            while not complete:
                end = self.buffer.find(b"\n", offset)
                if end == -1:
                    break
                line = bytes(self.buffer[offset : end + 1])
                if len(line) > LINE_MAX:
                    raise SMTPResponseException(-1, f"a reply line of over {LINE_MAX} octets")
                code = line[:3]
                if not code.isdigit():
                    text = line[:80].decode("ascii", "replace").strip()
                    raise SMTPResponseException(-1, f"Malformed SMTP response line: {text}")
                lines.append(line[4:].strip(b" \t\r\n"))
                offset = end + 1
                if offset > REPLY_MAX:
                    raise SMTPResponseException(-1, f"a reply of over {REPLY_MAX} octets")
                complete = line[3:4] != b"-"
            if not complete:
                if len(self.buffer) > REPLY_MAX:
                    raise SMTPResponseException(-1, f"a reply of over {REPLY_MAX} octets")
                return
            del self.buffer[:offset]
            message = b"\n".join(lines).decode("utf-8", "surrogateescape")
            self.replies.append(SMTPResponse(int(code), message))

    async def next(self) -> SMTPResponse:
        """The next reply, within the command timeout."""
        import aiosmtplib

        lost = self.protocol._response_waiter
        if not self.replies and self.failure is None:
            if lost is None:
                raise aiosmtplib.SMTPServerDisconnected("Connection lost")
            self.wake = asyncio.get_running_loop().create_future()
            try:
                done, _ = await asyncio.wait(
                    (self.wake, lost), timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                self.wake = None
            if not done:
                raise aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response")
        if self.replies:
            return self.replies.popleft()
        if self.failure is not None:
            raise self.failure
        assert lost is not None
        lost.result()  # raises SMTPServerDisconnected
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
