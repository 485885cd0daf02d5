"""DKIM's RSA for the send engine, done by a process of its own (mail/signing_worker.py).

The event loop renders and canonicalizes each message and hashes it; the worker
process turns each digest into a signature on the other core. The loop never
waits on a thread for the GIL, which is what held signed sends to a third of
unsigned ones. When the worker cannot be started, the loop signs itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING

from dispatch_mail.errors import DeliveryError
from dispatch_mail.mail.signing_worker import ANSWER, READY, REQUEST, key_frames

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dispatch_mail.mail.dkim import PendingSignature
    from dispatch_mail.mail.dkim_keys import SigningKey

STARTUP_TIMEOUT = 60.0  # importing cryptography on a slow, busy machine


class SigningProcess:
    """Signs digests with the send's DKIM keys in a child process; ``sign`` is awaitable.

    Use ``await SigningProcess.start(keys)``, then ``close()`` when the send ends.
    """

    def __init__(self, proc: asyncio.subprocess.Process):
        self._proc = proc
        self._waiting: dict[int, asyncio.Future[bytes]] = {}
        self._next_id = 0
        self._failure: DeliveryError | None = None
        self._reader = asyncio.ensure_future(self._read_answers())

    @classmethod
    async def start(cls, keys: Sequence[SigningKey]) -> SigningProcess | None:
        """The running worker, or None when it cannot start (the caller signs itself)."""
        from cryptography.hazmat.primitives import serialization

        ders = [
            k.rsa.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            for k in keys
        ]
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "dispatch_mail.mail.signing_worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the send, which decides
            )
        except OSError:
            return None
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(key_frames(ders))
            await proc.stdin.drain()
            ready = await asyncio.wait_for(proc.stdout.readexactly(1), STARTUP_TIMEOUT)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            ready = b""
        if ready != READY:
            await _stop(proc)
            return None
        return cls(proc)

    async def sign(self, pending: Sequence[PendingSignature]) -> list[bytes]:
        """Each pending signature's RSA signature, in order."""
        if self._failure is not None:
            raise self._failure
        assert self._proc.stdin is not None
        loop = asyncio.get_running_loop()
        futures = []
        for p in pending:
            self._next_id = (self._next_id + 1) & 0xFFFFFFFF
            future: asyncio.Future[bytes] = loop.create_future()
            self._waiting[self._next_id] = future
            futures.append(future)
            self._proc.stdin.write(REQUEST.pack(self._next_id, p.key, p.digest))
        try:
            await self._proc.stdin.drain()
        except OSError:  # the reader tells why, with the exit status
            pass
        return list(await asyncio.gather(*futures))

    async def _read_answers(self) -> None:
        assert self._proc.stdout is not None
        try:
            while True:
                ident, size = ANSWER.unpack(await self._proc.stdout.readexactly(ANSWER.size))
                signature = await self._proc.stdout.readexactly(size)
                future = self._waiting.pop(ident, None)
                if future is not None and not future.done():
                    future.set_result(signature)
        except (OSError, asyncio.IncompleteReadError):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), 1)  # for its exit status
            self._fail()

    def _fail(self) -> None:
        code = self._proc.returncode
        self._failure = DeliveryError(
            "DKIM signing stopped: its worker process ended"
            + (f" (exit status {code})" if code is not None else "")
            + "; nothing unsigned was sent: run the same command again"
        )
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(self._failure)
        self._waiting.clear()

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await _stop(self._proc)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Close the worker's stdin (it ends by itself); kill it if it does not."""
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), 5)
    except TimeoutError:
        proc.kill()
        await proc.wait()
