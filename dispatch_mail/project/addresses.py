"""One spelling of an address for comparing: the list, the journal and the store agree."""

from __future__ import annotations


def dedupe_key(address: str) -> str:
    """Addresses that are the same mailbox in practice: the whole address case-folded."""
    return address.strip().casefold()
