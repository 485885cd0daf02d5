"""The plan of a list send: what will happen, built once before anything is sent, never changed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

ESTIMATED_RATE_UNLIMITED = (
    1000.0  # messages/s we plan with when no rate is set (docs/performance.md)
)


@dataclass(frozen=True)
class SendPlan:
    """Everything the person sending is shown before confirming; the CLI words it."""

    list_label: str
    journal_path: Path
    relay: str
    concurrency: int
    rate: float | None
    counts: Mapping[str, int]
    excluded_total: int = 0
    exclusion_tally: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    recovered: int = 0
    recover_policy: str = "resend"
    new_send: bool = True
    removed_from_list: int = 0  # still to send when the send began, no longer in the list now
    deferred_released: int = 0  # deferred recipients due again, tried in this run
    deferred_next: float | None = None  # when the next deferred recipient not yet due is due

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def to_send(self) -> int:
        return self.counts.get("pending", 0)

    @property
    def estimated_seconds(self) -> float:
        return self.to_send / (self.rate or ESTIMATED_RATE_UNLIMITED)


def frozen_counts(counts: Mapping[str, int]) -> Mapping[str, int]:
    """A read-only copy, so a plan cannot drift from what was shown."""
    return MappingProxyType(dict(counts))
