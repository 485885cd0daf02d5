"""How hard a send pushes the relay and when it gives up; what one run did."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from dispatch_mail.delivery.connections import OnRetry


@dataclass
class SendOptions:
    """How hard to push the relay, and when to give up on a recipient or on the send."""

    concurrency: int = 4
    rate: float | None = None  # messages per second, None = as fast as the relay takes them
    max_per_hour: int | None = None
    max_per_day: int | None = None
    max_attempts: int = 5
    retry_base: float = 5.0  # seconds before the first retry; doubles each attempt, with jitter
    retry_max: float = 600.0
    throttle_pause: float = 30.0  # pause of the whole send after a throttling reply
    # the same 5xx after DATA for this many recipients in a row: the message itself is refused
    # (the same count of 5xx at RCPT that blame us: the relay will not take our mail)
    abort_after_data_rejects: int = 5
    connect_attempts: int = 3  # tries to reach a relay that does not answer, then the send stops
    on_retry: OnRetry | None = None  # told of each retry to reach the relay, to show the user
    # a 4xx that outlasts max_attempts defers the recipient, due again after defer_retry
    # seconds (doubling), failed only when deferred for longer than defer_lifetime
    defer_retry: float = 15 * 60.0
    defer_lifetime: float = 120 * 3600.0


@dataclass
class SendSummary:
    """What this run did (the journal holds what every run did)."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0
    withdrawn: int = 0  # suppressed while the send ran: not sent
    possibly_duplicated: int = 0
    throttled: int = 0
    connections: int = 0
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    interrupted: bool = False
    stopped_reason: str | None = None

    @property
    def duration(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        return self.sent / self.duration if self.duration > 0 else 0.0
