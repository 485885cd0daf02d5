"""The DKIM signing process (delivery/signing.py, mail/signing_worker.py): a real child
process signing with real keys, compared with OpenSSL in this process."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dispatch_mail.delivery.signing import SigningProcess
from dispatch_mail.errors import DeliveryError
from dispatch_mail.mail.dkim import PendingSignature
from dispatch_mail.mail.dkim_keys import SigningKey, load_key


@pytest.fixture(scope="module")
def keys() -> list[SigningKey]:
    out = []
    for selector in ("s2026", "s2027"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        out.append(load_key("example.org", selector, pem, "dkim.key_file", []))
    return out


def pending(n: int) -> list[PendingSignature]:
    return [
        PendingSignature(i % 2, b"", hashlib.sha256(str(i).encode()).digest()) for i in range(n)
    ]


def test_the_worker_signs_exactly_as_openssl_in_this_process(keys):
    async def scenario():
        signing = await SigningProcess.start(keys)
        assert signing is not None, "the worker started"
        try:
            # many at once, as 16 connections ask: answers come back to the right asker
            batches = await asyncio.gather(*(signing.sign(pending(5)) for _ in range(8)))
        finally:
            await signing.close()
        return batches

    expected = [keys[p.key].sign_digest(p.digest) for p in pending(5)]
    assert all(batch == expected for batch in asyncio.run(scenario()))


def test_a_worker_that_dies_fails_the_signature_with_a_clear_error(keys):
    async def scenario():
        signing = await SigningProcess.start(keys)
        assert signing is not None
        try:
            signing._proc.kill()
            await signing._proc.wait()
            with pytest.raises(DeliveryError, match="DKIM signing stopped") as first:
                await signing.sign(pending(1))
            with pytest.raises(DeliveryError, match="nothing unsigned was sent"):
                await signing.sign(pending(1))  # and every later one, at once
        finally:
            await signing.close()
        return str(first.value)

    assert "exit status -9" in asyncio.run(scenario())


def test_ctrl_c_is_left_to_the_send(keys):
    """The send finishes the messages in flight on the first Ctrl-C: their signatures
    must still come, so the worker ignores SIGINT (and runs in a session of its own)."""

    async def scenario():
        signing = await SigningProcess.start(keys)
        assert signing is not None
        try:
            assert os.getsid(signing._proc.pid) != os.getsid(0)
            os.kill(signing._proc.pid, signal.SIGINT)
            return await signing.sign(pending(2))
        finally:
            await signing.close()

    assert asyncio.run(scenario()) == [keys[p.key].sign_digest(p.digest) for p in pending(2)]
