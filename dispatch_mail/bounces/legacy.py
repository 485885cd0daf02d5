"""Bounces that are not DSNs (Exim's default, qmail, old Exchange, …), read by flufl.bounce.

flufl.bounce knows the shapes of many MTAs' plain-text bounces and tells a
temporary failure from a permanent one; it does not give the status code, so
the code is read from the text around the address ("550 5.1.1 …"). A
non-DSN warning that a message is only delayed is told apart by its wording.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.message import Message

from dispatch_mail.bounces.message import body_text, header, smtp_class, status_in

_DELAY = re.compile(
    r"\b(delayed|delay(ed)? notice|still (being )?retr(y|ied)|will (continue|keep) (to )?try|"
    r"has not yet been delivered|not been delivered yet)\b",
    re.IGNORECASE,
)
_WARNING_SUBJECT = re.compile(
    r"^\s*(warning|delayed mail|delivery (status notification )?\(?delay)", re.IGNORECASE
)
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)  # it logs every detector it runs


@dataclass(frozen=True)
class LegacyFailure:
    """One address a plain-text bounce names, and how it failed."""

    email: str
    permanent: bool
    status: str  # an enhanced status code found near the address, or ''
    diagnostic: str  # the line it was found on


def read_legacy(message: Message) -> list[LegacyFailure]:
    """The failures flufl.bounce finds (nothing for a message it does not recognise)."""
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(message)
    except Exception:  # its heuristics meet hostile input too
        return []
    text = body_text(message)
    found: list[LegacyFailure] = []
    for raw, is_permanent in [(a, True) for a in sorted(permanent)] + [
        (a, False) for a in sorted(temporary - permanent)
    ]:
        address = raw.decode("utf-8", "replace").strip().strip("<>").lower()
        if "@" not in address or any(f.email == address for f in found):
            continue
        status, line = _status_near(text, address)
        found.append(LegacyFailure(address, is_permanent, status, line))
    return found


def looks_like_delay(message: Message) -> bool:
    """A warning that a message is delayed and still being tried (no DSN says so)."""
    subject = header(message, "Subject")
    return bool(_WARNING_SUBJECT.search(subject) or _DELAY.search(subject))


def _status_near(text: str, address: str) -> tuple[str, str]:
    """The status code on the address's line or the few after it (Exim writes it below)."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if address in line.lower():
            for candidate in lines[number : number + 4]:
                status = status_in(candidate) or _class_status(candidate)
                if status:
                    return status, " ".join(candidate.split())[:300]
    status = status_in(text)
    return status, ""


def _class_status(line: str) -> str:
    """'5.0.0' / '4.0.0' for a bare SMTP code at RCPT or after DATA ("550 User unknown")."""
    code = smtp_class(line.split(":", 1)[-1]) if ":" in line else smtp_class(line)
    return f"{code}.0.0" if code in ("4", "5") else ""
