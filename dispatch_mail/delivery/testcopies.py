"""Who gets a test copy, and as whom: reviewers by name, `--to "Name <addr>"`, `--as-recipient`.

A test copy should look like the copy a reader gets, greeting included, so each
reviewer's own name goes into it. `--as-recipient` goes further: the copy is
rendered with one list member's own fields (their name, every column of their
row) and sent to the test addresses only. What a reviewer could click stays
theirs: the footer's address and the unsubscribe link name the test recipient
on the "test" list, never the member, so nothing done with a preview touches them.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr

from dispatch_mail.delivery.audience import Exclusion, Recipient, normalize, scan_audience
from dispatch_mail.errors import UsageError
from dispatch_mail.project.addresses import dedupe_key
from dispatch_mail.project.paths import shown_path
from dispatch_mail.project.schema import validate_email
from dispatch_mail.project.settings import Project


def test_address(text: str) -> Recipient:
    """``me@example.org`` or ``Ada Lovelace <ada@example.org>`` as a test recipient."""
    if any(c in text for c in "\r\n"):
        raise UsageError("test address: contains a line break")
    name, address = parseaddr(text)
    address = normalize(address or text)
    problem = validate_email(address)
    if problem:
        raise UsageError(f"test address {text.strip()}: {problem}")
    name = " ".join(name.split())
    return Recipient(address, {"email": address, **({"name": name} if name else {})})


@dataclass(frozen=True)
class Member:
    """The list member whose copy a test send previews, and where they were found."""

    recipient: Recipient
    list_name: str


def find_member(project: Project, email: str) -> Member:
    """``email``'s row in the lists of dispatch.yaml, in their order: the first list wins."""
    wanted = dedupe_key(normalize(email))
    if not project.lists:
        raise UsageError(f"{email}: a member's copy needs a list in dispatch.yaml, and it has none")
    unsendable: list[str] = []
    for name, entry in project.lists.items():
        path = project.root / entry.csv
        if not path.is_file():
            continue
        for item in scan_audience(path):
            if isinstance(item, Exclusion):
                if item.email and dedupe_key(item.email) == wanted:
                    unsendable.append(f"{item} (list {name!r})")
            elif dedupe_key(item.email) == wanted:
                return Member(item, name)
    if unsendable:
        raise UsageError(f"{email}: the list would not send to it: " + "; ".join(unsendable))
    searched = ", ".join(
        f"{name} ({shown_path(project.root / entry.csv)})" for name, entry in project.lists.items()
    )
    raise UsageError(f"{email} is in none of the lists of dispatch.yaml ({searched})")


def as_member(recipients: list[Recipient], member: Member) -> list[Recipient]:
    """Each test recipient, given the member's fields (their name above all) for the copy."""
    fields = {k: v for k, v in member.recipient.fields.items() if k != "email"}
    return [Recipient(r.email, {**fields, "email": r.email}) for r in recipients]
