"""RFC 3464 delivery status notifications: per recipient, what happened and why.

A DSN is a multipart/report (report-type=delivery-status) whose
message/delivery-status part holds one block of per-message fields, then one
block per recipient (Final-Recipient, Original-Recipient, Action, Status,
Diagnostic-Code). Postfix, Exchange/Office 365, Gmail, Exim (when asked) and most
other MTAs write one. Some send the part without the multipart/report around it,
so the part is looked for anywhere in the message.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import Message

from dispatch_mail.bounces.message import content_type, header, smtp_class, status_in, text_of, walk

MAX_RECIPIENTS = 50  # recipient blocks read from one DSN


@dataclass(frozen=True)
class DsnRecipient:
    """One recipient block of a DSN."""

    final_recipient: str  # the address as the reporting MTA saw it, "" when absent
    original_recipient: str  # as we gave it (ORCPT), "" when absent
    action: str  # failed, delayed, delivered, relayed, expanded ('' when absent)
    status: str  # '5.1.1' ('' when absent or unreadable)
    diagnostic: str  # the remote server's words, e.g. 'smtp; 550 5.1.1 <x>: User unknown'

    @property
    def address(self) -> str:
        """The address to map back: the one we sent to, when the DSN says it."""
        return self.original_recipient or self.final_recipient

    @property
    def severity(self) -> str:
        """'5' permanent, '4' transient, '2' success, '' unknown: Status, else the diagnostic."""
        if self.status:
            return self.status[0]
        return smtp_class(self.diagnostic.partition(";")[2] or self.diagnostic)


def read_dsn(message: Message) -> list[DsnRecipient] | None:
    """The recipient blocks of the message's delivery-status part; None when it has none."""
    for part in walk(message):
        if content_type(part) in ("message/delivery-status", "message/global-delivery-status"):
            return _recipients(_blocks(part))
    return None


def _blocks(part: Message) -> list[Message]:
    """The field blocks of a delivery-status part, however the parser left them."""
    payload = part.get_payload()
    if isinstance(payload, list) and all(isinstance(block, Message) for block in payload):
        return list(payload)
    text = text_of(part).replace("\r\n", "\n")
    blocks: list[Message] = []
    for chunk in text.split("\n\n"):
        if chunk.strip():
            try:
                blocks.append(
                    email.message_from_string(chunk.strip("\n") + "\n", policy=email.policy.default)
                )
            except Exception:
                continue
    return blocks


def _recipients(blocks: list[Message]) -> list[DsnRecipient]:
    found = []
    for block in blocks[: MAX_RECIPIENTS + 1]:
        final = _address(header(block, "Final-Recipient"))
        original = _address(header(block, "Original-Recipient"))
        if not final and not original:
            continue  # the per-message block, or junk
        status = header(block, "Status")
        found.append(
            DsnRecipient(
                final_recipient=final,
                original_recipient=original,
                action=header(block, "Action").lower().split(" ")[0]
                if header(block, "Action")
                else "",
                status=status_in(status) if status else "",
                diagnostic=header(block, "Diagnostic-Code")[:500],
            )
        )
    return found[:MAX_RECIPIENTS]


def _address(field: str) -> str:
    """The address of ``rfc822; alice@example.org`` (other address types are not ours)."""
    kind, semicolon, value = field.partition(";")
    if not semicolon:
        value, kind = kind, "rfc822"
    if kind.strip().lower() not in ("rfc822", "utf-8"):
        return ""
    address = value.strip().strip("<>").lower()
    return address if "@" in address and " " not in address else ""
