"""The suppression store: who must not be mailed and why, in SQLite or a shared PostgreSQL.

``records``: what it holds and the events that change it; ``base``: the interface every
reader and writer uses; ``open_store`` picks the backend (DISPATCH_DATABASE_URL, else the
project's SQLite file). The backends themselves are imported only when opened.
"""

from dispatch_mail.suppression.base import SuppressionStore
from dispatch_mail.suppression.opening import DATABASE_URL_VARIABLE, open_store
from dispatch_mail.suppression.records import (
    ALL_LISTS,
    EVENT_KINDS,
    REASONS,
    SOURCES,
    WEBHOOK_SOURCE,
    EventKind,
    Outcome,
    Reason,
    ReturnEvent,
    SoftBouncePolicy,
    Suppression,
)

__all__ = [
    "ALL_LISTS",
    "DATABASE_URL_VARIABLE",
    "EVENT_KINDS",
    "REASONS",
    "SOURCES",
    "WEBHOOK_SOURCE",
    "EventKind",
    "Outcome",
    "Reason",
    "ReturnEvent",
    "SoftBouncePolicy",
    "Suppression",
    "SuppressionStore",
    "open_store",
]
