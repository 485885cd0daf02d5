"""The rate limiter: a kept rate, a pause for everyone, halving on throttling, recovery with time.

The limiter runs on a virtual clock (tests/helpers/clock.py): its waits advance the
clock instead of the wall, so every figure below is exact, not measured.
"""

from __future__ import annotations

import asyncio

import pytest

from dispatch_mail.delivery.ratelimit import RateLimiter
from tests.helpers.clock import VirtualClock


def succeed(clock: VirtualClock, limiter: RateLimiter, n: int, every: float) -> None:
    """``n`` messages accepted ``every`` seconds apart, the last ``every`` ago: 1/every a second."""
    for _ in range(n):
        limiter.record_success()
        clock.advance(every)


def test_a_configured_rate_is_kept():
    clock = VirtualClock()
    limiter = clock.limiter(100.0, burst=1)

    async def scenario() -> None:
        for _ in range(21):
            await limiter.acquire()

    asyncio.run(scenario())
    assert clock.slept == pytest.approx(0.2)  # the first at once, then one every 10 ms


def test_a_burst_goes_at_once_then_the_rate_holds():
    clock = VirtualClock()
    limiter = clock.limiter(40.0, burst=4)

    async def scenario() -> list[float]:
        times = []
        for _ in range(8):
            await limiter.acquire()
            times.append(clock.now - 1000.0)
        return times

    assert asyncio.run(scenario()) == pytest.approx([0, 0, 0, 0, 0.025, 0.05, 0.075, 0.1])


def test_a_pause_holds_everyone_until_it_ends():
    clock = VirtualClock()
    limiter = clock.limiter(None, burst=4)
    assert limiter.free_now()
    limiter.throttle(0.2)
    assert not limiter.free_now()

    async def one() -> float:
        await limiter.acquire()
        return clock.now

    async def scenario() -> list[float]:
        return list(await asyncio.gather(one(), one(), one()))

    assert asyncio.run(scenario()) == pytest.approx([1000.2] * 3)
    assert limiter.free_now() and limiter.rate is None, "no rate to halve: the pause alone"


def test_throttling_halves_the_pace_really_kept():
    clock = VirtualClock()
    limiter = clock.limiter(None, burst=4)
    succeed(clock, limiter, 100, every=0.01)  # 100 messages/s against a fast relay
    limiter.throttle(0.05)
    assert limiter.rate == pytest.approx(50.0)
    assert limiter.paused_until == pytest.approx(clock.now + 0.05)


def test_a_configured_rate_halves_from_itself_when_the_pace_was_faster():
    clock = VirtualClock()
    limiter = clock.limiter(5.0, burst=1)
    limiter.throttle(0.0)
    assert limiter.rate == 2.5


def test_replies_during_a_pause_slow_the_send_down_once():
    clock = VirtualClock()
    limiter = clock.limiter(None, burst=4)
    succeed(clock, limiter, 100, every=0.01)
    for _ in range(4):  # four connections hear the same 421
        limiter.throttle(1.0)
    assert limiter.rate == pytest.approx(50.0)


def test_a_throttled_rate_recovers_with_calm_time():
    clock = VirtualClock()
    limiter = clock.limiter(None, burst=4)
    succeed(clock, limiter, 20, every=0.1)  # 10 messages/s
    limiter.throttle(0.0)
    assert limiter.rate == pytest.approx(5.0)
    clock.advance(10 * RateLimiter.RECOVERY_EVERY)
    asyncio.run(limiter.acquire())
    assert limiter.rate == pytest.approx(5.0 * 1.25**10)


def test_a_configured_rate_is_never_exceeded_when_recovering():
    clock = VirtualClock()
    limiter = clock.limiter(5.0, burst=1)
    limiter.throttle(0.0)
    clock.advance(100 * RateLimiter.RECOVERY_EVERY)
    asyncio.run(limiter.acquire())
    assert limiter.rate == 5.0


def test_an_unlimited_send_becomes_unlimited_again():
    clock = VirtualClock()
    limiter = clock.limiter(None, burst=1)
    succeed(clock, limiter, 20, every=0.001)  # 1,000 messages/s
    limiter.throttle(0.0)
    assert limiter.rate == pytest.approx(500.0)
    clock.advance(3 * RateLimiter.RECOVERY_EVERY)  # 500 * 1.25**3 ≈ 977: not yet
    asyncio.run(limiter.acquire())
    assert limiter.rate == pytest.approx(500 * 1.25**3)
    clock.advance(RateLimiter.RECOVERY_EVERY)  # ≈ 1,221, past UNLIMITED_AGAIN
    asyncio.run(limiter.acquire())
    assert limiter.rate is None


def test_no_recovery_during_a_pause():
    clock = VirtualClock()
    limiter = clock.limiter(10.0, burst=1)
    limiter.throttle(30.0)
    assert limiter.rate == 5.0
    clock.advance(10)  # inside the 30 s pause: the next turn comes when it ends
    asyncio.run(limiter.acquire())
    assert clock.now == pytest.approx(1030.0)
    assert limiter.rate == 5.0, "the time paused is not calm time"


def test_waiting_for_a_turn_ends_when_the_send_stops():
    clock = VirtualClock()
    limiter = RateLimiter(None, burst=1, clock=clock)  # real sleeps: the pause must be cut short

    async def scenario() -> tuple[bool, bool, bool]:
        stop = asyncio.Event()
        free = await limiter.wait_turn(stop)
        limiter.throttle(3600.0)
        waiting = asyncio.create_task(limiter.wait_turn(stop))
        await asyncio.sleep(0)
        stop.set()
        return free, await waiting, await limiter.wait_turn(stop)

    assert asyncio.run(scenario()) == (True, False, False)
