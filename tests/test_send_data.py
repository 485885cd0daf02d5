"""send_data() replaces aiosmtplib's data(): the server must receive exactly the same message."""

from __future__ import annotations

import asyncio
from smtpd import SmtpServer

import aiosmtplib
import pytest

from dispatch_mail.delivery.engine import send_data

MESSAGES = [
    b"Subject: plain\r\n\r\nbody\r\n",
    b"Subject: dots\r\n\r\n.starts with a dot\r\n..two dots\r\nmiddle . dot\r\n.\r\nlast line\r\n",
    b".X-Header-first: odd but legal as bytes\r\n\r\nbody without final newline",
    b"Subject: long\r\n\r\n" + b"=\r\n".join(b"." + b"x" * 70 for _ in range(2000)) + b"\r\n",
]


async def _send(port: int, data: bytes, use_ours: bool) -> None:
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=port, start_tls=False, use_tls=False, timeout=10
    )
    await client.connect()
    await client.mail("from@example.org")
    await client.rcpt("to@example.org")
    response = await (send_data(client, data, 10) if use_ours else client.data(data))
    assert response.code == 250
    await client.quit()


@pytest.mark.parametrize("data", MESSAGES, ids=["plain", "dots", "dot-first", "long"])
def test_the_server_receives_what_data_would_have_sent(data):
    with SmtpServer() as server:
        asyncio.run(_send(server.port, data, use_ours=False))
        asyncio.run(_send(server.port, data, use_ours=True))
        theirs, ours = (m.data for m in server.handler.messages)
    assert ours == theirs


def test_a_refusal_after_data_raises_like_data_does():
    from smtpd import reply_always

    with SmtpServer() as server:
        server.handler.fail("DATA", reply_always("554 5.6.0 rejected", {"to@example.org"}))
        with pytest.raises(aiosmtplib.SMTPDataError) as caught:
            asyncio.run(_send(server.port, MESSAGES[0], use_ours=True))
    assert caught.value.code == 554
