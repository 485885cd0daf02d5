"""Return mail for the bounce tests: the corpus filled in from a real journal, in real mailboxes.

Each corpus file (tests/corpus/bounces/*.eml, described in its README.md) is
written as its MTA writes it, with placeholders for what only a send knows:
``{recipient}``, ``{message_id}`` (the journal row's), ``{verp}`` (the VERP
return path of that row) and ``{token}`` (the sealed unsubscribe token). The
journal is made by the real Journal class, or by a real `dispatch send`.
"""

from __future__ import annotations

import mailbox
from dataclasses import dataclass
from pathlib import Path

from dispatch_mail.delivery.audience import Recipient
from dispatch_mail.delivery.journal import Journal, Row
from dispatch_mail.mail.tokens import TokenKeys
from dispatch_mail.mail.verp import make_verp_token
from tests.helpers.project import REPO
from tests.helpers.send import SECRET

CORPUS = REPO / "tests" / "corpus" / "bounces"
ISSUE = "one"
LIST = "subscribers"
RETURN_PATH = "bounces+{token}@example.org"
RETURN_PATH_SETTING = f'return_path: "{RETURN_PATH}"\n'
KEYS = TokenKeys.from_secrets(SECRET.encode())


@dataclass(frozen=True)
class Expected:
    """What one corpus message must be classified as, and what a run must report for it."""

    file: str
    recipient: str  # the journal row the message is about ('' for none)
    kind: str
    outcome: str  # recorded, unmatched, ignored, unknown
    shown: str  # text the report line must hold


EXPECTED = [
    Expected("postfix-user-unknown.eml", "alice@example.com", "hard-bounce", "recorded",
             "hard-bounce 5.1.1 alice@example.com (one, list subscribers)"),
    Expected("exim-mail-delivery-failed.eml", "bob@example.com", "hard-bounce", "recorded",
             "hard-bounce 5.1.1 bob@example.com (one, list subscribers)"),
    Expected("office365-ndr.eml", "carol@example.com", "hard-bounce", "recorded",
             "hard-bounce 5.1.10 carol@example.com"),
    Expected("gmail-dsn-failure.eml", "dave@example.com", "hard-bounce", "recorded",
             "hard-bounce 5.1.1 dave@example.com"),
    Expected("postfix-mailbox-full.eml", "erin@example.com", "soft-bounce", "recorded",
             "soft-bounce 4.2.2 erin@example.com (one, list subscribers) (1 of 3 in 30 days)"),
    Expected("postfix-delayed.eml", "frank@example.com", "delay", "ignored",
             "delay notice: ignored"),
    Expected("arf-abuse-report.eml", "grace@example.com", "complaint", "recorded",
             "complaint (abuse) grace@example.com (one, list subscribers)"),
    Expected("vacation-auto-submitted.eml", "heidi@example.com", "auto-reply", "ignored",
             "auto-reply: ignored"),
    Expected("vacation-x-autoreply.eml", "ivan@example.com", "auto-reply", "ignored",
             "auto-reply: ignored"),
    Expected("mailto-unsubscribe.eml", "judy@example.com", "unsubscribe", "recorded",
             "unsubscribe judy@example.com (list subscribers)"),
    Expected("mailto-unsubscribe-no-token.eml", "kim@example.com", "unsubscribe", "recorded",
             "unsubscribe kim@example.com (every list)"),
    Expected("spam.eml", "", "unknown", "unknown", "unknown: left in place"),
    Expected("human-reply.eml", "leo@example.com", "unknown", "unknown",
             "unknown: left in place"),
    Expected("stranger-bounce.eml", "", "hard-bounce", "unmatched",
             "mallory@example.net: unmatched: not recorded"),
]  # fmt: skip
SUPPRESSED = {"alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com",
              "grace@example.com", "judy@example.com", "kim@example.com"}  # fmt: skip
SUBSCRIBERS = sorted({e.recipient for e in EXPECTED if e.recipient} | {"zoe@example.com"})


def write_journal(root: Path, emails: list[str] = SUBSCRIBERS) -> dict[str, Row]:
    """A journal of issue ``one`` to list ``subscribers`` where everyone was sent: email → row."""
    path = root / "build" / ISSUE / f"send-{LIST}.journal"
    with Journal.open(path) as journal:
        journal.bind(ISSUE, "content-hash")
        journal.add([Recipient(email, {"email": email}) for email in emails], "example.org", ISSUE)
        for row in list(journal.rows()):
            journal.mark_sent(row.id, 250, "2.0.0 Ok: queued")
        return {row.email: row for row in journal.rows()}


def read_journal(path: Path) -> dict[str, Row]:
    with Journal.read(path) as journal:
        return {row.email: row for row in journal.rows()}


def verp_of(row: Row) -> str:
    return RETURN_PATH.replace("{token}", make_verp_token(KEYS.secret, ISSUE, LIST, row.id))


def render(name: str, row: Row | None) -> bytes:
    """One corpus file with the placeholders of ``row`` filled in (CRLF kept as written)."""
    text = (CORPUS / name).read_text(encoding="utf-8")
    if row is not None:
        values = {
            "{recipient}": row.email,
            "{message_id}": row.message_id,
            "{verp}": verp_of(row),
            "{token}": KEYS.seal(LIST, ISSUE, row.email),
        }
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
    return text.encode("utf-8")


def corpus_messages(rows: dict[str, Row]) -> list[tuple[Expected, bytes]]:
    return [(e, render(e.file, rows.get(e.recipient))) for e in EXPECTED]


def write_mbox(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.mbox(path)
    try:
        for raw in messages:
            box.add(raw)
        box.flush()
    finally:
        box.close()
    return path


def write_maildir(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.Maildir(path)
    for raw in messages:
        box.add(raw)
    return path


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (or the file itself) and its bytes: to show nothing changed."""
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }
