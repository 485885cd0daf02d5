"""Opening connections to the relay: side by side while it answers, one careful probe when not.

A relay that does not answer costs a connect timeout per try. Were every connection
of the send to try on its own, N connections would spend N timeouts and count N
failures for one outage, and the person sending would see nothing meanwhile. So
once a connection fails, one worker tries again with backoff, reporting each retry
through a callback, and the others wait for the outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dispatch_mail.delivery.smtp import SmtpSettings, connect, unreachable_reason
from dispatch_mail.errors import DeliveryError

if TYPE_CHECKING:
    import aiosmtplib


@dataclass(frozen=True)
class RelayRetry:
    """The relay did not answer; the send waits ``delay`` seconds, then tries again."""

    relay: str  # host:port
    attempt: int  # the attempt that failed, from 1
    attempts: int  # how many are made before the send stops
    delay: float
    reason: str

    def __str__(self) -> str:
        return (
            f"relay {self.relay} not answering ({self.reason}; attempt {self.attempt} of "
            f"{self.attempts}), retrying in {self.delay:g} s"
        )


OnRetry = Callable[[RelayRetry], None]


def connect_failures() -> tuple[type[BaseException], ...]:
    """What a connection attempt raises when the relay did not answer (worth another try)."""
    import aiosmtplib

    return (TimeoutError, OSError, aiosmtplib.SMTPException)


class RelayConnector:
    """Opens the send's connections; after ``attempts`` failed tries in a row, gives up for good.

    ``stop`` ends a wait or a pending connection at once (Ctrl-C while the relay is silent);
    ``live`` counts the send's connections that are open now.
    """

    def __init__(
        self,
        settings: SmtpSettings,
        stop: asyncio.Event,
        *,
        attempts: int = 3,
        retry_base: float = 5.0,
        retry_max: float = 600.0,
        on_retry: OnRetry | None = None,
        live: Callable[[], int] = lambda: 0,
    ):
        self.settings = settings
        self.stop = stop
        self.attempts = max(1, attempts)
        self.retry_base, self.retry_max = retry_base, retry_max
        self.on_retry = on_retry
        self.opened = 0
        self.live = live
        self._answers = False  # the last attempt succeeded: connections may open side by side
        self._probing = asyncio.Lock()
        self._gave_up: DeliveryError | None = None

    async def open(self) -> aiosmtplib.SMTP | None:
        """A new connection, or None: not now (the send stops, or the relay takes no more).

        Raises DeliveryError when the relay refuses us or cannot be reached.
        """
        failure: BaseException | None = None
        while self._gave_up is None and not self.stop.is_set():
            if self._answers:
                try:
                    return await self._connect()
                except connect_failures() as exc:
                    self._answers = False
                    failure = exc  # the probe counts it as its first attempt
            async with self._probing:
                if self._gave_up is None and not self._answers and not self.stop.is_set():
                    return await self._probe(failure)
        if self._gave_up is not None:
            raise self._gave_up
        return None

    async def _probe(self, failure: BaseException | None) -> aiosmtplib.SMTP | None:
        """Try until a connection opens, or ``attempts`` tries in a row found nobody answering.

        While other connections of the send are open, the relay is up but refuses one
        more (a per-client limit): this worker waits a little and gives its row back,
        for the connections that work to take.
        """
        attempt = 0
        while True:
            if failure is None:
                try:
                    client = await self._connect()
                except connect_failures() as exc:
                    failure = exc
                else:
                    self._answers = client is not None
                    return client
            reason = unreachable_reason(failure, self.settings)
            failure = None
            if self.live() > 0:
                await self._stopped_within(min(self.retry_max, self.retry_base))
                return None
            attempt += 1
            if attempt >= self.attempts:
                tries = f"{attempt} attempt{'s' if attempt != 1 else ''}"
                self._gave_up = DeliveryError(
                    f"cannot reach {self.settings.describe()}: {reason} ({tries}); "
                    "nothing is lost: run the same command again later"
                )
                raise self._gave_up
            delay = min(self.retry_max, self.retry_base * 2 ** (attempt - 1))
            if self.on_retry is not None:
                self.on_retry(
                    RelayRetry(self.settings.address, attempt, self.attempts, delay, reason)
                )
            if await self._stopped_within(delay):
                return None

    async def _connect(self) -> aiosmtplib.SMTP | None:
        try:
            client = await self._until_stopped(connect(self.settings))
        except DeliveryError as exc:  # refused, not unanswered: trying again cannot help
            self._gave_up = exc
            raise
        if client is not None:
            self.opened += 1
        return client

    async def _until_stopped(self, work: Awaitable[aiosmtplib.SMTP]) -> aiosmtplib.SMTP | None:
        """``work``'s connection, or None when ``stop`` is set first (the work is then cancelled).

        One cancel is not always enough: Python 3.11's ``wait_for`` swallows a cancel that
        lands as its inner future completes (the TCP connect here), and the greeting's read
        would then wait out the whole timeout. So cancel again until the work has stopped,
        and close a connection that opened regardless.
        """
        task = asyncio.ensure_future(work)
        stopped = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.05)  # connect() closes its own client
        if task.cancelled():
            return None
        client = task.result()  # raises the work's own error
        if self.stop.is_set():
            client.close()  # opened as the send stopped: nothing goes out on it
            return None
        return client

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True
