"""The rate limiter slows down on throttling replies and recovers with time, not only with successes."""

import time

from dispatch_mail.delivery.engine import RateLimiter


def test_a_throttled_rate_recovers_with_calm_time():
    limiter = RateLimiter(rate=None, burst=4)
    for _ in range(20):
        limiter.record_success()
    limiter.throttle(0.0)
    low = limiter.rate
    assert low is not None and low >= 0.2
    now = time.monotonic()
    limiter._recover(now + 10 * RateLimiter.RECOVERY_EVERY)
    assert limiter.rate is None or limiter.rate > low * 9  # 1.25 ** 10 ≈ 9.3


def test_a_configured_rate_is_never_exceeded_when_recovering():
    limiter = RateLimiter(rate=5.0, burst=1)
    limiter.throttle(0.0)
    assert limiter.rate == 2.5
    limiter._recover(time.monotonic() + 100 * RateLimiter.RECOVERY_EVERY)
    assert limiter.rate == 5.0


def test_an_unlimited_send_becomes_unlimited_again():
    limiter = RateLimiter(rate=None, burst=1)
    limiter.rate = 900.0
    limiter._recover(time.monotonic() + 3 * RateLimiter.RECOVERY_EVERY)
    assert limiter.rate is None


def test_no_recovery_during_a_pause():
    limiter = RateLimiter(rate=10.0, burst=1)
    limiter.throttle(30.0)
    rate = limiter.rate
    limiter._recover(time.monotonic() + 10)  # still inside the 30 s pause
    assert limiter.rate == rate
