"""The send journal: one SQLite file per issue send, the only code of dispatch that speaks SQL.

``file``: opening, creating and identifying the file (read-only for ``dispatch status``);
``lease``: one send at a time per journal; ``store``: the recipients and their states.
"""

from dispatch_mail.delivery.journal.deferrals import Deferred
from dispatch_mail.delivery.journal.file import APPLICATION_ID, SCHEMA_VERSION, STATES
from dispatch_mail.delivery.journal.lease import DEFAULT_STALE_AFTER, Holder
from dispatch_mail.delivery.journal.listing import ListSync
from dispatch_mail.delivery.journal.store import Journal, Row, SentReply

__all__ = [
    "APPLICATION_ID",
    "DEFAULT_STALE_AFTER",
    "Deferred",
    "SCHEMA_VERSION",
    "STATES",
    "Holder",
    "Journal",
    "ListSync",
    "Row",
    "SentReply",
]
