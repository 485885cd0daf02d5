"""send_data() replaces aiosmtplib's data(): the server must receive exactly the same message.

Each test also checks that our fast path sent it: a fallback to aiosmtplib's own
data() would pass the comparison trivially and hide that the fast path broke.
"""

from __future__ import annotations

import asyncio

import aiosmtplib
import pytest

from dispatch_mail.delivery.smtp import send_data
from tests.helpers.smtp_server import SmtpServer, reply_always

MESSAGES = [
    b"Subject: plain\r\n\r\nbody\r\n",
    b"Subject: dots\r\n\r\n.starts with a dot\r\n..two dots\r\nmiddle . dot\r\n.\r\nlast line\r\n",
    b".X-Header-first: odd but legal as bytes\r\n\r\nbody without final newline",
    b"Subject: long\r\n\r\n" + b"=\r\n".join(b"." + b"x" * 70 for _ in range(2000)) + b"\r\n",
]


async def _connected(port: int) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=port, start_tls=False, use_tls=False, timeout=10
    )
    await client.connect()
    return client


async def _theirs(port: int, data: bytes) -> None:
    client = await _connected(port)
    await client.mail("from@example.org")
    await client.rcpt("to@example.org")
    assert (await client.data(data)).code == 250
    await client.quit()


async def _ours(client: aiosmtplib.SMTP, data: bytes, to: str = "to@example.org") -> bool:
    """One transaction with send_data; True when the fast path sent it."""
    await client.mail("from@example.org")
    await client.rcpt(to)
    reply = await send_data(client, data, 10)
    assert reply.code == 250
    return reply.fast


@pytest.mark.parametrize("data", MESSAGES, ids=["plain", "dots", "dot-first", "long"])
def test_the_server_receives_what_data_would_have_sent(data):
    async def ours(port: int) -> bool:
        client = await _connected(port)
        fast = await _ours(client, data)
        await client.quit()
        return fast

    with SmtpServer() as server:
        asyncio.run(_theirs(server.port, data))
        assert asyncio.run(ours(server.port)), "aiosmtplib's data() sent it, not the fast path"
        theirs, ours_ = (m.data for m in server.handler.messages)
    assert ours_ == theirs


def test_a_refusal_after_data_raises_like_data_does_and_the_connection_goes_on():
    async def scenario(port: int) -> tuple[bool, int, bool]:
        client = await _connected(port)
        first = await _ours(client, MESSAGES[0], to="ok@example.org")
        with pytest.raises(aiosmtplib.SMTPDataError) as caught:
            await _ours(client, MESSAGES[0])
        await client.rset()
        after = await _ours(client, MESSAGES[1], to="ok@example.org")
        await client.quit()
        return first, caught.value.code, after

    with SmtpServer() as server:
        server.handler.fail("DATA", reply_always("554 5.6.0 rejected", {"to@example.org"}))
        assert asyncio.run(scenario(server.port)) == (True, 554, True)
        assert [m.recipient for m in server.handler.messages] == ["ok@example.org"] * 2
