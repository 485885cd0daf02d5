"""One rate limit for the whole send, shared by all its connections, that yields to throttling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class RateLimiter:
    """A global token bucket that halves on throttling replies and recovers slowly.

    ``clock`` and ``sleep`` are the monotonic clock and the way to wait: tests give
    a virtual clock, so that what the limiter waits for is exact, not measured.
    """

    RECOVERY_EVERY = 2.0  # seconds of calm after which a throttled rate grows by a quarter
    UNLIMITED_AGAIN = 1000.0  # a recovered rate above this, with no rate configured: no limit again

    def __init__(
        self,
        rate: float | None,
        burst: int,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ):
        self.configured = rate
        self.rate = rate
        self.burst = max(1, burst)
        self.tokens = float(self.burst)
        self._clock = clock
        self._sleep = sleep
        self.last = clock()
        self.paused_until = 0.0
        self._last_change = self.last
        self._measure_from = 0.0
        self.successes = 0
        self._lock = asyncio.Lock()
        self._recent: list[float] = []

    def free_now(self) -> bool:
        """True when a message may go without waiting: no rate set, no pause, nobody queued."""
        return self.rate is None and self._clock() >= self.paused_until and not self._lock.locked()

    async def wait_turn(self, stop: asyncio.Event) -> bool:
        """Wait for a turn unless ``stop`` is set first (a pause can last minutes); True: go."""
        if stop.is_set():
            return False
        if self.free_now():
            return True  # the common case costs no tasks
        turn = asyncio.ensure_future(self.acquire())
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({turn, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not turn.done():
                turn.cancel()
        return turn.done() and not turn.cancelled() and not stop.is_set()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                if now < self.paused_until:
                    await self._sleep(self.paused_until - now)
                    continue
                if self.rate is None:
                    return
                self._recover(now)
                if self.rate is None:
                    return
                self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
                self.last = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await self._sleep((1 - self.tokens) / self.rate)

    def _recover(self, now: float) -> None:
        """Grow a throttled rate with time as well as with successes.

        At a low rate successes are rare, so recovering only per success would leave a
        send that met a few throttling replies crawling for hours.
        """
        calm = now - max(self._last_change, self.paused_until)
        if self.rate is None or calm < self.RECOVERY_EVERY:
            return
        steps = min(int(calm // self.RECOVERY_EVERY), 64)
        self._last_change = now
        grown = self.rate * 1.25**steps
        if self.configured is not None:
            self.rate = min(self.configured, grown)
        else:
            self.rate = None if grown > self.UNLIMITED_AGAIN else grown

    def record_success(self) -> None:
        now = self._clock()
        self._recent.append(now)
        if len(self._recent) > 200:
            del self._recent[:100]
        self.successes += 1
        if self.rate is not None and self.successes % 50 == 0:
            ceiling = self.configured
            self.rate = self.rate * 1.1 if ceiling is None else min(ceiling, self.rate * 1.1)
            if ceiling is None and self.successes > 2000:
                self.rate = None  # back to unlimited after a long calm

    def throttle(self, pause: float) -> None:
        """Pause everyone, then go on at half the pace we kept: the relay asked us to slow down.

        The rate is measured over the span the recent successes really cover: a
        send that is 0.1 s old and has sent 50 messages went at about 500/s, not
        at 50/5 s = 10/s. Without successes to measure there is no rate to halve
        and the pause alone does the work (a repeated halving on no evidence
        would leave a long send crawling at the 0.2/s floor after a short blip).
        """
        now = self._clock()
        already_paused = now < self.paused_until
        # the pace we kept is measured from the end of the last pause, not across it
        recent = [t for t in self._recent if now - t < 5 and t >= self._measure_from]
        self.paused_until = max(self.paused_until, now + pause)
        self._measure_from = self.paused_until
        self.tokens = 0
        if already_paused:
            # replies that arrive during a pause answer messages sent before it: one slow-down
            # per episode, or N connections hearing the same 421 would halve the rate N times
            return
        if len(recent) >= 2:
            observed = len(recent) / max(now - recent[0], 0.01)
            current = observed if self.rate is None else min(self.rate, observed)
        elif self.rate is not None:
            current = self.rate
        else:
            return
        self.rate = max(0.2, current / 2)
        self._last_change = self.paused_until
        self.successes = 0
        self._recent.clear()  # the next throttle measures the new pace, not the old one
