"""The suppression store's interface: one set of rules over SQLite or PostgreSQL.

Everything that reads or writes suppressions goes through ``SuppressionStore``:
the send (before it starts and before each batch), `dispatch serve` (one-click,
the confirmation page, the webhooks), `dispatch bounces`, and `dispatch
suppressions`. Addresses are compared by ``dedupe_key``, exactly as the list and
the journal compare them. Any failure of the database becomes a StoreError in
one line that names the store (never its password).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from types import TracebackType

from dispatch_mail.suppression.records import (
    Outcome,
    Reason,
    ReturnEvent,
    SoftBouncePolicy,
    Suppression,
)


class SuppressionStore(abc.ABC):
    """Who must not be mailed, and why; shared by every process of one newsletter."""

    location: str  # how the store is shown to the user: a path, or a URL with no password

    # ------------------------------------------------------------------ reading
    @abc.abstractmethod
    def suppressed(
        self, list_name: str, emails: Iterable[str] | None = None
    ) -> dict[str, Suppression]:
        """dedupe_key → the suppression that bars it from ``list_name`` (its own or ALL_LISTS).

        With ``emails``, only those addresses are looked up (a batch before it is sent);
        without, every suppression that applies to the list (the start of a send).
        """

    @abc.abstractmethod
    def entries(
        self, *, reason: Reason | None = None, list_name: str | None = None
    ) -> Iterator[Suppression]:
        """Every suppression (of one reason, of one list and ALL_LISTS), oldest first."""

    # ------------------------------------------------------------------ writing
    @abc.abstractmethod
    def add(self, suppression: Suppression) -> bool:
        """Record one suppression; False when the address was already suppressed on that list."""

    @abc.abstractmethod
    def remove(self, email: str, list_name: str | None = None) -> int:
        """Lift the address's suppressions (on one list; None: on every list); how many."""

    @abc.abstractmethod
    def apply(self, event: ReturnEvent, policy: SoftBouncePolicy) -> Outcome:
        """Turn one event into what it means, once per evidence, in one transaction.

        unsubscribe → suppressed on its list ("unsubscribed"); complaint → on every list;
        hard-bounce → on every list; soft-bounce → counted, and on every list once
        ``policy.limit`` fall within ``policy.window_days``; resubscribe → the list's
        "unsubscribed" suppression lifted (never a bounce's or a complaint's).
        An evidence applied before changes nothing (``Outcome.duplicate``).
        """

    @abc.abstractmethod
    def seen(self, evidence: str) -> bool:
        """Whether an event with this evidence was applied already."""

    # ------------------------------------------------------------------ lifetime
    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> SuppressionStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
