"""A virtual clock for the rate limiter: its waits advance the clock, not the wall.

What the limiter waited is then exact, not measured, and a test of a pause or a
rate takes no real time.
"""

from __future__ import annotations

import asyncio

from dispatch_mail.delivery.ratelimit import RateLimiter

RESOLUTION = 1e-9  # seconds: time.monotonic()'s tick on Linux


class VirtualClock:
    """A monotonic clock that moves only when the limiter sleeps (or a test says so).

    The limiter sleeps only while it holds its lock, so sleeps never overlap and
    adding them up is what a real clock would show.
    """

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # a real sleep takes at least a tick of the clock: without it, a wait shorter than the
        # clock's resolution at this value would leave the time where it is
        self.advance(max(seconds, RESOLUTION))
        await asyncio.sleep(0)  # let the other tasks run, as a real sleep would

    def advance(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        self.slept += max(0.0, seconds)

    def limiter(self, rate: float | None, burst: int) -> RateLimiter:
        return RateLimiter(rate, burst, clock=self, sleep=self.sleep)
